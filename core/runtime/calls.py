"""Typed calls of the Lua scripts in :mod:`~docgraph.core.runtime.lua`.

One dataclass per script: its fields are the script's arguments, its
docstring the script's ``KEYS``/``ARGV`` layout, and ``keys()``/``args()``
give them in the order the script reads them.  Run one with
``Scripts.run(call)`` or, batched with concurrent calls, ``Batcher.run(call)``.
A call is a value: build it, run it, do not change it (the classes are not
``frozen`` only because a frozen ``__init__`` costs three times as much, and
the runner builds two calls per job and stage).

Every variable-length part of a call (the stage list, the roots, the routing
of a hand-off, the dead-letter fields, ...) is ONE JSON argument, decoded in
the script with ``cjson.decode``: a script reads fixed positions only, and no
offset arithmetic has to be kept in step with the callers.  What is constant
for a runner (the stage list, the routing of a skip set) is encoded once by
the caller (:func:`encode`) and passed in as a ready string.

JSON arguments are encoded with ``ensure_ascii=False``: text passes through
byte for byte (``cjson.decode`` copies non-escaped bytes as they are), so what
a script stores is what the caller had.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

Arg = str | int | float | bytes

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def encode(value: Any) -> str:
    """A JSON argument: compact, non-ASCII text kept as is."""
    return _dumps(value)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        # undecodable bytes (a truncated or foreign payload) survive the round
        # trip: surrogateescape here, the same bytes back in :func:`encode_bytes`
        return value.decode("utf-8", "surrogateescape")
    return value if isinstance(value, str) else str(value)


def encode_bytes(values: Iterable[Any]) -> bytes:
    """A JSON list of strings as bytes, any byte string in ``values`` kept byte for byte."""
    return _dumps([_text(v) for v in values]).encode("utf-8", "surrogateescape")


_BYTES: dict[str | int, bytes] = {}


def cached_arg(value: str | int) -> bytes:
    """``value`` as the bytes redis-py would send, kept: for a call's constant arguments
    (key tag, lane, stage list, events cap), a bounded set per process."""
    b = _BYTES.get(value)
    if b is None:
        b = str(value).encode()
        if len(_BYTES) < 4096:
            _BYTES[value] = b
    return b


class ScriptCall(Protocol):
    """What ``Scripts.run`` / ``Batcher.run`` take."""

    script: ClassVar[str]

    def keys(self) -> Sequence[Arg]: ...

    def args(self) -> Sequence[Arg]: ...


@dataclass(slots=True)
class Read:
    """READ: strict-priority read of up to ``count`` new entries, unless paused.

    KEYS[1] the partition's paused hash; KEYS[2..] the lanes' streams, in
    priority order (high, normal, low)
    ARGV: group, consumer, count, stage
    """

    script: ClassVar[str] = "read"
    paused: str
    streams: Sequence[str]
    group: str
    consumer: str
    count: int
    stage: str

    def keys(self) -> Sequence[Arg]:
        return (self.paused, *self.streams)

    def args(self) -> Sequence[Arg]:
        return (self.group, self.consumer, self.count, self.stage)


@dataclass(slots=True)
class Submit:
    """SUBMIT: create a job record and enqueue its roots.

    KEYS[1] job
    ARGV: tag, id, now, traceparent, lane, idem, meta_json,
          stages_json (["stage", ...]), roots_json ([["root", "payload"], ...]),
          events_cap, doc_uri, doc_sha256, doc_name (kept on the record for the events),
          not_before (ms; later than now: the roots wait in the delayed set until then),
          callback (the job's callback_url, kept on the record for the notify worker; '' none),
          latest (latest-wins: the document's name or URI; an older job of it not yet started
          is cancelled; '' off)
    """

    script: ClassVar[str] = "submit"
    job: str
    tag: str
    job_id: str
    now: int
    traceparent: str
    lane: str
    idem: str
    meta: str
    stages: str  #: encode(list of every stage)
    roots: str  #: encode([[root, payload], ...])
    events: int  #: events cap (Settings.events.cap): MAXLEN of the events stream, 0 = no events
    doc_uri: str
    doc_sha256: str
    doc_name: str
    not_before: int = 0  #: ms since the epoch; 0: now
    callback: str = ""
    latest: str = ""

    def keys(self) -> Sequence[Arg]:
        return (self.job,)

    def args(self) -> Sequence[Arg]:
        # the constant and empty ones as cached bytes: redis-py passes bytes through
        # as they are, and encodes a str or an int with five type checks each
        return (
            cached_arg(self.tag),
            self.job_id,
            self.now,
            self.traceparent,
            cached_arg(self.lane),
            self.idem or b"",
            cached_arg(self.meta) if self.meta == "{}" else self.meta,
            cached_arg(self.stages),
            self.roots,
            cached_arg(self.events),
            self.doc_uri,
            self.doc_sha256 or b"",
            self.doc_name or b"",
            self.not_before or b"0",
            self.callback or b"",
            self.latest or b"",
        )


@dataclass(slots=True)
class Start:
    """START: record that a stage runs (adopting an external root event when ``adopt``).

    KEYS[1] job
    ARGV: tag, id, stage, now, attempt, lane, traceparent, adopt ('1'/'0'), stages_json,
          events_cap, doc_uri, doc_sha256, doc_name (the document, read only when adopting)
    """

    script: ClassVar[str] = "start"
    job: str
    tag: str
    job_id: str
    stage: str
    now: int
    attempt: int
    lane: str
    traceparent: str
    adopt: bool
    stages: str  #: encode(list of every stage), read only when adopting
    events: int  #: events cap (Settings.events.cap): MAXLEN of the events stream, 0 = no events
    doc_uri: str
    doc_sha256: str
    doc_name: str

    def keys(self) -> Sequence[Arg]:
        return (self.job,)

    def args(self) -> Sequence[Arg]:
        return (
            self.tag,
            self.job_id,
            self.stage,
            self.now,
            self.attempt,
            self.lane,
            self.traceparent,
            "1" if self.adopt else "0",
            self.stages,
            self.events,
            self.doc_uri,
            self.doc_sha256,
            self.doc_name,
        )


def route(stages: Sequence[str], skip: Sequence[str], candidates: Iterable[tuple[str, Sequence[str]]]) -> str:
    """The routing argument of :class:`Complete`: constant per (stage, skip set), encode it once."""
    return encode(
        {
            "stages": list(stages),
            "skip": list(skip),
            "cands": [{"stage": c, "preds": list(preds)} for c, preds in candidates],
        }
    )


@dataclass(slots=True)
class Complete:
    """COMPLETE: the hand-off (ack, record the output, enqueue ready successors).

    KEYS[1] job, KEYS[2] source stream
    ARGV: tag, group, entry, id, stage, now, output_json, traceparent,
          completed_max_age, completed_max_count, lane,
          route_json ({"stages": [...], "skip": [...], "cands": [{"stage", "preds": [...]}, ...]}),
          prefixes_json ([payload_prefix per candidate, in the order of route.cands]),
          events_cap

    A payload prefix is the successor's envelope JSON without its closing
    brace; the script appends the recorded outputs of every finished stage.
    """

    script: ClassVar[str] = "complete"
    job: str
    source: str
    tag: str
    group: str
    entry: str
    job_id: str
    stage: str
    now: int
    output: str
    traceparent: str
    max_age: int
    max_count: int
    lane: str
    route: str  #: :func:`route`
    prefixes: str  #: encode([prefix, ...])
    events: int  #: events cap (Settings.events.cap): MAXLEN of the events stream, 0 = no events

    def keys(self) -> Sequence[Arg]:
        return (self.job, self.source)

    def args(self) -> Sequence[Arg]:
        return (
            self.tag,
            self.group,
            self.entry,
            self.job_id,
            self.stage,
            self.now,
            self.output,
            self.traceparent,
            self.max_age,
            self.max_count,
            self.lane,
            self.route,
            self.prefixes,
            self.events,
        )


@dataclass(slots=True)
class Retry:
    """RETRY: ack and schedule the next attempt.

    KEYS[1] job, KEYS[2] source stream
    ARGV: tag, group, entry, id, stage, now, due, member, error, attempt, events_cap
    """

    script: ClassVar[str] = "retry"
    job: str
    source: str
    tag: str
    group: str
    entry: str
    job_id: str
    stage: str
    now: int
    due: int
    member: str  #: JSON {job, stage, stream, payload, traceparent}, read by PROMOTE
    error: str
    attempt: int
    events: int  #: events cap (Settings.events.cap): MAXLEN of the events stream, 0 = no events

    def keys(self) -> Sequence[Arg]:
        return (self.job, self.source)

    def args(self) -> Sequence[Arg]:
        return (
            self.tag,
            self.group,
            self.entry,
            self.job_id,
            self.stage,
            self.now,
            self.due,
            self.member,
            self.error,
            self.attempt,
            self.events,
        )


@dataclass(slots=True)
class Dead:
    """DEAD: ack and dead-letter an entry.

    KEYS[1] job (may be absent), KEYS[2] source stream, KEYS[3] dlq
    ARGV: tag, group, entry, id, stage, now, final_state, error, max_age, max_count,
          dlq_maxlen, fields_json (["field", "value", ...]: the dead letter), events_cap
    """

    script: ClassVar[str] = "dead"
    job: str
    source: str
    dlq: str
    tag: str
    group: str
    entry: str
    job_id: str
    stage: str
    now: int
    final: str
    error: str
    max_age: int
    max_count: int
    dlq_maxlen: int
    fields: bytes  #: encode_bytes([field, value, ...])
    events: int  #: events cap (Settings.events.cap): MAXLEN of the events stream, 0 = no events

    def keys(self) -> Sequence[Arg]:
        return (self.job, self.source, self.dlq)

    def args(self) -> Sequence[Arg]:
        return (
            self.tag,
            self.group,
            self.entry,
            self.job_id,
            self.stage,
            self.now,
            self.final,
            self.error,
            self.max_age,
            self.max_count,
            self.dlq_maxlen,
            self.fields,
            self.events,
        )


@dataclass(slots=True)
class Release:
    """RELEASE: hand an in-flight entry back (ack + re-add) at shutdown.

    KEYS[1] job, KEYS[2] source stream
    ARGV: group, entry, stage, payload, traceparent
    """

    script: ClassVar[str] = "release"
    job: str
    source: str
    group: str
    entry: str
    stage: str
    payload: bytes | str
    traceparent: str

    def keys(self) -> Sequence[Arg]:
        return (self.job, self.source)

    def args(self) -> Sequence[Arg]:
        return (self.group, self.entry, self.stage, self.payload, self.traceparent)


@dataclass(slots=True)
class Drop:
    """DROP: ack and delete an entry whose job is gone.

    KEYS[1] source stream
    ARGV: group, entry
    """

    script: ClassVar[str] = "drop"
    source: str
    group: str
    entry: str

    def keys(self) -> Sequence[Arg]:
        return (self.source,)

    def args(self) -> Sequence[Arg]:
        return (self.group, self.entry)


@dataclass(slots=True)
class Promote:
    """PROMOTE: move due retries back to their streams.

    KEYS[1] the partition's delayed set
    ARGV: tag, now, limit
    """

    script: ClassVar[str] = "promote"
    delayed: str
    tag: str
    now: int
    limit: int

    def keys(self) -> Sequence[Arg]:
        return (self.delayed,)

    def args(self) -> Sequence[Arg]:
        return (self.tag, self.now, self.limit)


@dataclass(slots=True)
class Replay:
    """REPLAY: put a dead letter back under the same job id.

    KEYS[1] job, KEYS[2] dlq, KEYS[3] target stream
    ARGV: tag, dlq_entry, id, stage, now, payload, traceparent,
          done_json (stages the event says are done), stages_json (every stage), events_cap
    """

    script: ClassVar[str] = "replay"
    job: str
    dlq: str
    target: str
    tag: str
    entry: str
    job_id: str
    stage: str
    now: int
    payload: str
    traceparent: str
    done: str  #: encode([stage, ...])
    stages: str  #: encode([stage, ...])
    events: int  #: events cap (Settings.events.cap): MAXLEN of the events stream, 0 = no events

    def keys(self) -> Sequence[Arg]:
        return (self.job, self.dlq, self.target)

    def args(self) -> Sequence[Arg]:
        return (
            self.tag,
            self.entry,
            self.job_id,
            self.stage,
            self.now,
            self.payload,
            self.traceparent,
            self.done,
            self.stages,
            self.events,
        )


@dataclass(slots=True)
class Cancel:
    """CANCEL: cancel a job, or delete it (leaving a short-lived tombstone).

    KEYS[1] job
    ARGV: tag, id, now, remove ('1' deletes the record), tombstone_ms, events_cap
    """

    script: ClassVar[str] = "cancel"
    job: str
    tag: str
    job_id: str
    now: int
    remove: bool
    tombstone_ms: int
    events: int  #: events cap (Settings.events.cap): MAXLEN of the events stream, 0 = no events

    def keys(self) -> Sequence[Arg]:
        return (self.job,)

    def args(self) -> Sequence[Arg]:
        return (self.tag, self.job_id, self.now, "1" if self.remove else "0", self.tombstone_ms, self.events)


@dataclass(slots=True)
class Sweep:
    """SWEEP: retention while idle.

    KEYS[1] the partition's completed index
    ARGV: tag, now, completed_age, completed_count, failed_age, failed_count,
          events_age (ms; events older than this are trimmed, 0 keeps them)
    """

    script: ClassVar[str] = "sweep"
    completed_index: str
    tag: str
    now: int
    completed_age: int
    completed_count: int
    failed_age: int
    failed_count: int
    events_age: int

    def keys(self) -> Sequence[Arg]:
        return (self.completed_index,)

    def args(self) -> Sequence[Arg]:
        return (
            self.tag,
            self.now,
            self.completed_age,
            self.completed_count,
            self.failed_age,
            self.failed_count,
            self.events_age,
        )


@dataclass(slots=True)
class NotifyFanout:
    """NOTIFY_FANOUT: the deliveries of some events become due; the events are acked.

    KEYS[1] events stream, KEYS[2] notify:due
    ARGV: group, now, deliveries_json (["member", ...]), entries_json (["entry id", ...])
    """

    script: ClassVar[str] = "notify_fanout"
    events: str
    due: str
    group: str
    now: int
    deliveries: str  #: encode([member, ...])
    entries: str  #: encode([entry id, ...])

    def keys(self) -> Sequence[Arg]:
        return (self.events, self.due)

    def args(self) -> Sequence[Arg]:
        return (self.group, self.now, self.deliveries, self.entries)


@dataclass(slots=True)
class NotifyTake:
    """NOTIFY_TAKE: lease up to ``count`` due deliveries for ``lease_ms``.

    KEYS[1] notify:due
    ARGV: now, count, lease_ms
    """

    script: ClassVar[str] = "notify_take"
    due: str
    now: int
    count: int
    lease_ms: int

    def keys(self) -> Sequence[Arg]:
        return (self.due,)

    def args(self) -> Sequence[Arg]:
        return (self.now, self.count, self.lease_ms)


@dataclass(slots=True)
class NotifySettle:
    """NOTIFY_SETTLE: a delivery is done, due again later, or dead-lettered.

    KEYS[1] notify:due, KEYS[2] dlq:notify
    ARGV: member, outcome ('done' | 'retry' | 'dead'), due, next_member,
          dlq_fields_json ({field: value}), dlq_max_len
    """

    script: ClassVar[str] = "notify_settle"
    due_set: str
    dlq: str
    member: str
    outcome: str
    due: int = 0
    next_member: str = ""
    fields: str = "{}"  #: encode({field: value}) of the dead letter
    dlq_max_len: int = 1

    def keys(self) -> Sequence[Arg]:
        return (self.due_set, self.dlq)

    def args(self) -> Sequence[Arg]:
        return (self.member, self.outcome, self.due, self.next_member, self.fields, self.dlq_max_len)


@dataclass(slots=True)
class NotifyReplay:
    """NOTIFY_REPLAY: a dead-lettered delivery is due again, its attempts reset.

    KEYS[1] dlq:notify, KEYS[2] notify:due
    ARGV: entry, member, now
    """

    script: ClassVar[str] = "notify_replay"
    dlq: str
    due: str
    entry: str
    member: str
    now: int

    def keys(self) -> Sequence[Arg]:
        return (self.dlq, self.due)

    def args(self) -> Sequence[Arg]:
        return (self.entry, self.member, self.now)


@dataclass(slots=True)
class LimitTake:
    """LIMIT_TAKE: up to ``want`` starts under a stage's rate and in-flight limits.

    KEYS[1] rate, KEYS[2] in-flight permits
    ARGV: want, interval_ms (0: no rate), burst, max_in_flight (0: none), holder, lease_ms
    """

    script: ClassVar[str] = "limit_take"
    rate: str
    in_flight: str
    want: int
    interval_ms: float
    burst: int
    max_in_flight: int
    holder: str
    lease_ms: int

    def keys(self) -> Sequence[Arg]:
        return (self.rate, self.in_flight)

    def args(self) -> Sequence[Arg]:
        return (self.want, self.interval_ms, self.burst, self.max_in_flight, self.holder, self.lease_ms)


@dataclass(slots=True)
class LimitGive:
    """LIMIT_GIVE: starts taken but not made go back; permits are released.

    KEYS[1] rate, KEYS[2] in-flight permits
    ARGV: unused, interval_ms, permits_json (["permit", ...])
    """

    script: ClassVar[str] = "limit_give"
    rate: str
    in_flight: str
    unused: int
    interval_ms: float
    permits: str  #: encode([permit, ...])

    def keys(self) -> Sequence[Arg]:
        return (self.rate, self.in_flight)

    def args(self) -> Sequence[Arg]:
        return (self.unused, self.interval_ms, self.permits)


@dataclass(slots=True)
class LimitRenew:
    """LIMIT_RENEW: held in-flight permits expire ``lease_ms`` from now; the limits
    this worker enforces are published for ``lease_ms``.

    KEYS[1] in-flight permits, KEYS[2] config
    ARGV: lease_ms, permits_json, max_per_second ('' for none), max_in_flight (0 for none)
    """

    script: ClassVar[str] = "limit_renew"
    in_flight: str
    config: str
    lease_ms: int
    permits: str  #: encode([permit, ...])
    max_per_second: str
    max_in_flight: int

    def keys(self) -> Sequence[Arg]:
        return (self.in_flight, self.config)

    def args(self) -> Sequence[Arg]:
        return (self.lease_ms, self.permits, self.max_per_second, self.max_in_flight)


__all__ = [
    "Arg",
    "Cancel",
    "Complete",
    "Dead",
    "Drop",
    "LimitGive",
    "LimitRenew",
    "LimitTake",
    "NotifyFanout",
    "NotifyReplay",
    "NotifySettle",
    "NotifyTake",
    "Promote",
    "Read",
    "Release",
    "Replay",
    "Retry",
    "ScriptCall",
    "Start",
    "Submit",
    "Sweep",
    "encode",
    "encode_bytes",
    "route",
]
