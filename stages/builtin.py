"""The built-in stages, registered through the ``docgraph`` entry point."""

from __future__ import annotations

from typing import TYPE_CHECKING

from docgraph.plugins.hookspecs import hookimpl

if TYPE_CHECKING:
    from docgraph.core.settings import Settings
    from docgraph.core.stage import StageSpec


@hookimpl
def docgraph_add_stages(settings: Settings) -> list[StageSpec]:
    return []
