"""Latest wins, on a real redis-server: a newer submit of the same document cancels
an older job of it that has not started, in the submit's own step, whichever of
several partitions the jobs are in; a started job runs on."""

from __future__ import annotations

from docgraph.core.envelope import DocumentRef
from docgraph.core.runtime.events import EventLog
from docgraph.core.runtime.jobs import JobStore
from docgraph.core.runtime.keys import Keys
from tests.runtime.helpers import running_worker, wait_for_states


def _doc(name: str, version: int) -> DocumentRef:
    return DocumentRef(uri=f"file:///inbox/{version}/{name}", sha256=f"{version:064x}", name=name)


async def test_a_newer_submit_cancels_the_queued_older_ones(settings, client):
    s = settings.model_copy(update={"partitions": 4})
    store = JobStore(client, s)
    v1, _ = await store.submit(_doc("a.pdf", 1), latest_wins=True)
    other, _ = await store.submit(_doc("b.pdf", 1), latest_wins=True)
    v2, _ = await store.submit(_doc("a.pdf", 2), latest_wins=True)
    v3, _ = await store.submit(_doc("a.pdf", 3), latest_wins=True)
    keys = Keys(s.key_prefix, s.partitions)
    assert len({keys.partition_of(j) for j in (v1, v2, v3)}) == 1  # one slot: one atomic step
    jobs = {j.id: j for j in await store.get_many([v1, v2, v3, other]) if j}
    assert [jobs[j].state for j in (v1, v2, v3, other)] == ["cancelled", "cancelled", "queued", "queued"]
    log = EventLog(client, s)
    cancelled = [e for e in await log.history(v1) if e.type == "job.cancelled"]
    assert [(e.fields["superseded_by"], e.fields["previous"]) for e in cancelled] == [(v2, "queued")]
    assert [e.fields.get("superseded_by") for e in await log.history(v2) if e.type == "job.cancelled"] == [v3]

    await store.cancel(v3, remove=True)  # its record goes, and the document's pointer with it
    assert await client.hget(keys.for_job(v3).latest, "a.pdf") is None


async def test_off_by_default_and_a_started_job_runs_on(settings, client):
    store = JobStore(client, settings)
    a, _ = await store.submit(_doc("c.pdf", 1))
    b, _ = await store.submit(_doc("c.pdf", 2))  # DOCGRAPH_LATEST_WINS is off
    assert {j.state for j in await store.get_many([a, b]) if j} == {"queued"}

    slow = {"sleep_ms": {"extract": [1500, 1500]}}
    async with running_worker(settings, client):
        first, _ = await store.submit(_doc("d.pdf", 1), metadata=slow, latest_wins=True)
        await wait_for_states(store, [first], {"running"})
        second, _ = await store.submit(_doc("d.pdf", 2), metadata=slow, latest_wins=True)
        states = await wait_for_states(store, [a, b, first, second], {"completed"}, timeout=60)
    assert set(states.values()) == {"completed"}


async def test_with_an_idempotency_key_the_same_job_comes_back(settings, client):
    s = settings.model_copy(update={"partitions": 8, "latest_wins": True})
    store = JobStore(client, s)
    one = await store.submit(_doc("e.pdf", 1), idempotency_key="upload-77")
    again = await store.submit(_doc("e.pdf", 1), idempotency_key="upload-77")
    assert one[1] and again == (one[0], False)
    job = await store.get(one[0])
    assert job is not None and job.state == "queued"  # not superseded by its own retry


async def test_submit_many_keeps_the_last_version_of_a_batch(settings, client):
    s = settings.model_copy(update={"partitions": 3, "latest_wins": True})
    store = JobStore(client, s)
    ids = [j for j, _ in await store.submit_many([_doc("f.pdf", n) for n in range(5)])]
    states = [j.state for j in await store.get_many(ids) if j]
    assert states == ["cancelled"] * 4 + ["queued"]
