"""Recovery: what keeps jobs moving when workers die, stall or sit at zero.

* ``keep_claims``: reset the idle time of entries a live runner still works on,
  so a slow job is not taken from its worker;
* ``reclaim``: take over entries of consumers silent past the visibility timeout,
  one suspect at a time, and dead-letter those over the delivery cap (a poison
  message cannot loop forever, crashes included);
* :class:`Upkeep`: promote due retries from the delayed set, apply retention
  (any number of processes may run it: every step is an idempotent script);
* :class:`LeaseKeeper`: each worker process's consumers hold a lease in Redis,
  renewed by a thread with its own connection (event-loop starvation cannot stop
  it); ``reclaim`` takes entries only from consumers whose lease expired, so a
  slow job on a live worker keeps its entry and only real deaths count toward
  the delivery cap;
* ``touch_liveness``: the liveness file a container probe reads, independent of Redis.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis
import redis.asyncio as aioredis

from docgraph.core import telemetry
from docgraph.core.envelope import Envelope, decode_fields
from docgraph.core.errors import PermanentError
from docgraph.core.runtime import calls
from docgraph.core.runtime.connection import REDIS_DOWN, Scripts, connect_sync
from docgraph.core.runtime.delivery import Delivery
from docgraph.core.runtime.jobs import now_ms
from docgraph.core.runtime.keys import LANES, Keys
from docgraph.core.settings import Settings

if TYPE_CHECKING:
    from docgraph.core.runtime.runner import StageRunner

log = logging.getLogger("docgraph.recovery")

PROMOTE_BATCH = 500
LIVENESS_INTERVAL = 5.0


async def touch_liveness(path: Path, stopping: asyncio.Event, interval: float = LIVENESS_INTERVAL) -> None:
    """Keep ``path``'s mtime fresh while the event loop runs, whether Redis answers or not:
    a container's liveness probe restarts a stuck process, never one waiting out a Redis blip."""
    await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    while not stopping.is_set():
        try:
            await asyncio.to_thread(path.touch)
        except OSError as exc:
            log.warning("cannot touch the liveness file %s (%s)", path, exc)
        try:
            await asyncio.wait_for(stopping.wait(), interval)
        except TimeoutError:
            pass
    await asyncio.to_thread(path.unlink, missing_ok=True)


class Upkeep:
    """Promotes due retries and trims finished jobs; safe to run anywhere, any number of times."""

    def __init__(self, settings: Settings, client: aioredis.Redis) -> None:
        self.settings = settings
        self.keys = Keys(settings.key_prefix, settings.partitions)
        self.scripts = Scripts(client, settings)

    async def promote_due(self) -> int:
        moved = 0
        for part in self.keys.all():
            while True:
                n = int(
                    await self.scripts.run(
                        calls.Promote(delayed=part.delayed, tag=part.tag, now=now_ms(), limit=PROMOTE_BATCH)
                    )
                )
                moved += n
                if n < PROMOTE_BATCH:
                    break
        return moved

    async def sweep(self) -> None:
        s = self.settings
        for part in self.keys.all():
            await self.scripts.run(
                calls.Sweep(
                    completed_index=part.state_index("completed"),
                    tag=part.tag,
                    now=now_ms(),
                    completed_age=int(s.completed_max_age * 1000),
                    completed_count=s.completed_max_count,
                    failed_age=int(s.failed_max_age * 1000),
                    failed_count=s.failed_max_count,
                    events_age=int(s.events.max_age * 1000),
                )
            )

    async def run(self, stopping: asyncio.Event, interval: float = 0.25) -> None:
        ticks = 0
        while not stopping.is_set():
            try:
                await self.promote_due()
                if ticks % 40 == 0:
                    await self.sweep()
            except REDIS_DOWN as exc:
                log.warning("upkeep: redis unavailable (%s)", exc)
            except Exception:
                log.exception("upkeep failed")
            ticks += 1
            try:
                await asyncio.wait_for(stopping.wait(), interval)
            except TimeoutError:
                pass


LEASE_GRACE = 3.0  # seconds a lease outlives the visibility timeout
LEASE_RENEW_MAX = 2.0  # renew at least this often (seconds)


