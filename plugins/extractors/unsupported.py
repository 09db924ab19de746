"""The last extractor asked: refuses every type no other plugin handled.

Runs after all others (``trylast``), so a plugin that supports a new type is
always asked first.  Empty and oversized input get their own reason whatever
the type; anything else gets "unsupported" with the supported types listed and,
for formats docgraph recognises, what to convert them to.
"""

from __future__ import annotations

from typing import Any

from docgraph.plugins.extractors import formats, text
from docgraph.plugins.extractors.errors import UNSUPPORTED_TYPE, ExtractionError
from docgraph.plugins.extractors.limits import Limits
from docgraph.plugins.extractors.ocr import OcrOptions
from docgraph.plugins.hookspecs import hookimpl
from docgraph.plugins.types import ExtractedDocument

SUPPORTED = (
    ("PDF", formats.PDF[0]),
    ("Word .docx", formats.DOCX[0]),
    ("HTML", formats.HTML[0]),
    ("plain text", text.CONTENT_TYPES[0]),
    ("Markdown", text.CONTENT_TYPES[1]),
)

_HINTS = {
    "application/octet-stream": "it is not a recognised document format (binary data)",
    "application/x-ole-storage": "it is a legacy Office file (.doc/.xls/.ppt) or a "
    "password-protected Office document; remove any password and save it as .docx or PDF",
    "application/msword": "it is a legacy Word .doc file; save it as .docx or PDF",
    "application/rtf": "it is an RTF file; save it as .docx or PDF",
    "application/zip": "it is a ZIP archive, not a Word document; unpack it and submit the documents inside",
    "application/xml": "it is XML, not (X)HTML; submit the document it describes as PDF, DOCX, HTML or text",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "it is an Excel "
    "workbook; export the sheets as PDF",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "it is a "
    "PowerPoint presentation; export it as PDF",
}


def supported_types(ocr: bool = False) -> str:
    kinds = [f"{label} ({mime})" for label, mime in SUPPORTED]
    if ocr:
        kinds.append(f"images with OCR ({', '.join(formats.IMAGES)})")
    return ", ".join(kinds)


def unsupported_error(content_type: str, ocr_unavailable: str | None = None) -> ExtractionError:
    """``ocr_unavailable``: why images are not read with OCR here (None: they are)."""
    mime = text.base_type(content_type) or "unknown"
    if mime in _HINTS:
        hint = _HINTS[mime]
    elif mime in formats.IMAGES and ocr_unavailable:
        hint = (
            f"it is an image; extracting text from it needs OCR; {ocr_unavailable}. "
            "Or run OCR first (e.g. ocrmypdf, after img2pdf) and submit the resulting PDF"
        )
    elif mime.startswith("image/"):
        hint = (
            "it is an image in a format docgraph does not OCR; save it as PNG, JPEG or TIFF, "
            "or run OCR first (e.g. ocrmypdf, after img2pdf) and submit the resulting PDF"
        )
    elif mime.startswith("application/vnd.oasis.opendocument"):
        hint = "it is an OpenDocument file; save it as .docx or PDF"
    else:
        hint = "convert it to one of the supported formats"
    return ExtractionError(
        UNSUPPORTED_TYPE,
        f"Unsupported document type {mime}: {hint}. docgraph extracts text from: "
        f"{supported_types(ocr_unavailable is None)}.",
    )


@hookimpl(trylast=True)
def docgraph_extract_text(data: bytes, content_type: str, settings: Any) -> ExtractedDocument | None:
    Limits.from_settings(settings).check_size(data)
    # why the images extractor passed an image, and whether to list images as supported
    raise unsupported_error(content_type, OcrOptions.from_settings(settings).unavailable())
