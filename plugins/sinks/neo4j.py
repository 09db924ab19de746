"""Neo4j sink: the official driver, one managed write transaction per document.

``execute_write`` retries transient errors (leader switches, deadlocks,
connection drops) with the driver's own backoff; the transaction replaces
the document's chunks and mentions and MERGEs entities on stable keys, so a
redelivered ingest leaves exactly the same graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from docgraph.plugins.hookspecs import hookimpl
from docgraph.plugins.sinks import reads
from docgraph.plugins.sinks.cypher import (
    COUNTS,
    LABEL,
    contributed_edge_types,
    contributed_labels,
    delete_statements,
    document_statements,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from docgraph.plugins.entities.resolve import Resolver
    from docgraph.plugins.types import DocumentGraph, EntityInfo, GraphContribution, GraphStats

CONSTRAINTS = (
    "CREATE CONSTRAINT document_id IF NOT EXISTS FOR (d:Document) REQUIRE d.id IS UNIQUE",
    "CREATE CONSTRAINT chunk_id IF NOT EXISTS FOR (c:Chunk) REQUIRE c.id IS UNIQUE",
    "CREATE CONSTRAINT entity_key IF NOT EXISTS FOR (e:Entity) REQUIRE e.key IS UNIQUE",
)


class Neo4jSink:
    def __init__(
        self, uri: str, user: str, password: str, database: str, retry_seconds: float = 15.0
    ) -> None:
        import neo4j

        # the driver retries transient errors for up to retry_seconds; after
        # that the runtime's per-stage retry policy (backoff in Redis) takes over
        self.driver = neo4j.GraphDatabase.driver(
            uri,
            auth=(user, password),
            max_transaction_retry_time=retry_seconds,
            connection_acquisition_timeout=retry_seconds,
        )
        self.database = database
        self._schema_ready = False
        self._constrained: set[str] = set()
        self._constrained_edges: set[str] = set()

    def ensure_schema(self, labels: set[str] | None = None, edge_types: set[str] | None = None) -> None:
        """The core constraints, plus a uniqueness constraint on ``key`` per
        contributed node label and an index on ``document`` per contributed edge
        type (schema changes cannot share the data transaction)."""
        if not self._schema_ready:
            for statement in CONSTRAINTS:
                self.driver.execute_query(statement, database_=self.database)
            self._schema_ready = True
        for label in sorted(set(labels or ()) - self._constrained):
            if not LABEL.match(label):
                raise ValueError(f"node label {label!r} is not a valid graph identifier")
            self.driver.execute_query(
                f"CREATE CONSTRAINT contributed_{label}_key IF NOT EXISTS "
                f"FOR (n:`{label}`) REQUIRE n.key IS UNIQUE",
                database_=self.database,
            )
            self._constrained.add(label)
        for edge_type in sorted(set(edge_types or ()) - self._constrained_edges):
            if not LABEL.match(edge_type):
                raise ValueError(f"edge type {edge_type!r} is not a valid graph identifier")
            self.driver.execute_query(
                f"CREATE INDEX contributed_{edge_type}_document IF NOT EXISTS "
                f"FOR ()-[r:`{edge_type}`]-() ON (r.document)",
                database_=self.database,
            )
            self._constrained_edges.add(edge_type)

    def write_document(
        self,
        document: dict[str, Any],
        chunks: list[dict[str, Any]],
        entities: list[dict[str, Any]],
        mentions: list[dict[str, Any]],
        contributions: Sequence[GraphContribution] = (),
    ) -> None:
        self.ensure_schema(contributed_labels(contributions), contributed_edge_types(contributions))
        statements = document_statements(document, chunks, entities, mentions, contributions=contributions)

        def work(tx: Any) -> None:
            for query, params in statements:
                tx.run(query, params).consume()

        with self.driver.session(database=self.database) as session:
            session.execute_write(work)

    def delete_document(self, doc_id: str) -> None:
        """Remove a document, its chunks and mentions; co-occurrence counts go down."""
        self.ensure_schema()
        statements = delete_statements(doc_id)

        def work(tx: Any) -> None:
            for query, params in statements:
                tx.run(query, params).consume()

        with self.driver.session(database=self.database) as session:
            session.execute_write(work)

    def counts(self) -> dict[str, int]:
        return {
            name: self.driver.execute_query(query, database_=self.database).records[0][0]
            for name, query in COUNTS.items()
        }

    def _read(self, query: str, params: Mapping[str, Any]) -> list[list[Any]]:
        """Rows of a read query, routed to a reader in a cluster."""
        import neo4j

        records, _, _ = self.driver.execute_query(
            query, dict(params), database_=self.database, routing_=neo4j.RoutingControl.READ
        )
        return [list(r.values()) for r in records]

    def stats(self) -> GraphStats:
        return reads.stats(self._read)

    def entity(self, name: str, resolver: Resolver | None = None, limit: int = 10) -> EntityInfo | None:
        return reads.entity(self._read, name, resolver, limit)

    def document(self, id_or_name: str, limit: int = 50) -> DocumentGraph | None:
        return reads.document(self._read, id_or_name, limit)

    def close(self) -> None:
        self.driver.close()


@hookimpl
def docgraph_graph_sink(settings: Any) -> Neo4jSink | None:
    if settings.graph_sink != "neo4j":
        return None
    return Neo4jSink(
        settings.neo4j_uri,
        settings.neo4j_user,
        settings.neo4j_password,
        settings.neo4j_database,
        settings.neo4j_retry_seconds,
    )
