"""One round trip per Lua script: build its typed call (core/runtime/calls.py),
run it against a real redis-server, check the Redis state it produced."""

from __future__ import annotations

import dataclasses
import json

import pytest

from docgraph.core.runtime import calls
from docgraph.core.runtime.connection import Batcher, Scripts
from docgraph.core.runtime.keys import Keys, PartitionKeys

STAGES = ("a", "b", "c", "d")  # a -> (b || c) -> d
PREDS = {"a": (), "b": ("a",), "c": ("a",), "d": ("b", "c")}
TP = "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01"
STAGES_JSON = calls.encode(STAGES)
EV = 1000  # the events cap: events on
DOC = {"doc_uri": "s3://b/a.pdf", "doc_sha256": "ab" * 32, "doc_name": "a.pdf"}
NO_DOC = {"doc_uri": "", "doc_sha256": "", "doc_name": ""}


@pytest.fixture
def part(settings) -> PartitionKeys:
    return Keys(settings.key_prefix).part(0)


@pytest.fixture
def scripts(client) -> Scripts:
    return Scripts(client)


def h(raw: dict) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items()}


async def entries(client, stream: str) -> list[tuple[str, dict[str, str]]]:
    return [(i.decode(), h(f)) for i, f in await client.xrange(stream)]


async def event_types(client, part: PartitionKeys) -> list[str]:
    return [f["type"] for _, f in await entries(client, part.events)]


def submit_call(part: PartitionKeys, job_id: str, *, now: int = 1000, idem: str = "") -> calls.Submit:
    payload = json.dumps({"job_id": job_id, "stage": "a", "attempt": 1, "note": "zürich ✓"})
    return calls.Submit(
        job=part.job(job_id),
        tag=part.tag,
        job_id=job_id,
        now=now,
        traceparent=TP,
        lane="normal",
        idem=idem,
        meta='{"k":"v"}',
        stages=STAGES_JSON,
        roots=calls.encode([("a", payload)]),
        events=EV,
        **DOC,
    )


async def start_consumer(client, part: PartitionKeys, stage: str, lane: str = "normal") -> str:
    """Create the group and read one entry as consumer w1; returns its id."""
    stream = part.stream(stage, lane)
    await client.xgroup_create(stream, stage, id="0", mkstream=True)
    got = await client.xreadgroup(stage, "w1", {stream: ">"}, count=1)
    return got[0][1][0][0].decode()


def complete_call(
    part: PartitionKeys, job_id: str, stage: str, entry: str, *, skip: tuple[str, ...] = ()
) -> calls.Complete:
    cands = [s for s in STAGES if stage in PREDS[s] and s not in skip]
    prefixes = [json.dumps({"job_id": job_id, "stage": c, "attempt": 1})[:-1] for c in cands]
    return calls.Complete(
        job=part.job(job_id),
        source=part.stream(stage, "normal"),
        tag=part.tag,
        group=stage,
        entry=entry,
        job_id=job_id,
        stage=stage,
        now=2000,
        output=calls.encode({stage: 1}),
        traceparent=TP,
        max_age=3_600_000,
        max_count=1000,
        lane="normal",
        route=calls.route(STAGES, skip, [(c, PREDS[c]) for c in cands]),
        prefixes=calls.encode(prefixes),
        events=EV,
    )


async def test_submit_creates_record_index_and_root_entry(client, scripts, part):
    created = await scripts.run(submit_call(part, "j1", idem="key-1"))
    assert [int(created[0]), created[1]] == [1, b"j1"]
    job = h(await client.hgetall(part.job("j1")))
    assert job["state"] == "queued" and job["priority"] == "normal" and job["meta"] == '{"k":"v"}'
    assert job["a:status"] == "queued" and job["a:enq"] == "1"
    assert [job[f"{s}:status"] for s in "bcd"] == ["pending"] * 3
    assert await client.zscore(part.state_index("queued"), "j1") == 1000
    assert await client.hget(part.idempotency, "key-1") == b"j1"
    (entry,) = await entries(client, part.stream("a", "normal"))
    assert json.loads(entry[1]["payload"])["note"] == "zürich ✓"  # non-ASCII kept as is
    assert entry[1]["traceparent"] == TP
    # same idempotency key: the existing job, nothing enqueued
    again = await scripts.run(submit_call(part, "j2", idem="key-1"))
    assert [int(again[0]), again[1]] == [0, b"j1"]
    assert len(await entries(client, part.stream("a", "normal"))) == 1


