"""End to end on real stores: S3 (versitygw from deploy/local) for documents and
artifacts, Neo4j for the graph, real redis-server, the built-in stages."""

from __future__ import annotations

import pytest

from docgraph.core.runtime.dlq import DeadLetters
from docgraph.core.runtime.jobs import JobStore
from docgraph.core.settings import Settings
from docgraph.core.store import copy_local, open_store
from tests.conftest import NEO4J_ENV, S3_ENV, requires_env
from tests.runtime.helpers import running_worker, wait_for_states
from tests.stages import corpus

pytestmark = [
    *requires_env(
        (*NEO4J_ENV, *S3_ENV), "Neo4j/S3 not configured: run deploy/local/services.sh up all and eval its env"
    ),
    pytest.mark.skipif(not corpus.PDF_CORPUS.is_dir(), reason="../shared/corpus/pdf is absent"),
]

SNAPSHOT = {
    "documents": "MATCH (d:Document) RETURN d.id AS id, d.sha256 AS sha, d.name AS name, d.type AS type, "
    "d.confidence AS conf ORDER BY id",
    "chunks": "MATCH (c:Chunk)-[:PART_OF]->(d:Document) RETURN c.id AS id, c.index AS i, c.page AS page, "
    "c.text AS text, d.id AS doc ORDER BY id",
    "entities": "MATCH (e:Entity) RETURN e.key AS key, e.name AS name, labels(e) AS labels ORDER BY key",
    "mentions": "MATCH (c:Chunk)-[m:MENTIONS]->(e:Entity) RETURN c.id AS c, e.key AS e, m.start AS s, "
    "m.end AS end, m.source AS src ORDER BY c, s, e",
    "next": "MATCH (a:Chunk)-[:NEXT_CHUNK]->(b:Chunk) RETURN a.id AS a, b.id AS b ORDER BY a",
}


def _snapshot(sink) -> dict[str, list[dict]]:
    out = {}
    for name, query in SNAPSHOT.items():
        records, _, _ = sink.driver.execute_query(query, database_=sink.database)
        out[name] = [r.data() for r in records]
    return out


async def _process(settings: Settings, client, docs: list[corpus.Doc]) -> dict[str, str]:
    store = JobStore(client, settings)
    objects = open_store(settings)
    ids = {}
    for doc in docs:
        ref = copy_local(doc.path, objects)
        job_id, _ = await store.submit(ref, metadata={"name": doc.path.name})
        ids[job_id] = doc.path.name
    async with running_worker(settings, client, with_services=True):
        await wait_for_states(store, list(ids), {"completed", "failed", "dead"}, timeout=900)
    return ids


@pytest.mark.slow
async def test_200_documents_into_neo4j_twice_changes_nothing(store_settings, client, tmp_path):
    from docgraph.plugins.sinks.neo4j import Neo4jSink

    s = store_settings
    sink = Neo4jSink(s.neo4j_uri, s.neo4j_user, s.neo4j_password, s.neo4j_database)
    sink.driver.execute_query("MATCH (n) DETACH DELETE n", database_=s.neo4j_database)
    docs = corpus.build(tmp_path / "docs", total=200)
    expected = {d.path.name: d.expect for d in docs}
    store = JobStore(client, s)

    ids = await _process(s, client, docs)
    jobs = {j.id: j for j in await store.get_many(list(ids))}
    letters = {
        lt.job_id: lt.fields["error"]
        for stage in s.topology
        for lt in await DeadLetters(client, s).list(stage, limit=500)
    }
    completed = []
    for job_id, name in ids.items():
        job, want = jobs[job_id], expected[name]
        if want == "completed":
            assert job.state == "completed", (name, job.state, job.error)
            completed.append(job)
        else:
            assert job.state == "failed", (name, job.state)
            assert want.lower() in letters[job_id].lower(), (name, letters[job_id])
    outputs = [{st.name: st.output for st in j.stages} for j in completed]
    snap = _snapshot(sink)
    assert len(snap["documents"]) == len({o["ingest"]["document_id"] for o in outputs})
    assert len(snap["chunks"]) == sum(o["extract"]["chunks"] for o in outputs)
    assert len(snap["mentions"]) == sum(o["ner"]["mentions"] for o in outputs)
    assert len(snap["next"]) == sum(max(0, o["extract"]["chunks"] - 1) for o in outputs)
    assert len(snap["entities"]) == len({e["key"] for e in snap["entities"]})  # never duplicated

    # the same batch again: the graph is exactly the same, nodes, relationships and values
    await _process(s, client, docs)
    assert _snapshot(sink) == snap
    sink.close()
