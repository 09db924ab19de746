"""Submitting: one round trip per job, pipelined batches, the order calls reach Redis."""

from __future__ import annotations

import asyncio

from docgraph.core.envelope import DocumentRef
from docgraph.core.runtime import calls
from docgraph.core.runtime.connection import Batcher, Scripts
from docgraph.core.runtime.jobs import JobStore
from docgraph.core.runtime.keys import Keys, Lane
from tests.runtime.helpers import running_worker, wait_for_states


def _doc(i: int) -> DocumentRef:
    return DocumentRef(uri=f"file:///docs/{i}.txt", sha256=f"{i:064x}", size=i, name=f"{i}.txt")


async def test_submit_many_creates_every_job_and_they_complete(settings, client):
    store = JobStore(client, settings)
    docs = [_doc(i) for i in range(250)]
    submitted = await store.submit_many(
        docs, priority=Lane.high, metadata=[{"name": d.name} for d in docs], chunk=100
    )
    ids = [job_id for job_id, _ in submitted]
    assert len(set(ids)) == 250 and all(created for _, created in submitted)
    jobs = await store.get_many(ids)
    # in order: the i-th result is the i-th document's job
    assert [j.metadata if j else None for j in jobs] == [{"name": d.name} for d in docs]
    assert {j.priority for j in jobs if j} == {"high"}
    first = Keys(settings.key_prefix, settings.partitions).for_job(ids[0])
    assert await client.xlen(first.stream("extract", Lane.high)) >= 1
    async with running_worker(settings, client):
        states = await wait_for_states(store, ids, {"completed"}, timeout=120)
    assert set(states.values()) == {"completed"}


async def test_submit_many_honours_idempotency_keys(settings, client):
    store = JobStore(client, settings)
    first = await store.submit_many([None, None], idempotency_keys=["k1", "k2"])
    again = await store.submit_many([None, None, None], idempotency_keys=["k2", None, "k1"])
    assert [c for _, c in first] == [True, True]
    assert again[0] == (first[1][0], False) and again[2] == (first[0][0], False)
    assert again[1][1] is True
    assert (await store.count_by_state())["queued"] == 3


def _submit_calls(tag: str, n: int) -> list[calls.Submit]:
    return [
        calls.Submit(
            job=f"{tag}:job:o{i}",
            tag=tag,
            job_id=f"o{i}",
            now=1_000 + i,
            traceparent="00-" + "1" * 32 + "-" + "2" * 16 + "-01",
            lane="normal",
            idem="",
            meta="{}",
            stages=calls.encode(["extract"]),
            roots=calls.encode([["extract", f'{{"n": {i}}}']]),
            events=1000,
            doc_uri="",
            doc_sha256="",
            doc_name="",
        )
        for i in range(n)
    ]


def _count_round_trips(client, monkeypatch) -> list[int]:
    """Script calls per pipelined round trip (lone calls are not pipelines)."""
    sent: list[int] = []
    pipeline_class = type(client.pipeline(transaction=False))
    execute = pipeline_class.execute

    async def counting_execute(self, *args, **kwargs):  # counts, changes nothing
        sent.append(len(self.command_stack))
        return await execute(self, *args, **kwargs)

    monkeypatch.setattr(pipeline_class, "execute", counting_execute)
    return sent


async def test_batcher_keeps_call_order_and_pipelines_concurrent_calls(client, settings, monkeypatch):
    """Calls made while one is in flight go together, after it, in the order made."""
    batcher = Batcher(Scripts(client))
    tag = Keys(settings.key_prefix).part(0).tag
    sent = _count_round_trips(client, monkeypatch)
    results = await asyncio.gather(*(batcher.run(c) for c in _submit_calls(tag, 20)))
    assert [bytes(r[1]).decode() for r in results] == [f"o{i}" for i in range(20)]
    # the first call went alone (an idle batcher sends at once), the other 19 in one pipeline
    assert sent == [19]
    entries = await client.xrange(f"{tag}:stream:extract:normal")
    assert [e[1][b"payload"] for e in entries] == [f'{{"n": {i}}}'.encode() for i in range(20)]


