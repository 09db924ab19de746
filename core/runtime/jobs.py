"""Job records: submit, look up, list by state, cancel and delete.

A job's record is one Redis hash holding its overall state, per-stage status,
progress, attempts, errors, timings, outputs and trace context.  Each state
has a sorted-set index (scored by when the job entered it) for paged
listing; finished jobs are removed by age and count like BullMQ's
``removeOnComplete`` / ``removeOnFail``.
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import itertools
import json
import re
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from docgraph.core import telemetry
from docgraph.core.envelope import (
    DocumentRef,
    Envelope,
    display_name,
    new_job_id,
    trace_id_of,
)
from docgraph.core.runtime import calls
from docgraph.core.runtime.connection import Batcher, Scripts
from docgraph.core.runtime.keys import JOB_STATES, Keys, Lane
from docgraph.core.runtime.layout import check_partition_count
from docgraph.core.settings import Settings, check_webhook_url
from docgraph.core.topology import Topology

TOMBSTONE_MS = 24 * 3600 * 1000


def check_callback(settings: Settings, url: str | None) -> None:
    """ValueError unless ``url`` (a job's callback_url) is http(s) and there is a secret to sign with."""
    if not url:
        return
    check_webhook_url(url, "callback_url")
    if settings.notify.callback_secret is None:
        raise ValueError(
            "callback_url needs a signing secret: set DOCGRAPH_NOTIFY__CALLBACK_SECRET here and on the "
            "notify worker (docs/events.md, 'Webhooks')"
        )


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class StageStatus:
    name: str
    status: str = "pending"
    attempts: int = 0
    runs: int = 0
    completions: int = 0
    progress: float = 0.0
    message: str = ""
    error: str | None = None
    started: int | None = None
    finished: int | None = None
    due: int | None = None
    output: dict[str, Any] | None = None


@dataclass
class JobStatus:
    id: str
    state: str
    priority: str
    created: int
    updated: int
    finished: int | None
    traceparent: str | None
    error: str | None
    metadata: dict[str, Any]
    stages: list[StageStatus] = field(default_factory=list)
    document_name: str | None = None  # the record's doc_name, else its URI's last part

    @property
    def label(self) -> str:
        """What a person recognises the job by: ``report.pdf (30971fc8…)``, else its id."""
        name = self.document_name or self.metadata.get("name")
        return f"{name} ({self.id[:8]}…)" if name else self.id[:12]

    @property
    def trace_id(self) -> str | None:
        return trace_id_of(self.traceparent)

    @property
    def progress(self) -> float:
        """Overall progress: the mean of the stages' progress."""
        if not self.stages:
            return 0.0
        return sum(1.0 if s.status in ("done", "skipped") else s.progress for s in self.stages) / len(
            self.stages
        )

    def stage(self, name: str) -> StageStatus | None:
        """The status of one stage of this job (None: not a stage of its topology)."""
        return next((s for s in self.stages if s.name == name), None)

    def output(self, name: str) -> dict[str, Any]:
        """The recorded output of one stage ({} when it has none yet)."""
        st = self.stage(name)
        return (st.output or {}) if st is not None else {}

    def to_dict(self, trace_link_template: str = "") -> dict[str, Any]:
        data = {
            "id": self.id,
            "state": self.state,
            "priority": self.priority,
            "created": self.created,
            "updated": self.updated,
            "finished": self.finished,
            "progress": round(self.progress, 4),
            "error": self.error,
            "metadata": self.metadata,
            "trace_id": self.trace_id,
            "trace_link": (
                trace_link_template.format(trace_id=self.trace_id)
                if trace_link_template and self.trace_id
                else None
            ),
            "stages": [vars(s) for s in self.stages],
        }
        return data


def parse_job(raw: Any, stages: tuple[str, ...]) -> JobStatus:
    h = {k.decode(): v.decode() for k, v in raw.items()}

    def opt_int(key: str) -> int | None:
        return int(float(h[key])) if key in h else None

    stage_status = []
    for name in stages:
        output = h.get(f"{name}:output")
        stage_status.append(
            StageStatus(
                name=name,
                status=h.get(f"{name}:status", "pending"),
                attempts=int(h.get(f"{name}:attempts", 0)),
                runs=int(h.get(f"{name}:runs", 0)),
                completions=int(h.get(f"{name}:completions", 0)),
                progress=float(h.get(f"{name}:progress", 0.0)),
                message=h.get(f"{name}:message", ""),
                error=h.get(f"{name}:error"),
                started=opt_int(f"{name}:started"),
                finished=opt_int(f"{name}:finished"),
                due=opt_int(f"{name}:due"),
                output=json.loads(output) if output else None,
            )
        )
    return JobStatus(
        id=h.get("id", ""),
        state=h.get("state", "unknown"),
        priority=h.get("priority", "normal"),
        created=int(h.get("created", 0)),
        updated=int(h.get("updated", 0)),
        finished=opt_int("finished"),
        traceparent=h.get("traceparent"),
        error=h.get("error"),
        metadata=json.loads(h.get("meta", "{}")),
        stages=stage_status,
        document_name=display_name(h.get("doc_name"), h.get("doc_uri")),
    )


@dataclass
class Page:
    jobs: list[JobStatus]
    next_cursor: str | None


Entries = list[tuple[str, int]]  # (job id, score) from a state index

#: job states in which a stage has the same status (the stage filter of JobStore.list)
STAGE_FILTER_STATES = ("queued", "running", "retrying", "failed", "dead")


def epoch_ms(when: datetime | None) -> int | None:
    """A date-time as epoch milliseconds, the time scale of the state indexes (naive = UTC)."""
    if when is None:
        return None
    return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp() * 1000)


