"""The Cypher both sinks run: parameters only, never string-built values.

Labels cannot be parameters in Cypher, so entity labels are validated against
a strict identifier pattern before they are placed in a query.
"""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from docgraph.plugins.types import GraphContribution, NodeRef

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


# Co-occurrence: (a)-[:CO_OCCURS {count, documents}]->(b), a.key < b.key, for entities
# mentioned in one chunk; count = chunks, documents = documents, over the whole graph.
# Kept exact incrementally: a document's share is added once its mentions are written and
# taken away before its chunks go (reprocess, delete).  Each of the two is one atomic query
# that also flips ``Document.co_occurs_counted``, so a retried sequence (FalkorDB runs its
# statements one by one) never adds or subtracts a share twice.  The collect/UNWIND in the
# subtraction is a barrier: FalkorDB (4.x) otherwise evaluates ``WHERE r.count <= 0`` before
# the SET above it and drops every row, so nothing would be subtracted.
_PAIRS = """
MATCH (d)<-[:PART_OF]-(c:Chunk)-[:MENTIONS]->(a:Entity), (c)-[:MENTIONS]->(b:Entity)
WHERE a.key < b.key
WITH a, b, count(DISTINCT c) AS n
"""

SUBTRACT_CO_OCCURS = (
    """
MATCH (d:Document {id: $id}) WHERE d.co_occurs_counted = true
SET d.co_occurs_counted = false
WITH d"""
    + _PAIRS
    + """MATCH (a)-[r:CO_OCCURS]->(b)
SET r.count = r.count - n, r.documents = r.documents - 1
WITH collect(r) AS touched
UNWIND touched AS r
WITH r WHERE r.count <= 0
DELETE r
"""
)

ADD_CO_OCCURS = (
    """
MATCH (d:Document {id: $id}) WHERE d.co_occurs_counted IS NULL OR d.co_occurs_counted = false
SET d.co_occurs_counted = true
WITH d"""
    + _PAIRS
    + """MERGE (a)-[r:CO_OCCURS]->(b)
ON CREATE SET r.count = 0, r.documents = 0
SET r.count = r.count + n, r.documents = r.documents + 1
"""
)

# the typed relations of the built-in rules (plugins/relations): entity-to-entity edges
# carrying ``document``; a reprocessed or deleted document's are removed whether or
# not it still has any (they hang off shared entities, not off its chunks)
RELATION_TYPES = ("USES", "TARGETS", "EXPLOITS", "ATTRIBUTED_TO")

DELETE_DOCUMENT = """
MATCH (d:Document {id: $id})
DETACH DELETE d
"""

COUNTS = {
    "Document": "MATCH (n:Document) RETURN count(n)",
    "Chunk": "MATCH (n:Chunk) RETURN count(n)",
    "Entity": "MATCH (n:Entity) RETURN count(n)",
    "MENTIONS": "MATCH ()-[r:MENTIONS]->() RETURN count(r)",
    "CO_OCCURS": "MATCH ()-[r:CO_OCCURS]->() RETURN count(r)",
}


def merge_entities(label: str) -> str:
    if not LABEL.match(label):
        raise ValueError(f"entity label {label!r} is not a valid graph label")
    return f"""
UNWIND $rows AS e
MERGE (n:Entity {{key: e.key}})
ON CREATE SET n.name = e.name
SET n:`{label}`
SET n += e.props
"""


CREATE_MENTIONS = """
UNWIND $rows AS m
MATCH (c:Chunk {id: m.chunk}), (e:Entity {key: m.key})
CREATE (c)-[:MENTIONS {start: m.start, end: m.end, source: m.source, text: m.text, label: m.label}]->(e)
"""


def _checked(name: str, what: str = "label") -> str:
    if not LABEL.match(name):
        raise ValueError(f"{what} {name!r} is not a valid graph identifier")
    return name


