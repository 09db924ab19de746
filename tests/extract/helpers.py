"""Shared helpers for the extraction tests: plugin manager, PDF builder, invariants."""

from __future__ import annotations

import io
import zlib
from collections.abc import Sequence

import pluggy

from docgraph.plugins import hookspecs
from docgraph.plugins.extractors import PLUGINS
from docgraph.plugins.extractors.sniff import SNIFF_BYTES
from docgraph.plugins.types import Chunk, ExtractedDocument


def plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("docgraph")
    pm.add_hookspecs(hookspecs)
    for module in PLUGINS:
        pm.register(module)
    pm.check_pending()
    return pm


PM = plugin_manager()


def sniff(data: bytes, name: str | None = None) -> str:
    """What the extract stage does: sniff from the first SNIFF_BYTES bytes."""
    result = PM.hook.docgraph_sniff_content_type(head=data[:SNIFF_BYTES], name=name)
    assert isinstance(result, str)
    return result


def extract(data: bytes, content_type: str, settings: object = None) -> ExtractedDocument:
    result = PM.hook.docgraph_extract_text(data=data, content_type=content_type, settings=settings)
    assert isinstance(result, ExtractedDocument)
    return result


def sniff_and_extract(data: bytes, name: str | None = None, settings: object = None) -> ExtractedDocument:
    return extract(data, sniff(data, name), settings)


CJK_STOPS = "\u3002\uff01\uff1f"
CJK_CLOSERS = "\u300d\u300f\uff09\u201d\u2019"


def assert_chunks_valid(
    text: str, chunks: Sequence[Chunk], chunk_chars: int | None = None, pages: int | None = None
) -> None:
    """The chunking contract: exact slices, in order, covering all non-whitespace."""
    pos = 0
    last_page = 0
    for i, chunk in enumerate(chunks):
        assert chunk.index == i
        assert 0 <= chunk.start < chunk.end <= len(text)
        assert text[chunk.start : chunk.end] == chunk.text
        assert chunk.text == chunk.text.strip(), "chunk has surrounding whitespace"
        gap = text[pos : chunk.start]
        assert gap.strip() == "", f"non-whitespace {gap[:40]!r} between chunks"
        pos = chunk.end
        if pages is None:
            assert chunk.page is None
        else:
            assert chunk.page is not None and 1 <= chunk.page <= pages
            assert chunk.page >= last_page
            last_page = chunk.page
        if chunk_chars is not None:
            max_word = max(4 * chunk_chars, 256)
            if len(chunk.text) > chunk_chars:  # only a single over-long word
                assert not any(ch.isspace() for ch in chunk.text), chunk.text[:80]
                assert len(chunk.text) <= max_word
            if chunk.end < len(text) and not text[chunk.end].isspace():
                # a word is cut only when longer than max_word, or after a CJK full stop
                assert (
                    chunk.text.rstrip(CJK_CLOSERS)[-1:] in CJK_STOPS
                    or len(chunk.text.split()[-1]) >= max_word - 8
                ), (chunk.text[-40:], text[chunk.end : chunk.end + 20])
    assert text[pos:].strip() == ""
    if text.strip():
        assert chunks, "non-empty text without chunks"


# --- a tiny PDF writer, so tests control exactly what a PDF contains ---------------


def _escape(s: str) -> bytes:
    return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").encode("latin-1")


def page_content(text: str | None) -> bytes:
    """A content stream showing ``text`` line by line, or only a drawing when None."""
    if text is None:
        return b"0.5 g 72 72 400 600 re f 0 G 72 72 m 472 672 l S"
    ops = [b"BT /F1 12 Tf 14 TL 72 720 Td"]
    for line in text.split("\n"):
        ops.append(b"(" + _escape(line) + b") Tj T*")
    ops.append(b"ET")
    return b"\n".join(ops)


def make_pdf(
    pages: Sequence[str | None],
    *,
    contents: Sequence[bytes] | None = None,
    compress: bool = False,
) -> bytes:
    """A valid PDF with one page per entry (text, or None for an image-like page).

    ``contents`` replaces the generated content streams (raw, before compression).
    """
    streams = list(contents) if contents is not None else [page_content(p) for p in pages]
    n = len(streams)
    objects: list[bytes] = []
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(n))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {n} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    for i, raw in enumerate(streams):
        content_ref = 5 + 2 * i
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {content_ref} 0 R >>".encode()
        )
        if compress:
            body = zlib.compress(raw, 9)
            head = f"<< /Length {len(body)} /Filter /FlateDecode >>".encode()
        else:
            body = raw
            head = f"<< /Length {len(body)} >>".encode()
        objects.append(head + b"\nstream\n" + body + b"\nendstream")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for num, obj in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{num} 0 obj\n".encode() + obj + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for off in offsets:
        out.write(f"{off:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()
