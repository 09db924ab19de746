"""Lifecycle events on a real redis-server: one event per state change, in order,
written by the script that made the change (docs/events.md)."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from redis.exceptions import ResponseError

from docgraph.core.envelope import DocumentRef
from docgraph.core.runtime import calls
from docgraph.core.runtime.connection import Scripts
from docgraph.core.runtime.dlq import DeadLetters
from docgraph.core.runtime.events import Cursor, Event, EventLog
from docgraph.core.runtime.jobs import JobStore
from docgraph.core.runtime.keys import Keys
from tests.runtime.helpers import running_worker, wait_for_states

DOC = DocumentRef(uri="file:///docs/report.pdf", sha256="ab" * 32, name="report.pdf")
DAG = ("extract", "classify", "ner", "ingest")


async def history(client, settings, job_id: str) -> list[Event]:
    return await EventLog(client, settings).history(job_id)


def kinds(events: list[Event]) -> list[tuple[str, str]]:
    return [(e.type, e.fields.get("stage", "")) for e in events]


def assert_sequenced(events: list[Event]) -> None:
    assert [e.seq for e in events] == list(range(1, len(events) + 1))


def stage_run(events: list[Event], stage: str) -> list[tuple[str, str]]:
    """(type, attempt) of one stage's events, in order."""
    return [(e.type, e.fields.get("attempt", "")) for e in events if e.fields.get("stage") == stage]


async def test_a_successful_job_has_one_event_per_state_change_in_order(settings, client):
    store = JobStore(client, settings)
    job_id, _ = await store.submit(DOC, priority="high")
    async with running_worker(settings, client):
        await wait_for_states(store, [job_id], {"completed"})
    job = await store.get(job_id)
    events = await history(client, settings, job_id)
    assert_sequenced(events)
    assert kinds(events)[0] == ("job.submitted", "")
    assert kinds(events)[1:3] == [("stage.started", "extract"), ("stage.completed", "extract")]
    assert kinds(events)[-3:] == [
        ("stage.started", "ingest"),
        ("stage.completed", "ingest"),
        ("job.completed", ""),
    ]
    # the branches interleave; each one starts, then completes, exactly once
    assert Counter(kinds(events)) == Counter(
        [("job.submitted", ""), ("job.completed", "")]
        + [(t, s) for s in DAG for t in ("stage.started", "stage.completed")]
    )
    for stage in DAG:
        assert stage_run(events, stage) == [("stage.started", "1"), ("stage.completed", "1")]
    for e in events:
        assert (e.fields["uri"], e.fields["sha256"], e.fields["name"]) == (DOC.uri, DOC.sha256, DOC.name)
        assert e.fields["traceparent"] == job.traceparent and e.job_id == job_id
    assert events[0].fields["priority"] == "high"
    # ``time`` is the worker's clock when it made the change: parallel branches' events
    # may be a few ms out of order (the stream order and ``seq`` are the order)
    times = [int(e.fields["time"]) for e in events]
    assert times[-1] == job.finished and times[0] == min(times)
    for stage in DAG:
        started, completed = (int(e.fields["time"]) for e in events if e.fields.get("stage") == stage)
        assert started <= completed


async def test_a_retry_then_success(settings, client):
    store = JobStore(client, settings)
    job_id, _ = await store.submit(DOC, metadata={"fail": {"ner": 1}})
    async with running_worker(settings, client):
        await wait_for_states(store, [job_id], {"completed"})
    events = await history(client, settings, job_id)
    assert_sequenced(events)
    assert stage_run(events, "ner") == [
        ("stage.started", "1"),
        ("stage.retrying", "1"),
        ("stage.started", "2"),
        ("stage.completed", "2"),
    ]
    [retrying] = [e for e in events if e.type == "stage.retrying"]
    assert retrying.fields["error"] == "RuntimeError: injected transient failure of ner, call 1"
    assert int(retrying.fields["due"]) >= int(retrying.fields["time"])
    assert events[-1].type == "job.completed"


