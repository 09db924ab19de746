"""PDF: text layer of each page with pypdf, page numbers kept.

Checks, in order, each a :class:`ExtractionError` with an actionable message:

* size (empty, over ``max_document_bytes``), a ``%PDF-`` header, and a
  ``%%EOF`` marker in the last 2 KiB (else the file was cut short);
* encryption: a PDF that opens with the empty password (restrictions only) is
  read; one that needs a password is refused ("decrypt it first");
* at most ``max_pages`` pages;
* no text on any page: an image-only (scanned) PDF, which needs OCR.

Pages without a text layer are read with OCR (``pdf_ocr``, Tesseract) when
``DOCGRAPH_EXTRACT__OCR=auto`` and Tesseract is installed; their numbers and
confidence are in ``metadata["ocr_pages"]`` / ``["ocr_confidence"]``.

Bounds against hostile files: pypdf's own limits are tightened for the call
(``pypdf.apply_configuration``, a context variable, so other threads are not
affected): no stream may inflate past the document's decompression budget, and
the page content streams of the whole document together may not either (each
page's decoded streams are measured, counted, and released after the page).
A deadline (``extract_timeout``) is checked before each page and on every
content-stream operator while text is extracted.

Pages whose extraction fails are skipped and listed in
``metadata["pages_failed"]``; pages without text in
``metadata["pages_without_text"]``.
"""

from __future__ import annotations

import io
import logging
from typing import Any

import pypdf
from pypdf.errors import DependencyError, LimitReachedError, PyPdfError
from pypdf.generic import ArrayObject, StreamObject

from docgraph.plugins.extractors import formats, pdf_ocr
from docgraph.plugins.extractors.chunking import build_document
from docgraph.plugins.extractors.errors import (
    CORRUPT,
    DECOMPRESSION_BOMB,
    ENCRYPTED,
    NEEDS_OCR,
    NO_TEXT,
    TOO_MANY_PAGES,
    TRUNCATED,
    ExtractionError,
)
from docgraph.plugins.extractors.limits import Deadline, Limits
from docgraph.plugins.extractors.ocr import OcrOptions, OcrReport, needs_ocr_error, nothing_found
from docgraph.plugins.extractors.text import base_type
from docgraph.plugins.hookspecs import hookimpl
from docgraph.plugins.types import ExtractedDocument

CONTENT_TYPES = formats.PDF
PYPDF_DEFAULT_STREAM_LIMIT = 75_000_000

log = logging.getLogger(__name__)


class _Timeout(Exception):
    """Raised from inside pypdf's operator loop when the deadline passes."""


def _corrupt(detail: str) -> ExtractionError:
    return ExtractionError(
        CORRUPT,
        f"The PDF is corrupt and cannot be read ({detail}). Open it in a PDF viewer and "
        "save or print it to a new PDF, or repair it (e.g. `qpdf in.pdf out.pdf`), "
        "then submit it again.",
    )


def _encrypted() -> ExtractionError:
    return ExtractionError(
        ENCRYPTED,
        "The PDF is encrypted (password-protected) and docgraph cannot open it: "
        "decrypt it first (e.g. `qpdf --decrypt --password=PASSWORD in.pdf out.pdf`, "
        "or 'print to PDF' from a viewer that has the password) and submit the "
        "decrypted file.",
    )


def _no_text_layer(pages: int) -> str:
    what = "its only page has no text" if pages == 1 else f"none of its {pages} pages has text"
    return f"The PDF has no text layer ({what})"


def _bomb(limits: Limits, size: int, compressed: int) -> ExtractionError:
    return limits.bomb("PDF's content", size, compressed)


