"""OCR of the PDF pages that have no text layer: render with pypdfium2, read with Tesseract.

Called by the PDF extractor after pypdf found no text on some pages.  Before a
page is rendered, the images it draws are measured from their declared
``/Width`` x ``/Height`` (nothing decoded): more than ``ocr_max_pixels`` is a
decompression bomb.  The page bitmap itself is rendered at ``ocr_dpi``,
lowered for a huge page so it stays under the same pixel limit.  PDFium is not
thread-safe, so opening and rendering hold one process-wide lock; Tesseract
runs outside it.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator
from typing import Any

from pypdf.generic import DictionaryObject

from docgraph.plugins.extractors.limits import Deadline
from docgraph.plugins.extractors.ocr import OcrOptions, OcrReport, check_pixels, recognise_pages

log = logging.getLogger(__name__)
_PDFIUM = threading.Lock()
_MAX_XOBJECT_DEPTH = 8


def image_pixels(page: Any) -> int:
    """Pixels of every image a pypdf page draws (its XObjects, forms followed), from their headers."""

    def walk(resources: Any, depth: int, seen: set[int]) -> int:
        if depth > _MAX_XOBJECT_DEPTH or not isinstance(resources, DictionaryObject):
            return 0
        xobjects = resources.get("/XObject")
        xobjects = xobjects.get_object() if xobjects is not None else None
        if not isinstance(xobjects, DictionaryObject):
            return 0
        total = 0
        for ref in list(xobjects.values())[:10_000]:
            obj = ref.get_object()
            if not isinstance(obj, DictionaryObject) or id(obj) in seen:
                continue
            seen.add(id(obj))
            if obj.get("/Subtype") == "/Image":
                total += int(obj.get("/Width", 0) or 0) * int(obj.get("/Height", 0) or 0)
            elif obj.get("/Subtype") == "/Form":
                inner = obj.get("/Resources")
                total += walk(inner.get_object() if inner is not None else None, depth + 1, seen)
        return total

    try:
        resources = page.get("/Resources")
        return walk(resources.get_object() if resources is not None else None, 0, set())
    except (AttributeError, KeyError, TypeError, ValueError, RecursionError):
        return 0  # unreadable resources: PDFium will draw nothing from them either


def _render(data: bytes, number: int, options: OcrOptions) -> Any:
    """Page ``number`` (1-based) as a grayscale PIL image, at most ``ocr_max_pixels`` pixels."""
    import pypdfium2 as pdfium

    with _PDFIUM:
        document = pdfium.PdfDocument(data)
        try:
            page = document[number - 1]
            width, height = page.get_size()  # points
            scale = options.dpi / 72
            area = max(width * height, 1.0)
            if area * scale * scale > options.max_pixels:
                scale = math.sqrt(options.max_pixels / area) * 0.999
            bitmap = page.render(scale=scale, grayscale=True)
            image = bitmap.to_pil().copy()  # owns its pixels: the bitmap is closed below
            bitmap.close()
            page.close()
        finally:
            document.close()
    return image


def ocr_pages(
    data: bytes, pages: dict[int, int], options: OcrOptions, deadline: Deadline, report: OcrReport
) -> dict[int, str]:
    """Text of each page in ``pages`` (number -> pixels of its images), read by Tesseract."""
    for number, pixels in pages.items():
        check_pixels(pixels, options, f"page {number} (its images together)")

    def images() -> Iterator[tuple[int, Any]]:
        for number in pages:
            deadline.check(f"page {number} (rendering for OCR)")
            try:
                image = _render(data, number, options)
            except Exception as err:
                if isinstance(err, MemoryError):
                    raise
                log.debug("pdf page %d could not be rendered for OCR: %r", number, err)
                report.failed.append(number)
                continue
            yield number, image

    return dict(recognise_pages(images(), options, deadline, report))