async def test_a_dead_letter_then_its_replay(settings, client):
    store = JobStore(client, settings)
    job_id, _ = await store.submit(DOC, metadata={"fail": {"ner": 3}})  # attempts: 3
    async with running_worker(settings, client):
        await wait_for_states(store, [job_id], {"dead"})
        dead = await history(client, settings, job_id)
        assert [e.type for e in dead if e.type.startswith("job.")] == ["job.submitted", "job.dead"]
        [letter] = [e for e in dead if e.type == "job.dead"]
        assert (letter.fields["stage"], letter.fields["attempt"]) == ("ner", "3")
        assert letter.fields["error"] == "RuntimeError: injected transient failure of ner, call 3"
        assert [t for t, _ in stage_run(dead, "ner")] == [
            "stage.started",
            "stage.retrying",
            "stage.started",
            "stage.retrying",
            "stage.started",
            "job.dead",
        ]
        assert await DeadLetters(client, settings).replay("ner") == 1
        await wait_for_states(store, [job_id], {"completed"})
    events = await history(client, settings, job_id)
    assert_sequenced(events)
    replayed = next(i for i, e in enumerate(events) if e.type == "job.replayed")
    after = [k for k in kinds(events[replayed:]) if k[1] in ("ner", "")]
    assert after[:3] == [
        ("job.replayed", "ner"),
        ("stage.started", "ner"),
        ("stage.completed", "ner"),
    ]
    assert after[-1] == ("job.completed", "")


async def test_a_permanent_error_fails_the_job(settings, client):
    store = JobStore(client, settings)
    job_id, _ = await store.submit(DOC, metadata={"permanent": {"extract": "file is encrypted"}})
    async with running_worker(settings, client):
        await wait_for_states(store, [job_id], {"failed"})
    events = await history(client, settings, job_id)
    assert kinds(events) == [
        ("job.submitted", ""),
        ("stage.started", "extract"),
        ("job.failed", "extract"),
    ]
    assert events[-1].fields["error"] == "PermanentError: file is encrypted"


async def test_cancel_and_delete(settings, client):
    store = JobStore(client, settings)
    job_id, _ = await store.submit(DOC)
    assert await store.cancel(job_id) == "queued"
    assert await store.cancel(job_id) == "cancelled"  # already finished: no change, no event
    events = await history(client, settings, job_id)
    assert kinds(events) == [("job.submitted", ""), ("job.cancelled", "")]
    assert events[1].fields["previous"] == "queued"
    assert_sequenced(events)
    assert await store.cancel(job_id, remove=True) == "cancelled"
    events = await history(client, settings, job_id)
    assert [e.type for e in events] == ["job.submitted", "job.cancelled", "job.deleted"]
    assert events[-1].fields["name"] == "report.pdf"  # read before the record went


async def test_an_adopted_external_event_is_submitted_then_started(settings, client):
    part = Keys(settings.key_prefix).part(0)
    payload = {"v": 1, "job_id": "ext-1", "stage": "extract", "document": DOC.model_dump(exclude_none=True)}
    await client.xadd(part.stream("extract", "normal"), {"payload": json.dumps(payload)})
    store = JobStore(client, settings)
    async with running_worker(settings, client):
        await wait_for_states(store, ["ext-1"], {"completed"})
    events = await history(client, settings, "ext-1")
    assert kinds(events)[:2] == [("job.submitted", ""), ("stage.started", "extract")]
    assert events[0].fields["uri"] == DOC.uri and events[0].fields["name"] == "report.pdf"
    assert events[-1].type == "job.completed"
    assert_sequenced(events)


