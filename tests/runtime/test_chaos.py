"""Crashes and kills against real worker processes and a real redis-server.

Bounded: every test stops by itself (timeouts), whatever happens.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import time

import pytest

from docgraph.core.runtime.jobs import JobStore
from docgraph.core.settings import Settings
from tests.redis_server import RedisServer
from tests.runtime.helpers import running_worker, wait_for_states
from tests.runtime.procs import WorkerProcs

STAGES = ("extract", "classify", "ner", "ingest")


async def _submit(store: JobStore, n: int, **kw) -> list[str]:
    return [(await store.submit(None, **kw))[0] for _ in range(n)]


async def _events_by_job(store: JobStore) -> dict[str, list[dict[str, str]]]:
    """Every retained lifecycle event of partition 0, grouped by job, in stream order."""
    stream = store.keys.part(0).events
    out: dict[str, list[dict[str, str]]] = {}
    start = "-"
    while rows := await store.client.xrange(stream, start, "+", count=5000):
        for _, fields in rows:
            f = {k.decode(): v.decode() for k, v in fields.items()}
            out.setdefault(f["job_id"], []).append(f)
        start = "(" + rows[-1][0].decode()
    return out


async def _assert_each_stage_recorded_once(store: JobStore, ids: list[str]) -> dict[str, int]:
    """Every job completed and each stage's hand-off was recorded exactly once, and
    its lifecycle events say exactly that: one stage.started per recorded run, one
    stage.completed per stage, a stage.retrying per retry (each an attempt: a stage
    whose Redis went away mid-run retries), one job.submitted and job.completed, seq gapless.
    Returns total stage-function runs per stage (>= jobs: at-least-once execution)."""
    runs = dict.fromkeys(STAGES, 0)
    events = await _events_by_job(store)
    for i in range(0, len(ids), 500):
        for job in await store.get_many(ids[i : i + 500]):
            assert job is not None and job.state == "completed"
            mine = events.get(job.id, [])
            assert [int(e["seq"]) for e in mine] == list(range(1, len(mine) + 1)), job.id
            kinds = [(e["type"], e.get("stage", "")) for e in mine]
            assert kinds[0] == ("job.submitted", "") and kinds[-1] == ("job.completed", ""), (job.id, kinds)
            for st in job.stages:
                assert st.completions == 1, (job.id, st)
                assert kinds.count(("stage.started", st.name)) == st.runs, (job.id, st, kinds)
                assert kinds.count(("stage.completed", st.name)) == 1, (job.id, st, kinds)
                assert kinds.count(("stage.retrying", st.name)) <= max(st.attempts - 1, 0), (
                    job.id,
                    st,
                    kinds,
                )
                runs[st.name] += st.runs
            retries = sum(kind == "stage.retrying" for kind, _ in kinds)
            expected = 2 + retries + sum(st.runs + 1 for st in job.stages)
            assert len(kinds) == expected, f"{job.id} {kinds} {job.stages}"
    return runs


async def _supervise(
    procs: WorkerProcs, store: JobStore, ids: list[str], timeout: float, kill_every: float = 0
) -> int:
    """Restart dead workers (and kill one every ``kill_every`` s) until all jobs finish."""
    deadline = time.monotonic() + timeout
    last_kill = time.monotonic()
    kills = 0
    while time.monotonic() < deadline:
        procs.restart_dead()
        if kill_every and time.monotonic() - last_kill >= kill_every and procs.alive():
            procs.kill9(random.choice(procs.alive()))
            kills += 1
            last_kill = time.monotonic()
        counts = await store.count_by_state()
        if counts["completed"] + counts["dead"] + counts["failed"] >= len(ids):
            return kills
        await asyncio.sleep(0.1)
    raise AssertionError(f"not finished in {timeout}s: {await store.count_by_state()}\n{procs.logs()}")


@pytest.mark.slow
async def test_join_runs_ingest_exactly_once_per_job(settings: Settings, client, effects, tmp_path):
    """1,000 jobs through the DAG, random stage delays, 4 worker processes per stage."""
    settings = settings.model_copy(update={"concurrency": 8})
    store = JobStore(client, settings)
    ids = await _submit(store, 1000, metadata={"sleep_ms": {s: [0, 5] for s in STAGES}})
    procs = WorkerProcs(settings, tmp_path)
    try:
        procs.start(4)  # each process runs every stage: 4 consumers per stage group
        await _supervise(procs, store, ids, timeout=240)
    finally:
        codes = procs.stop()
    assert codes == [0, 0, 0, 0], procs.logs()
    runs = await _assert_each_stage_recorded_once(store, ids)
    counts = await effects()
    ingest = [counts.get(f"{i}:ingest", 0) for i in ids]
    assert sum(ingest) == 1000 and set(ingest) == {1}
    assert runs["ingest"] == 1000


@pytest.mark.slow
@pytest.mark.parametrize("point", ["after_start", "after_stage", "after_handoff"])
async def test_crash_between_hand_off_steps_loses_nothing(settings: Settings, client, tmp_path, point):
    """Workers die at a given step of a job's life (3% of steps); nothing is lost and
    every stage's effect (its recorded hand-off) happens exactly once."""
    settings = settings.model_copy(update={"visibility_timeout": 1.0, "max_deliveries": 50, "concurrency": 4})
    store = JobStore(client, settings)
    ids = await _submit(store, 200)
    procs = WorkerProcs(
        settings, tmp_path, DOCGRAPH_CHAOS_CRASH_AT=point, DOCGRAPH_CHAOS_CRASH_PROBABILITY="0.03"
    )
    try:
        procs.start(2)
        await _supervise(procs, store, ids, timeout=240)
    finally:
        procs.stop()
    assert procs.started > 2, "no crash was injected"
    runs = await _assert_each_stage_recorded_once(store, ids)
    if point != "after_handoff":
        assert sum(runs.values()) > 4 * len(ids)  # crashed attempts ran again


