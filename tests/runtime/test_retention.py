"""Retention and trimming keep Redis memory flat while nothing pending is lost."""

from __future__ import annotations

import asyncio

import pytest

from docgraph.core.runtime.jobs import JobStore
from docgraph.core.runtime.keys import LANES, Keys
from tests.runtime.helpers import running_worker


async def _drain(store: JobStore, effects, target: int, timeout: float = 300) -> None:
    for _ in range(int(timeout / 0.1)):
        if (await effects()).get("total:ingest", 0) >= target:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"only {(await effects()).get('total:ingest', 0)} of {target} jobs finished")


@pytest.mark.slow
async def test_memory_stays_flat_over_20000_completed_jobs(settings, client, effects, monkeypatch):
    monkeypatch.setenv("DOCGRAPH_TEST_EFFECTS_TOTALS", "1")
    # the events stream is capped by length (10 events a job): a small cap reaches it before the
    # first sample (at the default 100,000 it grows until 10,000 jobs, ~160 bytes an event)
    events = settings.events.model_copy(update={"max_len": 2000})
    settings = settings.model_copy(update={"completed_max_count": 1000, "concurrency": 64, "events": events})
    store = JobStore(client, settings)
    samples: dict[int, int] = {}
    async with running_worker(settings, client):
        done = 0
        for _batch in range(20):
            for _ in range(1000):
                await store.submit(None)
            done += 1000
            await _drain(store, effects, done)
            if done in (5000, 20000):
                await asyncio.sleep(0.5)  # let upkeep finish its sweep
                samples[done] = int((await client.info("memory"))["used_memory"])
    counts = await effects()
    # nothing lost: every stage ran for every job
    assert all(counts[f"total:{s}"] >= 20000 for s in ("extract", "classify", "ner", "ingest"))
    by_state = await store.count_by_state()
    assert by_state["completed"] == 1000  # retention kept the newest 1,000 records
    assert sum(by_state[s] for s in ("queued", "running", "retrying")) == 0
    part = Keys(settings.key_prefix).part(0)
    for stage in settings.topology:
        for lane in LANES:
            assert await client.xlen(part.stream(stage, lane)) == 0
    assert 2000 <= await client.xlen(part.events) <= 2100
    growth = samples[20000] - samples[5000]
    # 15,000 more jobs went through; memory must not grow with them (allow 256 KiB of noise)
    assert growth < 256 * 1024, (samples, growth)