class LeaseKeeper:
    """Renews ``lease:<consumer>`` for every consumer of this process, from a thread.

    TTL: the shortest visibility timeout of the process's stages plus
    :data:`LEASE_GRACE`, renewed at least four times per TTL, so a renewal may be
    late or fail a few times on a loaded machine without losing the lease.  A
    process that dies (SIGKILL, OOM, a lost host) stops renewing and its entries
    are reclaimed within visibility timeout + grace; a process whose event loop is
    busy or starved keeps them."""

    def __init__(self, settings: Settings, consumers: Iterable[str], visibility: float) -> None:
        keys = Keys(settings.key_prefix, settings.partitions)
        self.leases = [keys.lease(c) for c in consumers]
        self.ttl_ms = int((visibility + LEASE_GRACE) * 1000)
        self.settings = settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="docgraph-lease", daemon=True)

    def start(self) -> None:
        if self.leases:
            self._thread.start()

    def stop(self) -> None:
        """Stop renewing and give the leases up (entries were handed back by then)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _run(self) -> None:
        client = connect_sync(self.settings, socket_timeout=self.ttl_ms / 2000)
        interval = min(self.ttl_ms / 4000, LEASE_RENEW_MAX)
        try:
            while not self._stop.is_set():
                try:
                    pipe = client.pipeline(transaction=False)
                    for key in self.leases:
                        pipe.set(key, b"1", px=self.ttl_ms)
                    pipe.execute()
                except redis.RedisError as exc:
                    log.warning("lease renewal failed (%s); retrying", exc)
                self._stop.wait(interval)
            try:
                client.delete(*self.leases)
            except redis.RedisError:
                pass  # they expire on their own
        finally:
            client.close()


class DeliveryCapExceeded(Exception):
    """An entry was delivered more times than allowed: its worker keeps dying."""


async def keep_claims(runner: StageRunner) -> None:
    """Reset the idle time of entries still being worked on (like a lock
    extension) so live, slow jobs are not reclaimed.  JUSTID does not
    count a delivery."""
    horizon = time.monotonic() - runner.visibility_ms / 3000
    by_stream: dict[str, list[Any]] = {}
    for d in list(runner.inflight.values()):
        if d.received < horizon:
            by_stream.setdefault(d.stream, []).append(d.entry_id)
            d.received = time.monotonic()
    for stream, ids in by_stream.items():
        await runner.client.xclaim(
            stream, runner.group, runner.consumer, min_idle_time=0, message_ids=ids, justid=True
        )


RECLAIM_SCAN = 32  # pending entries looked at per stream and tick, at least


class Suspects:
    """The runners of one process, which share one suspect slot.

    A poison message kills the whole process, so a suspect of one stage must not
    run next to a suspect of another: all the process's runners check and claim
    under one lock."""

    def __init__(self) -> None:
        self.runners: list[StageRunner] = []
        self.lock = asyncio.Lock()

    def running(self) -> bool:
        return any(d.suspect for r in self.runners for d in r.inflight.values())


async def reclaim(runner: StageRunner) -> bool:
    """Reclaim what the runner has room for; True when it ran out of room (more may wait)."""
    async with runner.suspects.lock:
        return await _reclaim(runner)


async def _reclaim(runner: StageRunner) -> bool:
    """Take over entries whose consumer died (idle past the visibility timeout
    *and* lease expired); dead-letter those delivered ``max_deliveries`` times
    already (their worker keeps dying).

    An entry whose worker died once is taken back in bulk with the others that
    worker held (a crashed worker with 128 entries has them all running again
    within one tick).  An entry that has died twice or more is a suspect: it may
    be what kills workers.  At most one suspect runs per process at a time,
    across its stages (:class:`Suspects`), so a poison message cannot take
    innocent entries down with it often enough to reach their cap.  With a cap
    of 2 or less there is no room for a second death, so every reclaimed entry
    is a suspect.
    """
    free = runner.concurrency - len(runner.inflight)
    suspect_slot = not runner.suspects.running()
    more = False  # orphans seen that there was no room for
    for part in runner.keys.all():
        for lane in LANES:
            if free <= 0:
                return more
            stream = part.stream(runner.stage, lane)
            pending = await runner.client.xpending_range(
                stream,
                runner.group,
                min="-",
                max="+",
                count=max(RECLAIM_SCAN, free),
                idle=runner.visibility_ms,
            )
            chosen = []
            for p in await _of_dead_consumers(runner, pending):
                delivered = int(p["times_delivered"])
                if delivered >= runner.max_deliveries or (delivered == 1 and runner.max_deliveries > 2):
                    chosen.append(p)  # over the cap (dead-lettered), or died once: innocent so far
                elif suspect_slot:
                    chosen.append(p)
                    suspect_slot = False
                if len(chosen) >= free:
                    more = True
                    break
            if chosen:
                free -= await _claim(runner, stream, part, lane, chosen)
    return more


async def _claim(runner: StageRunner, stream: str, part: Any, lane: Any, chosen: list[Any]) -> int:
    """Claim ``chosen`` pending entries and start them; returns how many now run here."""
    delivered = {p["message_id"].decode(): int(p["times_delivered"]) for p in chosen}
    owners = {p["message_id"].decode(): p["consumer"].decode() for p in chosen}
    claimed: Any = await runner.client.xclaim(
        stream, runner.group, runner.consumer, min_idle_time=runner.visibility_ms, message_ids=list(delivered)
    )
    started = 0
    for raw_id, fields in claimed:  # what another consumer took first is not here
        entry_id = raw_id.decode()
        times = delivered[entry_id]
        d = Delivery(stream, entry_id, fields or {}, part, lane, times + 1, time.monotonic())
        d.suspect = times >= 2 or runner.max_deliveries <= 2
        runner.counts["reclaimed"] += 1
        owner = owners[entry_id]
        log.warning(
            "reclaimed %s of %s from %s (delivered %d times%s): %s",
            entry_id,
            stream,
            owner,
            times,
            ", a suspect: runs alone" if d.suspect and times < runner.max_deliveries else "",
            "no longer worked on here" if owner == runner.consumer else "its worker's lease expired",
        )
        if not fields:  # deleted while pending: nothing to run
            await runner.batcher.run(calls.Drop(source=stream, group=runner.group, entry=entry_id))
            continue
        started += 1
        if times >= runner.max_deliveries:
            task = asyncio.create_task(dead_letter_capped(runner, d))
            runner.inflight[task] = d
            task.add_done_callback(runner.done)
            continue
        runner.spawn(d)
    return started


async def _of_dead_consumers(runner: StageRunner, pending: list[Any]) -> list[Any]:
    """The pending entries whose consumer holds no lease (its process is gone), and
    this runner's own that it no longer works on (its hand-off was lost while Redis
    was down, say): orphans, whoever's lease is alive.  In pending order."""
    working = {d.entry_id for d in runner.inflight.values()}
    consumers = sorted({p["consumer"].decode() for p in pending} - {runner.consumer})
    dead: set[str] = set()
    if consumers:
        pipe = runner.client.pipeline(transaction=False)  # one round trip for every owner's lease
        for c in consumers:
            pipe.exists(runner.keys.lease(c))
        dead = {c for c, live in zip(consumers, await pipe.execute(), strict=True) if not live}
    return [
        p
        for p in pending
        if p["consumer"].decode() in dead
        or (p["consumer"].decode() == runner.consumer and p["message_id"].decode() not in working)
    ]


async def dead_letter_capped(runner: StageRunner, d: Delivery) -> None:
    with telemetry.process_span(d.stream, d.entry_id, runner.group, d.traceparent, d.deliveries) as span:
        d.span = span
        await _dead_letter_capped(runner, d)


async def _dead_letter_capped(runner: StageRunner, d: Delivery) -> None:
    try:
        env: Envelope | None = decode_fields(d.fields, runner.settings.max_event_bytes)
    except PermanentError:
        env = None
    exc = DeliveryCapExceeded(
        f"delivered {d.deliveries - 1} times without finishing (DOCGRAPH_MAX_DELIVERIES="
        f"{runner.max_deliveries}); the stage likely crashes its worker on this input"
    )
    await runner.dead_letter(d, env, exc, "dead")
