"""OCR policy shared by the PDF and image extractors: settings, availability, bounds.

OCR runs only where a page has no text layer (PDF) or is a picture (PNG, JPEG,
TIFF), and only when ``DOCGRAPH_EXTRACT__OCR=auto`` and Tesseract is installed;
otherwise the extractors keep their "needs OCR" refusal, with the reason.
Every page is bounded twice: its bitmap may not exceed ``ocr_max_pixels``
(checked from the declared size, before anything is decoded: a decompression
bomb is refused, not inflated), and Tesseract is killed after
``ocr_page_timeout`` seconds or when the extraction's own deadline passes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from docgraph.plugins.extractors import tesseract
from docgraph.plugins.extractors.errors import DECOMPRESSION_BOMB, NEEDS_OCR, ExtractionError
from docgraph.plugins.extractors.limits import Deadline, extract_setting
from docgraph.plugins.extractors.tesseract import OcrTimeout, PageText

DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's Image.MAX_IMAGE_PIXELS
# A page read with less mean word confidence than this may be sideways or upside down:
# Tesseract's orientation detection is asked, and a turned page read again.
ROTATE_BELOW_CONFIDENCE = 60.0


@dataclass(frozen=True)
class OcrOptions:
    """The OCR settings of one extraction (``DOCGRAPH_EXTRACT__OCR*``)."""

    mode: str = "auto"
    languages: str = "eng"
    dpi: int = 300
    despeckle: bool = True
    page_timeout: float = 60.0
    max_pixels: int = DEFAULT_MAX_PIXELS

    @classmethod
    def from_settings(cls, settings: Any) -> OcrOptions:
        return cls(
            mode=str(extract_setting(settings, "ocr", "auto")),
            languages=str(extract_setting(settings, "ocr_languages", "eng")),
            dpi=int(extract_setting(settings, "ocr_dpi", 300)),
            despeckle=bool(extract_setting(settings, "ocr_despeckle", True)),
            page_timeout=float(extract_setting(settings, "ocr_page_timeout", 60.0)),
            max_pixels=int(extract_setting(settings, "ocr_max_pixels", DEFAULT_MAX_PIXELS)),
        )

    def unavailable(self) -> str | None:
        """Why OCR cannot run (off, or Tesseract missing), or None when it can."""
        if self.mode == "off":
            return "OCR is off (DOCGRAPH_EXTRACT__OCR=off; set it to auto to use Tesseract)"
        found = tesseract.engine(self.languages)
        return None if found.ok else f"OCR is not available: {found.reason}"


def describe(settings: Any) -> str:
    """One line for ``docgraph run``: is OCR available, and with what."""
    options = OcrOptions.from_settings(settings)
    reason = options.unavailable()
    if reason is not None:
        return f"{reason}; image-only pages and images are refused with 'needs OCR'"
    version = tesseract.engine(options.languages).version
    return f"OCR available: Tesseract {version} ({options.languages}, {options.dpi} DPI)"


def needs_ocr_error(what: str, reason: str) -> ExtractionError:
    """Today's refusal of an image-only document, with why docgraph did not OCR it."""
    return ExtractionError(
        NEEDS_OCR,
        f"{what}: it is image-only, e.g. a scan. Extracting it needs OCR; {reason}. "
        "Or run OCR (e.g. ocrmypdf) first and submit the result.",
    )


def nothing_found(what: str, pages: int, report: OcrReport) -> str:
    """The reason for refusing a document in which OCR read no text (``what``: "The PDF has …")."""
    where = "its only page" if pages == 1 else f"any of its {pages} pages"
    late = ""
    if report.timed_out:
        late = f" (OCR timed out on pages {_numbers(report.timed_out)}; raise DOCGRAPH_EXTRACT__OCR_PAGE_TIMEOUT)"
    return (
        f"{what} OCR found no text on {where}{late}: it holds only pictures, or the text is "
        "too small or faint to read. Submit a sharper scan (300 DPI is best) or the original document."
    )


