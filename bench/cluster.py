#!/usr/bin/env python
"""Redis Cluster benchmark: docgraph's no-op 3-stage chain on 1 Redis vs a 3-master cluster.

    python bench/cluster.py [--jobs 2000] [--partitions 1,3,6] [--single-partitions 1]

One run, the same machine and load: first one plain Debian ``redis-server``, then a
3-master Redis Cluster of the same binary and settings (tests/cluster/cluster.py:
loopback, AOF ``everysec``, no RDB; ``--replicas`` per master, 0 by default so that a
master's cost is its own, not its replica feed).  Each row: 2 ``docgraph worker``
processes (``--workers``, concurrency ``--concurrency``) each running every stage of
``a -> b -> c`` with no-op stages (bench/noop_plugin.py), ``DOCGRAPH_PARTITIONS`` =
the row's partitions; on the cluster a key prefix whose partitions land as evenly as
possible on the masters (1 partition: one master does all the work).

Measured per row, after ``--warmup`` jobs:

* jobs/s: ``--jobs`` submitted at once (``JobStore.submit_many``, 1,000 a round trip)
  from this process, first submit -> the poll (every 50 ms) that sees them all done;
* Redis CPU µs per job on each master: ``used_cpu_user + used_cpu_sys`` from
  ``INFO cpu`` before and after that run, over the jobs; and Redis commands per job
  (``INFO commandstats``, every master summed); worker CPU µs per job (/proc);
* p50 / p99 ms: ``--trickle`` jobs one at a time (closed loop), submit -> its record
  says ``completed`` (polled every ms).

The 2 cores of this machine are shared by Redis, the workers and this process:
adding masters cannot raise absolute throughput here; what a cluster buys is shown
by the cost per job on each master falling as the work spreads over masters.

Everything started is stopped at exit, on Ctrl-C, SIGTERM and after ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.runtime import (  # noqa: E402
    LINEAR3,
    _child_env,
    cpu_seconds,
    fmt_int,
    fmt_ms,
    loadavg,
    md_table,
    run_bounded,
    spawn,
    stop_procs,
)
from tests.cluster.cluster import Node, RedisCluster, cluster_ports, server_args  # noqa: E402

POLL = 0.05  # seconds between progress polls of the throughput run


@dataclass
class Row:
    setup: str
    partitions: int
    jobs_s: float = 0.0
    cpu_us: list[float] = field(default_factory=list)  # per master, µs per job
    commands: float = 0.0  # per job, all masters
    worker_us: float = 0.0  # per job, all workers
    p50: float | None = None
    p99: float | None = None


def _redis_usage(node: Node) -> tuple[float, int]:
    """(CPU seconds, commands executed) of ``node`` so far."""
    with node.client() as c:
        cpu = c.info("cpu")
        stats = c.info("commandstats")
    calls = sum(int(v["calls"]) for v in stats.values())
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]), calls


async def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(POLL)


async def run_row(
    args: argparse.Namespace, workdir: Path, setup: str, url: str, nodes: list[Node], prefix: str, parts: int
) -> Row:
    """One configuration: start the workers, warm up, measure, stop them."""
    from docgraph.core.runtime.connection import connect
    from docgraph.core.runtime.jobs import JobStore
    from docgraph.core.settings import Settings

    settings = Settings(
        redis_url=url,
        key_prefix=prefix,
        partitions=parts,
        topology=LINEAR3,
        plugins=["bench.noop_plugin"],
        concurrency=args.concurrency,
        completed_max_count=10_000_000,  # done = the completed index, never trimmed here
    )
    env = _child_env() | {
        "DOCGRAPH_REDIS_URL": url,
        "DOCGRAPH_KEY_PREFIX": prefix,
        "DOCGRAPH_PARTITIONS": str(parts),
        "DOCGRAPH_TOPOLOGY": json.dumps(LINEAR3, separators=(",", ":")),
        "DOCGRAPH_PLUGINS": '["bench.noop_plugin"]',
        "DOCGRAPH_CONCURRENCY": str(args.concurrency),
        "DOCGRAPH_COMPLETED_MAX_COUNT": "10000000",
    }
    cmd = [sys.executable, "-m", "docgraph.core.cli", "worker"]
    tag = f"{setup.split()[0]}-p{parts}"
    workers = [spawn(cmd, env, workdir / f"{tag}-worker-{i}.log", workdir) for i in range(args.workers)]
    client = connect(settings)
    store = JobStore(client, settings)
    row = Row(setup, parts)
    try:

        async def leased() -> bool:
            pattern = f"{prefix}:lease:*"
            n = 0
            for node in nodes:
                with node.client() as c:
                    n += sum(1 for _ in c.scan_iter(match=pattern, count=1000))
            return n == args.workers * len(LINEAR3)

        await _wait(leased, 120, f"{args.workers} workers to hold their leases ({tag})")
        done = 0

        async def all_done() -> bool:
            return (await store.count_by_state())["completed"] >= done

        await store.submit_many([None] * args.warmup)
        done += args.warmup
        await _wait(all_done, args.timeout, f"the warm-up ({tag})")

        before = [_redis_usage(n) for n in nodes]
        cpu0 = sum(cpu_seconds(w.pid) for w in workers)
        t0 = time.monotonic()
        await store.submit_many([None] * args.jobs)
        done += args.jobs
        await _wait(all_done, args.timeout, f"{args.jobs} jobs ({tag})")
        elapsed = time.monotonic() - t0
        after = [_redis_usage(n) for n in nodes]
        row.worker_us = (sum(cpu_seconds(w.pid) for w in workers) - cpu0) / args.jobs * 1e6
        row.jobs_s = args.jobs / elapsed
        row.cpu_us = [(a[0] - b[0]) / args.jobs * 1e6 for a, b in zip(after, before, strict=True)]
        row.commands = sum(a[1] - b[1] for a, b in zip(after, before, strict=True)) / args.jobs

        latencies = []
        for _ in range(args.trickle):
            start = time.monotonic()
            job_id, _ = await store.submit(None)
            key = store.keys.for_job(job_id).job(job_id)
            while await client.hget(key, "state") != b"completed":
                if time.monotonic() - start > 30:
                    raise RuntimeError(f"trickled job {job_id} not done in 30 s ({tag})")
                await asyncio.sleep(0.001)
            latencies.append((time.monotonic() - start) * 1000)
        if latencies:
            row.p50 = statistics.median(latencies)
            row.p99 = statistics.quantiles(latencies, n=100)[98] if len(latencies) >= 2 else latencies[0]
    finally:
        await client.aclose()
        stop_procs(workers)
    print(
        f"  {tag}: {row.jobs_s:,.0f} jobs/s, Redis µs/job {[round(x) for x in row.cpu_us]}", file=sys.stderr
    )
    return row


def start_single(workdir: Path) -> Node:
    """One plain redis-server with the cluster nodes' settings (server_args)."""
    (port,) = cluster_ports(1)
    node = Node(port, workdir / "single").launch(server_args(port))
    deadline = time.monotonic() + 30
    while True:
        try:
            with node.client() as c:
                if c.ping():
                    return node
        except Exception:
            if time.monotonic() > deadline:
                node.stop()
                raise
            time.sleep(0.05)


