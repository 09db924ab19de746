"""ingest: Document -> Chunk -> Entity graph with provenance, through a graph sink."""

from __future__ import annotations

from typing import Any

from docgraph.core.errors import PermanentError
from docgraph.core.stage import StageContext, StageResult
from docgraph.plugins.types import GraphContribution
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
        {"id": f"{doc_id}:{c['index']}", "index": c["index"], "page": c.get("page"), "text": c["text"]}
        for c in extracted["chunks"]
    ]
    entities: dict[str, dict[str, str]] = {}
    rows = []
    for m in mentions:
        key = f"{m['label']}:{' '.join(m['text'].split()).lower()}"
        entities.setdefault(key, {"key": key, "name": " ".join(m["text"].split()), "label": m["label"]})
        rows.append(
            {
                "chunk": f"{doc_id}:{m['chunk']}",
                "key": key,
                "start": m["start"],
                "end": m["end"],
                "source": m["source"],
            }
        )
    return {
        "document": {
            "id": doc_id,
            "sha256": doc.sha256 or "",
            "name": doc.name or "",
            "type": cls.get("label", "other"),
            "confidence": float(cls.get("confidence", 0.0)),
        },
        "chunks": chunks,
        "entities": list(entities.values()),
        "mentions": rows,
    }


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


def ingest(ctx: StageContext) -> StageResult:
    records = graph_records(ctx)
    extra = contributions(ctx, records["document"])
    sink = ctx.graph
    ctx.progress(0.1, f"writing {len(records['chunks'])} chunks")
    sink.write_document(**records, contributions=extra)
    output: dict[str, Any] = {
        "document_id": records["document"]["id"],
        "chunks": len(records["chunks"]),
        "entities": len(records["entities"]),
        "mentions": len(records["mentions"]),
    }
    if extra:
        output["contributed_nodes"] = sum(len(c.nodes) for c in extra)
        output["contributed_edges"] = sum(len(c.edges) for c in extra)
    return StageResult(output=output)
