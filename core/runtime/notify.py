"""Webhook delivery: lifecycle events out to HTTP endpoints, at least once.

The events streams are read through a consumer group (``notify``), so each
event is fanned out once however many notify workers run; its deliveries (one
per matching subscription, plus the job's ``callback_url``) go into the
partition's ``notify:due`` set in the same step as the event's ack.  A worker
takes a due delivery by moving its score past the delivery's timeout (a lease:
a worker that dies mid-delivery gives it back), then settles it: done, due
again after the runtime's backoff (:func:`~docgraph.core.runtime.runner.backoff_delay`,
Retry-After honoured), or dead-lettered in ``dlq:notify`` once its attempts
are spent or its target is refused, from where ``docgraph dlq replay notify``
puts it back.  Every delivery of an event carries the same ``webhook-id``
(``<partition>-<entry id>``), so a receiver drops repeats.

What to send and where comes from settings (``DOCGRAPH_NOTIFY__*``); how one
POST is made and signed is the notify stage's (stages/notify.py), passed in
as a :class:`Sender`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from docgraph.core.envelope import display_name
from docgraph.core.runtime import calls
from docgraph.core.runtime.connection import Scripts
from docgraph.core.runtime.events import INT_FIELDS, type_matches
from docgraph.core.runtime.jobs import now_ms
from docgraph.core.runtime.keys import Keys, PartitionKeys
from docgraph.core.runtime.runner import backoff_delay, consumer_name
from docgraph.core.settings import Settings

log = logging.getLogger("docgraph.notify")

STAGE = "notify"  #: the dead letters' stage name (``docgraph dlq list notify``)
GROUP = "notify"  #: the consumer group on every events stream
CALLBACK = "callback"  #: the target name of a job's own callback_url
FANOUT_BATCH = 200


class AttemptResult(Protocol):
    delivered: bool
    error: str
    permanent: bool
    retry_after: float | None


class Sender(Protocol):
    """Makes one signed POST (stages/notify.py's WebhookSender)."""

    async def send(self, url: str, secret: str, msg_id: str, body: bytes) -> AttemptResult: ...

    async def aclose(self) -> None: ...


def delivery(partition: int, entry_id: str, fields: dict[str, str], target: str, url: str = "") -> str:
    """A delivery as stored in ``notify:due``: canonical JSON, so fanning the same
    event out twice (a crash before the ack) adds nothing."""
    d: dict[str, Any] = {"id": f"{partition}-{entry_id}", "event": fields, "target": target, "attempt": 1}
    if url:
        d["url"] = url
    return json.dumps(d, sort_keys=True, separators=(",", ":"))


def body(d: dict[str, Any]) -> bytes:
    """What a receiver gets: Standard Webhooks' ``type`` / ``timestamp`` / ``data``."""
    fields: dict[str, str] = d["event"]
    data: dict[str, Any] = {
        k: int(v) if k in INT_FIELDS and v.lstrip("-").isdigit() else v for k, v in fields.items()
    }
    data["id"] = d["id"]
    when = datetime.fromtimestamp(int(fields.get("time", 0)) / 1000, UTC)
    return json.dumps(
        {"type": fields.get("type", ""), "timestamp": when.isoformat(timespec="milliseconds"), "data": data},
        separators=(",", ":"),
    ).encode()


def job_label(event: dict[str, str]) -> str:
    """``report.pdf (job 30971fc8…)``: the job as Envelope.label names it in the runner's log lines."""
    job = event.get("job_id", "?")
    name = display_name(event.get("name"), event.get("uri"))
    short = job if len(job) <= 12 else job[:8] + "…"
    return f"{name} (job {short})" if name else f"job {job}"


def redelivered(member: str) -> str:
    """A dead-lettered delivery with its attempts reset (what replay puts back)."""
    d = json.loads(member)
    d["attempt"] = 1
    d.pop("error", None)
    return json.dumps(d, sort_keys=True, separators=(",", ":"))


@dataclass
class _Taken:
    part: PartitionKeys
    member: str


class Notifier:
    """One notify worker's loop: fan events out, make due deliveries, settle them."""

    def __init__(
        self, settings: Settings, client: aioredis.Redis, sender: Sender, *, consumer: str | None = None
    ) -> None:
        self.settings = settings
        self.options = settings.notify
        self.client = client
        self.sender = sender
        self.keys = Keys(settings.key_prefix, settings.partitions)
        self.scripts = Scripts(client, settings)
        self.consumer = consumer or consumer_name()
        self.lease_ms = int((self.options.timeout + 10) * 1000)  # a delivery's whole attempt, and margin
        self.in_flight: set[asyncio.Task[None]] = set()
        self.delivered = 0
        self.dead = 0

    async def run(self, stopping: asyncio.Event) -> None:
        """Until ``stopping``; then deliveries in flight get the shutdown grace to finish
        (any left are given back when their lease runs out)."""
        log.info(
            "notify: %d webhook(s)%s, %d partition(s)",
            len(self.options.webhooks),
            " + per-job callbacks" if self.options.callback_secret else "",
            self.keys.partitions,
        )
        groups_ready = False
        try:
            while not stopping.is_set():
                busy = False
                try:
                    if not groups_ready:
                        await self._create_groups()
                        groups_ready = True
                    for part in self.keys.all():
                        busy |= await self._fan_out(part) > 0
                        busy |= await self._take(part) > 0
                except RedisError as exc:
                    log.warning(
                        "notify: Redis error (%s); retrying in %.1f s", exc, self.settings.poll_interval
                    )
                    busy = False
                if not busy:
                    try:
                        await asyncio.wait_for(stopping.wait(), self.settings.poll_interval)
                    except TimeoutError:
                        pass
        finally:
            if self.in_flight:
                await asyncio.wait(self.in_flight, timeout=self.settings.shutdown_grace)
            await self.sender.aclose()

    async def _create_groups(self) -> None:
        for part in self.keys.all():
            try:  # from the start of what is retained: events before the first worker are sent too
                await self.client.xgroup_create(part.events, GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def _fan_out(self, part: PartitionKeys) -> int:
        """Events read (a dead notifier's unacknowledged ones first) turned into deliveries."""
        claimed: Any = await self.client.xautoclaim(
            part.events, GROUP, self.consumer, self.lease_ms, "0-0", count=FANOUT_BATCH
        )
        rows = list(claimed[1]) if claimed else []
        fresh: Any = await self.client.xreadgroup(
            GROUP, self.consumer, {part.events: ">"}, count=FANOUT_BATCH
        )
        for _, entries in fresh or ():
            rows += entries
        if not rows:
            return 0
        events = [
            (eid.decode(), {k.decode(): v.decode(errors="replace") for k, v in f.items()})
            for eid, f in rows
            if f  # an entry trimmed while pending comes back empty
        ]
        callbacks = await self._callbacks(part, [f for _, f in events])
        members: list[str] = []
        for eid, fields in events:
            kind = fields.get("type", "")
            members += [
                delivery(part.partition, eid, fields, hook.name)
                for hook in self.options.webhooks
                if type_matches(kind, hook.types)
            ]
            url = callbacks.get(fields.get("job_id", ""))
            if url and type_matches(kind, self.options.callback_types):
                members.append(delivery(part.partition, eid, fields, CALLBACK, url))
        await self.scripts.run(
            calls.NotifyFanout(
                events=part.events,
                due=part.notify_due,
                group=GROUP,
                now=now_ms(),
                deliveries=calls.encode(members),
                entries=calls.encode([eid.decode() for eid, _ in rows]),
            )
        )
        return len(rows)

    async def _callbacks(self, part: PartitionKeys, events: list[dict[str, str]]) -> dict[str, str]:
        """The callback_url of each job these events are about that has one."""
        if self.options.callback_secret is None:
            return {}
        jobs = sorted(
            {f["job_id"] for f in events if type_matches(f.get("type", ""), self.options.callback_types)}
        )
        if not jobs:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for job in jobs:
            pipe.hget(part.job(job), "callback")
        urls = await pipe.execute()
        return {job: url.decode() for job, url in zip(jobs, urls, strict=True) if url}

    async def _take(self, part: PartitionKeys) -> int:
        free = self.options.concurrency - len(self.in_flight)
        if free <= 0:
            return 0
        taken: Any = await self.scripts.run(
            calls.NotifyTake(due=part.notify_due, now=now_ms(), count=free, lease_ms=self.lease_ms)
        )
        for member in taken or ():
            task = asyncio.create_task(self._deliver(_Taken(part, member.decode())))
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)
        return len(taken or ())

    async def _deliver(self, taken: _Taken) -> None:
        d = json.loads(taken.member)
        target, attempt = d["target"], int(d["attempt"])
        url, secret, problem = self._target(target, d)
        try:
            if problem:
                await self._settle(taken, d, "dead", problem)
                return
            result = await self.sender.send(url, secret, d["id"], body(d))
            if result.delivered:
                self.delivered += 1
                await self._settle(taken, d, "done", "")
            elif result.permanent or attempt >= self.options.retry.attempts:
                await self._settle(taken, d, "dead", result.error)
            else:
                delay = backoff_delay(self.options.retry, attempt)
                if result.retry_after is not None:
                    delay = max(delay, min(result.retry_after, self.options.retry.backoff_max))
                log.info(
                    "notify: %s of %s to %s failed (%s); try %d in %.1f s",
                    d["event"].get("type"),
                    job_label(d["event"]),
                    target,
                    result.error,
                    attempt + 1,
                    delay,
                )
                await self._settle(taken, d, "retry", result.error, due=now_ms() + int(delay * 1000))
        except RedisError as exc:  # the lease runs out and another try takes it
            log.warning("notify: could not settle delivery %s to %s (Redis: %s)", d["id"], target, exc)
        except Exception:
            log.exception(
                "notify: delivery %s to %s crashed; it is retried when its lease ends", d["id"], target
            )

    def _target(self, target: str, d: dict[str, Any]) -> tuple[str, str, str]:
        """(url, secret, problem): a problem means the delivery cannot be made at all."""
        if target == CALLBACK:
            secret = self.options.callback_secret
            if secret is None:
                return "", "", "DOCGRAPH_NOTIFY__CALLBACK_SECRET is not set on the notify worker"
            return str(d.get("url", "")), secret.get_secret_value(), ""
        hook = self.options.subscription(target)
        if hook is None:
            return "", "", f"no webhook named {target!r} in DOCGRAPH_NOTIFY__WEBHOOKS (removed?)"
        return hook.url, hook.secret.get_secret_value(), ""

    async def _settle(self, taken: _Taken, d: dict[str, Any], outcome: str, error: str, due: int = 0) -> None:
        part, attempt = taken.part, int(d["attempt"])
        call = calls.NotifySettle(
            due_set=part.notify_due, dlq=part.dlq(STAGE), member=taken.member, outcome=outcome
        )
        if outcome == "retry":
            call.due = due
            call.next_member = json.dumps({**d, "attempt": attempt + 1, "error": error}, sort_keys=True)
        elif outcome == "dead":
            self.dead += 1
            event = d["event"]
            log.warning(
                "notify: dead-lettering %s of %s to %s after %d attempt(s): %s",
                event.get("type"),
                job_label(event),
                d["target"],
                attempt,
                error,
            )
            call.dlq_max_len = self.settings.dlq_max_len
            call.fields = calls.encode(
                {
                    "job_id": event.get("job_id", ""),
                    "event": event.get("type", ""),
                    "target": d["target"],
                    "error_type": "DeliveryFailed",
                    "error": error,
                    "attempts": str(attempt),
                    "payload": taken.member,
                    "traceparent": event.get("traceparent", ""),
                    "time": str(now_ms()),
                }
            )
        await self.scripts.run(call)


__all__ = [
    "CALLBACK",
    "GROUP",
    "STAGE",
    "AttemptResult",
    "Notifier",
    "Sender",
    "body",
    "delivery",
    "redelivered",
]
