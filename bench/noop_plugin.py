"""A bench plugin: every stage of the topology as a no-op async function.

Used by ``bench/runtime.py`` through ``DOCGRAPH_PLUGINS='["bench.noop_plugin"]'``
(with the repository root on ``PYTHONPATH``), so a benchmark measures the
runtime's own cost per job and nothing else.
"""

from __future__ import annotations

from docgraph.core.stage import StageContext, StageSpec
from docgraph.plugins.hookspecs import hookimpl


async def _noop(ctx: StageContext) -> None:
    return None


@hookimpl
def docgraph_add_stages(settings):
    return [StageSpec(name=name, func=_noop, description="bench no-op") for name in settings.topology]