def merge_contributed_nodes(label: str) -> str:
    return f"""
UNWIND $rows AS n
MERGE (x:`{_checked(label)}` {{key: n.key}})
SET x += n.props
"""


def delete_contributed_edges(edge_type: str) -> str:
    """A reprocessed document's contributed edges of one type, before they are written again."""
    return f"""
MATCH ()-[r:`{_checked(edge_type, "edge type")}`]->()
WHERE r.document = $id
DELETE r
"""


def _endpoint(var: str, label: str, field: str) -> str:
    if label == "Document":
        return f"({var}:Document {{id: $id}})"
    if label == "Chunk":
        return f"({var}:Chunk {{id: e.{field}}})"
    return f"({var}:`{_checked(label)}` {{key: e.{field}}})"


def merge_contributed_edges(source: str, edge_type: str, target: str) -> str:
    return f"""
UNWIND $rows AS e
MATCH {_endpoint("a", source, "a")}, {_endpoint("b", target, "b")}
MERGE (a)-[r:`{_checked(edge_type, "edge type")}` {{document: $id}}]->(b)
SET r += e.props, r.stage = e.stage
"""


def contributed_labels(contributions: Sequence[GraphContribution]) -> set[str]:
    """Labels of contributed nodes (each gets an index on ``key``)."""
    return {n.label for c in contributions for n in c.nodes}


def contributed_edge_types(contributions: Sequence[GraphContribution]) -> set[str]:
    """Types of contributed edges and the built-in relation types (each gets an index on
    ``document``, which the replacement of a reprocessed document's edges looks up)."""
    return {e.type for c in contributions for e in c.edges} | set(RELATION_TYPES)


def _ref_key(doc_id: str, ref: NodeRef) -> str:
    return f"{doc_id}:{ref.key}" if ref.label == "Chunk" else ref.key


def contribution_statements(
    doc_id: str, contributions: Sequence[GraphContribution], batch_size: int = 1000
) -> list[tuple[str, dict[str, Any]]]:
    """Plugins' nodes (MERGE on label + key) then edges: the document's earlier edges
    of every contributed type are removed, then MERGEd with provenance."""
    out: list[tuple[str, dict[str, Any]]] = []
    nodes: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    edges: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for c in contributions:
        for n in c.nodes:
            row = nodes[n.label].setdefault(n.key, {"key": n.key, "props": {}})
            row["props"].update(n.properties)
        for e in c.edges:
            edges[(e.source.label, e.type, e.target.label)].append(
                {
                    "a": _ref_key(doc_id, e.source),
                    "b": _ref_key(doc_id, e.target),
                    "props": e.properties,
                    "stage": c.stage,
                }
            )
    for label, by_key in sorted(nodes.items()):
        rows = [by_key[k] for k in sorted(by_key)]  # one lock order for every writer
        for batch in batches(rows, batch_size):
            out.append((merge_contributed_nodes(label), {"rows": batch}))
    for edge_type in sorted({t for _, t, _ in edges}):
        out.append((delete_contributed_edges(edge_type), {"id": doc_id}))
    for (source, edge_type, target), rows in sorted(edges.items()):
        for batch in batches(rows, batch_size):
            out.append((merge_contributed_edges(source, edge_type, target), {"id": doc_id, "rows": batch}))
    return out


def batches(rows: list[Any], size: int) -> list[list[Any]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)] or []


