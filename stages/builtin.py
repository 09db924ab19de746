"""The built-in stages, registered through the ``docgraph`` entry point."""

from __future__ import annotations

from typing import TYPE_CHECKING

from docgraph.core.stage import StageSpec
from docgraph.plugins.hookspecs import hookimpl
from docgraph.stages.classify import classify
from docgraph.stages.extract import extract
from docgraph.stages.ingest import ingest
from docgraph.stages.ner.stage import ner

if TYPE_CHECKING:
    from docgraph.core.settings import Settings


@hookimpl
def docgraph_add_stages(settings: Settings) -> list[StageSpec]:
    return [
        StageSpec("extract", extract, cpu_bound=True, description="bytes -> text + chunks"),
        StageSpec("classify", classify, cpu_bound=True, description="document type + confidence"),
        StageSpec("ner", ner, cpu_bound=True, description="entity mentions (model + rules)"),
        StageSpec("ingest", ingest, cpu_bound=True, description="write the graph"),
    ]
