"""The stage runner: consume one stage's streams and run its function per job.

The runner owns everything between Redis and the stage function: reading
with strict lane priority, at most ``concurrency`` jobs at once, the atomic
hand-off, retries with backoff, dead-lettering, reclaiming entries of dead
consumers, keeping long jobs' entries claimed, and handing work back on
shutdown.  The stage function only computes.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import json
import logging
import os
import random
import secrets
import socket
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from docgraph.core import telemetry
from docgraph.core.envelope import Envelope, decode_fields
from docgraph.core.errors import JobCancelled, PermanentError
from docgraph.core.runtime import calls
from docgraph.core.runtime.connection import REDIS_DOWN, Batcher, Scripts, torn_down
from docgraph.core.runtime.delivery import Delivery
from docgraph.core.runtime.jobs import document_fields, now_ms
from docgraph.core.runtime.keys import LANES, Keys, Lane, PartitionKeys
from docgraph.core.runtime.limits import StageLimiter
from docgraph.core.runtime.recovery import DeliveryCapExceeded, Suspects, keep_claims, reclaim
from docgraph.core.settings import RetryPolicy, Settings
from docgraph.core.stage import Services, StageContext, StageResult, StageSpec
from docgraph.core.store import open_store
from docgraph.core.topology import Topology

log = logging.getLogger("docgraph.runner")

DLQ_PAYLOAD_LIMIT = 64 * 1024
_NO_DOCUMENT = {"doc_uri": "", "doc_sha256": "", "doc_name": ""}  # START reads them only when adopting


def backoff_delay(policy: RetryPolicy, attempt: int, rng: random.Random | None = None) -> float:
    """Seconds to wait before try ``attempt + 1`` after try ``attempt`` failed."""
    base = min(policy.backoff_max, policy.backoff * (2 ** (attempt - 1)))
    spread = (rng or random).uniform(-policy.jitter, policy.jitter)
    return max(0.0, min(policy.backoff_max, base * (1 + spread)))


def default_services(settings: Settings) -> Services:
    """For runners built without services (tests, embedding): the configured
    store and no plugins."""
    import pluggy

    return Services(objects=open_store(settings), plugins=pluggy.PluginManager("docgraph"))


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class StageRunner:
    """Runs one stage in this process."""

    def __init__(
        self,
        spec: StageSpec,
        settings: Settings,
        client: aioredis.Redis,
        *,
        consumer: str | None = None,
        services: Services | None = None,
    ) -> None:
        self.spec = spec
        self.stage = spec.name
        self.settings = settings
        self.client = client
        self.services = services or default_services(settings)
        self.keys = Keys(settings.key_prefix, settings.partitions)
        self.topology = Topology(settings.topology)
        self.group = spec.name
        self.consumer = consumer or consumer_name()
        self.scripts = Scripts(client, settings)
        self.batcher = Batcher(self.scripts)
        self.concurrency = settings.concurrency_for(spec.name)
        self.retry = settings.retry_for(spec.name)
        self.visibility_ms = int(settings.visibility_timeout_for(spec.name) * 1000)
        self.max_deliveries = settings.max_deliveries_for(spec.name)
        self.is_root = not self.topology.predecessors[spec.name]
        self.inflight: dict[asyncio.Task[None], Delivery] = {}
        self.stopping = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._upkeep_wake = asyncio.Event()
        self._orphans_waiting = False  # the last reclaim ran out of room: wake it when a slot frees
        self._upkeep_done = False
        self._progress: dict[str, tuple[float, str]] = {}
        # a sync stage never runs on the event loop: a slow one would stall reads,
        # hand-offs and the lease, and its entry could be reclaimed and run twice
        self._executor = (
            None
            if inspect.iscoroutinefunction(spec.func)
            else ThreadPoolExecutor(self.concurrency, thread_name_prefix=f"docgraph-{spec.name}")
        )
        self._lanes = {p.partition: [p.stream(spec.name, lane) for lane in LANES] for p in self.keys.all()}
        # what the hand-off passes that is constant per runner, encoded once
        self._routes: dict[tuple[str, ...], tuple[str, tuple[str, ...]]] = {}
        self._stages_json = calls.encode(self.topology.stages)
        self._completed_age_ms = int(settings.completed_max_age * 1000)
        self._events = settings.events.cap
        self.counts = {"completed": 0, "retried": 0, "dead": 0, "failed": 0, "reclaimed": 0, "refused": 0}
        self.paused = False  # every partition of this stage is paused (docgraph stage pause)
        self.suspects = Suspects()  # a Worker shares one among its runners
        self.suspects.runners.append(self)
        # cluster-wide max_per_second / max_in_flight of this stage (None: no limits)
        self.limiter = StageLimiter.for_stage(
            self.scripts, self.keys, self.stage, settings, self.consumer, self.visibility_ms
        )
        self._giving: set[asyncio.Task[None]] = set()

    # -- lifecycle --------------------------------------------------------

    async def setup(self) -> None:
        for part in self.keys.all():
            for lane in LANES:
                try:
                    await self.client.xgroup_create(
                        part.stream(self.stage, lane), self.group, id="0", mkstream=True
                    )
                except ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise
        await self.scripts.load()
        if self.limiter is not None:
            await self.limiter.renew()  # its limits are visible before the first upkeep tick

    def stop(self) -> None:
        """Stop reading; in-flight jobs finish within the grace period."""
        self.stopping.set()
        self._slot_freed.set()

    async def run(self) -> None:
        await self._until_redis_up(self.setup)
        upkeep = asyncio.create_task(self._upkeep_loop(), name=f"upkeep-{self.stage}")
        try:
            await self._read_loop()
        finally:
            await self._drain()
            self._upkeep_done = True
            upkeep.cancel()
            await asyncio.gather(upkeep, return_exceptions=True)
            await self._flush_progress()
            if self._giving:
                await asyncio.gather(*self._giving, return_exceptions=True)
            await self.batcher.aclose()
            if self._executor:
                self._executor.shutdown(wait=False, cancel_futures=True)

    async def _until_redis_up(self, step: Any) -> None:
        delay = 0.1
        while not self.stopping.is_set():
            try:
                await step()
                return
            except REDIS_DOWN as exc:
                log.warning("redis unavailable (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _drain(self) -> None:
        if not self.inflight:
            return
        done, pending = await asyncio.wait(list(self.inflight), timeout=self.settings.shutdown_grace)
        for task in pending:
            delivery = self.inflight.get(task)
            task.cancel()
            if delivery is not None:
                await self._release(delivery)
        await asyncio.gather(*pending, return_exceptions=True)

    async def _release(self, d: Delivery) -> None:
        """Hand an unfinished entry back so another consumer takes it now."""
        try:
            env_job = json.loads(d.fields.get(b"payload", b"{}")).get("job_id", "-")
        except ValueError:
            env_job = "-"
        try:
            await self.scripts.run(
                calls.Release(
                    job=d.part.job(str(env_job)),
                    source=d.stream,
                    group=self.group,
                    entry=d.entry_id,
                    stage=self.stage,
                    payload=d.fields.get(b"payload", b""),
                    traceparent=d.traceparent,
                )
            )
        except REDIS_DOWN:
            log.warning("could not hand back %s; it will be reclaimed", d.entry_id)

    # -- reading ----------------------------------------------------------

    async def _read_loop(self) -> None:
        delay = 0.1
        while not self.stopping.is_set():
            free = self.concurrency - len(self.inflight)
            if free <= 0:
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            try:
                batch = await (self._read(free) if self.limiter is None else self._read_limited(free))
                delay = 0.1
            except (*REDIS_DOWN, AttributeError, TypeError) as exc:
                if not isinstance(exc, REDIS_DOWN) and not torn_down(exc):
                    raise
                log.warning("read failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            except ResponseError as exc:
                if "NOGROUP" in str(exc):  # stream flushed or Redis lost data
                    await self._until_redis_up(self.setup)
                    continue
                raise
            for d in batch:
                self.spawn(d)

    async def _read_limited(self, free: int) -> list[Delivery]:
        """Entries under the stage's limits: starts are taken *before* reading, so a
        throttled worker leaves entries to the others, and none are held while idle."""
        assert self.limiter is not None
        permits = await self.limiter.take(free, self.stopping, self.settings.poll_interval)
        if not permits:
            return []
        batch = await self._read(len(permits), block=False)
        for d, permit in zip(batch, permits, strict=False):
            d.permit = permit
        if len(permits) > len(batch):
            await self.limiter.give(permits[len(batch) :], started=False)
        if batch:
            return batch
        # idle: wait for one entry holding no permit (an idle worker must not keep its
        # stage's in-flight permits from the others), then take its start
        batch = await self._read(1)
        for d in batch:
            while not (permit := await self.limiter.take(1, self.stopping, self.settings.poll_interval)):
                if self.stopping.is_set():
                    await self._release(d)  # another worker takes it now
                    return []
            d.permit = permit[0]
        return batch

    def spawn(self, d: Delivery) -> None:
        task = asyncio.create_task(self._handle(d))
        self.inflight[task] = d
        task.add_done_callback(self.done)

    def done(self, task: asyncio.Task[None]) -> None:
        d = self.inflight.pop(task, None)
        self._slot_freed.set()
        if d is not None and d.permit is not None and self.limiter is not None:
            giving = asyncio.ensure_future(self._give_permit(d.permit))
            self._giving.add(giving)
            giving.add_done_callback(self._giving.discard)
        if d is not None and (d.suspect or self._orphans_waiting):
            self._upkeep_wake.set()  # the next suspect, or more orphans, may run now
        exc = None if task.cancelled() else task.exception()
        if exc is None:
            return
        if isinstance(exc, REDIS_DOWN) or torn_down(exc):
            # Redis went away mid-job (a lost link, a failover) or did not replicate in time
            # (NotReplicated): nothing is broken here, the entry stays pending and runs again
            # once reclaimed (by this runner or another)
            log.warning(
                "%s of %s: lost Redis before its hand-off (%s); the entry stays pending "
                "and runs again once reclaimed",
                d.entry_id if d else "an entry",
                d.stream if d else self.stage,
                exc,
            )
        else:
            log.error("job handling crashed", exc_info=exc)

    async def _read(self, count: int, *, block: bool = True) -> list[Delivery]:
        """Up to ``count`` entries, higher lanes first; blocks briefly when idle (``block``)."""
        now = time.monotonic()
        got: list[Delivery] = []
        paused = 0
        for part in self.keys.all():
            need = count - len(got)
            if need <= 0:
                return got
            flat = await self.scripts.run(
                calls.Read(
                    paused=part.paused,
                    streams=self._lanes[part.partition],
                    group=self.group,
                    consumer=self.consumer,
                    count=need,
                    stage=self.stage,
                )
            )
            if flat == b"paused":
                paused += 1
                continue
            resp = [
                (flat[i], [(e[0], dict(zip(e[1][::2], e[1][1::2], strict=True))) for e in flat[i + 1]])
                for i in range(0, len(flat), 2)
            ]
            got += self._deliveries(resp, part, now)
        self.paused = paused == len(self.keys.all())
        if got or not block or self.stopping.is_set():
            return got
        if self.paused:  # `docgraph stage resume` takes effect within one poll
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), self.settings.poll_interval)
            return got
        block_ms = max(1, int(self.settings.poll_interval * 1000) // self.settings.partitions)
        per_stream = max(1, count // len(LANES))
        for part in self.keys.all():
            streams: dict[Any, Any] = {part.stream(self.stage, lane): ">" for lane in LANES}
            blocked: Any = await self.client.xreadgroup(
                self.group, self.consumer, streams, count=per_stream, block=block_ms
            )
            got += self._deliveries(blocked, part, now)
            if got:
                break
        got.sort(key=lambda d: LANES.index(d.lane))
        return got

    def _deliveries(self, resp: Any, part: PartitionKeys, now: float) -> list[Delivery]:
        out: list[Delivery] = []
        for stream_name, entries in resp or ():
            stream = stream_name.decode() if isinstance(stream_name, bytes) else stream_name
            lane = Lane(stream.rsplit(":", 1)[1])
            for entry_id, fields in entries:
                out.append(Delivery(stream, entry_id.decode(), fields or {}, part, lane, 1, now))
        return out

    # -- one job ----------------------------------------------------------

    async def _handle(self, d: Delivery) -> None:
        """One delivery inside its ``process <stream>`` span (a stand-in when tracing is off)."""
        with telemetry.process_span(
            d.stream, d.entry_id, self.group, d.traceparent, d.deliveries, links=d.links
        ) as span:
            d.span = span
            await self._handle_traced(d)

    async def _handle_traced(self, d: Delivery) -> None:
        try:
            env = decode_fields(d.fields, self.settings.max_event_bytes)
            if env.stage != self.stage:
                raise PermanentError(
                    f"event for stage {env.stage!r} arrived on the {self.stage!r} stream; "
                    "publish it to the stream of its stage"
                )
            if self.keys.for_job(env.job_id) != d.part:
                raise PermanentError(
                    f"job {env.job_id} belongs to partition {self.keys.partition_of(env.job_id)}, "
                    f"not {d.part.partition}; publish to the partition its id hashes to"
                )
        except PermanentError as exc:
            await self.dead_letter(d, None, exc, "failed")
            return
        job_key = d.part.job(env.job_id)
        attempt = env.attempt + d.deliveries - 1
        adopt = self.is_root and env.attempt == 1
        if d.span is not None:
            d.span.job(env.job_id, attempt)
        # The start record and the stage run overlap: the hand-off that follows
        # is queued behind ``start`` on the same ordered pipeline, so Redis
        # always applies them in order, and a stage that finishes first does not
        # wait a round trip (``defer``: one that returns at once sends both in
        # one).  A job found cancelled/deleted stops its stage, and so does a stage
        # already handed off by another consumer (this delivery is a late one).
        start = asyncio.ensure_future(
            self.batcher.run(
                calls.Start(
                    job=job_key,
                    tag=d.part.tag,
                    job_id=env.job_id,
                    stage=self.stage,
                    now=now_ms(),
                    attempt=attempt,
                    lane=env.priority.value,
                    traceparent=d.out_traceparent,
                    adopt=adopt,
                    stages=self._stages_json,
                    events=self._events,
                    **(document_fields(env.document, env.metadata) if adopt else _NO_DOCUMENT),
                ),
                defer=True,
            )
        )
        d.job_key, d.cancel, d.work_started = job_key, threading.Event(), time.monotonic()
        work = d.work = asyncio.ensure_future(self._invoke(env, job_key, d.cancel))
        try:
            await asyncio.wait({start, work}, return_when=asyncio.FIRST_COMPLETED)
            # (a chaos test of the "after_start" crash point waits for the record,
            # so the point is reached even when the stage finishes first)
            if start.done() or self.settings.chaos_crash_at == "after_start":
                state = await start
                if state is None or state in (b"cancelled", b"completed", b"deleted", b"done"):
                    work.cancel()
                    await asyncio.gather(work, return_exceptions=True)
                    await self.batcher.run(calls.Drop(source=d.stream, group=self.group, entry=d.entry_id))
                    if d.span is not None:
                        d.span.outcome("dropped")
                    return
                self._chaos("after_start")
        except BaseException:
            work.cancel()
            raise
        try:
            result = await work
        except asyncio.CancelledError:
            if not d.cancel.is_set():
                raise  # this worker is stopping, not the job
            await self._drop_cancelled(d, env)
        except PermanentError as exc:
            await self.dead_letter(d, env, exc, "failed")
        except Exception as exc:
            if isinstance(exc, JobCancelled) and d.cancel.is_set():
                await self._drop_cancelled(d, env)
            elif env.attempt >= self.retry.attempts:
                await self.dead_letter(d, env, exc, "dead")
            else:
                await self._schedule_retry(d, env, exc)
        else:
            self._chaos("after_stage")
            await self._complete(d, env, result)
            self._chaos("after_handoff")
        finally:
            if not start.done():
                await asyncio.wait({start})
            if not start.cancelled() and start.exception() is not None:
                log.warning("recording the start of %s failed: %s", env.label, start.exception())

    async def _drop_cancelled(self, d: Delivery, env: Envelope) -> None:
        """The job was cancelled while its stage ran: nothing downstream runs."""
        log.info("%s: stage %s stopped: the job was cancelled", env.label, self.stage)
        await self.batcher.run(calls.Drop(source=d.stream, group=self.group, entry=d.entry_id))
        if d.span is not None:
            d.span.outcome("cancelled")

    async def _signal_cancelled(self) -> None:
        """Tell stages whose job was cancelled while they run: ``ctx.cancelled`` /
        ``ctx.progress`` raising for sync stages, task cancellation for async ones.
        Checked once per upkeep tick, for runs older than a second (one pipelined
        HGET each); a stage that ignores it is stopped at the hand-off anyway."""
        horizon = time.monotonic() - 1.0
        running = [
            d
            for d in self.inflight.values()
            if d.work is not None
            and d.cancel is not None
            and not d.cancel.is_set()
            and d.work_started < horizon
        ]
        if not running:
            return
        pipe = self.client.pipeline(transaction=False)
        for d in running:
            pipe.hget(d.job_key, "state")
        for d, state in zip(running, await pipe.execute(), strict=True):
            gone = state is None or state in (b"cancelled", b"deleted")
            if gone and d.cancel is not None and d.work is not None:
                d.cancel.set()
                d.work.cancel()  # an async stage gets CancelledError; a sync one's thread sees ctx.cancelled

    async def _invoke(self, env: Envelope, job_key: str, cancel: threading.Event) -> StageResult:
        loop = asyncio.get_running_loop()

        def report(fraction: float, message: str) -> None:
            loop.call_soon_threadsafe(self._progress.__setitem__, job_key, (fraction, message))

        ctx = StageContext(
            envelope=env,
            settings=self.settings,
            services=self.services,
            report_progress=report,
            cancel_event=cancel,
        )
        func = self.spec.func
        if self._executor is not None:
            # copy_context: the stage's thread sees the process span as current
            result = await loop.run_in_executor(self._executor, contextvars.copy_context().run, func, ctx)
        else:
            result = func(ctx)
        if inspect.isawaitable(result):
            result = await result
        if result is None:
            return StageResult()
        if isinstance(result, dict):
            return StageResult(output=result)
        if isinstance(result, StageResult):
            return result
        raise TypeError(
            f"stage {self.stage!r} returned {type(result).__name__}; return a dict, a StageResult or None"
        )

    def _route(self, skipped: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
        """The hand-off's routing argument (JSON, encoded once per skip set) and its candidates."""
        cached = self._routes.get(skipped)
        if cached is None:
            topo = self.topology
            candidates = topo.candidates_after(self.stage, skipped)
            route = calls.route(
                topo.stages, topo.skip_closure(skipped), [(c, topo.predecessors[c]) for c in candidates]
            )
            cached = self._routes[skipped] = (route, candidates)
        return cached

    async def _complete(self, d: Delivery, env: Envelope, result: StageResult) -> None:
        route, candidates = self._route(tuple(result.skip))
        output = json.dumps(result.output, separators=(",", ":")) if result.output else ""
        prefixes = [
            env.model_copy(update={"stage": cand, "attempt": 1}).model_dump_json(exclude={"outputs"})[:-1]
            for cand in candidates
        ]
        outcome = await self.batcher.run(
            calls.Complete(
                job=d.part.job(env.job_id),
                source=d.stream,
                tag=d.part.tag,
                group=self.group,
                entry=d.entry_id,
                job_id=env.job_id,
                stage=self.stage,
                now=now_ms(),
                output=output,
                traceparent=d.out_traceparent,
                max_age=self._completed_age_ms,
                max_count=self.settings.completed_max_count,
                lane=env.priority.value,
                route=route,
                prefixes=calls.encode(prefixes),
                events=self._events,
            )
        )
        if outcome in (b"ok", b"completed"):
            self.counts["completed"] += 1
        elif outcome == b"stale":  # reclaimed while this worker was cut off, and handed off by another
            self.counts["refused"] += 1
            log.warning(
                "%s: hand-off of %s from %s refused: the entry was already handed off "
                "(reclaimed by another consumer); this run's result is dropped",
                env.label,
                d.entry_id,
                d.stream,
            )
        if d.span is not None:
            d.span.outcome("completed" if outcome in (b"ok", b"completed") else "duplicate")
            if outcome == b"completed":
                d.span.job_completed()

    async def _schedule_retry(self, d: Delivery, env: Envelope, exc: Exception) -> None:
        delay = backoff_delay(self.retry, env.attempt)
        now = now_ms()
        due = now + int(delay * 1000)
        retried = env.model_copy(update={"attempt": env.attempt + 1})
        member = json.dumps(
            {
                "job": env.job_id,
                "stage": self.stage,
                "stream": d.part.stream(self.stage, env.priority),
                "payload": retried.model_dump_json(),
                "traceparent": d.out_traceparent,
            }
        )
        log.info(
            "%s: stage %s attempt %d failed (%s); retry in %.2fs",
            env.label,
            self.stage,
            env.attempt,
            exc,
            delay,
        )
        await self.batcher.run(
            calls.Retry(
                job=d.part.job(env.job_id),
                source=d.stream,
                tag=d.part.tag,
                group=self.group,
                entry=d.entry_id,
                job_id=env.job_id,
                stage=self.stage,
                now=now,
                due=due,
                member=member,
                error=f"{type(exc).__name__}: {exc}",
                attempt=env.attempt,
                events=self._events,
            )
        )
        self.counts["retried"] += 1
        if d.span is not None:
            d.span.fail(exc, "retry")

    async def dead_letter(self, d: Delivery, env: Envelope | None, exc: BaseException, final: str) -> None:
        payload = d.fields.get(b"payload", b"")
        truncated = len(payload) > DLQ_PAYLOAD_LIMIT
        tb = "".join(traceback.format_exception(exc))[-8192:]
        now = now_ms()
        fields: list[Any] = [
            "payload",
            payload[:DLQ_PAYLOAD_LIMIT],
            "payload_truncated",
            "1" if truncated else "0",
            "traceparent",
            d.out_traceparent,
            "stage",
            self.stage,
            "job_id",
            env.job_id if env else "",
            "error_type",
            type(exc).__name__,
            "error",
            str(exc),
            "traceback",
            tb,
            "attempts",
            env.attempt if env else 1,
            "deliveries",
            d.deliveries,
            "final_state",
            final,
            "failed_at",
            now,
            "source_stream",
            d.stream,
            "source_id",
            d.entry_id,
            "consumer",
            self.consumer,
        ]
        job_id = env.job_id if env else ""
        log.warning("dead-lettering %s from %s: %s", env.label if env else d.entry_id, self.stage, exc)
        await self.batcher.run(
            calls.Dead(
                job=d.part.job(job_id or "-"),
                source=d.stream,
                dlq=d.part.dlq(self.stage),
                tag=d.part.tag,
                group=self.group,
                entry=d.entry_id,
                job_id=job_id,
                stage=self.stage,
                now=now,
                final=final,
                error=f"{type(exc).__name__}: {exc}",
                max_age=int(self.settings.failed_max_age * 1000),
                max_count=self.settings.failed_max_count,
                dlq_maxlen=self.settings.dlq_max_len,
                fields=calls.encode_bytes(fields),
                events=self._events,
            )
        )
        self.counts[final] += 1
        if d.span is not None:
            if env is not None:
                d.span.job(env.job_id, env.attempt + d.deliveries - 1)
            d.span.fail(exc, final)

    def _chaos(self, point: str) -> None:
        s = self.settings
        if s.chaos_crash_at == point and random.random() < s.chaos_crash_probability:
            os._exit(137)

    # -- upkeep: reclaim, keep claims alive, progress ---------------------

    async def _upkeep_loop(self) -> None:
        interval = min(1.0, self.visibility_ms / 4000)
        # not `while True`: on Python 3.11 wait_for can swallow a cancellation that
        # arrives as the wake-up fires, and the loop would outlive its runner
        while not self._upkeep_done:
            try:
                await asyncio.wait_for(self._upkeep_wake.wait(), interval)
            except TimeoutError:
                pass
            self._upkeep_wake.clear()
            try:
                await self._flush_progress()
                await self._signal_cancelled()
                await keep_claims(self)
                if self.limiter is not None:
                    await self.limiter.renew()
                if not self.stopping.is_set():
                    self._orphans_waiting = await reclaim(self)
            except REDIS_DOWN as exc:
                log.warning("upkeep: redis unavailable (%s)", exc)
            except Exception:
                log.exception("upkeep failed")

    async def _give_permit(self, permit: str) -> None:
        assert self.limiter is not None
        try:
            await self.limiter.give([permit], started=True)
        except REDIS_DOWN as exc:  # it expires after the visibility timeout instead
            log.warning("could not release in-flight permit %s (%s)", permit, exc)

    async def _flush_progress(self) -> None:
        if not self._progress:
            return
        updates, self._progress = self._progress, {}
        pipe = self.client.pipeline(transaction=False)
        for job_key, (fraction, message) in updates.items():
            pipe.hset(
                job_key,
                mapping={f"{self.stage}:progress": fraction, f"{self.stage}:message": message},
            )
        await pipe.execute()


__all__ = ["REDIS_DOWN", "Delivery", "DeliveryCapExceeded", "StageRunner", "backoff_delay"]