@pytest.mark.slow
async def test_kill9_a_worker_every_second(settings: Settings, client, tmp_path):
    settings = settings.model_copy(update={"visibility_timeout": 2.0, "max_deliveries": 50})
    store = JobStore(client, settings)
    # stages take 10-40 ms so that the run lasts long enough for several kills
    ids = await _submit(store, 1000, metadata={"sleep_ms": {s: [10, 40] for s in STAGES}})
    procs = WorkerProcs(settings, tmp_path)
    try:
        procs.start(3)
        kills = await _supervise(procs, store, ids, timeout=300, kill_every=1.0)
    finally:
        procs.stop()
    assert kills >= 3
    await _assert_each_stage_recorded_once(store, ids)


@pytest.mark.slow
async def test_kill9_redis_mid_run_with_aof_always(tmp_path, monkeypatch):
    server = RedisServer(tmp_path / "redis", appendfsync="always").start()
    monkeypatch.setenv("DOCGRAPH_TEST_EFFECTS_URL", server.url.rsplit("/", 1)[0] + "/1")
    monkeypatch.setenv("DOCGRAPH_TEST_EFFECTS", "effects")
    settings = Settings(
        redis_url=server.url,
        key_prefix="aof",
        plugins=["tests.stageplugin"],
        poll_interval=0.2,
        visibility_timeout=3,
        completed_max_count=1_000_000,
    )
    from docgraph.core.runtime.connection import connect

    client = connect(settings.redis_url)
    store = JobStore(client, settings)
    try:
        ids = await _submit(store, 300, metadata={"sleep_ms": {s: [1, 5] for s in STAGES}})
        async with running_worker(settings, client):
            for _ in range(200):
                if (await store.count_by_state())["completed"] >= 50:
                    break
                await asyncio.sleep(0.02)
            server.kill9()
            await asyncio.sleep(1.0)
            server.start()
            await wait_for_states(store, ids, {"completed"}, timeout=120)
        await _assert_each_stage_recorded_once(store, ids)
    finally:
        await client.aclose()
        server.stop()


