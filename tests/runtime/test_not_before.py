"""Delayed submission: a job submitted with ``not_before`` is queued at once but its
first stage does not run before then; cancelling it removes the scheduled work."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from docgraph.core.runtime.jobs import JobStore, epoch_ms
from docgraph.core.runtime.keys import Keys
from docgraph.core.settings import Settings
from tests.runtime.helpers import running_worker, wait_for_states


async def test_a_delayed_job_runs_only_once_its_time_has_come(settings: Settings, client):
    store = JobStore(client, settings)
    when = datetime.now(UTC) + timedelta(seconds=3)
    async with running_worker(settings, client):
        delayed, _ = await store.submit(None, not_before=when)
        job = await store.get(delayed)
        assert job is not None and job.state == "queued"
        [root] = [s for s in job.stages if s.name == store.topology.roots[0]]
        assert (root.status, root.runs, root.due) == ("scheduled", 0, epoch_ms(when))
        prompt, _ = await store.submit(None)  # others run meanwhile
        await wait_for_states(store, [prompt, delayed], {"completed"}, timeout=60)
    job = await store.get(delayed)
    assert job is not None
    assert all(s.started is not None and s.started >= epoch_ms(when) for s in job.stages if s.runs)
    [submitted] = [e for e in await _events(store, delayed) if e[b"type"] == b"job.submitted"]
    assert int(submitted[b"not_before"]) == epoch_ms(when)


async def test_cancelling_a_delayed_job_removes_its_scheduled_work(settings: Settings, client):
    store = JobStore(client, settings)
    job_id, _ = await store.submit(None, not_before=datetime.now(UTC) + timedelta(hours=1))
    delayed = Keys(settings.key_prefix, settings.partitions).for_job(job_id).delayed
    assert await client.zcard(delayed) == 1
    assert await store.cancel(job_id) == "queued"
    assert await client.zcard(delayed) == 0
    async with running_worker(settings, client):
        await asyncio.sleep(1)  # nothing is promoted or run
    job = await store.get(job_id)
    assert job is not None and job.state == "cancelled" and all(s.runs == 0 for s in job.stages)


async def test_a_time_in_the_past_runs_at_once(settings: Settings, client):
    store = JobStore(client, settings)
    async with running_worker(settings, client):
        job_id, _ = await store.submit(None, not_before=datetime.now(UTC) - timedelta(minutes=5))
        await wait_for_states(store, [job_id], {"completed"}, timeout=30)


async def _events(store: JobStore, job_id: str) -> list[dict[bytes, bytes]]:
    part = store.keys.for_job(job_id)
    entries = await store.client.xrange(part.events)
    return [fields for _, fields in entries if fields[b"job_id"] == job_id.encode()]
