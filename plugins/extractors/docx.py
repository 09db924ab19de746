"""Word .docx: check the ZIP directory, open with python-docx, walk the body XML.

Before anything is decompressed the ZIP directory is checked: at most
``MAX_MEMBERS`` members, and their declared uncompressed sizes must add up to
no more than :meth:`Limits.decompressed_budget` (``max_decompressed_ratio`` x
the file size, at least 16 MiB, at most ``max_decompressed_bytes``).

The directory can lie, and zipfile's ``read()`` inflates a whole member in one
call before cutting it to the declared size, so members are then inflated here
in 1 MiB steps (zipfile stops each at its declared size and checks its CRC)
and repacked uncompressed for python-docx, which so never inflates anything.
python-docx parses XML without resolving entities, and lxml caps nesting depth
and node size.

Text comes from the body in document order: paragraphs (runs, hyperlinks,
content controls, tracked insertions; not deletions), tables (one line per row,
cells separated by a tab) and text boxes.  Headers, footers, footnotes and
comments are not included.  DOCX has no fixed pages: chunks have ``page=None``.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from typing import Any

import docx
from docx.opc.exceptions import PackageNotFoundError

from docgraph.plugins.extractors import formats
from docgraph.plugins.extractors.chunking import build_document
from docgraph.plugins.extractors.errors import (
    CORRUPT,
    DECOMPRESSION_BOMB,
    UNSUPPORTED_TYPE,
    ExtractionError,
)
from docgraph.plugins.extractors.limits import Limits
from docgraph.plugins.extractors.text import base_type
from docgraph.plugins.hookspecs import hookimpl
from docgraph.plugins.types import ExtractedDocument

CONTENT_TYPES = formats.DOCX
MAIN_PART = "word/document.xml"
MAX_MEMBERS = 10_000

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
# property blocks (their w:tab are tab stops, not text), deleted and moved-away text
_SKIP = frozenset(
    _W + tag
    for tag in (
        "pPr",
        "rPr",
        "tblPr",
        "tblGrid",
        "trPr",
        "tcPr",
        "sectPr",
        "del",
        "moveFrom",
        "instrText",
        "delText",
        "footnoteReference",
        "commentReference",
    )
) | {_MC_FALLBACK}


def _corrupt(detail: str) -> ExtractionError:
    return ExtractionError(
        CORRUPT,
        f"The Word document is corrupt or truncated ({detail}). Open it in Word or "
        "LibreOffice and save it again as .docx, or submit a PDF.",
    )


def check_zip(data: bytes, limits: Limits) -> None:
    """Validate the ZIP directory before any member is inflated."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError) as err:
        raise _corrupt(f"not a readable ZIP archive: {err}") from err
    if len(infos) > MAX_MEMBERS:
        raise ExtractionError(
            DECOMPRESSION_BOMB,
            f"The Word document has {len(infos):,} parts (at most {MAX_MEMBERS:,} are "
            "read); it looks like a ZIP bomb and was not read. Save it again from Word "
            "or LibreOffice.",
        )
    total = sum(max(0, info.file_size) for info in infos)
    if total > limits.decompressed_budget(len(data)):
        raise limits.bomb("Word document", total, len(data))
    names = {info.filename for info in infos}
    if MAIN_PART not in names:
        raise _corrupt(f"no {MAIN_PART} in the archive: it is a ZIP file but not a Word document")
    if any(info.flag_bits & 0x1 for info in infos):
        raise _corrupt("the ZIP members are encrypted")


_READ_STEP = 1024 * 1024
# python-docx: "file '...' is not a Word file, content type is '...'"
_NOT_A_DOCUMENT = re.compile(r"content type is '([^']*)'")


