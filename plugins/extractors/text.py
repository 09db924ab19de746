"""Plain text and Markdown: decode the bytes, normalize, chunk.

Encoding detection, in order:

1. a byte-order mark: UTF-8, UTF-16 LE/BE, UTF-32 LE/BE;
2. valid UTF-8 (ASCII included);
3. UTF-16 without a BOM, recognised by its zero bytes every other byte;
4. any other zero byte: not text (binary);
5. Windows-1252 (the superset of Latin-1 that browsers use) when it decodes the
   bytes and the result reads like a Western language: detectors are unreliable
   on short Latin text and often answer cp1250, cp1257 or Mac Iceland;
6. otherwise charset-normalizer's best guess (Cyrillic, Greek, CJK code pages...);
   no guess means not text.

Decoded text with control characters or replacement characters in more than 1%
of its characters is not text either.  Markdown is kept as written (its markup
is plain characters); only whitespace is normalized.
"""

from __future__ import annotations

import codecs
import re
from typing import Any

from docgraph.plugins.extractors.chunking import build_document
from docgraph.plugins.extractors.errors import NOT_TEXT, ExtractionError
from docgraph.plugins.extractors.limits import Limits
from docgraph.plugins.hookspecs import hookimpl
from docgraph.plugins.types import ExtractedDocument

CONTENT_TYPES = ("text/plain", "text/markdown", "text/x-markdown")

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_DETECT_SAMPLE = 256 * 1024
_CHECK_SAMPLE = 256 * 1024
_BAD_CHARS = re.compile("[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f-\x9f\ufffd]")
_LETTER = re.compile(r"[^\W\d_]")


def base_type(content_type: str) -> str:
    """``'Text/Plain; charset=utf-8'`` -> ``'text/plain'``."""
    return content_type.split(";", 1)[0].strip().lower()


def charset_param(content_type: str) -> str | None:
    """The ``charset`` parameter of a content type, if any."""
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            return value.strip().strip("\"'")
    return None


def bom_encoding(data: bytes) -> tuple[str, int] | None:
    """``(encoding, bom length)`` when ``data`` starts with a Unicode byte-order mark."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding, len(bom)
    return None


def _decode(data: bytes, encoding: str, partial: bool) -> str | None:
    """Strict decode; with ``partial`` a character cut at the end of ``data`` is allowed."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        if partial and err.start >= len(data) - 4:
            try:
                return data[: err.start].decode(encoding)
            except UnicodeDecodeError:
                return None
        return None
    except LookupError:
        return None


def plausible_text(text: str) -> bool:
    """False when over 1% of the (sampled) characters are controls or U+FFFD."""
    sample = text[:_CHECK_SAMPLE]
    if not sample:
        return True
    bad = len(_BAD_CHARS.findall(sample))
    return bad <= len(sample) // 100


def _western(text: str) -> bool:
    """Text decoded as cp1252 reads like a Western language: mostly ASCII letters."""
    letters = _LETTER.findall(text[:_CHECK_SAMPLE])
    if not letters:
        return True
    non_ascii = sum(1 for ch in letters if ord(ch) > 0x7F)
    return non_ascii * 10 <= len(letters) * 3  # at most 30% accented letters


def _utf16_without_bom(data: bytes) -> str | None:
    half = len(data) // 2
    if half < 2:
        return None
    even_zeros = data[0 : 2 * half : 2].count(0)
    odd_zeros = data[1 : 2 * half : 2].count(0)
    if odd_zeros > half * 0.4 and even_zeros < half * 0.05:
        return "utf-16-le"
    if even_zeros > half * 0.4 and odd_zeros < half * 0.05:
        return "utf-16-be"
    return None


def detect_encoding(data: bytes, *, partial: bool = False) -> str | None:
    """The encoding of ``data``, or None when it is not text.

    ``partial`` means ``data`` is only the start of the document (sniffing), so a
    multi-byte character may be cut at its end.
    """
    if not data:
        return "utf-8"
    bom = bom_encoding(data)
    if bom is not None:
        encoding, size = bom
        body = data[size:]
        if encoding.startswith("utf-16") and partial:
            body = body[: len(body) // 2 * 2]
        text = _decode(body, encoding, partial)
        return encoding if text is not None and plausible_text(text) else None
    if _decode(data, "utf-8", partial) is not None:
        return "utf-8" if plausible_text(data[:_CHECK_SAMPLE].decode("utf-8", "replace")) else None
    utf16 = _utf16_without_bom(data)
    if utf16 is not None:
        body = data[: len(data) // 2 * 2] if partial else data
        text = _decode(body, utf16, partial)
        if text is not None and plausible_text(text):
            return utf16
    if 0 in data[:_DETECT_SAMPLE]:
        return None
    text = _decode(data, "cp1252", partial)
    if text is not None and plausible_text(text) and _western(text):
        return "cp1252"
    import charset_normalizer  # 2 MiB, only for text without a BOM or declared charset

    best = charset_normalizer.from_bytes(data[:_DETECT_SAMPLE]).best()
    if best is None:
        return None
    encoding = codecs.lookup(best.encoding).name
    if encoding in ("ascii", "latin-1", "iso8859-1"):
        encoding = "cp1252" if _decode(data, "cp1252", partial) is not None else "latin-1"
    text = _decode(data, encoding, partial)
    if text is None:
        text = data[:_CHECK_SAMPLE].decode(encoding, "replace")
    return encoding if plausible_text(text) else None


def looks_like_text(head: bytes) -> bool:
    """Whether the first bytes of a document decode as text (used by sniffing)."""
    return detect_encoding(head, partial=True) is not None


def decode_text(data: bytes, declared: str | None = None) -> tuple[str, str]:
    """Decode a whole document: ``(text, encoding)``.

    ``declared`` (a charset from the content type or an HTML ``<meta>``) is used
    when it decodes the bytes; a BOM always wins.  Raises :class:`ExtractionError`
    when the bytes are not text in any encoding.
    """
    bom = bom_encoding(data)
    if bom is not None:
        encoding, size = bom
        text = data[size:].decode(encoding, "replace")
    else:
        encoding_or_none = None
        if declared:
            try:
                declared_name = codecs.lookup(declared).name
            except LookupError:
                declared_name = None
            if declared_name and _decode(data, declared_name, False) is not None:
                encoding_or_none = declared_name
        if encoding_or_none is None:
            encoding_or_none = detect_encoding(data)
        if encoding_or_none is None:
            raise _not_text()
        encoding = encoding_or_none
        text = data.decode(encoding, "replace")
    if not plausible_text(text):
        raise _not_text()
    return text, encoding


def _not_text() -> ExtractionError:
    return ExtractionError(
        NOT_TEXT,
        "The document was declared as text but is not readable text in any known "
        "encoding (it looks binary). Check the file, or save it as UTF-8 text.",
    )


def extract_plain_text(data: bytes, content_type: str, limits: Limits) -> ExtractedDocument:
    limits.check_size(data)
    text, encoding = decode_text(data, charset_param(content_type))
    return build_document(
        [text],
        base_type(content_type).replace("text/x-markdown", "text/markdown"),
        limits,
        metadata={"encoding": encoding},
        empty_message="The text file contains only whitespace. Check that you submitted the right file.",
    )


@hookimpl
def docgraph_extract_text(data: bytes, content_type: str, settings: Any) -> ExtractedDocument | None:
    if base_type(content_type) not in CONTENT_TYPES:
        return None
    return extract_plain_text(data, content_type, Limits.from_settings(settings))
