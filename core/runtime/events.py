"""Reading the lifecycle event streams (written by the Lua scripts; docs/events.md).

Every partition has its own stream, so a reader keeps one position per
partition: a :class:`Cursor`.  Its text form is what the SSE endpoint sends
as an event's ``id`` and takes back as ``Last-Event-ID``: the stream entry id
itself with one partition (the default), the entry ids of every partition
joined by ``,`` with more.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from pydantic import BaseModel, Field

from docgraph.core.runtime.keys import Keys
from docgraph.core.settings import Settings

#: every event type, in the order a job's life can produce them
EVENT_TYPES = (
    "job.submitted",
    "stage.started",
    "stage.retrying",
    "stage.completed",
    "job.completed",
    "job.failed",
    "job.dead",
    "job.replayed",
    "job.cancelled",
    "job.deleted",
)


class LifecycleEvent(BaseModel):
    """One entry of ``{prefix:pN}:events``: plain stream fields, numbers as decimal
    strings; a field without a value is left out (the contract in the AsyncAPI document)."""

    type: str = Field(description="one of: " + ", ".join(EVENT_TYPES))
    job_id: str
    seq: str = Field(description="the job's event number: 1, 2, 3, ... (HINCRBY on the job record)")
    time: str = Field(description="when the change happened, ms since the epoch")
    stage: str | None = Field(None, description="stage.*, job.failed/dead/replayed: the stage")
    attempt: str | None = Field(
        None, description="stage.* and job.failed/dead: the stage's attempt (1-based)"
    )
    error: str | None = Field(
        None, description="stage.retrying, job.failed/dead: first line of the error, <= 200 bytes"
    )
    due: str | None = Field(None, description="stage.retrying: when the retry runs, ms since the epoch")
    priority: str | None = Field(None, description="job.submitted: the lane (high, normal, low)")
    not_before: str | None = Field(
        None, description="job.submitted with a delay: when its first stage may run, ms since the epoch"
    )
    previous: str | None = Field(None, description="job.cancelled/deleted: the state before")
    superseded_by: str | None = Field(
        None, description="job.cancelled by latest-wins: the newer job of the same document"
    )
    entities: str | None = Field(None, description="job.completed: entities written (ingest's output)")
    relations: str | None = Field(
        None,
        description="job.completed: the document's relations (entity pairs sharing a chunk, plugins' edges)",
    )
    mentions: str | None = Field(None, description="job.completed: entity mentions written")
    chunks: str | None = Field(None, description="job.completed: chunks written")
    uri: str | None = Field(None, description="the document's URI")
    sha256: str | None = Field(None, description="the document's sha256")
    name: str | None = Field(None, description="the document's original name")
    traceparent: str | None = Field(None, description="W3C trace context of the job")


INT_FIELDS = frozenset(
    {"seq", "time", "attempt", "due", "not_before", "entities", "relations", "mentions", "chunks"}
)


def _entry_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def check_entry_id(text: str) -> str:
    """``text`` if it is a stream entry id (``<ms>-<seq>`` or ``<ms>``), else ValueError."""
    ms, sep, seq = text.partition("-")
    if not ms.isdigit() or (sep and not seq.isdigit()):
        raise ValueError(f"{text!r} is not a stream entry id (like 1732790000000-0)")
    return text


@dataclass(frozen=True)
class Cursor:
    """The last entry id read in each partition."""

    positions: tuple[str, ...]

    @classmethod
    def parse(cls, text: str, partitions: int) -> Cursor:
        """An event id as sent (one entry id per partition, or one for all), else ValueError."""
        parts = [p.strip() for p in text.split(",")]
        if len(parts) == 1:
            parts = parts * partitions
        if len(parts) != partitions:
            raise ValueError(
                f"{text!r} names {len(parts)} positions; this deployment has {partitions} partitions"
            )
        return cls(tuple(check_entry_id(p) for p in parts))

    def moved(self, partition: int, entry_id: str) -> Cursor:
        positions = list(self.positions)
        positions[partition] = entry_id
        return Cursor(tuple(positions))

    def __str__(self) -> str:
        distinct = set(self.positions)
        return self.positions[0] if len(distinct) == 1 else ",".join(self.positions)


@dataclass(frozen=True)
class Event:
    """One lifecycle event, with the cursor just after it (its SSE id)."""

    partition: int
    entry_id: str
    fields: dict[str, str]
    cursor: Cursor

    @property
    def type(self) -> str:
        return self.fields.get("type", "")

    @property
    def job_id(self) -> str:
        return self.fields.get("job_id", "")

    @property
    def seq(self) -> int:
        return int(self.fields.get("seq", 0))

    def to_dict(self) -> dict[str, Any]:
        """The fields with numbers as numbers, plus where the entry is."""
        data: dict[str, Any] = {"id": self.entry_id, "partition": self.partition}
        for k, v in self.fields.items():
            data[k] = int(v) if k in INT_FIELDS and v.lstrip("-").isdigit() else v
        return data


def matches(event: Event, job: str | None, types: Sequence[str]) -> bool:
    """The filters of ``GET /v1/events`` / ``docgraph events``: a job id; types, where
    ``job.*`` stands for every type of that prefix."""
    if job and event.job_id != job:
        return False
    return type_matches(event.type, types)


def type_matches(kind: str, types: Sequence[str]) -> bool:
    """``kind`` is one of ``types`` (all when empty); ``job.*`` stands for every ``job.`` type."""
    if not types:
        return True
    return any(kind == t or (t.endswith(".*") and kind.startswith(t[:-1])) for t in types)


class EventLog:
    """Reads every partition's events stream (or one job's partition) in entry-id order."""

    def __init__(self, client: aioredis.Redis, settings: Settings) -> None:
        self.client = client
        self.keys = Keys(settings.key_prefix, settings.partitions)

    async def start(self, after: str | None) -> Cursor:
        """A cursor from an event id, ``0`` (everything retained) or ``$``/None (only new events:
        resolved to each stream's last id now, so a resumed reader misses nothing after it)."""
        n = self.keys.partitions
        if after not in (None, "", "$"):
            return Cursor.parse(after, n)
        pipe = self.client.pipeline(transaction=False)
        for part in self.keys.all():
            pipe.xrevrange(part.events, count=1)
        last = await pipe.execute()
        return Cursor(tuple(rows[0][0].decode() if rows else "0-0" for rows in last))

    async def read(
        self,
        cursor: Cursor,
        *,
        job: str | None = None,
        types: Sequence[str] = (),
        count: int = 500,
        block_ms: int | None = None,
    ) -> tuple[builtins.list[Event], Cursor]:
        """Events after ``cursor`` that pass the filters (up to ``count`` entries looked at
        per partition), and the cursor after every entry looked at.  ``block_ms``: wait
        that long for the first entry when there is none (XREAD BLOCK)."""
        parts = [self.keys.for_job(job)] if job else self.keys.all()
        streams: dict[Any, Any] = {p.events: cursor.positions[p.partition] for p in parts}
        which = {p.events: p.partition for p in parts}
        raw: Any = await self.client.xread(streams, count=count, block=block_ms)
        entries: builtins.list[tuple[tuple[int, int], int, str, dict[str, str]]] = []
        for name, rows in raw or ():
            partition = which[name.decode() if isinstance(name, bytes) else name]
            for entry_id, fields in rows:
                eid = entry_id.decode()
                decoded = {k.decode(): v.decode(errors="replace") for k, v in fields.items()}
                entries.append((_entry_key(eid), partition, eid, decoded))
        entries.sort()
        out: builtins.list[Event] = []
        for _, partition, eid, fields in entries:
            cursor = cursor.moved(partition, eid)
            event = Event(partition, eid, fields, cursor)
            if matches(event, job, types):
                out.append(event)
        return out, cursor

    async def history(self, job: str) -> builtins.list[Event]:
        """Every retained event of one job, in order (tests, ``docgraph events --job``)."""
        cursor = Cursor(("0-0",) * self.keys.partitions)
        found: builtins.list[Event] = []
        while True:
            batch, after = await self.read(cursor, job=job)
            found += batch
            if after == cursor:
                return found
            cursor = after


__all__ = [
    "EVENT_TYPES",
    "Cursor",
    "Event",
    "EventLog",
    "LifecycleEvent",
    "check_entry_id",
    "matches",
    "type_matches",
]
