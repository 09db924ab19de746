"""ner: entity mentions per chunk, model + cyber/ICS rules, stored as an artifact."""

from __future__ import annotations

import logging
import threading
from functools import lru_cache
from typing import Any

from docgraph.core.stage import StageContext, StageResult
from docgraph.stages.extract import load_extracted

log = logging.getLogger("docgraph.ner")
_lock = threading.Lock()  # one inference at a time per process: spaCy pipelines are not thread-safe


def _model(path: str | None) -> Any:
    with _lock:
        return _load_model(path)


@lru_cache(maxsize=2)
def _load_model(path: str | None) -> Any:
    """Loaded once per process (never per job); None when no model is built."""
    from docgraph.stages.ner.model import NerModelNotFound, load_ner_model

    try:
        return load_ner_model(path)
    except NerModelNotFound as exc:
        log.warning("NER model unavailable, using rules only: %s", exc)
        return None


def _patterns(ctx: StageContext) -> list[Any]:
    pm = ctx.plugins
    return [p for group in pm.hook.docgraph_entity_patterns(settings=ctx.settings) for p in group]


def ner(ctx: StageContext) -> StageResult:
    from docgraph.stages.ner.pack import find_mentions

    extracted = load_extracted(ctx)
    chunks = extracted["chunks"]
    model = ctx.settings.ner.model
    nlp = _model(str(model) if model is not None else None)
    ctx.progress(0.1, f"{len(chunks)} chunks")
    with _lock:
        per_chunk = find_mentions(
            nlp,
            [c["text"] for c in chunks],
            _patterns(ctx),
            use_model=nlp is not None,
            chunk_starts=[c["start"] for c in chunks],
            chunk_indexes=[c["index"] for c in chunks],
        )
    mentions = [m.model_dump() for ms in per_chunk for m in ms]
    uri = ctx.objects.put_json(f"jobs/{ctx.job_id}/ner.json", mentions)
    labels: dict[str, int] = {}
    for m in mentions:
        labels[m["label"]] = labels.get(m["label"], 0) + 1
    return StageResult(output={"artifact": uri, "mentions": len(mentions), "labels": labels})
