"""The default DAG end to end on a real redis-server, in one process."""

from __future__ import annotations

from docgraph.core.envelope import DocumentRef
from docgraph.core.runtime.jobs import JobStore
from tests.runtime.helpers import running_worker, wait_for_states


async def test_dag_completes_and_join_sees_both_branches(settings, client):
    store = JobStore(client, settings)
    ids = [(await store.submit(DocumentRef(uri=f"file:///doc{i}")))[0] for i in range(20)]
    async with running_worker(settings, client):
        states = await wait_for_states(store, ids, {"completed"})
    assert set(states.values()) == {"completed"}
    job = await store.get(ids[0])
    by_name = {s.name: s for s in job.stages}
    assert by_name["ingest"].output == {"by": "ingest", "seen": ["classify", "extract", "ner"]}
    assert all(s.completions == 1 and s.status == "done" for s in job.stages)


async def test_skip_routes_around_a_branch(settings, client):
    store = JobStore(client, settings)
    job_id, _ = await store.submit(None, metadata={"skip": {"extract": ["ner"]}})
    async with running_worker(settings, client):
        await wait_for_states(store, [job_id], {"completed"})
    job = await store.get(job_id)
    by_name = {s.name: s for s in job.stages}
    assert by_name["ner"].status == "skipped"
    assert by_name["ingest"].output["seen"] == ["classify", "extract"]
