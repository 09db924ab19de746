"""Redis and three workers on four hosts (network namespaces on a private switch,
tests/cluster/netns.py); one worker host's link is cut for longer than its lease
lives, then restored.

What must hold: the cut worker's entries are reclaimed and finished by the others;
its late hand-offs (sent before or during the cut, or made after it with results of
entries reclaimed meanwhile) are refused, so no stage is recorded twice; it rejoins
and works again (the only worker left, it finishes 50 more jobs); every job completes.

Bounded: every wait has a deadline; processes, namespaces and veths are removed in
``finally`` whatever happened."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from docgraph.core.runtime.connection import connect
from docgraph.core.runtime.embedded import die_with_parent
from docgraph.core.runtime.jobs import JobStore
from docgraph.core.runtime.keys import LANES
from docgraph.core.runtime.recovery import LEASE_GRACE
from docgraph.core.settings import Settings
from tests.cluster.cluster import binary
from tests.cluster.netns import Host, Switch
from tests.runtime.procs import WorkerProcs
from tests.runtime.test_chaos import STAGES, _assert_each_stage_recorded_once

pytestmark = [pytest.mark.service, pytest.mark.slow]

VISIBILITY = 2.0  # s; a lease lives VISIBILITY + LEASE_GRACE after its last renewal
CUT = 3 * (VISIBILITY + LEASE_GRACE)  # the link is down well past the cut worker's lease
JOBS = 500
AFTER = 50  # jobs only the rejoined worker can run
SLOW = {"sleep_ms": {s: [20, 80] for s in STAGES}}  # jobs keep flowing across the cut


def _start_redis(host: Host, log_dir: Path) -> subprocess.Popen[bytes]:
    """Debian's redis-server on ``host`` (no persistence: this test is about the network)."""
    cmd = [*host.exec_prefix(), binary("redis-server"), "--bind", host.addr, "--port", "6379"]
    cmd += ["--protected-mode", "no", "--save", "", "--appendonly", "no", "--dir", str(log_dir)]
    with (log_dir / "redis.log").open("wb") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent())


