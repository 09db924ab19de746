"""Graph sinks against real Neo4j and FalkorDB: exact names, idempotent rewrites."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.stages.corpus import NAMES

pytestmark = pytest.mark.service


def _records(doc_id: str, names: list[str]) -> dict:
    chunks = [
        {"id": f"{doc_id}:0", "index": 0, "page": 1, "text": " ".join(names)},
        {"id": f"{doc_id}:1", "index": 1, "page": None, "text": "second"},
    ]
    entities = [{"key": f"Organization:{n.lower()}", "name": n, "label": "Organization"} for n in names]
    mentions = [
        {"chunk": f"{doc_id}:0", "key": e["key"], "start": i, "end": i + 1, "source": "test"}
        for i, e in enumerate(entities)
    ]
    doc = {"id": doc_id, "sha256": doc_id, "name": "n", "type": "other", "confidence": 0.5}
    return {"document": doc, "chunks": chunks, "entities": entities, "mentions": mentions}


def _sinks():
    out = []
    if os.environ.get("DOCGRAPH_TEST_NEO4J_URI"):
        from docgraph.plugins.sinks.neo4j import Neo4jSink

        out.append(
            (
                "neo4j",
                lambda: Neo4jSink(
                    os.environ["DOCGRAPH_TEST_NEO4J_URI"],
                    os.environ.get("DOCGRAPH_TEST_NEO4J_USER", "neo4j"),
                    os.environ["DOCGRAPH_TEST_NEO4J_PASSWORD"],
                    "neo4j",
                ),
            )
        )
    if os.environ.get("DOCGRAPH_TEST_REDIS_URL"):
        from docgraph.plugins.sinks.falkordb import FalkorDBSink

        out.append(
            (
                "falkordb",
                lambda: FalkorDBSink(os.environ["DOCGRAPH_TEST_REDIS_URL"], f"g{uuid.uuid4().hex[:8]}"),
            )
        )
    return out


def _query(sink, cypher: str, **params) -> list[tuple]:
    if hasattr(sink, "driver"):
        records, _, _ = sink.driver.execute_query(cypher, params, database_=sink.database)
        return [tuple(r.values()) for r in records]
    return [tuple(r) for r in sink.graph.ro_query(cypher, params).result_set]


@pytest.mark.parametrize("kind", ["neo4j", "falkordb"])
def test_names_stored_exactly_and_rewrite_is_idempotent(kind):
    factories = dict(_sinks())
    if kind not in factories:
        pytest.skip(f"{kind} not configured: run deploy/local/services.sh up all and eval its env")
    sink = factories[kind]()
    doc_id = f"doc-{uuid.uuid4().hex[:8]}"
    records = _records(doc_id, NAMES)
    sink.write_document(**records)
    first = sink.counts()
    stored = _query(
        sink, "MATCH (:Chunk {id: $c})-[:MENTIONS]->(e:Entity) RETURN e.name ORDER BY e.name", c=f"{doc_id}:0"
    )
    assert sorted(n for (n,) in stored) == sorted(NAMES)
    labels = _query(sink, "MATCH (e:Entity {key: $k}) RETURN labels(e)", k=records["entities"][0]["key"])
    assert "Organization" in labels[0][0]

    sink.write_document(**records)  # redelivered ingest
    assert sink.counts() == first
    records["chunks"] = records["chunks"][:1]  # reprocessed: fewer chunks now
    records["mentions"] = records["mentions"][:2]
    sink.write_document(**records)
    after = sink.counts()
    assert after["Chunk"] == first["Chunk"] - 1
    assert after["MENTIONS"] == first["MENTIONS"] - (len(NAMES) - 2)
    assert after["Entity"] == first["Entity"]  # entities are never duplicated nor dropped
    sink.close()
