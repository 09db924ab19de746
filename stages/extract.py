"""extract: document bytes -> normalized text and chunks (stored as an artifact)."""

from __future__ import annotations

from docgraph.core.errors import PermanentError
from docgraph.core.stage import StageContext, StageResult

OCR_OUTPUT = ("ocr_pages", "ocr_mean_confidence")


def extract(ctx: StageContext) -> StageResult:
    doc = ctx.envelope.document
    if doc is None:
        raise PermanentError("the job names no document; submit one (docgraph submit FILE)")
    objects, pm = ctx.objects, ctx.plugins
    ctx.progress(0.05, "reading")
    data = objects.read(doc.uri, ctx.settings.max_document_bytes)
    content_type = pm.hook.docgraph_sniff_content_type(head=data, name=doc.name)
    ctx.progress(0.2, f"extracting {content_type}")
    extracted = pm.hook.docgraph_extract_text(data=data, content_type=content_type, settings=ctx.settings)
    if extracted is None:
        raise PermanentError(f"no extractor handles {content_type}")
    ctx.progress(0.9, "storing text")
    uri = objects.put_json(f"jobs/{ctx.job_id}/extract.json", extracted.model_dump())
    output = {
        "artifact": uri,
        "content_type": content_type,
        "chars": len(extracted.text),
        "chunks": len(extracted.chunks),
        "pages": extracted.pages,
    }
    # pages read with OCR and Tesseract's mean word confidence: visible in `docgraph status`
    output.update({key: extracted.metadata[key] for key in OCR_OUTPUT if key in extracted.metadata})
    return StageResult(output=output)


def load_extracted(ctx: StageContext) -> dict:
    """The extract stage's artifact for this job (text + chunks)."""
    return ctx.objects.get_json(ctx.output_of("extract")["artifact"])