async def test_start_records_the_run_and_adopts_external_events(client, scripts, part):
    await scripts.run(submit_call(part, "j1"))
    start = calls.Start(
        job=part.job("j1"),
        tag=part.tag,
        job_id="j1",
        stage="a",
        now=1500,
        attempt=1,
        lane="normal",
        traceparent=TP,
        adopt=False,
        stages=STAGES_JSON,
        events=EV,
        **NO_DOC,
    )
    assert await scripts.run(start) == b"queued"
    job = h(await client.hgetall(part.job("j1")))
    assert (job["state"], job["a:status"], job["a:runs"], job["a:attempts"]) == (
        "running",
        "running",
        "1",
        "1",
    )
    assert await client.zscore(part.state_index("running"), "j1") == 1500
    # no record and no adoption: nothing happens
    assert await scripts.run(dataclasses.replace(start, job=part.job("x"), job_id="x")) is None
    assert not await client.exists(part.job("x"))
    # adoption creates the record from the stage list
    adopt = dataclasses.replace(start, job=part.job("x"), job_id="x", adopt=True)
    assert await scripts.run(adopt) == b"queued"
    job = h(await client.hgetall(part.job("x")))
    assert job["state"] == "running" and job["a:enq"] == "1" and job["a:status"] == "running"
    assert [job[f"{s}:status"] for s in "bcd"] == ["pending"] * 3


async def test_complete_acks_records_and_enqueues_a_join_once(client, scripts, part):
    await scripts.run(submit_call(part, "j1"))
    entry = await start_consumer(client, part, "a")
    assert await scripts.run(complete_call(part, "j1", "a", entry)) == b"ok"
    assert await client.xlen(part.stream("a", "normal")) == 0  # acked and deleted
    job = h(await client.hgetall(part.job("j1")))
    assert (job["a:status"], job["a:output"], job["a:completions"]) == ("done", '{"a":1}', "1")
    for branch in "bc":
        (e,) = await entries(client, part.stream(branch, "normal"))
        assert json.loads(e[1]["payload"]) == {
            "job_id": "j1",
            "stage": branch,
            "attempt": 1,
            "outputs": {"a": {"a": 1}},
        }
        assert job[f"{branch}:status"] == "queued"
    # the same entry again: stale, nothing changes
    assert await scripts.run(complete_call(part, "j1", "a", entry)) == b"stale"
    b_entry = await start_consumer(client, part, "b")
    c_entry = await start_consumer(client, part, "c")
    assert await scripts.run(complete_call(part, "j1", "b", b_entry)) == b"ok"
    assert await client.xlen(part.stream("d", "normal")) == 0  # the join waits for c
    assert await scripts.run(complete_call(part, "j1", "c", c_entry)) == b"ok"
    (joined,) = await entries(client, part.stream("d", "normal"))  # exactly once
    assert json.loads(joined[1]["payload"])["outputs"] == {"a": {"a": 1}, "b": {"b": 1}, "c": {"c": 1}}
    assert joined[1]["links"] == TP  # the other branch's traceparent
    d_entry = await start_consumer(client, part, "d")
    ingest_output = '{"document_id":"x","chunks":2,"entities":3,"mentions":7,"contributed_edges":4}'
    done = dataclasses.replace(complete_call(part, "j1", "d", d_entry), output=ingest_output)
    assert await scripts.run(done) == b"completed"
    assert await event_types(client, part) == ["job.submitted"] + ["stage.completed"] * 4 + ["job.completed"]
    (_, last), *_ = (await entries(client, part.events))[-1:]
    assert (last["entities"], last["relations"], last["mentions"], last["chunks"]) == ("3", "4", "7", "2")
    assert (last["seq"], last["uri"], last["name"], last["traceparent"]) == ("6", DOC["doc_uri"], "a.pdf", TP)
    job = h(await client.hgetall(part.job("j1")))
    assert job["state"] == "completed" and job["finished"] == "2000"
    assert not any(k.endswith((":enq", ":tp")) for k in job)
    assert await client.zscore(part.state_index("completed"), "j1") == 2000


