"""Killing the Redis master under a running pipeline, shared by the Redis Cluster and
Sentinel failover tests: 1,000 jobs and 2 ``docgraph worker`` processes, a submitter
that keeps submitting through the kill, then every acknowledged job that survived must
complete with each stage recorded once.  What the failover cost (acknowledged submits
lost, stage re-runs) is measured, printed and returned; the tests decide what to
assert (with ``DOCGRAPH_REDIS_WAIT_REPLICAS=1``: nothing acknowledged is lost).

Bounded: every wait has a deadline; the workers are stopped whatever happens."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docgraph.core.runtime.connection import REDIS_DOWN, connect
from docgraph.core.runtime.jobs import JobStore
from docgraph.core.settings import Settings
from tests.runtime.procs import WorkerProcs

STAGES = ("extract", "classify", "ner", "ingest")
FINAL = ("completed", "failed", "dead")
SLOW = {"sleep_ms": {s: [5, 20] for s in STAGES}}  # keeps the workers busy when the master dies


@dataclass(frozen=True)
class FailoverCost:
    """What one kill cost: ``lost`` of ``acknowledged`` submits, ``reruns`` stage runs beyond one each."""

    acknowledged: int
    lost: int
    reruns: int
    wait_replicas: int


async def assert_each_stage_recorded_once(store: JobStore, ids: list[str]) -> None:
    """Every job of ``ids`` completed, each stage's hand-off recorded exactly once."""
    for i in range(0, len(ids), 500):
        for job in await store.get_many(ids[i : i + 500]):
            assert job is not None and job.state == "completed", job
            for st in job.stages:
                assert st.completions == 1, (job.id, st)


async def wait_all_final(procs: WorkerProcs, store: JobStore, ids: list[str], deadline: float) -> None:
    """Until every job of ``ids`` is completed, failed or dead (the state counts are not
    enough here: a hand-off may recreate part of a record whose submit was lost)."""
    todo = list(ids)
    while todo and time.monotonic() < deadline and procs.alive():
        jobs = await store.get_many(todo)
        todo = [j for j, job in zip(todo, jobs, strict=True) if job is None or job.state not in FINAL]
        await asyncio.sleep(0.5)
    assert not todo, f"{len(todo)} not finished, e.g. {await store.get(todo[0])}\n{procs.logs()}"


class Submitter:
    """Submits ``chunk`` jobs every ``pause`` s until stopped, through the kill: only
    what ``submit_many`` returned counts as acknowledged (a chunk that raised did not)."""

    def __init__(self, store: JobStore, chunk: int = 10, pause: float = 0.1) -> None:
        self.store, self.chunk, self.pause = store, chunk, pause
        self.accepted: list[str] = []
        self.failures = 0
        self._stop = asyncio.Event()
        self._grew = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                done = await self.store.submit_many([None] * self.chunk, metadata=[SLOW] * self.chunk)
                self.accepted += [j for j, _ in done]
                self._grew.set()
            except REDIS_DOWN:
                self.failures += 1
            await asyncio.sleep(self.pause)

    async def until(self, n: int, deadline: float) -> None:
        """Until ``n`` jobs in all were acknowledged (or the deadline)."""
        while len(self.accepted) < n:
            left = deadline - time.monotonic()
            assert left > 0, f"only {len(self.accepted)} submits acknowledged, {self.failures} refused"
            self._grew.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._grew.wait(), left)

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, 30)


async def run_through_failover(
    settings: Settings,
    tmp_path: Path,
    effects: Callable[[], Awaitable[dict[str, int]]],
    kill_and_heal: Callable[[], Awaitable[None]],
    *,
    jobs: int = 1000,
    after: int = 200,
    timeout: float = 300,
) -> FailoverCost:
    """Submit ``jobs``, start 2 workers, and once 200 jobs completed run
    ``kill_and_heal`` (SIGKILL the master, wait for the promotion, bring the old
    master back as a replica) while a :class:`Submitter` keeps submitting; ``after``
    more submits are acknowledged after the failover.  Then every acknowledged job
    whose record survived completes with each stage recorded once."""
    client = connect(settings)
    store = JobStore(client, settings)
    procs = WorkerProcs(settings, tmp_path)
    submitter = Submitter(store)
    deadline = time.monotonic() + timeout
    healed = 0
    try:
        before = [j for j, _ in await store.submit_many([None] * jobs, metadata=[SLOW] * jobs)]
        procs.start(2)
        while (await store.count_by_state())["completed"] < 200:  # kill mid-run: most still going
            assert time.monotonic() < deadline and procs.alive(), procs.logs()
            await asyncio.sleep(0.1)
        submitter.start()
        await asyncio.sleep(0.5)  # submits acknowledged right before the kill: the ones at risk
        await kill_and_heal()
        healed = len(submitter.accepted)
        await submitter.until(healed + after, deadline)
        await submitter.stop()
        ids = before + submitter.accepted
        records: list[Any] = []
        for i in range(0, len(ids), 500):
            records += await store.get_many(ids[i : i + 500])
        survived = [j for j, job in zip(ids, records, strict=True) if job is not None]
        await wait_all_final(procs, store, survived, deadline)
    finally:
        await submitter.stop()
        codes = procs.stop()
        await client.aclose()
    assert codes == [0, 0], procs.logs()
    assert set(submitter.accepted[healed:]) <= set(survived)  # nothing accepted after the failover is lost
    check = JobStore(connect(settings), settings)
    try:
        await assert_each_stage_recorded_once(check, survived)
    finally:
        await check.client.aclose()
    counts = await effects()
    reruns = sum(counts.get(f"{j}:{s}", 0) for j in survived for s in STAGES) - len(survived) * len(STAGES)
    cost = FailoverCost(len(ids), len(ids) - len(survived), reruns, settings.redis_wait_replicas)
    print(
        f"\nfailover (WAIT {cost.wait_replicas}): {cost.lost} of {cost.acknowledged} acknowledged submits lost, "
        f"{cost.reruns} stage re-runs, {submitter.failures} submit round trips refused"
    )
    assert reruns >= 0
    return cost