@pytest.mark.slow
async def test_poison_message_is_dead_lettered_after_the_delivery_cap(settings: Settings, client, tmp_path):
    from docgraph.core.runtime.dlq import DeadLetters

    settings = settings.model_copy(update={"visibility_timeout": 1.0, "max_deliveries": 3})
    store = JobStore(client, settings)
    poison, _ = await store.submit(None, metadata={"crash": {"classify": True}})
    good = await _submit(store, 20)
    procs = WorkerProcs(settings, tmp_path)
    try:
        procs.start(2)
        await _supervise(procs, store, [poison, *good], timeout=120)
    finally:
        procs.stop()
    job = await store.get(poison)
    assert job.state == "dead"
    [letter] = await DeadLetters(client, settings).list("classify")
    assert letter.fields["error_type"] == "DeliveryCapExceeded"
    assert letter.fields["deliveries"] == "4"
    assert procs.started - 2 == 3  # it killed exactly max_deliveries workers
    await _assert_each_stage_recorded_once(store, good)


def _cpu_hogs(n: int, seconds: float) -> list[subprocess.Popen[bytes]]:
    """Busy processes that stop by themselves after ``seconds``."""
    code = f"import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass\n"
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(n)]


@pytest.mark.slow
async def test_a_slow_job_on_a_live_starved_worker_keeps_its_entry(settings: Settings, client, tmp_path):
    """Stages that block their worker's event loop past the visibility timeout, on
    a machine busy with CPU hogs: live workers hold their leases, so nothing is
    reclaimed, nothing is dead-lettered, every stage runs exactly once."""
    from docgraph.core.runtime.dlq import DeadLetters

    # concurrency 1: the loop is blocked 2.5 s at a time, past the visibility timeout (1 s) but
    # under the 5 s socket timeout (a longer block would time out and retry its own Redis calls)
    settings = settings.model_copy(update={"visibility_timeout": 1.0, "max_deliveries": 2, "concurrency": 1})
    store = JobStore(client, settings)
    ids = await _submit(store, 12, metadata={"block_ms": {"ner": 2500, "classify": 1500}})
    hogs = _cpu_hogs(3, 90)
    procs = WorkerProcs(settings, tmp_path)
    try:
        procs.start(2)
        await _supervise(procs, store, ids, timeout=120)
    finally:
        procs.stop()
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert procs.started == 2, procs.logs()  # no worker died
    runs = await _assert_each_stage_recorded_once(store, ids)
    assert runs == dict.fromkeys(STAGES, len(ids)), (runs, procs.logs())  # no stage ran twice
    for stage in STAGES:
        assert await DeadLetters(client, settings).list(stage) == []


@pytest.mark.slow
async def test_a_killed_worker_s_128_entries_all_run_elsewhere_soon(
    settings: Settings, client, effects, tmp_path
):
    """SIGKILL a worker holding 128 in-flight entries: once its lease expires
    (visibility timeout + grace) a live worker takes them back in bulk, not one
    per tick.  The real figure is in bench/recovery.py; this bound is generous."""
    settings = settings.model_copy(update={"visibility_timeout": 2.0, "concurrency": 256})
    store = JobStore(client, settings)
    ids = await _submit(store, 128, metadata={"hold_first_ms": {"extract": 600_000}})
    holder = WorkerProcs(settings, tmp_path / "a")
    rescuer = WorkerProcs(settings, tmp_path / "b")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    try:
        [victim] = holder.start(1)

        # held, not just started: a start is recorded before the stage counts its hold, and a
        # job killed in between would be held (600 s) again by the rescuer
        async def all_held() -> bool:
            counts = await effects()
            return all(counts.get(f"{job}:extract:held") == 1 for job in ids)

        await _until(all_held, 60, "the holder holds all 128")
        rescuer.start(1)
        holder.kill9(victim)
        killed = time.monotonic()
        await _until(lambda: _running(store, ids, "extract", 2), 60, "all 128 run again elsewhere")
        took = time.monotonic() - killed
        await _supervise(rescuer, store, ids, timeout=120)
    finally:
        holder.stop()
        rescuer.stop()
    await _assert_each_stage_recorded_once(store, ids)
    assert took < settings.visibility_timeout + 15, took  # the target is visibility + 5 s
    print(f"128 entries of a SIGKILLed worker running elsewhere {took:.1f} s after the kill")


async def _running(store: JobStore, ids: list[str], stage: str, runs: int) -> bool:
    """Every job has started ``stage`` at least ``runs`` times."""
    jobs = await store.get_many(ids)
    return all(j is not None and (s := j.stage(stage)) is not None and s.runs >= runs for j in jobs)


async def _until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.1)