async def test_complete_marks_skipped_stages(client, scripts, part):
    await scripts.run(submit_call(part, "j1"))
    entry = await start_consumer(client, part, "a")
    assert await scripts.run(complete_call(part, "j1", "a", entry, skip=("b",))) == b"ok"
    job = h(await client.hgetall(part.job("j1")))
    assert job["b:status"] == "skipped" and job["c:status"] == "queued"
    assert await client.xlen(part.stream("b", "normal")) == 0
    assert await client.xlen(part.stream("c", "normal")) == 1


async def test_retry_acks_and_schedules(client, scripts, part):
    await scripts.run(submit_call(part, "j1"))
    entry = await start_consumer(client, part, "a")
    member = json.dumps({"job": "j1", "stage": "a", "stream": part.stream("a", "normal"), "payload": "{}"})
    retry = calls.Retry(
        job=part.job("j1"),
        source=part.stream("a", "normal"),
        tag=part.tag,
        group="a",
        entry=entry,
        job_id="j1",
        stage="a",
        now=1500,
        due=9000,
        member=member,
        error="ValueError: boom\nsecond line",
        attempt=1,
        events=EV,
    )
    assert await scripts.run(retry) == b"ok"
    assert await client.xlen(part.stream("a", "normal")) == 0
    assert await client.zscore(part.delayed, member) == 9000
    job = h(await client.hgetall(part.job("j1")))
    assert (job["state"], job["a:status"], job["a:error"], job["a:due"]) == (
        "retrying",
        "retrying",
        "ValueError: boom\nsecond line",
        "9000",
    )
    assert job["a:delayed"] == member
    (_, event), *_ = (await entries(client, part.events))[-1:]
    assert (event["type"], event["attempt"], event["error"], event["due"]) == (
        "stage.retrying",
        "1",
        "ValueError: boom",  # the first line only
        "9000",
    )


async def test_dead_letters_the_entry_with_its_fields_byte_for_byte(client, scripts, part):
    await scripts.run(submit_call(part, "j1"))
    entry = await start_consumer(client, part, "a")
    payload = b'{"job_id":"j1","x":"\xc3'  # cut inside a UTF-8 sequence, like a truncated payload
    dead = calls.Dead(
        job=part.job("j1"),
        source=part.stream("a", "normal"),
        dlq=part.dlq("a"),
        tag=part.tag,
        group="a",
        entry=entry,
        job_id="j1",
        stage="a",
        now=1700,
        final="failed",
        error="PermanentError: no",
        max_age=86_400_000,
        max_count=1000,
        dlq_maxlen=0,
        fields=calls.encode_bytes(["payload", payload, "nul", b"a\x00b", "attempts", 2, "error", "é ✓"]),
        events=EV,
    )
    assert await scripts.run(dead) == b"ok"
    assert await client.xlen(part.stream("a", "normal")) == 0
    ((_, fields),) = await client.xrange(part.dlq("a"))
    assert fields == {b"payload": payload, b"nul": b"a\x00b", b"attempts": b"2", b"error": "é ✓".encode()}
    job = h(await client.hgetall(part.job("j1")))
    assert (job["state"], job["a:status"], job["error"]) == ("failed", "failed", "PermanentError: no")
    assert await client.zscore(part.state_index("failed"), "j1") == 1700


async def test_release_hands_the_entry_back(client, scripts, part):
    await scripts.run(submit_call(part, "j1"))
    entry = await start_consumer(client, part, "a")
    release = calls.Release(
        job=part.job("j1"),
        source=part.stream("a", "normal"),
        group="a",
        entry=entry,
        stage="a",
        payload=b'{"job_id":"j1"}',
        traceparent=TP,
    )
    assert await scripts.run(release) == 1
    ((new_id, fields),) = await entries(client, part.stream("a", "normal"))
    assert new_id != entry and fields == {"payload": '{"job_id":"j1"}', "traceparent": TP}
    assert (await client.xpending(part.stream("a", "normal"), "a"))["pending"] == 0
    assert await client.hget(part.job("j1"), "a:status") == b"queued"
    assert await scripts.run(release) == 0  # already handed back


