"""FalkorDB sink: the graph module inside the embedded redis-server (native client).

FalkorDB runs each query atomically but not in isolation: two concurrent ``MERGE``
queries may both miss a node and both create it, and two ``SET r.count = r.count + n``
may lose one update.  So writers of one graph (threads, ingest processes) take turns
through a lock in the same Redis, and a writer that died holding it blocks the
others for at most :data:`WRITE_LOCK_TTL` seconds.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from docgraph.core.settings import RedisTlsSettings, parse_redis_url
from docgraph.plugins.hookspecs import hookimpl
from docgraph.plugins.sinks import reads
from docgraph.plugins.sinks.cypher import (
    COUNTS,
    contributed_edge_types,
    contributed_labels,
    delete_statements,
    document_statements,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from docgraph.plugins.entities.resolve import Resolver
    from docgraph.plugins.types import DocumentGraph, EntityInfo, GraphContribution, GraphStats

WRITE_LOCK_TTL = 30.0  # seconds; renewed while the writer runs its statements
WRITE_LOCK_WAIT = 120.0  # seconds a writer waits for its turn before its job is retried


def write_lock_key(graph: str) -> str:
    """The graph's write lock, hash-tagged with the graph key (same cluster node).
    A sink key, not a runtime one: plugins cannot import ``core.runtime.keys``."""
    return f"{{{graph}}}:write-lock"


class GraphBusy(Exception):
    """Another writer held the graph for longer than WRITE_LOCK_WAIT (retryable)."""


class FalkorDBSink:
    def __init__(self, redis_url: str, graph: str, tls: RedisTlsSettings | None = None) -> None:
        from falkordb import FalkorDB

        # the first node of DOCGRAPH_REDIS_URL; FalkorDB itself detects a cluster or a Sentinel
        target = parse_redis_url(redis_url)
        host, port = target.nodes[0] if target.nodes else ("127.0.0.1", 6379)
        options: dict[str, Any] = {}
        if target.tls:
            options = {"ssl": True, **(tls or RedisTlsSettings()).redis_py_options()}
        self.db = FalkorDB(
            host=host, port=port, username=target.username, password=target.password, **options
        )
        self.graph = self.db.select_graph(graph)
        self._indexed: set[str] = set()

    def ensure_schema(self, labels: set[str] | None = None, edge_types: set[str] | None = None) -> None:
        """Range indexes on what MERGE and the replacement of a document's edges look
        up: Document/Chunk ``id``, Entity and contributed labels' ``key``, contributed
        edge types' ``document``; each created once."""
        nodes = {"Document": "id", "Chunk": "id", "Entity": "key", **{label: "key" for label in labels or ()}}
        todo = [("node", label, prop) for label, prop in nodes.items() if label not in self._indexed]
        todo += [
            ("edge", t, "document") for t in sorted(edge_types or ()) if f"edge:{t}" not in self._indexed
        ]
        if not todo:
            return
        existing = str(self.graph.list_indices().result_set) if self._graph_exists() else ""
        for kind, name, prop in todo:
            if f"'{name}'" not in existing:
                create = (
                    self.graph.create_node_range_index
                    if kind == "node"
                    else self.graph.create_edge_range_index
                )
                try:
                    create(name, prop)
                except Exception as exc:  # created concurrently by another worker
                    if "already indexed" not in str(exc):
                        raise
            self._indexed.add(name if kind == "node" else f"edge:{name}")

    def _graph_exists(self) -> bool:
        return self.graph.name in self.db.list_graphs()

    def write_document(
        self,
        document: dict[str, Any],
        chunks: list[dict[str, Any]],
        entities: list[dict[str, Any]],
        mentions: list[dict[str, Any]],
        contributions: Sequence[GraphContribution] = (),
    ) -> None:
        # A retried ingest replays the whole sequence, which starts by removing the
        # document's old chunks and co-occurrence share.
        self.ensure_schema(contributed_labels(contributions), contributed_edge_types(contributions))
        self._run_in_turn(
            document_statements(document, chunks, entities, mentions, contributions=contributions)
        )

    def delete_document(self, doc_id: str) -> None:
        """Remove a document, its chunks and mentions; co-occurrence counts go down."""
        self.ensure_schema()
        self._run_in_turn(delete_statements(doc_id))

    def _run_in_turn(self, statements: list[tuple[str, dict[str, Any]]]) -> None:
        """Run one document's statements while holding the graph's write lock."""
        from redis.exceptions import LockError

        key = write_lock_key(self.graph.name)
        lock = self.db.connection.lock(key, timeout=WRITE_LOCK_TTL, blocking_timeout=WRITE_LOCK_WAIT)
        if not lock.acquire():
            raise GraphBusy(
                f"the FalkorDB graph {self.graph.name!r} stayed locked by another writer for "
                f"{WRITE_LOCK_WAIT:.0f} s (Redis key {key!r}); the job is retried"
            )
        try:
            renewed = time.monotonic()
            for query, params in statements:
                if time.monotonic() - renewed > WRITE_LOCK_TTL / 3:
                    lock.reacquire()  # LockNotOwnedError if it expired: the job is retried
                    renewed = time.monotonic()
                self.graph.query(query, params)
        finally:
            with contextlib.suppress(LockError):  # expired meanwhile: nothing to release
                lock.release()

    def counts(self) -> dict[str, int]:
        if not self._graph_exists():  # nothing ingested yet (every document failed): no graph key
            return dict.fromkeys(COUNTS, 0)
        return {name: self.graph.ro_query(query).result_set[0][0] for name, query in COUNTS.items()}

    def _read(self, query: str, params: Mapping[str, Any]) -> list[list[Any]]:
        """Rows of a read-only query (``GRAPH.RO_QUERY``: never takes the write lock)."""
        return [list(row) for row in self.graph.ro_query(query, dict(params)).result_set]

    def stats(self) -> GraphStats:
        from docgraph.plugins.types import GraphStats

        return reads.stats(self._read) if self._graph_exists() else GraphStats()

    def entity(self, name: str, resolver: Resolver | None = None, limit: int = 10) -> EntityInfo | None:
        return reads.entity(self._read, name, resolver, limit) if self._graph_exists() else None

    def document(self, id_or_name: str, limit: int = 50) -> DocumentGraph | None:
        return reads.document(self._read, id_or_name, limit) if self._graph_exists() else None

    def close(self) -> None:
        self.db.close()


@hookimpl(trylast=True)
def docgraph_graph_sink(settings: Any) -> FalkorDBSink | None:
    if settings.graph_sink != "falkordb":
        return None
    return FalkorDBSink(settings.redis_url, settings.graph_name, settings.redis_tls)
