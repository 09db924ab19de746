"""Canonical entities on real Neo4j and FalkorDB: aliases in two documents are one
node with its ATT&CK id and aliases, reprocessing changes nothing, both sinks agree."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest

from docgraph.plugins.entities.attack import attack_entries
from docgraph.plugins.entities.resolve import Resolver
from docgraph.stages.ingest import resolve_mentions

pytestmark = pytest.mark.service

# (chunk, text, label, source) per document: one actor, one technique, one URL, three spellings each
DOCS = {
    "a": [
        (0, "Fancy Bear", "Organization", "model"),
        (0, "T1059.001", "AttackTechnique", "rule:attack_technique"),
        (1, "hxxp://evil[.]com/Drop", "Indicator", "rule:url"),
        (1, "Ping", "System", "model"),
    ],
    "b": [
        (0, "APT28", "Organization", "rule:threat_actor"),
        (0, "sofacy", "Organization", "model"),
        (0, "http://EVIL.com/Drop", "Indicator", "rule:url"),
        (1, "ping", "System", "model"),  # the verb, not the ATT&CK tool
    ],
}


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(
            f'{name} is not set: ./deploy/local/services.sh up redis neo4j && eval "$(./deploy/local/services.sh env)"'
        )
    return value


def _sink(kind: str) -> Any:
    if kind == "neo4j":
        from docgraph.plugins.sinks.neo4j import Neo4jSink

        return Neo4jSink(
            _env("DOCGRAPH_TEST_NEO4J_URI"),
            os.environ.get("DOCGRAPH_TEST_NEO4J_USER", "neo4j"),
            _env("DOCGRAPH_TEST_NEO4J_PASSWORD"),
            "neo4j",
        )
    from docgraph.plugins.sinks.falkordb import FalkorDBSink

    return FalkorDBSink(_env("DOCGRAPH_TEST_REDIS_URL"), f"g{uuid.uuid4().hex[:8]}")


def _query(sink: Any, cypher: str, **params: Any) -> list[tuple]:
    if hasattr(sink, "driver"):
        records, _, _ = sink.driver.execute_query(cypher, params, database_=sink.database)
        return [tuple(r.values()) for r in records]
    return [tuple(r) for r in sink.graph.ro_query(cypher, params).result_set]


def _records(doc_id: str, mentions: list[tuple[int, str, str, str]], resolver: Resolver) -> dict:
    chunks = [{"id": f"{doc_id}:{i}", "index": i, "page": 1, "text": f"chunk {i}"} for i in (0, 1)]
    raw = [
        {
            "chunk": c,
            "text": t,
            "label": label,
            "source": s,
            "start": 100 * c + n,
            "end": 100 * c + n + len(t),
        }
        for n, (c, t, label, s) in enumerate(mentions)
    ]
    entities, rows = resolve_mentions(doc_id, raw, resolver)
    doc = {
        "id": doc_id,
        "sha256": doc_id,
        "name": f"{doc_id}.txt",
        "type": "threat_report",
        "confidence": 0.9,
    }
    return {"document": doc, "chunks": chunks, "entities": entities, "mentions": rows}


ENTITIES = """
MATCH (d:Document)<-[:PART_OF]-(:Chunk)-[:MENTIONS]->(e:Entity) WHERE d.id IN $ids
WITH DISTINCT e RETURN e.key, labels(e), properties(e) ORDER BY e.key
"""
MENTIONS = """
MATCH (d:Document)<-[:PART_OF]-(c:Chunk)-[m:MENTIONS]->(e:Entity) WHERE d.id IN $ids
RETURN d.name, c.index, m.start, m.end, m.text, m.label, m.source, e.key ORDER BY d.name, m.start
"""


def _snapshot(sink: Any, ids: list[str]) -> dict[str, list]:
    entities = [(k, sorted(labels), props) for k, labels, props in _query(sink, ENTITIES, ids=ids)]
    return {"entities": entities, "mentions": _query(sink, MENTIONS, ids=ids)}


@pytest.fixture(scope="module")
def resolver() -> Resolver:
    return Resolver(attack_entries())


def _ingest_both(kind: str, resolver: Resolver, run: str) -> tuple[dict[str, list], dict[str, list]]:
    sink = _sink(kind)
    try:
        ids = [f"{run}-{name}" for name in DOCS]
        records = {i: _records(i, DOCS[i.rsplit("-", 1)[1]], resolver) for i in ids}
        for i in ids:
            sink.write_document(**records[i])
        first = _snapshot(sink, ids)
        sink.write_document(**records[ids[0]])  # reprocessed / redelivered
        sink.write_document(**records[ids[1]])
        again = _snapshot(sink, ids)
        groups = _query(sink, "MATCH (e:Entity {key: 'attack:G0007'}) RETURN count(e)")
        assert groups == [(1,)]
        return first, again
    finally:
        sink.close()


@pytest.mark.parametrize("kind", ["neo4j", "falkordb"])
def test_aliases_in_two_documents_are_one_node_and_reprocessing_changes_nothing(kind, resolver):
    first, again = _ingest_both(kind, resolver, f"r{uuid.uuid4().hex[:8]}")
    assert again == first
    by_key = {key: (labels, props) for key, labels, props in first["entities"]}
    assert set(by_key) == {
        "attack:G0007",
        "attack:T1059.001",
        "attack:S0097",
        "Indicator:http://evil.com/Drop",
        "System:ping",
    }
    labels, apt28 = by_key["attack:G0007"]
    assert labels == ["Entity", "Group"]
    assert apt28["attack_id"] == "G0007" and apt28["name"] == "APT28"
    assert {"APT28", "Fancy Bear", "Sofacy"} <= set(apt28["aliases"])
    labels, technique = by_key["attack:T1059.001"]
    assert labels == ["Entity", "Technique"]
    assert (technique["name"], technique["tactics"]) == ("PowerShell", ["execution"])
    assert by_key["attack:S0097"][0] == ["Entity", "Tool"]  # "Ping", as ATT&CK writes it
    # both documents point at the one group; the mention keeps what the text said
    apt28_mentions = sorted(
        (doc, text) for doc, _, _, _, text, _, _, key in first["mentions"] if key == "attack:G0007"
    )
    assert [text for _, text in apt28_mentions] == ["Fancy Bear", "APT28", "sofacy"]
    assert {doc.split("-")[1] for doc, _ in apt28_mentions} == {"a.txt", "b.txt"}


def test_both_sinks_hold_the_same_entities_and_mentions(resolver):
    run = f"s{uuid.uuid4().hex[:8]}"
    neo4j, _ = _ingest_both("neo4j", resolver, run)
    falkordb, _ = _ingest_both("falkordb", resolver, run)
    assert neo4j == falkordb
