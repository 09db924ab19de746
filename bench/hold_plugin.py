"""A bench plugin for crash recovery: the first stage holds its job while
``BENCH_HOLD=1`` is set in the worker's environment (the worker about to be
killed), and is a no-op anywhere else (the worker that takes the entries back)."""

from __future__ import annotations

import asyncio
import os

from docgraph.core.stage import StageContext, StageSpec
from docgraph.plugins.hookspecs import hookimpl


def _stage(first: bool):
    async def run(ctx: StageContext) -> None:
        if first and os.environ.get("BENCH_HOLD") == "1":
            await asyncio.sleep(3600)

    return run


@hookimpl
def docgraph_add_stages(settings):
    names = list(settings.topology)
    return [StageSpec(name=n, func=_stage(n == names[0]), description="bench hold/no-op") for n in names]