def check_structure(data: bytes) -> None:
    """Header and end-of-file marker, before pypdf tries to recover anything."""
    if b"%PDF-" not in data[:1024]:
        raise _corrupt("no %PDF- header at the start: it is not a PDF")
    tail = data.rstrip(b"\x00\t\n\r\f ")[-2048:]
    if b"%%EOF" not in tail:
        raise ExtractionError(
            TRUNCATED,
            "The PDF is truncated: it has no %%EOF marker at its end, so the upload or "
            "download was probably cut short. Submit the complete file again.",
        )


def _open(data: bytes) -> pypdf.PdfReader:
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
    except LimitReachedError as err:
        raise _corrupt(f"too large a structure: {err}") from err
    except (PyPdfError, DependencyError) as err:
        raise _corrupt(str(err) or type(err).__name__) from err
    except Exception as err:
        if isinstance(err, MemoryError):
            raise
        raise _corrupt(f"{type(err).__name__}: {err}") from err
    if reader.is_encrypted:
        try:
            opened = reader.decrypt("")  # restrictions-only PDFs open with ""
        except DependencyError as err:
            raise ExtractionError(
                ENCRYPTED,
                "The PDF is encrypted with AES, which needs the 'cryptography' package "
                "installed alongside docgraph; or decrypt it first "
                "(e.g. `qpdf --decrypt in.pdf out.pdf`) and submit the decrypted file.",
            ) from err
        except Exception as err:
            if isinstance(err, MemoryError):
                raise
            raise _corrupt(f"broken encryption dictionary: {err}") from err
        if not opened:
            raise _encrypted()
    return reader


def _content_streams(page: Any) -> list[StreamObject]:
    """The page's content streams (resolved), empty if it has none or they are broken."""
    try:
        contents = page.get("/Contents")
        if contents is None:
            return []
        contents = contents.get_object()
        items = contents if isinstance(contents, ArrayObject) else [contents]
        streams = []
        for item in items[:10_000]:
            obj = item.get_object()
            if isinstance(obj, StreamObject):
                streams.append(obj)
        return streams
    except (PyPdfError, AttributeError, KeyError, TypeError, ValueError, RecursionError):
        return []


def _decoded_size(streams: list[StreamObject]) -> int:
    """Decode the streams (each bounded by pypdf's limits) and add up their sizes."""
    size = 0
    for stream in streams:
        try:
            size += len(stream.get_data())
        except LimitReachedError:
            raise
        except Exception as err:
            if isinstance(err, MemoryError):
                raise
            # broken stream: extract_text will fail on it and record the page
    return size


def _release(streams: list[StreamObject]) -> None:
    """Drop pypdf's cached decoded copy of each stream so memory does not pile up."""
    for stream in streams:
        if getattr(stream, "decoded_self", None) is not None:
            stream.decoded_self = None


def _page_text(page: Any, deadline: Deadline, where: str) -> str:
    def check(*_args: Any) -> None:
        if deadline.expired():
            raise _Timeout(where)

    return page.extract_text(visitor_operand_before=check)


def _metadata(reader: pypdf.PdfReader) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        info = reader.metadata
        if info is not None:
            for key, value in (("title", info.title), ("author", info.author), ("producer", info.producer)):
                if isinstance(value, str) and value.strip():
                    out[key] = " ".join(value.split())[:500]
    except Exception as err:  # unreadable metadata must not lose the text
        if isinstance(err, MemoryError):
            raise
    return out


def _pages_list(numbers: list[int]) -> str:
    return ",".join(str(n) for n in numbers)


