"""Graph contributions are validated before any Cypher is built (labels and types
cannot be parameters) and become ordered, batched, parameterised statements."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from docgraph.plugins.sinks.cypher import contribution_statements, document_statements
from docgraph.plugins.types import GraphContribution, GraphEdge, GraphNode, NodeRef


@pytest.mark.parametrize("label", ["Word`) DETACH DELETE (n", "1abc", "", "a b"])
def test_labels_and_types_that_are_not_identifiers_are_refused(label: str) -> None:
    with pytest.raises(ValidationError, match="not a graph identifier"):
        GraphNode(label=label, key="k")
    with pytest.raises(ValidationError, match="not a graph identifier"):
        GraphEdge(type=label, source=NodeRef.document(), target=NodeRef(label="Word", key="k"))


def test_ingest_owned_labels_and_provenance_properties_are_refused() -> None:
    with pytest.raises(ValidationError, match="written by ingest"):
        GraphNode(label="Chunk", key="x")
    with pytest.raises(ValidationError, match="provenance"):
        GraphEdge(
            type="T", source=NodeRef.document(), target=NodeRef(label="W", key="k"), properties={"stage": "x"}
        )


def test_statements_merge_nodes_then_replace_edges_with_provenance() -> None:
    a = GraphContribution(
        stage="one",
        nodes=[GraphNode(label="Word", key="b", properties={"x": 1}), GraphNode(label="Word", key="a")],
        edges=[
            GraphEdge(type="HAS", source=NodeRef.document(), target=NodeRef(label="Word", key="a")),
            GraphEdge(type="IN", source=NodeRef.chunk(2), target=NodeRef(label="Word", key="b")),
        ],
    )
    b = GraphContribution(stage="two", nodes=[GraphNode(label="Word", key="b", properties={"y": 2})])
    out = contribution_statements("doc1", [a, b])
    kinds = [q.split()[0] + " " + q.split()[1] for q, _ in out]
    assert kinds == [
        "UNWIND $rows",
        "MATCH ()-[r:`HAS`]->()",
        "MATCH ()-[r:`IN`]->()",
        "UNWIND $rows",
        "UNWIND $rows",
    ]
    nodes = out[0][1]["rows"]
    assert nodes == [{"key": "a", "props": {}}, {"key": "b", "props": {"x": 1, "y": 2}}]  # one row per key
    assert all(p == {"id": "doc1"} for _, p in out[1:3])
    chunk_edge = next(p for q, p in out if "(a:Chunk {id: e.a})" in q)
    assert chunk_edge["rows"] == [{"a": "doc1:2", "b": "b", "props": {}, "stage": "one"}]
    # appended after the document's own statements, so chunk endpoints exist
    full = document_statements({"id": "doc1"}, [], [], [], contributions=[a])
    assert full[-len(contribution_statements("doc1", [a])) :] == contribution_statements("doc1", [a])
