"""Content sniffing: the MIME type of a document from its first bytes.

The built-in sniffer looks at the bytes, never only at the name: a file called
``report.pdf`` that holds HTML is HTML.  The name is used for one thing only:
text whose name ends in ``.md``/``.markdown`` is ``text/markdown`` rather than
``text/plain`` (no byte pattern tells Markdown from plain text).

It runs last (``trylast``), so a plugin that adds a format implements its own
``docgraph_sniff_content_type`` returning its type, or None to let others try.

Pass at least :data:`SNIFF_BYTES` bytes (the whole document is best): a DOCX is
recognised from the ZIP listing, which for a partial head means walking the
local file headers that fit in it.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile

from docgraph.plugins.extractors.text import bom_encoding, detect_encoding
from docgraph.plugins.hookspecs import hookimpl

SNIFF_BYTES = 64 * 1024

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
HTML = "text/html"
XHTML = "application/xhtml+xml"
PLAIN = "text/plain"
MARKDOWN = "text/markdown"
ZIP = "application/zip"
OLE = "application/x-ole-storage"
XML = "application/xml"
OCTET_STREAM = "application/octet-stream"

# magic bytes at offset 0 of formats docgraph recognises but does not extract,
# so the error can say what the file is
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", OLE),
    (b"{\\rtf", "application/rtf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"\x1f\x8b", "application/gzip"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"Rar!\x1a\x07", "application/vnd.rar"),
    (b"\xfd7zXZ\x00", "application/x-xz"),
)

_MARKDOWN_SUFFIXES = (".md", ".markdown", ".mdown", ".mkd", ".mkdn")
# WHATWG MIME sniffing: these tags at the start mean HTML...
_HTML_STRONG = re.compile(r"<(?:!doctype\s+html|html|head|body)(?=[\s>/])", re.IGNORECASE)
# ...and these too, unless the name says Markdown or plain text
_HTML_WEAK = re.compile(
    r"<(?:script|iframe|h1|div|font|table|a|style|title|b|br|p|!--)(?=[\s>/])|<!--",
    re.IGNORECASE,
)
_XML_DECL = re.compile(r"<\?xml[^>]*\?>", re.IGNORECASE)
_XML_PRELUDE = re.compile(r"\s*(?:<!--.*?-->\s*|<\?[^>]*\?>\s*|<!doctype[^>]*>\s*)*", re.S | re.I)


def _zip_names_from_head(head: bytes) -> list[str]:
    """Member names from the ZIP local file headers that fit in ``head``."""
    names: list[str] = []
    pos = 0
    while pos + 30 <= len(head) and head[pos : pos + 4] == b"PK\x03\x04" and len(names) < 4096:
        flags, _method = struct.unpack_from("<HH", head, pos + 6)
        (csize,) = struct.unpack_from("<I", head, pos + 18)
        name_len, extra_len = struct.unpack_from("<HH", head, pos + 26)
        raw = head[pos + 30 : pos + 30 + name_len]
        names.append(raw.decode("utf-8" if flags & 0x800 else "cp437", "replace"))
        next_pos = pos + 30 + name_len + extra_len
        if flags & 0x08 or csize == 0xFFFFFFFF:
            # size is in a data descriptor after the data: find the next header
            found = head.find(b"PK\x03\x04", next_pos)
            if found < 0:
                break
            pos = found
        else:
            pos = next_pos + csize
    return names


def _zip_head_member(head: bytes, wanted: str) -> bytes | None:
    """The content of a *stored* (uncompressed) member found in ``head``, if any."""
    pos = 0
    while pos + 30 <= len(head) and head[pos : pos + 4] == b"PK\x03\x04":
        flags, method = struct.unpack_from("<HH", head, pos + 6)
        (csize,) = struct.unpack_from("<I", head, pos + 18)
        name_len, extra_len = struct.unpack_from("<HH", head, pos + 26)
        name = head[pos + 30 : pos + 30 + name_len].decode("cp437", "replace")
        start = pos + 30 + name_len + extra_len
        if name == wanted:
            return head[start : start + csize] if method == 0 and not flags & 0x08 else None
        if flags & 0x08:
            return None
        pos = start + csize
    return None


def sniff_zip(head: bytes) -> str:
    """Tell DOCX (and other ZIP-based formats) from a plain ZIP by the member list."""
    try:
        with zipfile.ZipFile(io.BytesIO(head)) as zf:  # works when head is the whole file
            names = zf.namelist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError):
        names = _zip_names_from_head(head)
    members = set(names)
    if "word/document.xml" in members:
        return DOCX
    if "xl/workbook.xml" in members:
        return XLSX
    if "ppt/presentation.xml" in members:
        return PPTX
    mimetype = _zip_head_member(head, "mimetype")
    if mimetype and re.fullmatch(rb"[\w.+/-]{3,100}", mimetype.strip()):
        return mimetype.strip().decode("ascii")  # OpenDocument, EPUB
    return ZIP


def _name_suffix(name: str | None) -> str:
    if not name:
        return ""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].lower()
    return "." + base.rsplit(".", 1)[-1] if "." in base else ""


def _sniff_markup(start: str, suffix: str) -> str | None:
    """HTML / XML from the decoded start of a text document."""
    prelude = _XML_PRELUDE.match(start)
    assert prelude is not None  # the pattern can match the empty string
    doctype = re.match(r"\s*<!doctype\s+html", start, re.I)
    body = start[prelude.end() :]
    if doctype or _HTML_STRONG.match(body):
        return XHTML if _XML_DECL.match(start.lstrip()) else HTML
    if _HTML_WEAK.match(start.lstrip()) and suffix not in (*_MARKDOWN_SUFFIXES, ".txt"):
        return HTML
    if _XML_DECL.match(start.lstrip()) or (body.startswith("<") and suffix == ".xml"):
        return XML
    return None


def _is_pdf(head: bytes) -> bool:
    """``%PDF-`` at the start, or within 1 KiB after binary junk (as Acrobat accepts)."""
    at = head.find(b"%PDF-", 0, 1024)
    if at < 0:
        return False
    prefix = head[:at]
    if not prefix.strip(b"\x00\t\n\r\f "):
        return True
    return detect_encoding(prefix, partial=True) is None  # text that mentions %PDF- is text


def sniff(head: bytes, name: str | None = None) -> str:
    """The MIME type of a document from its first bytes (and, for Markdown, its name)."""
    if not head:
        return OCTET_STREAM
    if _is_pdf(head):
        return PDF
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return sniff_zip(head)
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    for magic, mime in _MAGIC:
        if head.startswith(magic):
            return mime
    if head.startswith(b"BM") and head[6:10] == b"\0\0\0\0" and len(head) >= 26:
        return "image/bmp"
    if head.startswith(b"BZh") and head[3:4].isdigit() and head[4:10] == b"1AY&SY":
        return "application/x-bzip2"
    encoding = detect_encoding(head, partial=True)
    if encoding is None:
        return OCTET_STREAM
    bom = bom_encoding(head)
    body = head[bom[1] :] if bom else head
    start = body[:4096].decode(encoding, "ignore").lstrip("\ufeff")
    suffix = _name_suffix(name)
    markup = _sniff_markup(start, suffix)
    if markup is not None:
        return markup
    if suffix in _MARKDOWN_SUFFIXES:
        return MARKDOWN
    return PLAIN


@hookimpl(trylast=True)
def docgraph_sniff_content_type(head: bytes, name: str | None) -> str | None:
    return sniff(head, name)