def safe_package(data: bytes, limits: Limits) -> bytes:
    """Check the ZIP, inflate it with bounded steps, return it repacked uncompressed."""
    check_zip(data, limits)
    budget = limits.decompressed_budget(len(data))
    total = 0
    out = io.BytesIO()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
            for info in src.infolist():
                if info.is_dir():
                    continue
                parts: list[bytes] = []
                with src.open(info) as member:
                    while step := member.read(_READ_STEP):
                        total += len(step)
                        if total > budget:
                            raise limits.bomb("Word document", total, len(data))
                        parts.append(step)
                dst.writestr(info.filename, b"".join(parts))
    except ExtractionError:
        raise
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        EOFError,
        OSError,
        ValueError,
        NotImplementedError,
        RuntimeError,
        zlib.error,
    ) as err:
        raise _corrupt(f"{type(err).__name__}: {err}") from err
    return out.getvalue()


def body_text(body: Any) -> str:
    """The text of a ``w:body`` element (before normalization)."""
    out: list[str] = []
    cell_depth = 0
    stack: list[tuple[Any, bool]] = [(body, False)]
    while stack:
        el, closing = stack.pop()
        tag = el.tag
        if closing:
            if tag == _W + "p":
                out.append(" " if cell_depth else "\n\n")
            elif tag == _W + "tc":
                cell_depth -= 1
                out.append("\t")
            elif tag == _W + "tr":
                out.append("\n")
            elif tag == _W + "tbl":
                out.append("\n\n")
            continue
        if not isinstance(tag, str) or tag in _SKIP:
            continue
        if tag == _W + "t":
            if el.text:
                out.append(el.text)
            continue
        if tag == _W + "tab":
            out.append("\t")
            continue
        if tag in (_W + "br", _W + "cr"):
            out.append("\n")
            continue
        if tag == _W + "noBreakHyphen":
            out.append("-")
            continue
        if tag == _W + "p":
            out.append(" " if cell_depth else "\n\n")
        elif tag == _W + "tc":
            cell_depth += 1
        elif tag == _W + "tbl":
            out.append("\n\n")
        stack.append((el, True))
        stack.extend((child, False) for child in reversed(el))
    return "".join(out)


def extract_docx(data: bytes, content_type: str, limits: Limits) -> ExtractedDocument:
    limits.check_size(data)
    deadline = limits.deadline()
    package = safe_package(data, limits)
    try:
        document = docx.Document(io.BytesIO(package))
        body = document.element.body
    except ValueError as err:
        match = _NOT_A_DOCUMENT.search(str(err))
        if match:
            raise ExtractionError(
                UNSUPPORTED_TYPE,
                f"The file is a Word package of another kind (main part {match.group(1)}): "
                "a macro-enabled document (.docm) or a template (.dotx/.dotm). Save it as a "
                "regular Word document (.docx) or as PDF and submit that.",
            ) from err
        raise _corrupt(str(err) or type(err).__name__) from err
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError) as err:
        raise _corrupt(str(err) or type(err).__name__) from err
    except Exception as err:  # lxml syntax errors, python-docx internals
        if isinstance(err, MemoryError):
            raise
        raise _corrupt(f"{type(err).__name__}: {err}") from err
    deadline.check("parsing")
    text = body_text(body)
    deadline.check("reading the body")
    metadata: dict[str, str] = {}
    try:
        title = document.core_properties.title
    except Exception:  # a broken docProps/core.xml must not lose the text
        title = None
    if title:
        metadata["title"] = title[:500]
    return build_document(
        [text],
        CONTENT_TYPES[0],
        limits,
        metadata=metadata,
        empty_message="The Word document contains no text. If it holds scanned pages "
        "as images, they need OCR, which docgraph does on PDFs and images but not inside "
        "Word files: export it to PDF and submit that.",
    )


@hookimpl
def docgraph_extract_text(data: bytes, content_type: str, settings: Any) -> ExtractedDocument | None:
    if base_type(content_type) not in CONTENT_TYPES:
        return None
    return extract_docx(data, content_type, Limits.from_settings(settings))
