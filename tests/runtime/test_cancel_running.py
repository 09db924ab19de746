"""Cancelling a job whose stage is running: the stage is told, nothing downstream runs."""

from __future__ import annotations

import asyncio

import pytest

from docgraph.core.runtime.jobs import JobStore
from tests.runtime.helpers import running_worker, wait_for_states


@pytest.mark.parametrize(
    "behaviour",
    [
        {"sleep_ms": {"ner": [60_000, 60_000]}},  # an async stage awaiting: task cancellation
        {"spin_ms": {"ner": 60_000}},  # a sync loop reporting progress: ctx.progress raises
    ],
    ids=["async", "sync-progress"],
)
async def test_cancel_stops_a_running_stage_and_nothing_downstream_runs(settings, client, effects, behaviour):
    store = JobStore(client, settings)
    job_id, _ = await store.submit(None, metadata=behaviour)
    async with running_worker(settings, client) as worker:
        for _ in range(300):
            job = await store.get(job_id)
            if job and (ner := job.stage("ner")) and ner.status == "running":
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("ner never started")
        await asyncio.sleep(1.2)  # running longer than a second: the upkeep checks it
        assert await store.cancel(job_id) == "running"
        runner = next(r for r in worker.runners if r.stage == "ner")
        for _ in range(200):  # the stage lets go of its entry within a few upkeep ticks
            if not runner.inflight:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the ner stage still runs after the cancel")
        await asyncio.sleep(0.5)
    job = await store.get(job_id)
    assert job.state == "cancelled"
    assert job.stage("ingest").status == "pending"  # nothing downstream ran
    done = await effects()
    assert f"{job_id}:ner" not in done and f"{job_id}:ingest" not in done
    pending = await client.xpending(runner.keys.for_job(job_id).stream("ner", "normal"), "ner")
    assert pending["pending"] == 0  # the entry was dropped, not left to be reclaimed
    assert (await store.count_by_state())["cancelled"] == 1
    await wait_for_states(store, [job_id], {"cancelled"})
