"""ingest: Document -> Chunk -> Entity graph with provenance, through a graph sink.

Mentions are keyed by their canonical entity (plugins/entities/resolve.py): every
alias of one ATT&CK group, and every spelling of one indicator, is one node.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from typing import Any

from docgraph.core.errors import PermanentError
from docgraph.core.stage import StageContext, StageResult
from docgraph.plugins.entities.resolve import Resolver, resolver_for
from docgraph.plugins.types import GraphContribution, GraphEdge, NodeRef, Relation, RelationMention
from docgraph.stages.extract import load_extracted


def graph_records(ctx: StageContext) -> dict[str, Any]:
    """The rows a sink writes, derived from the job's earlier outputs."""
    doc = ctx.envelope.document
    if doc is None:
        raise PermanentError("the job names no document")
    extracted = load_extracted(ctx)
    doc_id = doc.sha256 or ctx.job_id
    cls = ctx.output_of("classify")
    ner_out = ctx.output_of("ner")
    mentions = ctx.objects.get_json(ner_out["artifact"]) if ner_out.get("artifact") else []
    chunks = [
        {
            "id": f"{doc_id}:{c['index']}",
            "index": c["index"],
            "page": c.get("page"),
            "text": c["text"],
            "start": c["start"],
        }
        for c in extracted["chunks"]
    ]
    entities, rows = resolve_mentions(doc_id, mentions, resolver_for(ctx.settings, ctx.plugins))
    return {
        "document": {
            "id": doc_id,
            "sha256": doc.sha256 or "",
            "name": doc.name or "",
            "type": cls.get("label", "other"),
            "confidence": float(cls.get("confidence", 0.0)),
        },
        "chunks": chunks,
        "entities": entities,
        "mentions": rows,
    }


