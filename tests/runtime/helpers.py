"""Running stages in-process for runtime tests."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from docgraph.core.runtime.jobs import JobStore
from docgraph.core.runtime.services import build_services
from docgraph.core.runtime.worker import Worker
from docgraph.core.settings import Settings
from docgraph.plugins.manager import collect_stages, plugin_manager


@contextlib.asynccontextmanager
async def running_worker(
    settings: Settings, client, stages: list[str] | None = None, *, with_services: bool = False
) -> AsyncIterator[Worker]:
    pm = plugin_manager(settings)
    specs = collect_stages(pm, settings)
    chosen = [specs[s] for s in (stages or list(settings.topology))]
    services = build_services(settings, pm) if with_services else None
    worker = Worker(settings, chosen, client, services=services)
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)


async def wait_for_states(
    store: JobStore, ids: list[str], states: set[str], timeout: float = 30
) -> dict[str, str]:
    """Poll until every job is in one of ``states``; returns id -> state."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = await store.get_many(ids)
        current = {i: (j.state if j else "missing") for i, j in zip(ids, jobs, strict=True)}
        if all(s in states for s in current.values()):
            return current
        if time.monotonic() > deadline:
            stuck = {i: s for i, s in current.items() if s not in states}
            raise AssertionError(f"{len(stuck)} jobs not in {states}: {list(stuck.items())[:5]}")
        await asyncio.sleep(0.05)
