"""Split normalized text into chunks, and assemble an :class:`ExtractedDocument`.

Chunks are about ``chunk_chars`` characters long.  A chunk ends, in order of
preference, at a paragraph break, at the end of a sentence, at a line break, or
at any whitespace, looking back from ``chunk_chars``; the first three only in
the second half of the window, so chunks are not tiny.  Words are never split: a
word that does not fit extends its chunk to the word's end.  Only a "word" longer
than ``max(4 * chunk_chars, 256)`` characters (a base64 blob, a URL list, CJK
text without spaces) is cut, and then never inside a grapheme's combining marks.

Invariants, for every document (tested with hypothesis):

* ``chunk.text == text[chunk.start:chunk.end]``, never empty, with no leading or
  trailing whitespace;
* chunks are in order and do not overlap, ``index`` is 0, 1, 2...;
* whatever lies between two chunks (or before the first, after the last) is
  whitespace only, so every other character is in exactly one chunk;
* ``chunk.page`` is the 1-based page on which the chunk starts, or None when the
  format has no pages.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Sequence

from docgraph.plugins.extractors.errors import NO_TEXT, TOO_MUCH_TEXT, ExtractionError
from docgraph.plugins.extractors.limits import Limits
from docgraph.plugins.extractors.normalize import normalize_text
from docgraph.plugins.types import Chunk, ExtractedDocument

PAGE_SEPARATOR = "\n\n"

# A sentence ends with . ! ? … (or Arabic ?) and optional closing quotes/brackets,
# followed by whitespace; CJK full stops need no whitespace after them.
_SENTENCE_END = re.compile(
    r"(?:[.!?\u2026\u061f][)\]\"'\u00bb\u201d\u2019]*(?=\s))"
    r"|(?:[\u3002\uff01\uff1f][\u300d\u300f\uff09\u201d\u2019]*)"
)
_WHITESPACE = re.compile(r"\s")


def _max_word(chunk_chars: int) -> int:
    return max(4 * chunk_chars, 256)


def _last_whitespace(text: str, lo: int, hi: int) -> int | None:
    """Index of the last whitespace character in ``text[lo:hi]``, or None."""
    for i in range(hi - 1, lo - 1, -1):
        if text[i].isspace():
            return i
    return None


def _safe_cut(text: str, cut: int, floor: int) -> int:
    """Move a hard cut back so it does not separate a character from its combining marks."""
    i = cut
    while i > floor + 1 and i < len(text):
        ch = text[i]
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Mc", "Me", "Cf"):
            i -= 1
        else:
            break
    return i if i > floor else cut


def _break_at(text: str, pos: int, chunk_chars: int) -> int:
    """Where the chunk starting at ``pos`` ends (exclusive); ``len(text) - pos > chunk_chars``."""
    limit = pos + chunk_chars  # the chunk may end at index <= limit
    half = pos + max(1, chunk_chars // 2)

    # 1. paragraph break "\n\n" starting at e, half < e <= limit
    e = text.rfind("\n\n", half + 1, limit + 2)
    if e != -1:
        return e
    # 2. end of a sentence
    last = None
    for m in _SENTENCE_END.finditer(text, half, limit + 1):
        if half < m.end() <= limit:
            last = m.end()
    if last is not None:
        return last
    # 3. line break
    e = text.rfind("\n", half + 1, limit + 1)
    if e != -1:
        return e
    # 4. any whitespace after pos
    ws = _last_whitespace(text, pos + 1, limit + 1)
    if ws is not None:
        return ws
    # 5. the word at pos is longer than the window: end the chunk after it
    max_end = pos + _max_word(chunk_chars)
    space = _WHITESPACE.search(text, limit, max_end + 1)
    if space is not None:
        return space.start()
    if max_end >= len(text):
        return len(text)
    return _safe_cut(text, max_end, pos)


def chunk_text(text: str, chunk_chars: int, page_starts: Sequence[int] | None = None) -> list[Chunk]:
    """Split ``text`` into chunks of about ``chunk_chars`` characters.

    ``page_starts[i]`` is the offset where page ``i + 1`` begins in ``text``
    (ascending, first 0); without it chunks have ``page=None``.
    """
    chunk_chars = max(1, chunk_chars)
    n = len(text)
    chunks: list[Chunk] = []
    pos = 0
    while True:
        while pos < n and text[pos].isspace():
            pos += 1
        if pos >= n:
            break
        cut = n if n - pos <= chunk_chars else _break_at(text, pos, chunk_chars)
        end = cut
        while end > pos and text[end - 1].isspace():
            end -= 1
        page = bisect_right(page_starts, pos) if page_starts else None
        chunks.append(Chunk(index=len(chunks), text=text[pos:end], start=pos, end=end, page=page))
        pos = cut
    return chunks


def build_document(
    segments: Sequence[str],
    content_type: str,
    limits: Limits,
    *,
    paged: bool = False,
    metadata: dict[str, str] | None = None,
    empty_message: str | None = None,
    empty_code: str = NO_TEXT,
) -> ExtractedDocument:
    """Normalize ``segments`` (pages when ``paged``), join them and chunk the result.

    Segments are joined with a paragraph break.  Raises :class:`ExtractionError`
    when the text is empty (``empty_code``, ``empty_message``) or longer than
    ``max_text_chars``.
    """
    parts: list[str] = []
    starts: list[int] = []
    offset = 0
    for segment in segments:
        segment_text = normalize_text(segment)
        if segment_text and parts:
            parts.append(PAGE_SEPARATOR)
            offset += len(PAGE_SEPARATOR)
        starts.append(offset)
        if segment_text:
            parts.append(segment_text)
            offset += len(segment_text)
            if offset > limits.max_text_chars:
                raise ExtractionError(
                    TOO_MUCH_TEXT,
                    f"The document holds more than {limits.max_text_chars:,} characters of "
                    "text (DOCGRAPH_EXTRACT__MAX_TEXT_CHARS). Split it into smaller files, "
                    "or raise the limit.",
                )
    text = "".join(parts)
    if not text:
        raise ExtractionError(
            empty_code,
            empty_message
            or "The document contains no text (only whitespace or markup). "
            "Check that you submitted the right file.",
        )
    chunks = chunk_text(text, limits.chunk_chars, starts if paged else None)
    return ExtractedDocument(
        text=text,
        chunks=chunks,
        content_type=content_type,
        pages=len(segments) if paged else None,
        metadata=dict(metadata or {}),
    )
