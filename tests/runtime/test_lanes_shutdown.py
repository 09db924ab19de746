"""Priority lanes, cancellation, graceful shutdown, partitions."""

from __future__ import annotations

import asyncio
import signal
import time

from docgraph.core.runtime.jobs import JobStore
from docgraph.core.runtime.keys import Keys
from tests.runtime.helpers import running_worker, wait_for_states
from tests.runtime.procs import WorkerProcs


async def test_higher_lane_is_always_served_first(settings, client):
    settings = settings.model_copy(update={"concurrency": 1, "topology": {"extract": []}})
    store = JobStore(client, settings)
    low = [(await store.submit(None, priority="low"))[0] for _ in range(20)]
    normal = [(await store.submit(None, priority="normal"))[0] for _ in range(20)]
    high = [(await store.submit(None, priority="high"))[0] for _ in range(20)]
    async with running_worker(settings, client):
        await wait_for_states(store, low + normal + high, {"completed"})
    started = {j.id: j.stages[0].started for j in await store.get_many(low + normal + high)}
    assert max(started[i] for i in high) <= min(started[i] for i in normal)
    assert max(started[i] for i in normal) <= min(started[i] for i in low)


async def test_cancel_and_delete(settings, client):
    store = JobStore(client, settings)
    queued, _ = await store.submit(None)
    deleted, _ = await store.submit(None)
    assert await store.cancel(queued) == "queued"
    assert await store.cancel(deleted, remove=True) == "queued"
    assert await store.get(deleted) is None
    assert await store.cancel("nope") is None
    async with running_worker(settings, client):
        done, _ = await store.submit(None)
        await wait_for_states(store, [done], {"completed"})
    assert (await store.get(queued)).state == "cancelled"
    assert await store.get(deleted) is None  # not resurrected by its leftover event
    runs = {s.name: s.runs for s in (await store.get(queued)).stages}
    assert runs["extract"] == 0


async def test_idempotency_key(settings, client):
    store = JobStore(client, settings)
    a, created_a = await store.submit(None, idempotency_key="order-42")
    b, created_b = await store.submit(None, idempotency_key="order-42")
    assert a == b and created_a and not created_b


async def test_sigterm_finishes_in_flight_work_and_exits_0(settings, client, tmp_path):
    settings = settings.model_copy(update={"shutdown_grace": 20})
    store = JobStore(client, settings)
    ids = [(await store.submit(None, metadata={"sleep_ms": {"extract": [1500, 1500]}}))[0] for _ in range(5)]
    procs = WorkerProcs(settings, tmp_path)
    [proc] = procs.start(1)
    for _ in range(400):
        jobs = await store.get_many(ids)
        if all(j.stages[0].status == "running" for j in jobs):
            break
        await asyncio.sleep(0.025)
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(proc.wait, 30) == 0, procs.logs()
    jobs = await store.get_many(ids)
    assert all(j.stages[0].status == "done" for j in jobs), [j.stages[0].status for j in jobs]


async def test_sigterm_past_grace_hands_work_back(settings, client, tmp_path):
    settings = settings.model_copy(update={"shutdown_grace": 0.2, "visibility_timeout": 60})
    store = JobStore(client, settings)
    ids = [(await store.submit(None, metadata={"sleep_ms": {"extract": [3000, 3000]}}))[0] for _ in range(3)]
    procs = WorkerProcs(settings, tmp_path)
    [proc] = procs.start(1)
    for _ in range(400):
        if all(j.stages[0].status == "running" for j in await store.get_many(ids)):
            break
        await asyncio.sleep(0.025)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(proc.wait, 30) == 0, procs.logs()
    assert time.monotonic() - t0 < 5
    # handed back: another worker picks them up now, not after the 60 s visibility timeout
    async with running_worker(settings, client):
        await wait_for_states(store, ids, {"completed"}, timeout=20)


async def test_partitions_share_a_hash_tag_per_job(settings, client):
    settings = settings.model_copy(update={"partitions": 4})
    store = JobStore(client, settings)
    ids = [(await store.submit(None))[0] for _ in range(40)]
    keys = Keys(settings.key_prefix, 4)
    assert len({keys.partition_of(i) for i in ids}) == 4
    async with running_worker(settings, client):
        await wait_for_states(store, ids, {"completed"})
    for i in ids[:5]:
        tag = keys.for_job(i).tag
        assert keys.for_job(i).job(i).startswith(tag)
        assert keys.for_job(i).stream("ner", "high").startswith(tag)
        assert keys.for_job(i).state_index("completed").startswith(tag)