def _stage_status(job: JobStatus, stage: str) -> str | None:
    return next((s.status for s in job.stages if s.name == stage), None)


def document_fields(document: DocumentRef | None, metadata: dict[str, Any] | None) -> dict[str, str]:
    """What the record keeps of the document for its lifecycle events (uri, sha256, name;
    the name falls back to ``metadata["name"]``)."""
    name = (document.name if document else None) or (metadata or {}).get("name")
    return {
        "doc_uri": document.uri if document else "",
        "doc_sha256": (document.sha256 or "") if document else "",
        "doc_name": name if isinstance(name, str) else "",
    }


def _submitted(result: Any) -> tuple[str, bool]:
    """SUBMIT's reply ``{created, id}`` as ``(id, created)``."""
    return bytes(result[1]).decode(), bool(int(result[0]))


#: a job id that needs no JSON escaping and that Envelope accepts (1 to 200 characters)
_PLAIN_ID = re.compile(r"[A-Za-z0-9_.:@+=-]{1,200}")
_MARK_ID, _MARK_TS = "@@docgraph-job-id@@", 1.25  # placeholders in a template's pydantic JSON


class RootPayloads:
    """A root stage's envelope JSON without pydantic per submit.

    The template is ``Envelope.model_dump_json`` of placeholders, once per (root,
    lane); a submit fills in the job id, the time and the document's own JSON: the
    same bytes pydantic writes.  A submit it does not cover (metadata, a job id that
    needs escaping, a DocumentRef subclass) gets the Envelope built as before."""

    def __init__(self) -> None:
        self._templates: dict[tuple[str, Lane], tuple[str, str, str, str] | None] = {}

    def _template(self, root: str, lane: Lane) -> tuple[str, str, str, str] | None:
        key = (root, lane)
        if key not in self._templates:
            text = Envelope(
                job_id=_MARK_ID, stage=root, priority=lane, submitted_at=_MARK_TS
            ).model_dump_json()
            marks = (f'"job_id":"{_MARK_ID}"', f'"submitted_at":{_MARK_TS!r}', '"document":null')
            parts: tuple[str, str, str, str] | None = None
            if all(text.count(m) == 1 for m in marks):
                head, rest = text.split(marks[0])
                mid, rest = rest.split(marks[1])
                mid2, tail = rest.split(marks[2])
                parts = (head + '"job_id":"', '"' + mid + '"submitted_at":', mid2 + '"document":', tail)
            self._templates[key] = parts
        return self._templates[key]

    def payload(
        self,
        root: str,
        lane: Lane,
        job_id: str,
        submitted_at: float,
        document: DocumentRef | None,
        metadata: dict[str, Any] | None,
        doc_json: str | None = None,
    ) -> str:
        """The root's envelope JSON (``doc_json``: the document's, when the caller has it)."""
        template = self._template(root, lane)
        if (
            template is None
            or metadata
            or not (document is None or type(document) is DocumentRef)
            or not _PLAIN_ID.fullmatch(job_id)
        ):
            return Envelope(
                job_id=job_id,
                stage=root,
                priority=lane,
                submitted_at=submitted_at,
                document=document,
                metadata=metadata or {},
            ).model_dump_json()
        if doc_json is None:
            doc_json = document.model_dump_json() if document is not None else "null"
        head, mid, mid2, tail = template
        return f"{head}{job_id}{mid}{submitted_at!r}{mid2}{doc_json}{tail}"