def resolve_mentions(
    doc_id: str, mentions: list[dict[str, Any]], resolver: Resolver
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The canonical entities of a document's mentions (one row per key) and the
    mention rows pointing at them."""
    entities: dict[str, dict[str, Any]] = {}
    rows = []
    for m in mentions:
        entity = resolver.resolve(m["text"], m["label"])
        entities.setdefault(entity.key, entity.row())
        rows.append(
            {
                "chunk": f"{doc_id}:{m['chunk']}",
                "key": entity.key,
                "start": m["start"],
                "end": m["end"],
                "source": m["source"],
                "text": m["text"],
                "label": m["label"],
            }
        )
    return list(entities.values()), rows


def contributions(ctx: StageContext, document: dict[str, Any]) -> list[GraphContribution]:
    """Plugins' nodes and edges for this job (``docgraph_graph_contribution``)."""
    out: list[GraphContribution] = []
    hook = getattr(ctx.plugins.hook, "docgraph_graph_contribution", None)
    if hook is None:  # a plugin manager without docgraph's hookspecs
        return out
    for result in hook(ctx=ctx, document=document):
        if result is None:
            continue
        if not isinstance(result, GraphContribution):
            result = GraphContribution.model_validate(result)
        out.append(result)
    return out


EVIDENCE_CHARS = 500


def relation_contribution(ctx: StageContext, records: dict[str, Any]) -> GraphContribution | None:
    """Typed relations (``docgraph_extract_relations``) as entity-to-entity edges."""
    return relation_edges(typed_relations(records, ctx.plugins, ctx.settings))


def relation_edges(found: dict[tuple[str, str, str], dict[str, Any]]) -> GraphContribution | None:
    """:func:`typed_relations`' findings as the contribution a sink writes."""
    if not found:
        return None
    edges = [
        GraphEdge(
            type=t, source=NodeRef(label="Entity", key=a), target=NodeRef(label="Entity", key=b), properties=p
        )
        for (a, t, b), p in sorted(found.items())
    ]
    return GraphContribution(stage="ingest", edges=edges)


def relation_mentions(records: dict[str, Any]) -> list[tuple[dict[str, Any], list[RelationMention]]]:
    """Each chunk with its mentions in text order, as relation extractors see them: offsets
    in the chunk, the canonical entity's key and graph label."""
    labels = {e["key"]: e["label"] for e in records["entities"]}
    by_chunk: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for m in records["mentions"]:
        by_chunk[m["chunk"]].append(m)
    out = []
    for chunk in records["chunks"]:
        offset = chunk["start"]
        rows = sorted(by_chunk.get(chunk["id"], ()), key=lambda m: m["start"])
        mentions = [
            RelationMention(
                text=m["text"],
                label=labels[m["key"]],
                ner_label=m["label"],
                key=m["key"],
                start=m["start"] - offset,
                end=m["end"] - offset,
            )
            for m in rows
        ]
        out.append((chunk, mentions))
    return out


def typed_relations(
    records: dict[str, Any], plugins: Any, settings: Any
) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(source key, type, target key) -> edge properties: one per pair, type and document,
    with the evidence of the most confident finding and a count.  What ingest writes, and
    what bench/relations_eval.py measures."""
    hook = getattr(plugins.hook, "docgraph_extract_relations", None)
    if hook is None or not settings.relations.enabled:
        return {}
    floor = settings.relations.min_confidence
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    for chunk, mentions in relation_mentions(records):
        if len(mentions) < 2:
            continue
        offset = chunk["start"]
        for group in hook(text=chunk["text"], mentions=mentions, settings=settings):
            for item in group or ():
                rel = item if isinstance(item, Relation) else Relation.model_validate(item)
                if max(rel.source, rel.target) >= len(mentions):
                    raise PermanentError(
                        f"relation extractor {rel.extractor!r} returned mention index "
                        f"{max(rel.source, rel.target)}, but the chunk has {len(mentions)} mentions"
                    )
                a, b = mentions[rel.source].key, mentions[rel.target].key
                if rel.confidence < floor or a == b:
                    continue
                props = {
                    "chunk": chunk["index"],
                    "start": offset + rel.start,
                    "end": offset + rel.end,
                    "evidence": chunk["text"][rel.start : rel.end][:EVIDENCE_CHARS],
                    "extractor": rel.extractor,
                    "confidence": rel.confidence,
                    "count": 1,
                }
                seen = found.get((a, rel.type, b))
                if seen is None:
                    found[(a, rel.type, b)] = props
                else:
                    props["count"] = seen["count"] + 1
                    if props["confidence"] > seen["confidence"]:
                        found[(a, rel.type, b)] = props
                    else:
                        seen["count"] = props["count"]
    return found


def _ref(ref: NodeRef) -> str:
    return ref.key if ref.label == "Entity" else f"{ref.label}:{ref.key}"


def document_graph(records: dict[str, Any], extra: list[GraphContribution]) -> dict[str, Any]:
    """What this document adds to the graph, for people to read (the dashboard's job
    page): its entities with their mention counts and spellings, and its relations — the entity
    pairs it has in one chunk (its share of ``CO_OCCURS``) and plugins' edges."""
    mentioned = Counter(m["key"] for m in records["mentions"])
    written: dict[str, set[str]] = defaultdict(set)
    for m in records["mentions"]:
        written[m["key"]].add(m["text"])
    entities = [
        {**e, "mentions": mentioned[e["key"]], "written": sorted(written[e["key"]])}
        for e in records["entities"]
    ]
    entities.sort(key=lambda e: (-e["mentions"], e["label"], e["name"]))
    in_chunk: dict[str, set[str]] = defaultdict(set)
    for m in records["mentions"]:
        in_chunk[m["chunk"]].add(m["key"])
    pairs: Counter[tuple[str, str]] = Counter()
    for keys in in_chunk.values():
        pairs.update(itertools.combinations(sorted(keys), 2))
    relations: list[dict[str, Any]] = [
        {"type": "CO_OCCURS", "source": a, "target": b, "properties": {"chunks": n}, "stage": "ingest"}
        for (a, b), n in sorted(pairs.items(), key=lambda item: (-item[1], item[0]))
    ]
    for c in extra:
        relations += [
            {
                "type": e.type,
                "source": _ref(e.source),
                "target": _ref(e.target),
                "properties": e.properties,
                "stage": c.stage,
            }
            for e in c.edges
        ]
    return {"entities": entities, "relations": relations}


def ingest(ctx: StageContext) -> StageResult:
    records = graph_records(ctx)
    extra = contributions(ctx, records["document"])
    typed = relation_contribution(ctx, records)
    if typed is not None:
        extra.insert(0, typed)
    sink = ctx.graph
    ctx.progress(0.1, f"writing {len(records['chunks'])} chunks")
    sink.write_document(**records, contributions=extra)
    graph = document_graph(records, extra)
    output: dict[str, Any] = {
        "document_id": records["document"]["id"],
        "chunks": len(records["chunks"]),
        "entities": len(records["entities"]),
        "mentions": len(records["mentions"]),
        "relations": len(graph["relations"]),
        "artifact": ctx.objects.put_json(f"jobs/{ctx.job_id}/graph.json", graph),
    }
    if typed is not None:
        output["typed_relations"] = len(typed.edges)
    if extra:
        output["contributed_nodes"] = sum(len(c.nodes) for c in extra)
        output["contributed_edges"] = sum(len(c.edges) for c in extra)
    return StageResult(output=output)
