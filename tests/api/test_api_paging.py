"""Paging 2,500 jobs over HTTP while jobs change state: no gaps, no repeats."""

from __future__ import annotations

import asyncio
import random

import httpx

from docgraph.core.runtime.jobs import JobStore
from docgraph.core.runtime.keys import Keys
from tests.runtime.helpers import running_worker, wait_for_states

N = 2500
N_FLOWING = 1500  # paging starts at 800 completed: 700 still flow while it pages


async def submit_many(store: JobStore, n: int, **kwargs) -> list[str]:
    ids: list[str] = []
    for start in range(0, n, 50):
        batch = await asyncio.gather(*[store.submit(None, **kwargs) for _ in range(min(50, n - start))])
        ids += [job_id for job_id, _ in batch]
    return ids


async def page_all(http: httpx.AsyncClient, state: str, limit: int, between=None) -> list[str]:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"state": state, "limit": limit, **({"cursor": cursor} if cursor else {})}
        r = await http.get("/v1/jobs", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["jobs"]) <= limit
        seen += [j["id"] for j in body["jobs"]]
        pages += 1
        if between is not None:
            await between(pages)
        cursor = body["next_cursor"]
        if cursor is None:
            assert body["next"] is None
            return seen
        assert f"cursor={cursor}" in body["next"]


async def test_paging_queued_while_jobs_leave_and_arrive(api, http, client):
    store = JobStore(client, api.settings)
    ids = await submit_many(store, N)
    rng = random.Random(7)
    cancelled: set[str] = set()
    arrived: list[str] = []

    async def churn(page: int) -> None:
        # after every page: some jobs leave the state (cancelled), some arrive (newer)
        for job_id in rng.sample(ids, 40):
            if await store.cancel(job_id) is not None:
                cancelled.add(job_id)
        arrived.extend(await submit_many(store, 20))

    seen = await page_all(http, "queued", 100, between=churn)
    assert len(seen) == len(set(seen)), "a job was listed twice"
    stayed = set(ids) - cancelled
    assert stayed <= set(seen), f"{len(stayed - set(seen))} jobs that stayed queued were skipped"
    assert not set(seen) & set(arrived), "jobs submitted after paging began must not appear on later pages"
    assert set(seen) <= set(ids)
    assert len(cancelled) > 500  # the churn really happened

    # newest first, in a stable order: a quiet re-read gives the same order
    quiet = await page_all(http, "queued", 333)
    scores = await client.zrevrange(Keys(api.settings.key_prefix).part(0).state_index("queued"), 0, -1)
    assert quiet == [s.decode() for s in scores]
    assert len(quiet) == N - len(cancelled) + len(arrived)


async def test_paging_completed_while_a_worker_completes_jobs(api, http, client):
    store = JobStore(client, api.settings)
    ids = await submit_many(store, N_FLOWING)
    index = Keys(api.settings.key_prefix).part(0).state_index("completed")
    async with running_worker(api.settings, client):
        for _ in range(1200):
            if await client.zcard(index) >= 800:
                break
            await asyncio.sleep(0.05)
        before = {m.decode() for m in await client.zrange(index, 0, -1)}
        assert len(before) < N_FLOWING, "the worker finished everything before paging began"
        seen = await page_all(http, "completed", 50, between=lambda _: asyncio.sleep(0.02))
        after = await client.zcard(index)
        assert after > len(before), "no job completed while paging"
        await wait_for_states(store, ids, {"completed"}, timeout=300)  # ~25 jobs/s on a busy CI host
    assert len(seen) == len(set(seen)), "a job was listed twice"
    assert before <= set(seen), f"{len(before - set(seen))} completed jobs were skipped"
    assert set(seen) <= set(ids)
    everything = await page_all(http, "completed", 1000)
    assert sorted(everything) == sorted(ids)


async def test_paging_many_jobs_with_the_same_timestamp(api, http, client):
    store = JobStore(client, api.settings)
    ids = await submit_many(store, 300)
    index = Keys(api.settings.key_prefix).part(0).state_index("queued")
    await client.zadd(index, dict.fromkeys(ids, 1_700_000_000_000))
    seen = await page_all(http, "queued", 50)
    assert len(seen) == len(set(seen))
    assert sorted(seen) == sorted(ids)