async def bench_main(args: argparse.Namespace, workdir: Path) -> int:
    rows: list[Row] = []
    load_before = loadavg()
    single = start_single(workdir)
    try:
        for parts in (int(p) for p in args.single_partitions.split(",") if p):
            url = f"redis://127.0.0.1:{single.port}/0"
            prefix = f"s{uuid.uuid4().hex[:8]}"
            rows.append(await run_row(args, workdir, "1 Redis", url, [single], prefix, parts))
    finally:
        single.stop()
    cluster = RedisCluster(masters=3, replicas_per_master=args.replicas).start()
    try:
        masters = sorted(cluster.master_nodes(), key=lambda n: n.port)
        for parts in (int(p) for p in args.partitions.split(",") if p):
            prefix = cluster.spread_prefix(parts)
            setup = f"3 masters{f' + {3 * args.replicas} replicas' if args.replicas else ''}"
            rows.append(await run_row(args, workdir, setup, cluster.url, masters, prefix, parts))
    finally:
        cluster.stop()
    print(
        f"# bench/cluster.py  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  "
        f"--jobs {args.jobs} --workers {args.workers} --concurrency {args.concurrency}  "
        f"load before {load_before}, after {loadavg()}\n"
    )
    head = [
        "setup", "partitions", "jobs/s", "p50 / p99 ms", "Redis CPU µs/job per master",
        "busiest master", "all masters", "commands/job", "worker CPU µs/job",
    ]  # fmt: skip
    table = [
        [
            r.setup,
            str(r.partitions),
            fmt_int(r.jobs_s),
            f"{fmt_ms(r.p50)} / {fmt_ms(r.p99)}",
            " / ".join(fmt_int(x) for x in r.cpu_us),
            fmt_int(max(r.cpu_us)),
            fmt_int(sum(r.cpu_us)),
            f"{r.commands:.1f}",
            fmt_int(r.worker_us),
        ]
        for r in rows
    ]
    print(md_table(head, table))
    print(
        "\nRedis CPU: used_cpu_user + used_cpu_sys (INFO cpu) per master over the --jobs run, "
        "divided by its jobs; the masters in port order.  On 2 shared cores the jobs/s cannot "
        "grow with masters: read the busiest master's cost per job."
    )
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=2000, help="jobs submitted at once per row (throughput)")
    p.add_argument("--warmup", type=int, default=200, help="jobs run before measuring, per row")
    p.add_argument("--trickle", type=int, default=100, help="jobs run one at a time per row (latency)")
    p.add_argument("--partitions", default="1,3,6", help="comma-separated partition counts on the cluster")
    p.add_argument("--single-partitions", default="1", help="comma-separated partition counts on 1 Redis")
    p.add_argument("--replicas", type=int, default=0, help="replicas per cluster master")
    p.add_argument("--workers", type=int, default=2, help="worker processes per row")
    p.add_argument("--concurrency", type=int, default=128, help="DOCGRAPH_CONCURRENCY of each worker")
    p.add_argument("--timeout", type=float, default=300, help="seconds allowed for one row's run")
    p.add_argument("--max-seconds", type=int, default=1800, help="hard limit for the whole benchmark")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_bounded(
        lambda workdir: asyncio.run(bench_main(args, workdir)),
        Path(tempfile.mkdtemp(prefix="docgraph-bench-cluster-")),
        max_seconds=args.max_seconds,
        kept="worker and redis logs",
    )


if __name__ == "__main__":
    sys.exit(main())