def check_pixels(pixels: int, options: OcrOptions, where: str, size: str = "") -> None:
    """Refuse a bitmap over the pixel limit before it is decoded (``size``: "W x H" for the message)."""
    if pixels > options.max_pixels:
        dims = f"{size} pixels ({pixels:,})" if size else f"{pixels:,} pixels"
        raise ExtractionError(
            DECOMPRESSION_BOMB,
            f"The image on {where} is {dims}, over the limit of {options.max_pixels:,} "
            "(DOCGRAPH_EXTRACT__OCR_MAX_PIXELS); it looks like a decompression bomb and was "
            "not decoded. If it is a genuine scan, reduce its resolution or raise the limit.",
        )


@dataclass
class OcrReport:
    """What OCR did on a document's pages, for ``ExtractedDocument.metadata``."""

    pages: list[int] = field(default_factory=list)
    confidence: list[float | None] = field(default_factory=list)
    timed_out: list[int] = field(default_factory=list)
    rotated: list[str] = field(default_factory=list)  # "page:degrees clockwise"
    failed: list[int] = field(default_factory=list)
    version: str = ""

    def metadata(self) -> dict[str, str]:
        if not (self.pages or self.timed_out or self.failed):
            return {}
        out = {"ocr_engine": f"tesseract {self.version}".strip(), "ocr_pages": _numbers(self.pages)}
        out["ocr_confidence"] = ",".join("-" if c is None else f"{c:.1f}" for c in self.confidence)
        scored = [c for c in self.confidence if c is not None]
        if scored:
            out["ocr_mean_confidence"] = f"{sum(scored) / len(scored):.1f}"
        if self.rotated:
            out["ocr_rotated"] = ",".join(self.rotated)
        if self.timed_out:
            out["ocr_pages_timed_out"] = _numbers(self.timed_out)
        if self.failed:
            out["ocr_pages_failed"] = _numbers(self.failed)
        return {k: v for k, v in out.items() if v}


def _despeckle(image: Any) -> Any:
    """A 3 x 3 median filter: dust and JPEG noise go, strokes stay (CER table in docs/extract.md)."""
    from PIL import ImageFilter

    filtered = image.filter(ImageFilter.MedianFilter(3))
    image.close()
    return filtered


def _numbers(pages: list[int]) -> str:
    return ",".join(str(n) for n in pages)


def recognise_pages(
    images: Iterable[tuple[int, Any]], options: OcrOptions, deadline: Deadline, report: OcrReport
) -> Iterator[tuple[int, str]]:
    """OCR each ``(page number, PIL image)``; yields ``(page, text)`` and fills ``report``.

    A page over ``ocr_page_timeout`` is skipped (``ocr_pages_timed_out``); the
    extraction's deadline passing is the usual timeout error.
    """
    import pytesseract

    report.version = tesseract.engine(options.languages).version
    for number, image in images:
        where = f"page {number} (OCR)"
        remaining = deadline.expires - time.monotonic()
        if remaining <= 0:
            raise deadline.error(where)
        timeout = min(options.page_timeout, remaining)
        try:
            if options.despeckle:
                image = _despeckle(image)
            page, turn = _read(image, options.languages, time.monotonic() + timeout)
        except OcrTimeout as err:
            if timeout < options.page_timeout:
                raise deadline.error(where) from err
            report.timed_out.append(number)
            continue
        except pytesseract.TesseractError:
            report.failed.append(number)
            continue
        finally:
            image.close()
        report.pages.append(number)
        report.confidence.append(page.confidence)
        if turn:
            report.rotated.append(f"{number}:{turn}")
        yield number, page.text


def _read(image: Any, languages: str, until: float) -> tuple[PageText, int]:
    """Tesseract on one page by ``until``; a page read with low confidence is checked for
    orientation and, if turned, read again (the better reading wins). Returns it and the turn."""

    def left() -> float:
        remaining = until - time.monotonic()
        if remaining <= 0:
            raise OcrTimeout("no time left for this page")
        return remaining

    page = tesseract.recognise(image, languages, left())
    if not page.words or (page.confidence or 0) >= ROTATE_BELOW_CONFIDENCE:
        return page, 0
    try:
        turn = tesseract.rotation(image, left())
        if not turn:
            return page, 0
        turned = image.rotate(-turn, expand=True)  # PIL turns counter-clockwise
        try:
            again = tesseract.recognise(turned, languages, left())
        finally:
            turned.close()
    except OcrTimeout:
        return page, 0  # the first reading stands
    return (again, turn) if (again.confidence or 0) > (page.confidence or 0) else (page, 0)
