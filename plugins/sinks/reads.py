"""The graph reads both sinks answer (``stats``, ``entity``, ``document``), written once.

A sink passes a ``read(query, params) -> rows`` callable (rows as lists, columns in
the order the Cypher in :mod:`cypher` returns them); everything else — which keys a
name may mean, ranking, limits, the shape of the result — lives here, so FalkorDB
and Neo4j answer the same question with the same result.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from docgraph.plugins.entities.normalize import VALUE_LABELS, canonical
from docgraph.plugins.sinks import cypher
from docgraph.plugins.types import (
    DocumentEntity,
    DocumentGraph,
    DocumentRelation,
    EntityDocument,
    EntityInfo,
    EntityRelation,
    GraphStats,
    NodeSummary,
)

if TYPE_CHECKING:
    from docgraph.plugins.entities.resolve import Resolver

Read = Callable[[str, Mapping[str, Any]], Sequence[Sequence[Any]]]

MAX_LIMIT = 1000
NAME_CAP = 20  # entities a case-insensitive name match considers


def _limit(limit: int) -> int:
    if not 1 <= int(limit) <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
    return int(limit)


def primary_label(labels: Sequence[str] | None) -> str:
    """The most specific label: ``Group`` for an ``(:Entity:Group)`` (labels come in no set order)."""
    specific = sorted(x for x in labels or () if x != "Entity")
    return specific[0] if specific else (labels[0] if labels else "")


def _node(key: Any, labels: Any, name: Any) -> NodeSummary:
    return NodeSummary(key=str(key), label=primary_label(labels), name=None if name is None else str(name))


def stats(read: Read) -> GraphStats:
    """Nodes by label and edges by type, each sorted by name."""
    nodes = {str(label): int(n) for label, n in read(cypher.STATS_NODES, {})}
    edges = {str(kind): int(n) for kind, n in read(cypher.STATS_EDGES, {})}
    return GraphStats(nodes=dict(sorted(nodes.items())), edges=dict(sorted(edges.items())))


def candidate_keys(name: str, resolver: Resolver | None) -> tuple[list[str], list[str]]:
    """``(resolved, exact)``: the keys the resolver maps ``name`` to (every canonical entity
    it is an alias of), and the keys it may be verbatim — itself (``attack:G0007``) and
    the key an unresolved indicator or vulnerability of that text gets."""
    resolved = [e.key for e in resolver.lookup(name)] if resolver is not None else []
    exact = [name, *(f"{label}:{canonical(name, label)[1]}" for label in sorted(VALUE_LABELS))]
    return resolved, [k for k in dict.fromkeys(exact) if k not in resolved]


def entity(read: Read, name: str, resolver: Resolver | None = None, limit: int = 10) -> EntityInfo | None:
    """The canonical entity ``name`` means, or None.

    The resolver's answer wins, then an exact key, then a case-insensitive match on
    names and aliases; several matches: the most mentioned (the rest are
    ``alternatives``).  ``limit`` caps documents, CO_OCCURS relations and other
    relations each."""
    limit = _limit(limit)
    name = name.strip()
    if not name:
        return None
    resolved, exact = candidate_keys(name, resolver)
    rows = read(cypher.ENTITIES_BY_KEY, {"keys": resolved + exact})
    how = "resolver"
    found = [r for r in rows if r[0] in resolved]
    if not found:
        found, how = list(rows), "key"
    if not found:
        found, how = list(read(cypher.ENTITIES_BY_NAME, {"name": name, "cap": NAME_CAP})), "name"
    if not found:
        return None
    found.sort(key=lambda r: (-int(r[5]), str(r[0])))
    key, labels, display, attack_id, aliases, mentions = found[0]
    documents = [
        EntityDocument(id=str(d), name=n, mentions=int(m))
        for d, n, m in read(cypher.ENTITY_DOCUMENTS, {"key": key, "limit": limit})
    ]
    [[document_count]] = read(cypher.ENTITY_DOCUMENT_COUNT, {"key": key})
    relations = [
        EntityRelation(
            type="CO_OCCURS",
            direction="both",
            node=_node(k, lab, n),
            count=int(c),
            documents=int(d or 0),
        )
        for k, lab, n, c, d in read(cypher.ENTITY_CO_OCCURS, {"key": key, "limit": limit})
    ]
    typed: list[EntityRelation] = []
    for direction, query in (("out", cypher.ENTITY_EDGES_OUT), ("in", cypher.ENTITY_EDGES_IN)):
        params = {"key": key, "limit": limit, "built_in": list(cypher.BUILT_IN_EDGES)}
        typed += [
            EntityRelation(
                type=str(t), direction=direction, node=_node(k, lab, n), count=int(c), documents=int(d)
            )
            for t, k, lab, n, c, d in read(query, params)
        ]
    typed.sort(key=lambda r: (-r.count, r.type, r.direction, r.node.key))
    return EntityInfo(
        key=str(key),
        label=primary_label(labels),
        name=str(display),
        attack_id=attack_id,
        aliases=list(aliases or []),
        matched_by=how,
        mentions=int(mentions),
        document_count=int(document_count),
        documents=documents,
        relations=relations + typed[:limit],
        alternatives=[_node(r[0], r[1], r[2]) for r in found[1:]],
    )


def document(read: Read, id_or_name: str, limit: int = 50) -> DocumentGraph | None:
    """A document by id (sha256), name, or a unique id prefix of 8+ characters, or None.

    ``limit`` caps its entities (most mentioned first), CO_OCCURS pairs and
    contributed edges of each type."""
    limit = _limit(limit)
    ref = id_or_name.strip()
    if not ref:
        return None
    rows = list(read(cypher.DOCUMENT_BY_ID_OR_NAME, {"ref": ref}))
    by_id = [r for r in rows if r[0] == ref]
    if by_id:
        rows = by_id
    elif not rows and len(ref) >= 8:
        rows = list(read(cypher.DOCUMENT_BY_ID_PREFIX, {"ref": ref.lower()}))
        if len(rows) > 1:
            raise ValueError(f"id prefix {ref!r} names more than one document; give more characters")
    if not rows:
        return None
    doc_id, name, kind, confidence = rows[0]
    [[chunks, entity_count, mention_count]] = read(cypher.DOCUMENT_COUNTS, {"id": doc_id})
    entities = [
        DocumentEntity(key=str(k), label=primary_label(lab), name=str(n), attack_id=a, mentions=int(m))
        for k, lab, n, a, m in read(cypher.DOCUMENT_ENTITIES, {"id": doc_id, "limit": limit})
    ]
    relations = [
        DocumentRelation(
            type="CO_OCCURS",
            source=_node(ak, al, an),
            target=_node(bk, bl, bn),
            count=int(n),
            total=None if total is None else int(total),
            stage="ingest",
        )
        for ak, al, an, bk, bl, bn, n, total in read(
            cypher.DOCUMENT_CO_OCCURS, {"id": doc_id, "limit": limit}
        )
    ]
    edge_types = sorted({str(t) for [t] in read(cypher.EDGE_TYPES, {})} - set(cypher.BUILT_IN_EDGES))
    for edge_type in edge_types:
        if not cypher.LABEL.match(edge_type):
            continue  # not one docgraph wrote (it validates every type it writes)
        for ak, al, an, bk, bl, bn, stage, props in read(
            cypher.document_edges(edge_type), {"id": doc_id, "limit": limit}
        ):
            properties = {k: v for k, v in dict(props or {}).items() if k not in ("document", "stage")}
            relations.append(
                DocumentRelation(
                    type=edge_type,
                    source=_node(ak, al, an),
                    target=_node(bk, bl, bn),
                    count=1,
                    stage=stage,
                    properties=dict(sorted(properties.items())),
                )
            )
    return DocumentGraph(
        id=str(doc_id),
        name=name,
        type=kind,
        confidence=None if confidence is None else float(confidence),
        chunks=int(chunks),
        entity_count=int(entity_count),
        mention_count=int(mention_count),
        entities=entities,
        relations=relations,
        same_name=[str(r[0]) for r in rows[1:]],
    )


# ------------------------------------------------------- for the CLI and the API


def open_reader(settings: Any, pm: Any) -> tuple[Any, Resolver]:
    """The graph sink the settings name (``docgraph_graph_sink``, as workers build it) and
    the alias resolver ingest uses, for the read commands and endpoints.

    Raises LookupError when no plugin provides the configured sink."""
    from docgraph.plugins.entities.resolve import resolver_for

    sink = pm.hook.docgraph_graph_sink(settings=settings)
    if sink is None:
        raise LookupError(
            f"no installed plugin provides the graph sink DOCGRAPH_GRAPH_SINK={settings.graph_sink!r}"
        )
    for method in ("stats", "entity", "document"):
        if not callable(getattr(sink, method, None)):
            sink.close()
            raise LookupError(
                f"the graph sink {type(sink).__name__} (DOCGRAPH_GRAPH_SINK={settings.graph_sink!r}) "
                f"cannot answer reads: it has no {method}()"
            )
    return sink, resolver_for(settings, pm)


def unreachable(settings: Any, exc: BaseException) -> str | None:
    """One line naming the setting to fix when ``exc`` means the graph does not answer
    (down, wrong address, wrong credentials); None for any other error."""
    import redis.exceptions

    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if settings.graph_sink == "neo4j":
        try:
            import neo4j.exceptions
        except ImportError:  # pragma: no cover - the neo4j extra is always installed here
            return None
        if isinstance(exc, neo4j.exceptions.AuthError):
            return (
                f"Neo4j at {settings.neo4j_uri} refused the credentials ({reason}); "
                "check DOCGRAPH_NEO4J_USER and DOCGRAPH_NEO4J_PASSWORD"
            )
        if isinstance(exc, (neo4j.exceptions.ServiceUnavailable, neo4j.exceptions.SessionExpired, OSError)):
            return (
                f"cannot reach Neo4j at {settings.neo4j_uri} ({reason}); start it or point "
                "DOCGRAPH_NEO4J_URI at one that answers (DOCGRAPH_GRAPH_SINK=neo4j)"
            )
        return None
    if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)):
        return (
            f"cannot reach the FalkorDB graph {settings.graph_name!r} ({reason}); it lives in the Redis "
            "of DOCGRAPH_REDIS_URL (or the embedded one of `docgraph run`)"
        )
    if isinstance(exc, redis.exceptions.ResponseError) and "unknown command" in reason.lower():
        return (
            f"the Redis of DOCGRAPH_REDIS_URL has no FalkorDB module ({reason}); load it, or set "
            "DOCGRAPH_GRAPH_SINK=neo4j"
        )
    return None
