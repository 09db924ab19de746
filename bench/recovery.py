#!/usr/bin/env python
"""Crash-recovery benchmark: how soon a SIGKILLed worker's in-flight entries run elsewhere.

    python bench/recovery.py [--entries 32,128,512] [--visibility 2,5]

For each (entries, visibility timeout): a private redis-server; worker A
(``docgraph worker``, concurrency 1024) takes N jobs and holds them in its
first stage; worker B starts; A is SIGKILLed. Measured from the kill: when
the first and the last of the N entries started again on B (their job records'
``runs`` reach 2), and when all N jobs completed. The target (issue 12): all
running elsewhere within visibility timeout + 5 s. The lease docgraph waits
for is visibility + 3 s (docs/runtime.md), so that is the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.runtime import Redis, loadavg, spawn, stop_all_children, stop_procs  # noqa: E402

TOPOLOGY = '{"a": [], "b": ["a"]}'


def worker_env(url: str, prefix: str, visibility: float, hold: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCGRAPH_", "OTEL_"))}
    env.update(
        PYTHONPATH=str(ROOT),
        DOCGRAPH_REDIS_URL=url,
        DOCGRAPH_KEY_PREFIX=prefix,
        DOCGRAPH_PLUGINS='["bench.hold_plugin"]',
        DOCGRAPH_TOPOLOGY=TOPOLOGY,
        DOCGRAPH_VISIBILITY_TIMEOUT=str(visibility),
        DOCGRAPH_CONCURRENCY="1024",
        BENCH_HOLD="1" if hold else "0",
    )
    return env


async def one_case(redis: Redis, workdir: Path, entries: int, visibility: float) -> dict[str, float]:
    from docgraph.core.runtime.connection import connect
    from docgraph.core.runtime.jobs import JobStore
    from docgraph.core.settings import Settings

    prefix = f"rec{entries}v{int(visibility * 10)}"
    settings = Settings(redis_url=redis.url, key_prefix=prefix, topology={"a": [], "b": ["a"]})
    client = connect(redis.url)
    store = JobStore(client, settings)
    cmd = [sys.executable, "-m", "docgraph.core.cli", "worker"]
    a = spawn(cmd, worker_env(redis.url, prefix, visibility, True), workdir / f"{prefix}-a.log", workdir)
    ids = [job_id for job_id, _ in await store.submit_many([None] * entries)]

    async def runs_at_least(n: int) -> int:
        jobs = await store.get_many(ids)
        return sum(1 for j in jobs if j and (s := j.stage("a")) is not None and s.runs >= n)

    async def wait(pred, timeout: float, what: str) -> float:
        deadline = time.monotonic() + timeout
        while not await pred():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{prefix}: timed out waiting for {what}")
            await asyncio.sleep(0.02)
        return time.monotonic()

    async def all_held() -> bool:
        return await runs_at_least(1) == entries

    await wait(all_held, 60, "worker A to hold every entry")
    b = spawn(cmd, worker_env(redis.url, prefix, visibility, False), workdir / f"{prefix}-b.log", workdir)
    await asyncio.sleep(1.0)  # B is up and reading before the kill
    a.kill()
    a.wait()
    killed = time.monotonic()
    first = last = None
    while last is None:
        n = await runs_at_least(2)
        now = time.monotonic()
        if n and first is None:
            first = now
        if n == entries:
            last = now
        if now - killed > visibility + 120:
            raise RuntimeError(f"{prefix}: only {n} of {entries} ran again")
        await asyncio.sleep(0.02)

    async def all_done() -> bool:
        return (await store.count_by_state())["completed"] == entries

    done = await wait(all_done, 120, "every job to complete")
    stop_procs([b])
    await client.aclose()
    assert first is not None
    return {"first": first - killed, "last": last - killed, "done": done - killed}


async def main_async(args: argparse.Namespace, workdir: Path) -> int:
    redis = Redis(workdir / "redis")
    redis.start()
    rows = []
    try:
        for visibility in (float(v) for v in args.visibility.split(",")):
            for entries in (int(n) for n in args.entries.split(",")):
                r = await one_case(redis, workdir, entries, visibility)
                target = visibility + 5
                rows.append((entries, visibility, r, target))
                print(
                    f"  {entries} entries, visibility {visibility:g}s: last running again after {r['last']:.2f}s",
                    file=sys.stderr,
                )
    finally:
        redis.stop()
    print(f"# bench/recovery.py  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  load {loadavg()}\n")
    print(
        "| entries | visibility s | first running again s | last running again s | all completed s | target s | |"
    )
    print("|---|---|---|---|---|---|---|")
    for entries, visibility, r, target in rows:
        ok = "met" if r["last"] <= target else "missed"
        print(
            f"| {entries} | {visibility:g} | {r['first']:.2f} | {r['last']:.2f} | {r['done']:.2f} | "
            f"≤ {target:g} | {ok} |"
        )
    print("\nSeconds from the SIGKILL; the lease outlives the visibility timeout by 3 s (docs/runtime.md).")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--entries", default="32,128,512", help="comma-separated in-flight entry counts")
    p.add_argument("--visibility", default="2,5", help="comma-separated visibility timeouts (s)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="docgraph-bench-recovery-") as tmp:
        try:
            return asyncio.run(main_async(args, Path(tmp)))
        finally:
            stop_all_children()


if __name__ == "__main__":
    sys.exit(main())