async def test_drop_acks_and_deletes(client, scripts, part):
    await scripts.run(submit_call(part, "j1"))
    entry = await start_consumer(client, part, "a")
    drop = calls.Drop(source=part.stream("a", "normal"), group="a", entry=entry)
    assert await scripts.run(drop) == 1
    assert await client.xlen(part.stream("a", "normal")) == 0
    assert await scripts.run(drop) == 0


async def test_promote_moves_due_retries(client, scripts, part):
    await scripts.run(submit_call(part, "j1"))
    stream = part.stream("b", "normal")
    due = json.dumps({"job": "j1", "stage": "b", "stream": stream, "payload": "P", "traceparent": TP})
    later = json.dumps({"job": "j1", "stage": "c", "stream": stream, "payload": "Q", "traceparent": TP})
    await client.zadd(part.delayed, {due: 100, later: 10_000})
    await client.hset(part.job("j1"), "b:delayed", due)
    moved = await scripts.run(calls.Promote(delayed=part.delayed, tag=part.tag, now=5000, limit=10))
    assert moved == 1
    assert await client.zrange(part.delayed, 0, -1) == [later.encode()]
    ((_, fields),) = await entries(client, stream)
    assert fields == {"payload": "P", "traceparent": TP}
    job = h(await client.hgetall(part.job("j1")))
    assert job["b:status"] == "queued" and "b:delayed" not in job


async def test_replay_rebuilds_an_expired_record(client, scripts, part):
    await client.xadd(part.dlq("c"), {"payload": "x"})
    ((entry, _),) = await client.xrange(part.dlq("c"))
    replay = calls.Replay(
        job=part.job("j9"),
        dlq=part.dlq("c"),
        target=part.stream("c", "normal"),
        tag=part.tag,
        entry=entry.decode(),
        job_id="j9",
        stage="c",
        now=3000,
        payload='{"job_id":"j9","stage":"c","attempt":1}',
        traceparent=TP,
        done=calls.encode(["a", "b"]),
        stages=STAGES_JSON,
        events=EV,
    )
    assert await scripts.run(replay) == 1
    assert await client.xlen(part.dlq("c")) == 0
    ((_, fields),) = await entries(client, part.stream("c", "normal"))
    assert fields == {"payload": '{"job_id":"j9","stage":"c","attempt":1}', "traceparent": TP}
    job = h(await client.hgetall(part.job("j9")))
    assert [job[f"{s}:status"] for s in STAGES] == ["done", "done", "queued", "pending"]
    assert job["a:enq"] == job["b:enq"] == job["c:enq"] == "1" and "d:enq" not in job
    assert job["state"] == "queued" and job["c:attempts"] == "0"
    assert await scripts.run(replay) == 0  # the letter is gone


async def test_cancel_and_delete(client, scripts, part):
    await scripts.run(submit_call(part, "j1"))
    await client.zadd(part.delayed, {"m1": 5})
    await client.hset(part.job("j1"), "b:delayed", "m1")
    cancel = calls.Cancel(
        job=part.job("j1"), tag=part.tag, job_id="j1", now=4000, remove=False, tombstone_ms=60_000, events=EV
    )
    assert await scripts.run(cancel) == b"queued"
    assert await client.zcard(part.delayed) == 0
    assert await client.hget(part.job("j1"), "state") == b"cancelled"
    assert await client.zscore(part.state_index("cancelled"), "j1") == 4000
    delete = calls.Cancel(
        job=part.job("j1"), tag=part.tag, job_id="j1", now=4100, remove=True, tombstone_ms=60_000, events=EV
    )
    assert await scripts.run(delete) == b"cancelled"
    assert h(await client.hgetall(part.job("j1"))) == {"state": "deleted"}
    assert 0 < await client.pttl(part.job("j1")) <= 60_000
    assert await client.zscore(part.state_index("cancelled"), "j1") is None
    assert await scripts.run(delete) is None