async def test_a_deferred_call_waits_one_turn_for_the_calls_that_follow(client, settings, monkeypatch):
    """What a stage's start record relies on: a fast stage's hand-off, made in the
    next turn of the loop, shares the start's round trip and is applied after it."""
    batcher = Batcher(Scripts(client))
    tag = Keys(settings.key_prefix).part(0).tag
    first, second, third = _submit_calls(tag, 3)
    sent = _count_round_trips(client, monkeypatch)
    deferred = asyncio.ensure_future(batcher.run(first, defer=True))
    await asyncio.sleep(0)  # the deferred call is queued, not sent
    results = await asyncio.gather(deferred, batcher.run(second), batcher.run(third))
    assert [bytes(r[1]).decode() for r in results] == ["o0", "o1", "o2"]
    assert sent == [3]
    entries = await client.xrange(f"{tag}:stream:extract:normal")
    assert [e[1][b"payload"] for e in entries] == [f'{{"n": {i}}}'.encode() for i in range(3)]


def test_root_payloads_are_what_pydantic_writes():
    """The submit hot path's envelope templates give Envelope.model_dump_json's bytes,
    and fall back to it where they do not apply (metadata, odd ids, subclasses)."""
    import random
    import uuid

    from docgraph.core.envelope import Envelope, new_job_id
    from docgraph.core.runtime.jobs import RootPayloads

    class MyRef(DocumentRef):
        tag: str = "t"

    docs = [
        None,
        DocumentRef(uri="file:///tmp/a.txt"),
        DocumentRef(
            uri='s3://b/zürich ✓ "q".pdf', sha256="ab" * 32, size=12, content_type="text/plain", name="n\n"
        ),
        DocumentRef(uri="x", extra_field={"a": [1, 2.5]}, other="é"),
        MyRef(uri="y"),
    ]
    ids = [new_job_id(), "job-1", "a:b.c", "x" * 200, "x" * 201, "", 'q"uote', "ü", "a/b"]
    times = [0.0, 0.001, 1796655648.0, 1796655648.396, 9999999999.999, 1e15 / 1000]
    rng = random.Random(7)
    payloads = RootPayloads()
    for i in range(3000):
        doc, job_id, lane = rng.choice(docs), rng.choice(ids), rng.choice(list(Lane))
        at = rng.choice(times) if i % 2 else rng.randint(0, 4_000_000_000_000) / 1000
        root = rng.choice(["extract", "a", "b/c", "é"])
        meta = rng.choice([None, {}, {"k": "v", "n": 1}])
        try:
            want: object = Envelope(
                job_id=job_id, stage=root, priority=lane, submitted_at=at, document=doc, metadata=meta or {}
            ).model_dump_json()
        except ValueError as exc:
            want = type(exc)
        try:
            got: object = payloads.payload(root, lane, job_id, at, doc, meta)
        except ValueError as exc:
            got = type(exc)
        assert got == want
    job_id = new_job_id()
    assert len(job_id) == 32 and uuid.UUID(hex=job_id).version == 4 and uuid.UUID(hex=job_id).hex == job_id


async def test_submit_many_overlapping_chunks_keep_order_and_stop_at_an_error(settings, client, monkeypatch):
    """The next chunk is built while one runs, but sent only after its replies: results
    in order, and after a failed chunk nothing more is sent."""
    store = JobStore(client, settings)
    docs = [_doc(i) for i in range(70)]
    ids = [job_id for job_id, _ in await store.submit_many(docs, chunk=8)]
    jobs = await store.get_many(ids)
    assert [j.document_name if j else None for j in jobs] == [d.name for d in docs]

    sent: list[int] = []
    real = Scripts.call_many

    async def failing(self, batch):
        sent.append(len(batch))
        results = await real(self, batch)
        if len(sent) == 2:
            results[3] = RuntimeError("boom")
        return results

    monkeypatch.setattr(Scripts, "call_many", failing)
    before = (await store.count_by_state())["queued"]
    try:
        await store.submit_many([_doc(i) for i in range(100, 150)], chunk=10)
    except RuntimeError as exc:
        assert str(exc) == "boom"
    else:
        raise AssertionError("the failed chunk did not raise")
    assert sent == [10, 10]  # the third chunk was built, never sent
    assert (await store.count_by_state())["queued"] == before + 20