async def _until(check, timeout: float, what: str, procs: WorkerProcs | None = None) -> float:
    """Poll ``check`` (async, truthy when done) until true; returns the seconds it took.
    A timeout fails with the workers' logs (``procs``) as they are then."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if await check():
                return time.monotonic() - start
        except OSError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{procs.logs() if procs else ''}")


async def _pending_of(store: JobStore, pid: int) -> set[tuple[str, str]]:
    """(stream, entry id) of every entry pending to a consumer of process ``pid``."""
    held: set[tuple[str, str]] = set()
    mine = re.compile(rf"-{pid}-[0-9a-f]+$")
    for part in store.keys.all():
        for stage in STAGES:
            for lane in LANES:
                stream = part.stream(stage, lane)
                if not await store.client.exists(stream):
                    continue
                rows = await store.client.xpending_range(stream, stage, min="-", max="+", count=10_000)
                held |= {
                    (stream, r["message_id"].decode()) for r in rows if mine.search(r["consumer"].decode())
                }
    return held


async def _leases_of(store: JobStore, pid: int) -> int:
    return sum([1 async for _ in store.client.scan_iter(match=f"{store.keys.prefix}:lease:*-{pid}-*")])


@pytest.mark.parametrize("loss", ["unreachable", "silent"])
async def test_a_cut_off_worker_host_is_reclaimed_refused_and_rejoins(tmp_path: Path, loss: str) -> None:
    """``unreachable``: the cut host's kernel fails ARP and its connections fail fast;
    ``silent``: static ARP entries, packets just vanish, its connections survive and
    deliver their queued commands (starts, hand-offs) late, after the restore."""
    switch = Switch()
    redis_proc: subprocess.Popen[bytes] | None = None
    procs: WorkerProcs | None = None
    store: JobStore | None = None
    try:
        switch.create()
        redis_host = switch.add_host("redis")
        hosts = [switch.add_host(f"w{i}") for i in range(3)]
        if loss == "silent":
            switch.pin_neighbours(hosts[0], redis_host)
        redis_proc = _start_redis(redis_host, tmp_path)
        prefix = f"t{uuid.uuid4().hex[:10]}"
        settings = Settings(
            redis_url=f"redis://{redis_host.addr}:6379/0",
            key_prefix=prefix,
            plugins=["tests.stageplugin"],
            poll_interval=0.2,
            visibility_timeout=VISIBILITY,
            concurrency=8,
            completed_max_count=1_000_000,
            shutdown_grace=10.0,
        )
        store = JobStore(connect(settings), settings)
        await _until(store.client.ping, 30, f"redis-server on {redis_host.ns}")
        procs = WorkerProcs(
            settings,
            tmp_path,
            DOCGRAPH_TEST_EFFECTS_URL=f"redis://{redis_host.addr}:6379/1",
            DOCGRAPH_TEST_EFFECTS=f"{prefix}:effects",
        )
        for host in hosts:
            procs.start(1, wrap=host.exec_prefix())
        victim, *others = procs.procs
        deadline = 60.0

        async def all_leased() -> bool:
            return all([await _leases_of(store, p.pid) == len(STAGES) for p in procs.procs])

        await _until(all_leased, deadline, "every worker's leases")
        ids = [j for j, _ in await store.submit_many([None] * (JOBS // 2), metadata=[SLOW] * (JOBS // 2))]

        async def victim_busy() -> bool:
            done = (await store.count_by_state())["completed"]
            return done >= 50 and len(await _pending_of(store, victim.pid)) >= 8

        await _until(victim_busy, deadline, "the victim to hold entries mid-run")
        switch.cut(hosts[0])
        cut_at = time.monotonic()
        held = await _pending_of(store, victim.pid)  # frozen: the victim cannot reach Redis now
        ids += [j for j, _ in await store.submit_many([None] * (JOBS // 2), metadata=[SLOW] * (JOBS // 2))]

        async def reclaimed() -> bool:
            return not (held & await _pending_of(store, victim.pid))

        reclaim_s = await _until(reclaimed, CUT + 30, "the victim's entries to be reclaimed", procs)
        assert reclaim_s >= VISIBILITY, "reclaimed before the visibility timeout: a live lease was ignored"
        assert (await _leases_of(store, victim.pid)) == 0  # expired: why its entries could be taken
        await asyncio.sleep(max(0.0, CUT - (time.monotonic() - cut_at)))
        switch.restore(hosts[0])
        restored_at = time.monotonic()

        async def rejoined() -> bool:
            return await _leases_of(store, victim.pid) == len(STAGES)

        await _until(rejoined, 90, "the victim to renew its leases after the restore", procs)
        rejoin_s = time.monotonic() - restored_at

        async def finished() -> bool:
            counts = await store.count_by_state()
            return counts["completed"] + counts["failed"] + counts["dead"] >= len(ids)

        await _until(finished, 180, f"{len(ids)} jobs to finish", procs)

        for p in others:  # only the rejoined worker is left to run the next jobs
            p.terminate()
        assert [p.wait(30) for p in others] == [0, 0], procs.logs()
        later = [j for j, _ in await store.submit_many([None] * AFTER, metadata=[SLOW] * AFTER)]

        async def later_done() -> bool:
            return (await store.count_by_state())["completed"] >= len(ids) + AFTER

        after_s = await _until(later_done, 90, f"the rejoined worker to run {AFTER} jobs", procs)
        assert victim.poll() is None, procs.logs()
        codes = procs.stop()
        assert codes == [0, 0, 0], procs.logs()

        all_ids = ids + later
        await _assert_each_stage_recorded_once(store, all_ids)  # and its lifecycle events say so
        effects = connect(f"redis://{redis_host.addr}:6379/1")
        raw = await effects.hgetall(f"{prefix}:effects")
        await effects.aclose()
        runs = {k.decode(): int(v) for k, v in raw.items()}
        assert all(runs.get(f"{j}:{s}", 0) >= 1 for j in all_ids for s in STAGES)
        reruns = sum(runs.get(f"{j}:{s}", 0) for j in all_ids for s in STAGES) - len(all_ids) * len(STAGES)
        logs = {i: (tmp_path / f"worker-{i}.log").read_text(errors="replace") for i in range(3)}
        taken = sum(len(re.findall(rf"reclaimed \S+ of \S+ from \S+-{victim.pid}-", logs[i])) for i in (1, 2))
        refused = logs[0].count("refused: the entry was already handed off")
        assert taken >= len(held), (taken, len(held), procs.logs())
        if loss == "silent":  # what it sent during the cut, or ran after it, reached Redis late
            assert refused >= 1, procs.logs()
        assert "Traceback" not in "".join(logs.values()), procs.logs()
        print(
            f"\nsplit hosts ({loss}): cut {CUT:.0f} s; the cut worker held {len(held)} entries, "
            f"{taken} reclaimed by the others (all of them {reclaim_s:.1f} s after the cut); "
            f"{refused} of its late hand-offs refused; {reruns} stage re-runs; "
            f"rejoined {rejoin_s:.1f} s after the restore, then ran {AFTER} jobs alone in {after_s:.1f} s"
        )
    finally:
        if procs is not None:
            procs.stop()
        if store is not None:
            await store.client.aclose()
        if redis_proc is not None:
            redis_proc.terminate()
            try:
                redis_proc.wait(10)
            except subprocess.TimeoutExpired:
                redis_proc.kill()
                redis_proc.wait(5)
        switch.destroy()
