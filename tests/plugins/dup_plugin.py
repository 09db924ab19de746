"""Declares ``ner`` again: listed next to tests.stageplugin, a duplicate (tests/plugins)."""

from __future__ import annotations

from typing import Any

from docgraph.core import StageSpec
from docgraph.plugins.hookspecs import hookimpl


@hookimpl
def docgraph_add_stages(settings: Any) -> list[StageSpec]:
    return [StageSpec("ner", lambda ctx: None)]