def extract_pdf(
    data: bytes, content_type: str, limits: Limits, options: OcrOptions | None = None
) -> ExtractedDocument:
    options = options or OcrOptions(mode="off")
    limits.check_size(data)
    check_structure(data)
    deadline = limits.deadline()
    budget = limits.decompressed_budget(len(data))
    per_stream = min(budget, PYPDF_DEFAULT_STREAM_LIMIT)
    with pypdf.apply_configuration(
        zlib_maximum_output_length=per_stream,
        lzw_maximum_output_length=per_stream,
        run_length_maximum_output_length=per_stream,
        brotli_maximum_output_length=per_stream,
        jbig2_maximum_output_length=per_stream,
        array_based_stream_maximum_output_length=per_stream,
        image_maximum_buffer_size=per_stream,
        stream_decoding_work_maximum_length=min(4 * per_stream, 300_000_000),
    ):
        reader = _open(data)
        try:
            page_count = len(reader.pages)
        except LimitReachedError as err:
            raise _corrupt(f"page tree too large: {err}") from err
        except Exception as err:
            if isinstance(err, MemoryError):
                raise
            raise _corrupt(f"unreadable page tree: {type(err).__name__}: {err}") from err
        if page_count == 0:
            raise _corrupt("it has no pages")
        if page_count > limits.max_pages:
            raise ExtractionError(
                TOO_MANY_PAGES,
                f"The PDF has {page_count:,} pages, over the limit of {limits.max_pages:,} "
                "(DOCGRAPH_EXTRACT__MAX_PAGES). Split it into smaller files (e.g. `qpdf --split-pages`), "
                "or raise the limit.",
            )
        texts: list[str] = []
        image_only: dict[int, int] = {}  # page without text -> pixels of its images
        failed: list[int] = []
        first_error: str | None = None
        decoded = 0
        for number in range(1, page_count + 1):
            where = f"page {number} of {page_count}"
            deadline.check(where)
            streams: list[StreamObject] = []
            try:
                page = reader.pages[number - 1]
                streams = _content_streams(page)
                decoded += _decoded_size(streams)
                if decoded > budget:
                    raise _bomb(limits, decoded, len(data))
                text = _page_text(page, deadline, where)
            except LimitReachedError as err:
                raise ExtractionError(
                    DECOMPRESSION_BOMB,
                    f"The PDF has a stream that decompresses past the safety limit on "
                    f"{where} ({err}); it looks like a decompression bomb and was not read. "
                    "If it is genuine, raise max_decompressed_ratio / max_decompressed_bytes.",
                ) from err
            except _Timeout as err:
                raise deadline.error(str(err)) from err
            except ExtractionError:
                raise
            except Exception as err:
                if isinstance(err, MemoryError):
                    raise
                log.debug("pdf %s failed: %r", where, err)
                failed.append(number)
                first_error = first_error or f"{where}: {type(err).__name__}: {err}"
                text = ""
            else:
                if not (text or "").strip():
                    image_only[number] = pdf_ocr.image_pixels(page)
            finally:
                _release(streams)
            texts.append(text or "")
        metadata = _metadata(reader)
    if len(failed) == page_count:
        raise _corrupt(f"no page could be read; {first_error}")
    ocr_unavailable = options.unavailable() if image_only else None
    report = OcrReport()
    if image_only and ocr_unavailable is None:
        for number, page_text in pdf_ocr.ocr_pages(data, image_only, options, deadline, report).items():
            texts[number - 1] = page_text
        metadata.update(report.metadata())
    without_text = [i + 1 for i, t in enumerate(texts) if not t.strip() and i + 1 not in failed]
    if failed:
        metadata["pages_failed"] = _pages_list(failed)
    if without_text:
        metadata["pages_without_text"] = _pages_list(without_text)
    return build_document(
        texts,
        "application/pdf",
        limits,
        paged=True,
        metadata=metadata,
        empty_message=str(needs_ocr_error(_no_text_layer(page_count), ocr_unavailable))
        if ocr_unavailable
        else nothing_found("The PDF has no text layer and", page_count, report),
        empty_code=NEEDS_OCR if ocr_unavailable else NO_TEXT,
    )


@hookimpl
def docgraph_extract_text(data: bytes, content_type: str, settings: Any) -> ExtractedDocument | None:
    if base_type(content_type) not in CONTENT_TYPES:
        return None
    return extract_pdf(data, content_type, Limits.from_settings(settings), OcrOptions.from_settings(settings))