def document_statements(
    document: dict[str, Any],
    chunks: list[dict[str, Any]],
    entities: list[dict[str, Any]],
    mentions: list[dict[str, Any]],
    batch_size: int = 1000,
    contributions: Sequence[GraphContribution] = (),
) -> list[tuple[str, dict[str, Any]]]:
    """The ordered statements that replace one document's subgraph: nodes
    before relationships, old chunks and mentions removed first (with their
    co-occurrence share), the new share added once the mentions are written,
    plugins' contributions last (they may link to the chunks)."""
    doc_id = document["id"]
    out: list[tuple[str, dict[str, Any]]] = [
        (SUBTRACT_CO_OCCURS, {"id": doc_id}),
        (DELETE_OLD_CHUNKS, {"id": doc_id}),
        # the relation types contributed again are replaced by contribution_statements
        *_delete_relations(doc_id, skip={e.type for c in contributions for e in c.edges}),
        (MERGE_DOCUMENT, {"doc": document}),
    ]
    for rows in batches(chunks, batch_size):
        out.append((CREATE_CHUNKS, {"id": doc_id, "chunks": rows}))
    pairs = [{"a": a["id"], "b": b["id"]} for a, b in itertools.pairwise(chunks)]
    for rows in batches(pairs, batch_size):
        out.append((LINK_CHUNKS, {"pairs": rows}))
    by_label: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in entities:
        by_label[e["label"]].append({"key": e["key"], "name": e["name"], "props": e.get("props") or {}})
    for label, rows in sorted(by_label.items()):
        rows.sort(key=lambda r: r["key"])  # one lock order for every writer: fewer deadlocks
        for batch in batches(rows, batch_size):
            out.append((merge_entities(label), {"rows": batch}))
    for rows in batches(mentions, batch_size):
        out.append((CREATE_MENTIONS, {"rows": rows}))
    out.append((ADD_CO_OCCURS, {"id": doc_id}))
    out += contribution_statements(doc_id, contributions, batch_size)
    return out


def delete_statements(doc_id: str) -> list[tuple[str, dict[str, Any]]]:
    """Remove a document from the graph: its co-occurrence share, chunks (with their
    mentions) and the document node.  Entities are shared and stay."""
    return [
        (SUBTRACT_CO_OCCURS, {"id": doc_id}),
        (DELETE_OLD_CHUNKS, {"id": doc_id}),
        *_delete_relations(doc_id),
        (DELETE_DOCUMENT, {"id": doc_id}),
    ]


def _delete_relations(
    doc_id: str, skip: frozenset[str] | set[str] = frozenset()
) -> list[tuple[str, dict[str, Any]]]:
    return [(delete_contributed_edges(t), {"id": doc_id}) for t in RELATION_TYPES if t not in skip]


# ---------------------------------------------------------------------------- reads
# ``docgraph graph``, GET /v1/entities and GET /v1/documents/{id}/graph: read-only, each
# column aliased (Neo4j orders by aliases after an aggregation), the same text on both
# sinks.  plugins/sinks/reads.py turns the rows into the typed results.

# the edges ingest writes itself; every other type is a plugin's, carrying ``document``
BUILT_IN_EDGES = ("PART_OF", "NEXT_CHUNK", "MENTIONS", "CO_OCCURS")

STATS_NODES = "MATCH (n) UNWIND labels(n) AS label RETURN label, count(*) AS n"
STATS_EDGES = "MATCH ()-[r]->() RETURN type(r) AS type, count(r) AS n"
EDGE_TYPES = "CALL db.relationshipTypes() YIELD relationshipType RETURN relationshipType"

_ENTITY_ROW = """
OPTIONAL MATCH (:Chunk)-[m:MENTIONS]->(e)
RETURN e.key AS key, labels(e) AS labels, e.name AS name, e.attack_id AS attack_id,
       e.aliases AS aliases, count(m) AS mentions
"""

ENTITIES_BY_KEY = "MATCH (e:Entity) WHERE e.key IN $keys" + _ENTITY_ROW

# the fallback when no key matched: names and aliases, case-insensitive (a scan, capped)
ENTITIES_BY_NAME = (
    """
MATCH (e:Entity)
WHERE toLower(e.name) = toLower($name) OR any(a IN coalesce(e.aliases, []) WHERE toLower(a) = toLower($name))
WITH e ORDER BY e.key LIMIT $cap"""
    + _ENTITY_ROW
)

