"""CO_OCCURS on real Neo4j and FalkorDB: exact counts under reprocessing, changes,
deletes and a write sequence interrupted anywhere and retried."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from docgraph.plugins.sinks.cypher import document_statements
from tests.stages.test_resolution_sinks import _query, _sink

pytestmark = pytest.mark.service

CO_OCCURS = """
MATCH (a:Entity)-[r:CO_OCCURS]->(b:Entity) WHERE a.key STARTS WITH $p AND b.key STARTS WITH $p
RETURN a.name, b.name, r.count, r.documents ORDER BY a.name, b.name
"""


def _records(doc_id: str, prefix: str, chunks: list[list[str]]) -> dict[str, Any]:
    names = sorted({n for chunk in chunks for n in chunk})
    entities = [{"key": f"{prefix}{n}", "name": n, "label": "Organization", "props": {}} for n in names]
    mentions = [
        {
            "chunk": f"{doc_id}:{i}",
            "key": f"{prefix}{n}",
            "start": j,
            "end": j + 1,
            "source": "test",
            "text": n,
            "label": "Organization",
        }
        for i, chunk in enumerate(chunks)
        for j, n in enumerate(chunk)
    ]
    rows = [
        {"id": f"{doc_id}:{i}", "index": i, "page": None, "text": " ".join(c)} for i, c in enumerate(chunks)
    ]
    doc = {"id": doc_id, "sha256": doc_id, "name": doc_id, "type": "other", "confidence": 0.5}
    return {"document": doc, "chunks": rows, "entities": entities, "mentions": mentions}


def _run(sink: Any, query: str, params: dict[str, Any]) -> None:
    """One statement on its own (autocommit), as if the sequence stopped after it."""
    if hasattr(sink, "driver"):
        sink.driver.execute_query(query, params, database_=sink.database)
    else:
        sink.graph.query(query, params)


def _scenario(kind: str) -> list[list[tuple]]:
    sink = _sink(kind)
    p = f"Organization:co{uuid.uuid4().hex[:8]}-"  # the Neo4j database is shared
    d1, d2 = f"{p}d1", f"{p}d2"
    seen = []
    try:
        one = _records(d1, p, [["X", "Y", "Z"], ["X", "Y", "X"]])
        sink.write_document(**one)
        sink.write_document(**_records(d2, p, [["Y", "X"]]))
        seen.append(_query(sink, CO_OCCURS, p=p))
        assert seen[-1] == [("X", "Y", 3, 2), ("X", "Z", 1, 1), ("Y", "Z", 1, 1)]

        sink.write_document(**one)  # reprocessed as it was
        seen.append(_query(sink, CO_OCCURS, p=p))
        assert seen[-1] == seen[0]

        sink.write_document(**_records(d1, p, [["X", "Z"], ["W"]]))  # reprocessed, changed
        seen.append(_query(sink, CO_OCCURS, p=p))
        assert seen[-1] == [("X", "Y", 1, 1), ("X", "Z", 1, 1)]

        sink.delete_document(d2)
        seen.append(_query(sink, CO_OCCURS, p=p))
        assert seen[-1] == [("X", "Z", 1, 1)]
        sink.delete_document(d2)  # deleting twice is harmless
        assert _query(sink, CO_OCCURS, p=p) == seen[-1]

        sink.delete_document(d1)
        seen.append(_query(sink, CO_OCCURS, p=p))
        assert seen[-1] == []
        assert _query(sink, "MATCH (e:Entity) WHERE e.key STARTS WITH $p RETURN count(e)", p=p) == [(4,)]
        return seen
    finally:
        sink.close()


@pytest.mark.parametrize("kind", ["neo4j", "falkordb"])
def test_counts_stay_exact_under_reprocessing_and_deletes(kind):
    _scenario(kind)


def test_both_sinks_count_the_same():
    assert _scenario("neo4j") == _scenario("falkordb")


@pytest.mark.parametrize("kind", ["neo4j", "falkordb"])
def test_a_write_interrupted_anywhere_and_retried_counts_once(kind):
    sink = _sink(kind)
    try:
        p = f"Organization:cr{uuid.uuid4().hex[:8]}-"
        other = _records(f"{p}d0", p, [["A", "B"]])
        sink.write_document(**other)
        old = _records(f"{p}d1", p, [["A", "B", "C"]])
        new = _records(f"{p}d1", p, [["A", "C"], ["B", "C"]])
        statements = document_statements(**new)
        for stop in range(len(statements) + 1):
            sink.write_document(**old)
            for query, params in statements[:stop]:  # the worker died after `stop` statements
                _run(sink, query, params)
            sink.write_document(**new)  # the retry replays the whole sequence
            assert _query(sink, CO_OCCURS, p=p) == [("A", "B", 1, 1), ("A", "C", 1, 1), ("B", "C", 1, 1)], (
                stop
            )
    finally:
        sink.close()


@pytest.mark.parametrize("kind", ["neo4j", "falkordb"])
def test_documents_written_concurrently_share_one_edge_with_every_share_counted(kind):
    from concurrent.futures import ThreadPoolExecutor

    sink = _sink(kind)
    try:
        p = f"Organization:cc{uuid.uuid4().hex[:8]}-"
        docs = [_records(f"{p}d{i}", p, [["X", "Y"], ["Y", "Z", "X"]]) for i in range(12)]
        with ThreadPoolExecutor(
            6
        ) as pool:  # six ingest workers at once, one sink (a driver pool / connection)
            list(pool.map(lambda r: sink.write_document(**r), docs))
        assert _query(sink, CO_OCCURS, p=p) == [("X", "Y", 24, 12), ("X", "Z", 12, 12), ("Y", "Z", 12, 12)]
        with ThreadPoolExecutor(6) as pool:  # and reprocessed at once
            list(pool.map(lambda r: sink.write_document(**r), docs))
        assert _query(sink, CO_OCCURS, p=p) == [("X", "Y", 24, 12), ("X", "Z", 12, 12), ("Y", "Z", 12, 12)]
    finally:
        sink.close()


def test_falkordb_writer_waits_out_a_lock_left_by_a_dead_writer_then_writes(monkeypatch):
    from docgraph.plugins.sinks import falkordb

    sink = _sink("falkordb")
    try:
        p = f"Organization:cl{uuid.uuid4().hex[:8]}-"
        key = falkordb.write_lock_key(sink.graph.name)
        sink.db.connection.set(key, "a writer that was SIGKILLed", px=1500)  # its TTL runs out
        sink.write_document(**_records(f"{p}d1", p, [["X", "Y"]]))
        assert _query(sink, CO_OCCURS, p=p) == [("X", "Y", 1, 1)]
        assert not sink.db.connection.exists(key)  # released after the write

        sink.db.connection.set(key, "a live writer", px=10_000)
        monkeypatch.setattr(falkordb, "WRITE_LOCK_WAIT", 0.3)
        with pytest.raises(falkordb.GraphBusy, match="stayed locked"):
            sink.write_document(**_records(f"{p}d2", p, [["X", "Z"]]))
        assert _query(sink, CO_OCCURS, p=p) == [("X", "Y", 1, 1)]  # nothing written out of turn
    finally:
        sink.close()