async def test_a_failing_lua_step_leaves_no_event(settings, client):
    store = JobStore(client, settings)
    part = Keys(settings.key_prefix).part(0)
    await client.set(part.stream("extract", "normal"), "not a stream")  # XADD of the root fails
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await store.submit(DOC, job_id="j-broken")
    assert not await client.exists(part.job("j-broken"))
    assert await client.xlen(part.events) == 0
    # a hand-off whose routing does not decode changes nothing and reports nothing
    await client.delete(part.stream("extract", "normal"))
    job_id, _ = await store.submit(DOC)
    before = await client.xlen(part.events)
    bad = calls.Complete(
        job=part.job(job_id),
        source=part.stream("extract", "normal"),
        tag=part.tag,
        group="extract",
        entry="",
        job_id=job_id,
        stage="extract",
        now=1,
        output="",
        traceparent="",
        max_age=1000,
        max_count=10,
        lane="normal",
        route="{not json",
        prefixes="[]",
        events=settings.events.cap,
    )
    with pytest.raises(ResponseError):
        await Scripts(client).run(bad)
    assert await client.xlen(part.events) == before == 1
    assert (await store.get(job_id)).stage("extract").status == "queued"


async def test_events_can_be_turned_off(settings, client):
    settings = settings.model_copy(update={"events": settings.events.model_copy(update={"enabled": False})})
    store = JobStore(client, settings)
    job_id, _ = await store.submit(DOC)
    async with running_worker(settings, client):
        await wait_for_states(store, [job_id], {"completed"})
    assert not await client.exists(Keys(settings.key_prefix).part(0).events)
    assert await client.hget(Keys(settings.key_prefix).part(0).job(job_id), "seq") is None


async def test_the_stream_is_capped_by_length(settings, client):
    settings = settings.model_copy(update={"events": settings.events.model_copy(update={"max_len": 10})})
    store = JobStore(client, settings)
    await store.submit_many([DOC] * 500)
    # MAXLEN ~ trims whole nodes (100 entries each by default): at most one node over the cap
    assert await client.xlen(Keys(settings.key_prefix).part(0).events) <= 110


async def test_events_of_every_partition_are_read_with_one_cursor(settings, client):
    settings = settings.model_copy(update={"partitions": 3})
    store = JobStore(client, settings)
    ids = [(await store.submit(DOC))[0] for _ in range(30)]
    log = EventLog(client, settings)
    assert {Keys(settings.key_prefix, 3).partition_of(i) for i in ids} == {0, 1, 2}
    start = Cursor.parse("0", 3)
    first, cursor = await log.read(start, count=3)  # 3 entries per partition
    rest, end = await log.read(cursor)
    assert len(first) == 9 and sorted(e.job_id for e in first + rest) == sorted(ids)
    # resuming from any event's id returns exactly the events after it
    k = len(first) // 2
    resumed, _ = await log.read(Cursor.parse(str(first[k].cursor), 3))
    assert sorted(e.entry_id for e in resumed) == sorted(e.entry_id for e in first[k + 1 :] + rest)
    assert (await log.read(end))[0] == []
    only, _ = await log.read(start, job=ids[0])
    assert [e.job_id for e in only] == [ids[0]]


def test_the_setting_and_the_asyncapi_contract(settings, monkeypatch):
    from docgraph.core.runtime.broker import asyncapi
    from docgraph.core.settings import Settings

    monkeypatch.setenv("DOCGRAPH_EVENTS__ENABLED", "false")
    assert Settings().events.cap == 0
    monkeypatch.setenv("DOCGRAPH_EVENTS__ENABLED", "true")
    monkeypatch.setenv("DOCGRAPH_EVENTS__MAX_LEN", "5000")
    assert Settings().events.cap == 5000
    spec = json.loads(asyncapi(settings).to_json())
    channel = spec["channels"]["events"]
    assert channel["address"] == Keys(settings.key_prefix).part(0).events
    fields = spec["components"]["schemas"]["LifecycleEvent"]["properties"]
    assert {"type", "job_id", "seq", "stage", "attempt", "error", "uri", "sha256", "name"} <= set(fields)
    assert "traceparent" in fields and "entities" in fields and "relations" in fields
