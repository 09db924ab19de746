"""Retries wait their backoff, dead letters keep the error, replay completes."""

from __future__ import annotations

import asyncio
import json

from docgraph.core.envelope import DocumentRef
from docgraph.core.runtime.dlq import DeadLetters
from docgraph.core.runtime.jobs import JobStore
from docgraph.core.runtime.keys import Keys
from tests.runtime.helpers import running_worker, wait_for_states


async def _retry_history(
    store: JobStore, job_id: str, stage: str, until: set[str]
) -> list[tuple[int, int, int]]:
    """Capture each scheduled retry as (attempt, scheduled_at, due) from the job record."""
    seen: dict[int, tuple[int, int, int]] = {}
    for _ in range(2000):
        job = await store.get(job_id)
        st = next(s for s in job.stages if s.name == stage)
        if st.status == "retrying" and st.due:
            seen[st.attempts] = (st.attempts, job.updated, st.due)
        if job.state in until:
            return [seen[k] for k in sorted(seen)]
        await asyncio.sleep(0.005)
    raise AssertionError(f"job stuck in {job.state}")


async def test_retries_back_off_then_dead_letter_then_replay(settings, client, effects):
    settings = settings.model_copy(
        update={"retry": settings.retry.model_copy(update={"attempts": 3, "backoff": 0.2, "jitter": 0.2})}
    )
    store = JobStore(client, settings)
    job_id, _ = await store.submit(None, metadata={"fail": {"ner": 3}})
    async with running_worker(settings, client):
        history = await _retry_history(store, job_id, "ner", {"dead"})
        # two retries were scheduled (after attempts 1 and 2), each at its backoff
        assert [h[0] for h in history] == [1, 2]
        for attempt, scheduled, due in history:
            expected = 200 * 2 ** (attempt - 1)
            assert expected * 0.8 - 2 <= due - scheduled <= expected * 1.2 + 2, (attempt, due - scheduled)
        job = await store.get(job_id)
        ner = next(s for s in job.stages if s.name == "ner")
        assert job.state == "dead" and ner.status == "dead" and ner.attempts == 3
        assert "injected transient failure of ner, call 3" in ner.error
        # the retried attempt did not start before its due time
        assert ner.started >= history[-1][2]

        dlq = DeadLetters(client, settings)
        [letter] = await dlq.list("ner")
        assert letter.job_id == job_id
        assert letter.fields["error_type"] == "RuntimeError"
        assert letter.fields["attempts"] == "3"
        assert "Traceback" in letter.fields["traceback"]
        assert letter.fields["traceparent"] == job.traceparent
        # the other branch went on while ner was failing
        classify = next(s for s in job.stages if s.name == "classify")
        assert classify.status == "done"

        assert await dlq.replay("ner") == 1
        await wait_for_states(store, [job_id], {"completed"})
    job = await store.get(job_id)
    assert job.traceparent == letter.fields["traceparent"]
    assert await dlq.count("ner") == 0
    counts = await effects()
    assert counts[f"{job_id}:ingest"] == 1 and counts[f"{job_id}:ner"] == 1


async def test_permanent_error_skips_retries(settings, client, caplog):
    store = JobStore(client, settings)
    doc = DocumentRef(uri="file:///docs/secret.pdf", name="secret.pdf")
    job_id, _ = await store.submit(
        doc, metadata={"permanent": {"extract": "file is encrypted; decrypt it first"}}
    )
    async with running_worker(settings, client):
        await wait_for_states(store, [job_id], {"failed"})
    # the worker's log line names the document next to the job id
    assert f"dead-lettering secret.pdf (job {job_id[:8]}…) from extract" in caplog.text
    job = await store.get(job_id)
    extract = next(s for s in job.stages if s.name == "extract")
    assert extract.runs == 1
    assert job.error == "PermanentError: file is encrypted; decrypt it first"
    [letter] = await DeadLetters(client, settings).list("extract")
    assert letter.fields["final_state"] == "failed"


async def test_bad_events_are_dead_lettered_and_the_worker_goes_on(settings, client):
    part = Keys(settings.key_prefix).part(0)
    stream = part.stream("extract", "normal")
    bad = [
        ({"payload": "{not json"}, "not valid JSON"),
        ({"payload": json.dumps({"v": 99, "job_id": "x", "stage": "extract"})}, "schema version 99"),
        ({"payload": json.dumps({"v": 1, "stage": "extract"})}, "job_id: Field required"),
        ({"data": "no payload"}, "no 'payload' field"),
        (
            {
                "payload": json.dumps(
                    {"v": 1, "job_id": "big", "stage": "extract", "metadata": {"x": "a" * 10_000_000}}
                )
            },
            "over the 1,000,000-byte limit",
        ),
        ({"payload": json.dumps({"v": 1, "job_id": "y", "stage": "ner"})}, "arrived on the 'extract' stream"),
    ]
    store = JobStore(client, settings)
    async with running_worker(settings, client):
        for fields, _ in bad:
            await client.xadd(stream, fields)
        job_id, _ = await store.submit(None)
        await wait_for_states(store, [job_id], {"completed"})
        dlq = DeadLetters(client, settings)
        for _ in range(100):
            if await dlq.count("extract") == len(bad):
                break
            await asyncio.sleep(0.05)
        letters = await dlq.list("extract")
    assert len(letters) == len(bad)
    for letter, (_, reason) in zip(letters, bad, strict=True):
        assert reason in letter.fields["error"], letter.fields["error"]
    big = letters[4]
    assert big.fields["payload_truncated"] == "1"
    assert await client.xlen(stream) == 0  # nothing left pending


async def test_external_publisher_event_is_adopted(settings, client):
    """An event XADDed by another system (no job record yet) runs to completion."""
    part = Keys(settings.key_prefix).part(0)
    payload = json.dumps({"v": 1, "job_id": "ext-1", "stage": "extract", "document": {"uri": "s3://b/k"}})
    await client.xadd(part.stream("extract", "normal"), {"payload": payload})
    store = JobStore(client, settings)
    async with running_worker(settings, client):
        await wait_for_states(store, ["ext-1"], {"completed"})


async def test_a_branch_finishing_after_its_sibling_s_retry_leaves_the_job_retrying(
    settings, client, effects
):
    # ner starts only after classify's retry was recorded (its worker comes later):
    # once ner is done, nothing runs and the job waits for the retry
    settings = settings.model_copy(
        update={"retry": settings.retry.model_copy(update={"attempts": 3, "backoff": 600, "jitter": 0})}
    )
    store = JobStore(client, settings)
    job_id, _ = await store.submit(None, metadata={"fail": {"classify": 1}})
    async with running_worker(settings, client, stages=["extract", "classify"]):
        await wait_for_states(store, [job_id], {"retrying"})
    async with running_worker(settings, client, stages=["ner"]):
        for _ in range(400):
            job = await store.get(job_id)
            if next(s for s in job.stages if s.name == "ner").status == "done":
                break
            await asyncio.sleep(0.025)
        assert job.state == "retrying", [(s.name, s.status) for s in job.stages]
        assert await client.zscore(store.keys.for_job(job_id).state_index("retrying"), job_id) is not None