_Batch = list[tuple[telemetry.JobSpan, calls.Submit]]
_SLICE = 100  # submit_many builds a chunk this many calls at a time, yielding between


def _collect(batch: _Batch, results: list[Any], out: list[tuple[str, bool]]) -> None:
    """SUBMIT's replies of one chunk into ``out``; the first error raises."""
    for (span, _), result in zip(batch, results, strict=True):
        if isinstance(result, Exception):
            raise result
        existing, created = _submitted(result)
        span.submitted(created)
        out.append((existing, created))


class JobStore:
    """Submit jobs and read their state. Safe to share within one event loop."""

    def __init__(self, client: aioredis.Redis, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.keys = Keys(settings.key_prefix, settings.partitions)
        self.topology = Topology(settings.topology)
        self.scripts = Scripts(client, settings)
        self.batcher = Batcher(self.scripts)  # concurrent submits share round trips
        self._stages_json = calls.encode(self.topology.stages)
        self._layout_checked = False  # the first submit records or checks the partition count
        self._payloads = RootPayloads()
        self._root_streams: dict[tuple[int, Lane], str] = {}  # (partition, lane) -> the first root's stream

    async def _check_layout(self) -> None:
        if not self._layout_checked:
            await check_partition_count(self.client, self.settings)
            self._layout_checked = True

    async def submit(
        self,
        document: DocumentRef | None,
        *,
        priority: Lane | str = Lane.normal,
        metadata: dict[str, Any] | None = None,
        job_id: str | None = None,
        idempotency_key: str | None = None,
        traceparent: str | None = None,
        not_before: datetime | None = None,
        callback_url: str | None = None,
        latest_wins: bool | None = None,
    ) -> tuple[str, bool]:
        """Create a job and enqueue its root stages in one atomic step (one round trip).

        Returns ``(job_id, created)``; ``created`` is False when the id or the
        idempotency key already named a job (that job's id is returned).
        ``not_before`` (naive = UTC) holds its first stage until then: the job is
        queued, its root stages ``scheduled``, and cancelling it removes them.
        ``callback_url``: the notify worker POSTs the job's events there (docs/events.md);
        ValueError if it is not http(s) or DOCGRAPH_NOTIFY__CALLBACK_SECRET is unset.
        ``latest_wins`` (default: DOCGRAPH_LATEST_WINS): an older job of the same document
        (name, else URI) that has not started is cancelled in the same step.
        """
        check_callback(self.settings, callback_url)
        if not self._layout_checked:
            await self._check_layout()
        lane = priority if isinstance(priority, Lane) else Lane(priority)
        latest = self._latest(document, metadata, latest_wins)
        job_id = self._job_id(job_id, idempotency_key, latest)
        # PRODUCER span `send <stream>`: the root of the job's trace unless a span is
        # active or a traceparent was passed in; its context is what the job record and
        # the root events carry (a random traceparent when tracing is off)
        with telemetry.send_span(
            self._root_stream(job_id, lane), job_id, traceparent, priority=lane.value
        ) as span:
            call = self._submit_call(
                job_id, document, lane, metadata, idempotency_key, span.traceparent, not_before, callback_url
            )
            call.latest = latest
            result: Any = await self.batcher.run(call)
            existing, created = _submitted(result)
            span.submitted(created)
        return existing, created

    async def submit_many(
        self,
        documents: Sequence[DocumentRef | None],
        *,
        priority: Lane | str = Lane.normal,
        metadata: Sequence[dict[str, Any] | None] | None = None,
        idempotency_keys: Sequence[str | None] | None = None,
        chunk: int = 1000,
        not_before: datetime | None = None,
        callback_url: str | None = None,
        latest_wins: bool | None = None,
    ) -> list[tuple[str, bool]]:
        """Submit one job per document, pipelined ``chunk`` at a time.

        ``metadata`` and ``idempotency_keys``, when given, hold one entry per
        document.  Each job is still created atomically (its own script call) and
        gets its own trace; what is shared is the round trip.  Returns
        ``(job_id, created)`` per document, in order.  A Redis error raises after
        the chunks before it landed.  ``not_before``, ``callback_url``, ``latest_wins``:
        as in :meth:`submit`, for all (under latest-wins, the last of several versions of
        one document in the batch wins).
        """
        check_callback(self.settings, callback_url)
        if not self._layout_checked:
            await self._check_layout()
        lane = priority if isinstance(priority, Lane) else Lane(priority)
        n = len(documents)
        keys = list(idempotency_keys) if idempotency_keys is not None else [None] * n
        metas = list(metadata) if metadata is not None else [None] * n
        if len(keys) != n or len(metas) != n:
            raise ValueError("metadata and idempotency_keys need one entry per document")
        out: list[tuple[str, bool]] = []
        # With tracing off the spans are stand-ins (no context to nest), so the next
        # chunk is built while this one runs in Redis, a slice at a time with a turn of
        # the event loop between (the in-flight pipeline is sent and read meanwhile); it
        # is sent only after this one's replies are in: an error stops all after it.
        overlap = not telemetry.enabled()
        in_flight: tuple[_Batch, asyncio.Task[list[Any]]] | None = None
        try:
            for start in range(0, n, chunk):
                end = min(n, start + chunk)
                with ExitStack() as stack:
                    batch: _Batch = []
                    for lo in range(start, end, _SLICE):
                        hi = min(end, lo + _SLICE)
                        batch += self._submit_batch(
                            stack,
                            lane,
                            documents[lo:hi],
                            keys[lo:hi],
                            metas[lo:hi],
                            not_before,
                            callback_url,
                            latest_wins,
                        )
                        if in_flight is not None:
                            await asyncio.sleep(0)
                    if not overlap:
                        _collect(batch, await self.scripts.call_many([call for _, call in batch]), out)
                        continue
                if in_flight is not None:
                    done, in_flight = in_flight, None
                    _collect(done[0], await done[1], out)
                in_flight = (batch, asyncio.create_task(self.scripts.call_many([call for _, call in batch])))
                await asyncio.sleep(0)
            if in_flight is not None:
                done, in_flight = in_flight, None
                _collect(done[0], await done[1], out)
        finally:
            if in_flight is not None:  # cancelled meanwhile: that chunk's replies are not waited for
                in_flight[1].cancel()
        return out

    def _submit_batch(
        self,
        stack: ExitStack,
        lane: Lane,
        documents: Sequence[DocumentRef | None],
        keys: Sequence[str | None],
        metas: Sequence[dict[str, Any] | None],
        not_before: datetime | None,
        callback_url: str | None,
        latest_wins: bool | None,
    ) -> _Batch:
        """One chunk of submit_many's calls, each with its send span entered on ``stack``."""
        batch: _Batch = []
        doc_json: dict[int, str] = {}  # a document object repeated in the chunk is encoded once
        for document, idem, meta in zip(documents, keys, metas, strict=True):
            latest = self._latest(document, meta, latest_wins)
            job_id = self._job_id(None, idem, latest)
            span = stack.enter_context(
                telemetry.send_span(self._root_stream(job_id, lane), job_id, priority=lane.value)
            )
            encoded = None
            if document is not None and type(document) is DocumentRef:
                encoded = doc_json.get(id(document))
                if encoded is None:
                    encoded = doc_json[id(document)] = document.model_dump_json()
            call = self._submit_call(
                job_id, document, lane, meta, idem, span.traceparent, not_before, callback_url, encoded
            )
            call.latest = latest
            batch.append((span, call))
        return batch

    def _latest(self, document: DocumentRef | None, metadata: dict[str, Any] | None, on: bool | None) -> str:
        """The document's latest-wins identity (its name, else its URI), or '' when off."""
        if not (self.settings.latest_wins if on is None else on):
            return ""
        fields = document_fields(document, metadata)
        return fields["doc_name"] or fields["doc_uri"]

    def _job_id(self, job_id: str | None, idempotency_key: str | None, latest: str = "") -> str:
        """The job's id; under latest-wins one in the document's partition, so SUBMIT
        finds (and may cancel) the document's older job in its own slot."""
        want = self.keys.partition_of(latest) if latest else None
        if job_id:
            if want is not None and self.keys.partition_of(job_id) != want:
                raise ValueError("latest-wins chooses the job id itself: submit without job_id")
            return job_id
        for n in itertools.count():
            if idempotency_key:
                # same key -> same id -> same partition, on any number of partitions
                suffix = f":{n}" if n else ""
                candidate = hashlib.sha256(f"{idempotency_key}{suffix}".encode()).hexdigest()[:32]
            else:
                candidate = new_job_id()
            if want is None or self.keys.partition_of(candidate) == want:
                return candidate
        raise AssertionError("unreachable")

    def _root_stream(self, job_id: str, lane: Lane) -> str:
        key = (self.keys.partition_of(job_id), lane)
        stream = self._root_streams.get(key)
        if stream is None:
            stream = self._root_streams[key] = self.keys.part(key[0]).stream(self.topology.roots[0], lane)
        return stream

    def _submit_call(
        self,
        job_id: str,
        document: DocumentRef | None,
        lane: Lane,
        metadata: dict[str, Any] | None,
        idempotency_key: str | None,
        traceparent: str,
        not_before: datetime | None = None,
        callback_url: str | None = None,
        doc_json: str | None = None,
    ) -> calls.Submit:
        """The SUBMIT call (``doc_json``: the document's JSON, when the caller has it)."""
        part = self.keys.for_job(job_id)
        now = now_ms()
        at = now / 1000
        payload = self._payloads.payload
        roots = [
            (root, payload(root, lane, job_id, at, document, metadata, doc_json))
            for root in self.topology.roots
        ]
        return calls.Submit(
            job=part.job(job_id),
            tag=part.tag,
            job_id=job_id,
            now=now,
            traceparent=traceparent,
            lane=lane.value,
            idem=idempotency_key or "",
            meta=json.dumps(metadata) if metadata else "{}",
            stages=self._stages_json,
            roots=calls.encode(roots),
            events=self.settings.events.cap,
            **document_fields(document, metadata),
            not_before=epoch_ms(not_before) or 0,
            callback=callback_url or "",
        )

    async def get(self, job_id: str) -> JobStatus | None:
        raw: Any = await self.client.hgetall(self.keys.for_job(job_id).job(job_id))
        return parse_job(raw, self.topology.stages) if raw.get(b"id") else None

    async def get_many(self, job_ids: list[str]) -> list[JobStatus | None]:
        pipe = self.client.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hgetall(self.keys.for_job(job_id).job(job_id))
        raws = await pipe.execute()
        return [parse_job(r, self.topology.stages) if r.get(b"id") else None for r in raws]

    async def cancel(self, job_id: str, *, remove: bool = False) -> str | None:
        """Cancel a job (queued and delayed work never runs; a running stage
        finishes and nothing after it runs).  ``remove`` also deletes the record.
        Returns the state it was in, or None when there is no such job."""
        part = self.keys.for_job(job_id)
        prev = await self.scripts.run(
            calls.Cancel(
                job=part.job(job_id),
                tag=part.tag,
                job_id=job_id,
                now=now_ms(),
                remove=remove,
                tombstone_ms=TOMBSTONE_MS,
                events=self.settings.events.cap,
            )
        )
        return prev.decode() if prev else None

    async def count_by_state(self) -> dict[str, int]:
        pipe = self.client.pipeline(transaction=False)
        for part in self.keys.all():
            for state in JOB_STATES:
                pipe.zcard(part.state_index(state))
        counts = dict.fromkeys(JOB_STATES, 0)
        values = await pipe.execute()
        for i, value in enumerate(values):
            counts[JOB_STATES[i % len(JOB_STATES)]] += int(value)
        return counts

    async def list(
        self,
        state: str,
        *,
        limit: int = 50,
        cursor: str | None = None,
        stage: str | None = None,
        since: int | None = None,
        until: int | None = None,
    ) -> Page:
        """Jobs in ``state``, newest first, paged by an opaque cursor.

        The cursor is ``<score>:<job id>`` of the last job looked at; the next
        page starts strictly after it in (score desc, id desc) order, so a job
        is never shown twice and no job that stays in the state is skipped.
        ``since``/``until`` (epoch ms, inclusive) bound the time the job entered
        the state.  ``stage`` keeps jobs whose stage of that name is itself in
        ``state`` (queued, running, retrying, failed or dead there); such a
        page may hold fewer than ``limit`` jobs while ``next_cursor`` is set.
        """
        if state not in JOB_STATES:
            raise ValueError(f"unknown state {state!r}; use one of {', '.join(JOB_STATES)}")
        if stage is not None:
            if state not in STAGE_FILTER_STATES:
                raise ValueError(
                    f"the stage filter applies to {', '.join(STAGE_FILTER_STATES)} jobs, not {state}"
                )
            if stage not in self.topology.stages:
                raise ValueError(f"no stage {stage!r}; the stages are {', '.join(self.topology.stages)}")
        bound: tuple[int, str] | None = None
        if cursor:
            score_s, _, after_id = cursor.partition(":")
            bound = (int(score_s), after_id)
        jobs: list[JobStatus] = []
        budget = limit * 10  # entries looked at per call when filtering by stage
        while True:
            batch = await self._scan(state, limit, bound, since, until)
            found = await self.get_many([e[0] for e in batch])
            for (job_id, score), job in zip(batch, found, strict=True):
                bound = (score, job_id)
                budget -= 1
                if job is not None and (stage is None or _stage_status(job, stage) == state):
                    jobs.append(job)
                    if len(jobs) == limit:
                        return Page(jobs=jobs, next_cursor=f"{score}:{job_id}")
            if len(batch) < limit:
                return Page(jobs=jobs, next_cursor=None)
            if budget <= 0:
                assert bound is not None
                return Page(jobs=jobs, next_cursor=f"{bound[0]}:{bound[1]}")

    async def search(self, text: str, *, limit: int = 50, scan: int = 2000) -> builtins.list[JobStatus]:
        """Jobs whose id, document name, URI or sha256 contains ``text`` (case-insensitive),
        newest first, among the ``scan`` most recent jobs of each state in each partition:
        a bounded look (two round trips), not an index."""
        needle = text.strip().lower()
        if not needle:
            return []
        pipe = self.client.pipeline(transaction=False)
        for part in self.keys.all():
            for state in JOB_STATES:
                pipe.zrevrange(part.state_index(state), 0, scan - 1, withscores=True)
        found: Any = await pipe.execute()
        recent = sorted(((score, member.decode()) for rows in found for member, score in rows), reverse=True)[
            : scan * self.keys.partitions
        ]
        pipe = self.client.pipeline(transaction=False)
        for _, job_id in recent:
            pipe.hmget(self.keys.for_job(job_id).job(job_id), "doc_name", "doc_uri", "doc_sha256")
        fields: Any = await pipe.execute()
        hits = [
            job_id
            for (_, job_id), values in zip(recent, fields, strict=True)
            if needle in job_id.lower()
            or any(v and needle in v.decode(errors="replace").lower() for v in values)
        ][:limit]
        return [j for j in await self.get_many(hits) if j]

    async def _scan(
        self, state: str, limit: int, bound: tuple[int, str] | None, since: int | None, until: int | None
    ) -> Entries:
        """The next ``limit`` (id, score) entries of every partition's state index, merged."""
        low = since if since is not None else "-inf"
        entries: Entries = []
        for part in self.keys.all():
            index = part.state_index(state)
            raw: Any
            if bound is None:
                high = until if until is not None else "+inf"
                raw = await self.client.zrevrangebyscore(
                    index, high, low, start=0, num=limit, withscores=True
                )
            elif since is not None and bound[0] < since:
                raw = []
            else:
                # the cursor's own millisecond (ids below the cursor's), then older ones
                same: Any = await self.client.zrevrangebyscore(index, bound[0], bound[0], withscores=True)
                raw = [(m, sc) for m, sc in same if m.decode() < bound[1]][:limit]
                raw += await self.client.zrevrangebyscore(
                    index, f"({bound[0]}", low, start=0, num=limit, withscores=True
                )
            entries += [(m.decode(), int(sc)) for m, sc in raw]
        entries.sort(key=lambda e: (e[1], e[0]), reverse=True)
        return entries[:limit]
