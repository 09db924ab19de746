"""The producer process of ``bench/runtime.py``: submits jobs to one system.

    python bench/producer.py --spec JSON --mode single|many|trickle|rtt [--jobs N] [--gap S]

It connects, prints ``READY``, waits for a line on stdin, runs, then prints
one ``RESULT {json}`` line:

- ``single``: N jobs, one awaited submit at a time; ``many``: N jobs through
  the system's batch API (see ``Submitter.many``). Result: ``t_first`` (the
  ``time.monotonic()`` before the first submit; CLOCK_MONOTONIC is the same
  clock in every process), ``t_last`` (after the last), ``cpu_s``.
- ``trickle``: N jobs, one submitted every ``gap`` s on a fixed schedule (open
  loop), while a poller sees them done (back-to-back polls, one round trip
  each); result: ``latencies_ms`` (submit call start -> first poll that saw
  it done).
- ``rtt`` (docgraph only): awaited ``JobStore.submit`` against a raw awaited
  ``XADD`` of the same envelope on the same client, interleaved rounds;
  result: per-call ms of both.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


class Submitter:
    """Submits one system's jobs; done is seen through the last stage's INCR counter."""

    def __init__(self, spec: dict[str, Any]) -> None:
        import redis.asyncio as aioredis

        self.spec = spec
        self.prefix: str = spec["prefix"]
        self.client = aioredis.Redis.from_url(spec["url"])
        self.done_key = f"{self.prefix}:done"
        self.base = 0

    async def setup(self) -> None:
        self.base = int(await self.client.get(self.done_key) or 0)

    async def close(self) -> None:
        await self.client.aclose()

    def payload(self, i: int) -> dict[str, Any]:
        return {"job_id": f"{self.prefix}-{i}", "uri": "file:///tmp/bench.txt", "t": time.time()}

    async def one(self, i: int) -> Any:
        raise NotImplementedError

    async def many(self, n: int) -> None:
        raise NotImplementedError

    async def done_upto(self, k: int, handles: list[Any]) -> int:
        """How many of the oldest ``handles`` are done (at least ``k``): one round trip."""
        return min(len(handles), int(await self.client.get(self.done_key) or 0) - self.base)


class RawSubmitter(Submitter):
    """One XADD per job; ``many``: one pipeline of XADDs per 1000."""

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        self.stream = f"{self.prefix}:s:a"
        self.tracer: Any = None
        if spec.get("trace"):  # the bare SDK: one PRODUCER span per submit (the floor row)
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            self.provider = TracerProvider()
            self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
            self.tracer = self.provider.get_tracer("bench.raw")

    async def close(self) -> None:
        if self.tracer is not None:
            await asyncio.to_thread(self.provider.shutdown)
        await super().close()

    def fields(self, i: int) -> dict[str, str]:
        body = self.payload(i)
        if self.tracer is None:
            return {"p": json.dumps(body)}
        from opentelemetry.trace import SpanKind

        with self.tracer.start_as_current_span(f"send {self.stream}", kind=SpanKind.PRODUCER) as span:
            ctx = span.get_span_context()
            body["tp"] = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
            return {"p": json.dumps(body)}

    async def one(self, i: int) -> Any:
        await self.client.xadd(self.stream, self.fields(i))
        return i

    async def many(self, n: int) -> None:
        for start in range(0, n, 1000):
            pipe = self.client.pipeline(transaction=False)
            for i in range(start, min(n, start + 1000)):
                pipe.xadd(self.stream, self.fields(i))
            await pipe.execute()


class FastStreamSubmitter(Submitter):
    """``broker.publish``; ``many``: publish(..., pipeline=pipe), one pipeline per 1000
    (FastStream's ``publish_batch`` is for Redis lists, not streams)."""

    async def setup(self) -> None:
        from faststream.redis import RedisBroker

        await super().setup()
        self.stream = f"{self.prefix}:fs:a"
        self.broker = RedisBroker(self.spec["url"], logger=None)
        await self.broker.connect()

    async def close(self) -> None:
        await self.broker.stop()
        await super().close()

    async def one(self, i: int) -> Any:
        await self.broker.publish(self.payload(i), stream=self.stream)
        return i

    async def many(self, n: int) -> None:
        for start in range(0, n, 1000):
            pipe = self.client.pipeline(transaction=False)
            for i in range(start, min(n, start + 1000)):
                await self.broker.publish(self.payload(i), stream=self.stream, pipeline=pipe)
            await pipe.execute()


class TaskiqSubmitter(Submitter):
    """``await a.kiq(body)``; ``many``: asyncio.gather of 100 kiq at a time (Taskiq has no
    batch kick; gather is how its docs send many; each kiq is one XADD on a pooled connection)."""

    async def setup(self) -> None:
        from bench.peers import make_taskiq

        await super().setup()
        self.broker, tasks = make_taskiq(self.spec["url"], self.prefix)
        self.a = tasks["a"]
        await self.broker.startup()

    async def close(self) -> None:
        await self.broker.shutdown()
        await super().close()

    async def one(self, i: int) -> Any:
        await self.a.kiq(self.payload(i))
        return i

    async def many(self, n: int) -> None:
        for start in range(0, n, 100):
            await asyncio.gather(*(self.a.kiq(self.payload(i)) for i in range(start, min(n, start + 100))))


class DramatiqSubmitter(Submitter):
    """``a.send(body)`` (Dramatiq is synchronous: each call blocks this loop for its round
    trip); ``many``: ``group(...).run()`` per 1000, which enqueues them one by one."""

    async def setup(self) -> None:
        from bench.peers import make_dramatiq

        await super().setup()
        self.broker, actors = make_dramatiq(self.spec["url"], self.prefix)
        self.a = actors["a"]

    async def close(self) -> None:
        self.broker.close()
        await super().close()

    async def one(self, i: int) -> Any:
        self.a.send(self.payload(i))
        return i

    async def many(self, n: int) -> None:
        import dramatiq

        for start in range(0, n, 1000):
            dramatiq.group(
                [self.a.message(self.payload(i)) for i in range(start, min(n, start + 1000))]
            ).run()


class DocgraphSubmitter(Submitter):
    """``await JobStore.submit(doc)``; ``many``: ``JobStore.submit_many(docs, chunk=1000)``.
    Done: the job record's ``state`` is ``completed``."""

    async def setup(self) -> None:
        from docgraph.core.envelope import DocumentRef
        from docgraph.core.runtime.jobs import JobStore
        from docgraph.core.settings import Settings

        if self.spec.get("trace_env"):  # OTEL_* in this process's env; its PRODUCER span decides sampling
            from docgraph.core import telemetry

            telemetry.use_tracer_provider(telemetry.build_tracer_provider(None))
        self.store = JobStore(self.client, Settings(**self.spec["settings"]))
        self.doc = DocumentRef(uri="file:///tmp/bench.txt")

    async def close(self) -> None:
        if self.spec.get("trace_env"):
            from docgraph.core import telemetry

            await telemetry.aflush()
            telemetry.shutdown()
        await super().close()

    async def one(self, i: int) -> Any:
        job_id, _ = await self.store.submit(self.doc)
        return self.store.keys.for_job(job_id).job(job_id)

    async def many(self, n: int) -> None:
        await self.store.submit_many([self.doc] * n, chunk=1000)

    async def done_upto(self, k: int, handles: list[Any]) -> int:
        while k < len(handles):
            state = await self.client.hget(handles[k], "state")
            if state in (b"failed", b"dead", b"cancelled"):
                raise RuntimeError(f"docgraph job {handles[k]} ended {state.decode()}")
            if state != b"completed":
                break
            k += 1
        return k

    async def rtt(self, rounds: int, per_round: int) -> dict[str, Any]:
        """Awaited submit vs awaited XADD of a same-size envelope, same client, interleaved."""
        from docgraph.core.envelope import Envelope

        body = Envelope(job_id="x" * 32, stage="a", submitted_at=time.time(), document=self.doc)
        fields = {"e": body.model_dump_json()}
        stream = f"{self.prefix}:rtt"
        submit_ms: list[float] = []
        xadd_ms: list[float] = []
        for r in range(rounds):
            for which in (0, 1) if r % 2 == 0 else (1, 0):
                for _ in range(per_round):
                    t = time.perf_counter()
                    if which == 0:
                        await self.store.submit(self.doc)
                    else:
                        await self.client.xadd(stream, fields)
                    (submit_ms if which == 0 else xadd_ms).append((time.perf_counter() - t) * 1000)
        await self.client.delete(stream)
        return {"submit_ms": submit_ms, "xadd_ms": xadd_ms}


KINDS: dict[str, type[Submitter]] = {
    "raw": RawSubmitter,
    "faststream": FastStreamSubmitter,
    "taskiq": TaskiqSubmitter,
    "dramatiq": DramatiqSubmitter,
    "docgraph": DocgraphSubmitter,
}


async def trickle(sub: Submitter, n: int, gap: float) -> dict[str, Any]:
    """n jobs, one every ``gap`` seconds (open loop); latency = submit start -> seen done."""
    submitted: list[float] = []
    handles: list[Any] = []
    latencies: list[float] = []
    more = asyncio.Event()
    finished = False
    timeouts = 0

    async def poller() -> None:
        nonlocal timeouts
        k = 0
        while not (finished and k >= len(handles)):
            if k >= len(handles):
                more.clear()
                await more.wait()
                continue
            new = await sub.done_upto(k, handles)
            now = time.monotonic()
            for j in range(k, new):
                latencies.append((now - submitted[j]) * 1000)
            k = new
            if k < len(handles) and now - submitted[k] > 10:  # lost: count it and move on
                timeouts += 1
                latencies.append(float("nan"))
                k += 1

    task = asyncio.create_task(poller())
    t0 = time.monotonic()
    for i in range(n):
        delay = t0 + i * gap - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        t = time.monotonic()
        handle = await sub.one(i)
        submitted.append(t)
        handles.append(handle)
        more.set()
    finished = True
    more.set()
    await asyncio.wait_for(task, timeout=30)
    return {"latencies_ms": [x for x in latencies if x == x], "timeouts": timeouts}


async def run(spec: dict[str, Any], mode: str, jobs: int, gap: float) -> dict[str, Any]:
    sub = KINDS[spec["kind"]](spec)
    await sub.setup()
    try:
        print("READY", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        c0 = time.process_time()
        out: dict[str, Any] = {}
        if mode == "single":
            out["t_first"] = time.monotonic()
            for i in range(jobs):
                await sub.one(i)
            out["t_last"] = time.monotonic()
        elif mode == "many":
            out["t_first"] = time.monotonic()
            await sub.many(jobs)
            out["t_last"] = time.monotonic()
        elif mode == "trickle":
            out.update(await trickle(sub, jobs, gap))
        elif mode == "rtt" and isinstance(sub, DocgraphSubmitter):
            out.update(await sub.rtt(rounds=10, per_round=max(1, jobs // 10)))
        else:
            raise SystemExit(f"mode {mode} is not supported for {spec['kind']}")
        out["cpu_s"] = time.process_time() - c0
        return out
    finally:
        await sub.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spec", required=True, help="JSON: kind, url, prefix (+ settings, trace_env, trace)")
    p.add_argument("--mode", choices=["single", "many", "trickle", "rtt"], required=True)
    p.add_argument("--jobs", type=int, default=5000)
    p.add_argument("--gap", type=float, default=0.01)
    args = p.parse_args(argv)
    out = asyncio.run(run(json.loads(args.spec), args.mode, args.jobs, args.gap))
    print("RESULT " + json.dumps(out), flush=True)
    return 0


def summary(xs: list[float]) -> tuple[float, float]:
    """(median, p99) of a sample."""
    s = sorted(xs)
    return statistics.median(s), s[min(len(s) - 1, round(0.99 * (len(s) - 1)))]


if __name__ == "__main__":
    sys.exit(main())