ENTITY_DOCUMENTS = """
MATCH (d:Document)<-[:PART_OF]-(:Chunk)-[m:MENTIONS]->(:Entity {key: $key})
RETURN d.id AS id, d.name AS name, count(m) AS mentions
ORDER BY mentions DESC, id LIMIT $limit
"""

ENTITY_DOCUMENT_COUNT = """
MATCH (d:Document)<-[:PART_OF]-(:Chunk)-[:MENTIONS]->(:Entity {key: $key})
RETURN count(DISTINCT d) AS n
"""

ENTITY_CO_OCCURS = """
MATCH (:Entity {key: $key})-[r:CO_OCCURS]-(o:Entity)
RETURN o.key AS key, labels(o) AS labels, o.name AS name, r.count AS count, r.documents AS documents
ORDER BY count DESC, key LIMIT $limit
"""

_TYPED = """
WHERE NOT type(r) IN $built_in
RETURN type(r) AS type, coalesce(o.key, o.id) AS key, labels(o) AS labels, o.name AS name,
       count(r) AS count, count(DISTINCT r.document) AS documents
ORDER BY count DESC, type, key LIMIT $limit
"""

ENTITY_EDGES_OUT = "MATCH (:Entity {key: $key})-[r]->(o)" + _TYPED
ENTITY_EDGES_IN = "MATCH (o)-[r]->(:Entity {key: $key})" + _TYPED

_DOCUMENT_ROW = "RETURN d.id AS id, d.name AS name, d.type AS type, d.confidence AS confidence ORDER BY id"
DOCUMENT_BY_ID_OR_NAME = (
    "MATCH (d:Document) WHERE d.id = $ref OR d.name = $ref " + _DOCUMENT_ROW + " LIMIT 100"
)
DOCUMENT_BY_ID_PREFIX = "MATCH (d:Document) WHERE d.id STARTS WITH $ref " + _DOCUMENT_ROW + " LIMIT 2"

DOCUMENT_COUNTS = """
MATCH (d:Document {id: $id})
OPTIONAL MATCH (c:Chunk)-[:PART_OF]->(d)
OPTIONAL MATCH (c)-[m:MENTIONS]->(e:Entity)
RETURN count(DISTINCT c) AS chunks, count(DISTINCT e) AS entities, count(m) AS mentions
"""

DOCUMENT_ENTITIES = """
MATCH (:Document {id: $id})<-[:PART_OF]-(:Chunk)-[m:MENTIONS]->(e:Entity)
RETURN e.key AS key, labels(e) AS labels, e.name AS name, e.attack_id AS attack_id, count(m) AS mentions
ORDER BY mentions DESC, key LIMIT $limit
"""

# the document's share of CO_OCCURS (pairs in one of its chunks, as ingest counts them)
# beside the edge's count over the whole graph
DOCUMENT_CO_OCCURS = """
MATCH (:Document {id: $id})<-[:PART_OF]-(c:Chunk)-[:MENTIONS]->(a:Entity), (c)-[:MENTIONS]->(b:Entity)
WHERE a.key < b.key
WITH a, b, count(DISTINCT c) AS n
OPTIONAL MATCH (a)-[r:CO_OCCURS]->(b)
RETURN a.key AS a_key, labels(a) AS a_labels, a.name AS a_name,
       b.key AS b_key, labels(b) AS b_labels, b.name AS b_name, n, r.count AS total
ORDER BY n DESC, a_key, b_key LIMIT $limit
"""


def document_edges(edge_type: str) -> str:
    """A document's contributed edges of one type (indexed on ``document`` by both sinks)."""
    return f"""
MATCH (a)-[r:`{_checked(edge_type, "edge type")}`]->(b)
WHERE r.document = $id
RETURN coalesce(a.key, a.id) AS a_key, labels(a) AS a_labels, a.name AS a_name,
       coalesce(b.key, b.id) AS b_key, labels(b) AS b_labels, b.name AS b_name,
       r.stage AS stage, properties(r) AS props
ORDER BY a_key, b_key LIMIT $limit
"""