async def test_sweep_trims_by_age_and_count(client, scripts, part):
    for i in range(5):
        await client.hset(part.job(f"c{i}"), mapping={"id": f"c{i}", "state": "completed"})
        await client.zadd(part.state_index("completed"), {f"c{i}": 1000 + i})
        await client.hset(part.job(f"f{i}"), mapping={"id": f"f{i}", "state": "failed"})
        await client.zadd(part.state_index("failed"), {f"f{i}": 1000 + i})
    sweep = calls.Sweep(
        completed_index=part.state_index("completed"),
        tag=part.tag,
        now=2000,
        completed_age=10_000,
        completed_count=2,
        failed_age=998,  # older than 1002 goes
        failed_count=100,
        events_age=1500,  # events before 500 ms go
    )
    for ms in (100, 400, 600):
        await client.xadd(part.events, {"type": "x"}, id=f"{ms}-0")
    assert await scripts.run(sweep) == 1
    assert await client.zrange(part.state_index("completed"), 0, -1) == [b"c3", b"c4"]
    assert await client.zrange(part.state_index("failed"), 0, -1) == [b"f3", b"f4"]
    assert not await client.exists(part.job("c0"), part.job("f2"))
    assert [i for i, _ in await client.xrange(part.events)] == [b"600-0"]


async def test_read_takes_higher_lanes_first_and_batches(client, scripts, part):
    lanes = [part.stream("a", lane) for lane in ("high", "normal", "low")]
    for stream in lanes:
        await client.xgroup_create(stream, "a", id="0", mkstream=True)
    await client.xadd(lanes[2], {"n": "low"})
    await client.xadd(lanes[1], {"n": "normal"})
    await client.xadd(lanes[0], {"n": "high"})
    batcher = Batcher(scripts)

    def read(count: int) -> calls.Read:
        return calls.Read(paused=part.paused, streams=lanes, group="a", consumer="w1", count=count, stage="a")

    flat = await batcher.run(read(2))
    got = [(flat[i].decode(), e[1][1].decode()) for i in range(0, len(flat), 2) for e in flat[i + 1]]
    assert got == [(lanes[0], "high"), (lanes[1], "normal")]
    # a paused stage reads nothing, and the entry waits for the resume
    await client.hset(part.paused, "a", 1)
    assert await batcher.run(read(5)) == b"paused"
    await client.hdel(part.paused, "a")
    flat = await batcher.run(read(5))
    assert [e[1][1] for e in flat[1]] == [b"low"]
    await batcher.aclose()


async def test_a_late_start_of_a_stage_already_handed_off_changes_nothing(client, scripts, part):
    """A worker cut off from Redis read an entry of ``b``; another reclaimed it and
    handed it off; then the cut-off worker's ``start`` arrives (sent before or after
    the link came back).  It must not put ``b`` back to running: the join would wait
    for it forever and the job would never complete."""
    await scripts.run(submit_call(part, "j1"))
    a_entry = await start_consumer(client, part, "a")
    assert await scripts.run(complete_call(part, "j1", "a", a_entry)) == b"ok"
    b_entry = await start_consumer(client, part, "b")  # delivered to w1, which is then cut off
    c_entry = await start_consumer(client, part, "c")
    late = calls.Start(
        job=part.job("j1"), tag=part.tag, job_id="j1", stage="b", now=1500, attempt=1,
        lane="normal", traceparent=TP, adopt=False, stages=STAGES_JSON, events=EV, **NO_DOC,
    )  # fmt: skip
    await client.xclaim(part.stream("b", "normal"), "b", "w2", min_idle_time=0, message_ids=[b_entry])
    assert (
        await scripts.run(dataclasses.replace(late, attempt=2)) == b"running"
    )  # w2's own start (a is done: the job runs)
    assert await scripts.run(complete_call(part, "j1", "b", b_entry)) == b"ok"  # w2's hand-off
    before = h(await client.hgetall(part.job("j1")))
    assert await scripts.run(late) == b"done"  # w1's start, late: refused
    after = h(await client.hgetall(part.job("j1")))
    assert after == before  # b stays done, no run counted, no event
    assert await scripts.run(complete_call(part, "j1", "b", b_entry)) == b"stale"  # w1's hand-off
    assert await scripts.run(complete_call(part, "j1", "c", c_entry)) == b"ok"
    d_entry = await start_consumer(client, part, "d")  # the join was enqueued
    assert await scripts.run(complete_call(part, "j1", "d", d_entry)) == b"completed"
