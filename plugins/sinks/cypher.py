"""The Cypher both sinks run: parameters only, never string-built values.

Labels cannot be parameters in Cypher, so entity labels are validated against
a strict identifier pattern before they are placed in a query.
"""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from typing import Any

LABEL = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")

DELETE_OLD_CHUNKS = """
MATCH (c:Chunk)-[:PART_OF]->(:Document {id: $id})
DETACH DELETE c
"""

MERGE_DOCUMENT = """
MERGE (d:Document {id: $doc.id})
SET d.sha256 = $doc.sha256, d.name = $doc.name, d.type = $doc.type, d.confidence = $doc.confidence
"""

CREATE_CHUNKS = """
MATCH (d:Document {id: $id})
UNWIND $chunks AS c
CREATE (ch:Chunk {id: c.id, index: c.index, text: c.text})-[:PART_OF]->(d)
SET ch.page = c.page
"""

LINK_CHUNKS = """
UNWIND $pairs AS p
MATCH (a:Chunk {id: p.a}), (b:Chunk {id: p.b})
MERGE (a)-[:NEXT_CHUNK]->(b)
"""


COUNTS = {
    "Document": "MATCH (n:Document) RETURN count(n)",
    "Chunk": "MATCH (n:Chunk) RETURN count(n)",
    "Entity": "MATCH (n:Entity) RETURN count(n)",
    "MENTIONS": "MATCH ()-[r:MENTIONS]->() RETURN count(r)",
}


def merge_entities(label: str) -> str:
    if not LABEL.match(label):
        raise ValueError(f"entity label {label!r} is not a valid graph label")
    return f"""
UNWIND $rows AS e
MERGE (n:Entity {{key: e.key}})
ON CREATE SET n.name = e.name
SET n:`{label}`
"""


CREATE_MENTIONS = """
UNWIND $rows AS m
MATCH (c:Chunk {id: m.chunk}), (e:Entity {key: m.key})
CREATE (c)-[:MENTIONS {start: m.start, end: m.end, source: m.source}]->(e)
"""


def batches(rows: list[Any], size: int) -> list[list[Any]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)] or []


def document_statements(
    document: dict[str, Any],
    chunks: list[dict[str, Any]],
    entities: list[dict[str, Any]],
    mentions: list[dict[str, Any]],
    batch_size: int = 1000,
) -> list[tuple[str, dict[str, Any]]]:
    """The ordered statements that replace one document's subgraph: nodes
    before relationships, old chunks and mentions removed first."""
    doc_id = document["id"]
    out: list[tuple[str, dict[str, Any]]] = [
        (DELETE_OLD_CHUNKS, {"id": doc_id}),
        (MERGE_DOCUMENT, {"doc": document}),
    ]
    for rows in batches(chunks, batch_size):
        out.append((CREATE_CHUNKS, {"id": doc_id, "chunks": rows}))
    pairs = [{"a": a["id"], "b": b["id"]} for a, b in itertools.pairwise(chunks)]
    for rows in batches(pairs, batch_size):
        out.append((LINK_CHUNKS, {"pairs": rows}))
    by_label: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in entities:
        by_label[e["label"]].append({"key": e["key"], "name": e["name"]})
    for label, rows in sorted(by_label.items()):
        rows.sort(key=lambda r: r["key"])  # one lock order for every writer: fewer deadlocks
        for batch in batches(rows, batch_size):
            out.append((merge_entities(label), {"rows": batch}))
    for rows in batches(mentions, batch_size):
        out.append((CREATE_MENTIONS, {"rows": rows}))
    return out
