"""Bad and hostile input: every case is a PermanentError with an actionable reason,
quickly and without blowing memory; nothing else escapes."""

from __future__ import annotations

import io
import random
import struct
import time
import tracemalloc
import zipfile
from types import SimpleNamespace

import docx
import pypdf
import pytest

from docgraph.core.errors import PermanentError
from docgraph.plugins.extractors import errors
from docgraph.plugins.extractors.errors import ExtractionError
from docgraph.plugins.extractors.limits import Deadline
from docgraph.plugins.extractors.sniff import DOCX

from .helpers import assert_chunks_valid, extract, make_pdf, sniff, sniff_and_extract

ALL_TYPES = [
    "application/pdf",
    DOCX,
    "text/html",
    "text/plain",
    "text/markdown",
    "application/octet-stream",
    "image/png",
]
RANDOM = random.Random(1234).randbytes(64 * 1024)


def refused(data: bytes, content_type: str | None = None, settings: object = None) -> ExtractionError:
    """Extract and return the ExtractionError it must raise (also a PermanentError)."""
    with pytest.raises(ExtractionError) as info:
        if content_type is None:
            sniff_and_extract(data, settings=settings)
        else:
            extract(data, content_type, settings)
    assert isinstance(info.value, PermanentError)
    assert info.value.code in errors.CODES
    assert len(str(info.value)) > 40, "the reason should say what to do"
    return info.value


@pytest.mark.parametrize("content_type", ALL_TYPES)
def test_zero_bytes(content_type: str) -> None:
    err = refused(b"", content_type)
    assert err.code == errors.EMPTY
    assert "empty (0 bytes)" in str(err)


def test_zero_bytes_sniffed() -> None:
    assert sniff(b"") == "application/octet-stream"
    assert refused(b"").code == errors.EMPTY


@pytest.mark.parametrize("content_type", ALL_TYPES)
def test_oversized(content_type: str) -> None:
    settings = SimpleNamespace(max_document_bytes=1000)
    err = refused(b"%PDF-1.4\n" + b"x" * 2000, content_type, settings)
    assert err.code == errors.TOO_LARGE
    assert "over the 1000 bytes limit" in str(err) and "DOCGRAPH_MAX_DOCUMENT_BYTES" in str(err)


def test_default_size_limit_is_50_mib() -> None:
    data = b"a " * (25 * 1024 * 1024 + 1)
    err = refused(data, "text/plain")
    assert err.code == errors.TOO_LARGE and "50 MiB" in str(err)


def test_random_bytes() -> None:
    assert sniff(RANDOM, "report.pdf") == "application/octet-stream"
    err = refused(RANDOM)
    assert err.code == errors.UNSUPPORTED_TYPE
    for supported in ("application/pdf", "text/html", "text/plain", "text/markdown", DOCX):
        assert supported in str(err)


@pytest.mark.parametrize(
    ("content_type", "code"),
    [
        ("application/pdf", errors.CORRUPT),
        (DOCX, errors.CORRUPT),
        ("text/plain", errors.NOT_TEXT),
        ("text/html", errors.NOT_TEXT),
    ],
)
def test_random_bytes_with_a_claimed_type(content_type: str, code: str) -> None:
    assert refused(RANDOM, content_type).code == code


def test_pdf_header_then_garbage() -> None:
    data = b"%PDF-1.7\n" + RANDOM + b"\n%%EOF\n"
    assert sniff(data) == "application/pdf"
    err = refused(data)
    assert err.code == errors.CORRUPT
    assert "corrupt" in str(err)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9, 0.99])
def test_truncated_pdf(fraction: float) -> None:
    data = make_pdf(["Hello world.", "Second page."], compress=True)
    err = refused(data[: int(len(data) * fraction)])
    assert err.code == errors.TRUNCATED
    assert "truncated" in str(err) and "complete file" in str(err)


def test_pdf_broken_xref_still_read() -> None:
    # a wrong xref table is recoverable: pypdf rebuilds it (non-strict mode)
    data = make_pdf(["Recoverable text."])
    broken = data.replace(b"0000000009 00000 n", b"0000000999 00000 n")
    assert sniff_and_extract(broken).text == "Recoverable text."


def test_image_only_pdf() -> None:
    err = refused(make_pdf([None, None, None]), settings=SimpleNamespace(ocr="off"))
    assert err.code == errors.NEEDS_OCR
    assert "needs OCR; OCR is off (DOCGRAPH_EXTRACT__OCR=off" in str(err)
    assert "run OCR (e.g. ocrmypdf) first" in str(err)
    assert "3 pages" in str(err)
    # with OCR (the default) the drawings are read, and hold no text
    err = refused(make_pdf([None, None, None]), settings=SimpleNamespace(ocr_dpi=72))
    assert err.code == errors.NO_TEXT and "OCR found no text on any of its 3 pages" in str(err)


def test_partly_image_pdf_lists_pages() -> None:
    doc = sniff_and_extract(make_pdf(["Text page.", None, "More text."]))
    assert doc.metadata["pages_without_text"] == "2"
    assert [c.page for c in doc.chunks] == [1]  # one chunk, starting on page 1
    assert doc.text == "Text page.\n\nMore text."


def _encrypt(data: bytes, user: str, owner: str, algorithm: str) -> bytes:
    writer = pypdf.PdfWriter(clone_from=io.BytesIO(data))
    writer.encrypt(user_password=user, owner_password=owner, algorithm=algorithm)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.parametrize("algorithm", ["RC4-128", "AES-128", "AES-256"])
def test_password_protected_pdf(algorithm: str) -> None:
    data = _encrypt(make_pdf(["Secret text."]), "user-pw", "owner-pw", algorithm)
    assert sniff(data) == "application/pdf"
    err = refused(data)
    assert err.code == errors.ENCRYPTED
    assert "encrypted (password-protected)" in str(err) and "decrypt it first" in str(err)


@pytest.mark.parametrize("algorithm", ["RC4-128", "AES-256"])
def test_restrictions_only_pdf_is_read(algorithm: str) -> None:
    # encrypted with an empty user password (only printing/copying restricted)
    data = _encrypt(make_pdf(["Open text."]), "", "owner-pw", algorithm)
    assert sniff_and_extract(data).text == "Open text."


def test_too_many_pages() -> None:
    err = refused(make_pdf(["a", "b", "c"]), settings=SimpleNamespace(max_pages=2))
    assert err.code == errors.TOO_MANY_PAGES
    assert "3 pages" in str(err) and "DOCGRAPH_EXTRACT__MAX_PAGES" in str(err)


def test_pdf_stream_bomb() -> None:
    # one page whose content stream inflates from ~100 KiB to 100 MiB
    content = b"BT /F1 12 Tf 72 720 Td (boom) Tj ET\n" + b" " * (100 * 1024 * 1024)
    data = make_pdf(["x"], contents=[content], compress=True)
    assert len(data) < 200_000
    tracemalloc.start()
    started = time.monotonic()
    try:
        err = refused(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert err.code == errors.DECOMPRESSION_BOMB
    assert "decompression bomb" in str(err)
    assert time.monotonic() - started < 30
    assert peak < 80 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB"


def test_pdf_many_pages_bomb_budget() -> None:
    # each stream is under the per-stream limit, together they exceed the budget
    content = b"BT /F1 12 Tf 72 720 Td (page) Tj ET\n" + b" " * (3 * 1024 * 1024)
    data = make_pdf(["x"] * 8, contents=[content] * 8, compress=True)
    settings = SimpleNamespace(max_decompressed_bytes=16 * 1024 * 1024)
    err = refused(data, settings=settings)
    assert err.code == errors.DECOMPRESSION_BOMB


def test_timeout() -> None:
    data = make_pdf(["page"] * 5)
    err = refused(data, settings=SimpleNamespace(extract_timeout=0))
    assert err.code == errors.TIMEOUT
    assert "DOCGRAPH_EXTRACT__TIMEOUT" in str(err)


def test_timeout_inside_a_page(monkeypatch: pytest.MonkeyPatch) -> None:
    # only the per-operator check inside pypdf's text extraction can fire
    monkeypatch.setattr(Deadline, "check", lambda self, where="": None)
    err = refused(make_pdf(["page"]), settings=SimpleNamespace(extract_timeout=0))
    assert err.code == errors.TIMEOUT
    assert "page 1 of 1" in str(err)


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return buf.getvalue()


def _docx_bytes(text: str = "Hello docx.") -> bytes:
    document = docx.Document()
    document.add_paragraph(text)
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()


def test_zip_bomb_docx() -> None:
    # a valid-looking package whose document.xml inflates from ~200 KiB to 200 MiB
    zf = zipfile.ZipFile(io.BytesIO(_docx_bytes()))
    members = {n: zf.read(n) for n in zf.namelist()}
    members["word/document.xml"] = b"<" + b"a" * (200 * 1024 * 1024) + b"/>"
    data = _zip(members)
    assert len(data) < 1024 * 1024
    assert sniff(data) == DOCX
    tracemalloc.start()
    started = time.monotonic()
    try:
        err = refused(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert err.code == errors.DECOMPRESSION_BOMB
    assert "decompression bomb" in str(err) and "decompress to 200" in str(err)
    assert time.monotonic() - started < 5
    assert peak < 20 * 1024 * 1024, "the bomb must be refused before inflating it"


def test_zip_with_lying_sizes() -> None:
    # the directory claims 100 bytes but the member inflates to 50 MiB: zipfile stops
    # at the declared size and the CRC check fails, nothing large is ever allocated
    zf = zipfile.ZipFile(io.BytesIO(_docx_bytes()))
    members = {n: zf.read(n) for n in zf.namelist()}
    members["word/document.xml"] = b" " * (50 * 1024 * 1024)
    data = bytearray(_zip(members))
    # patch the uncompressed size of word/document.xml in the central directory
    name = b"word/document.xml"
    pos = 0
    while True:
        pos = data.find(b"PK\x01\x02", pos)
        assert pos >= 0
        if data[pos + 46 : pos + 46 + len(name)] == name:
            break
        pos += 4
    data[pos + 24 : pos + 28] = struct.pack("<I", 100)  # central directory: file size
    tracemalloc.start()
    try:
        err = refused(bytes(data), DOCX)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert err.code == errors.CORRUPT
    assert peak < 20 * 1024 * 1024


def test_zip_with_too_many_members() -> None:
    members = {"word/document.xml": b"<x/>"} | {f"f{i}": b"" for i in range(10_001)}
    data = _zip(members, zipfile.ZIP_STORED)
    err = refused(data, DOCX)
    assert err.code == errors.DECOMPRESSION_BOMB


def test_docx_entity_expansion_is_not_performed() -> None:
    zf = zipfile.ZipFile(io.BytesIO(_docx_bytes("placeholder")))
    members = {n: zf.read(n) for n in zf.namelist()}
    laughs = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    members["word/document.xml"] = (
        members["word/document.xml"]
        .replace(
            b"<w:document",
            f'<!DOCTYPE w:document [<!ENTITY l0 "lol">{laughs}]><w:document'.encode(),
            1,
        )
        .replace(b"placeholder", b"&l9;")
    )
    started = time.monotonic()
    try:
        doc = extract(_zip(members), DOCX)
    except ExtractionError as err:
        assert err.code in (errors.CORRUPT, errors.NO_TEXT)
    else:
        assert len(doc.text) < 1000
    assert time.monotonic() - started < 5


def test_macro_enabled_word_document() -> None:
    zf = zipfile.ZipFile(io.BytesIO(_docx_bytes()))
    members = {n: zf.read(n) for n in zf.namelist()}
    members["[Content_Types].xml"] = members["[Content_Types].xml"].replace(
        b"wordprocessingml.document.main+xml", b"ms-word.document.macroEnabled.main+xml"
    )
    data = _zip(members)
    assert sniff(data) == DOCX  # a Word package all the same
    err = refused(data)
    assert err.code == errors.UNSUPPORTED_TYPE
    assert "macro-enabled" in str(err) and ".docx" in str(err)


def test_zip_that_is_not_a_docx() -> None:
    data = _zip({"readme.txt": b"hello", "data.csv": b"a,b"})
    assert sniff(data) == "application/zip"
    err = refused(data)
    assert err.code == errors.UNSUPPORTED_TYPE and "ZIP archive" in str(err)
    assert refused(data, DOCX).code == errors.CORRUPT


def test_truncated_docx() -> None:
    data = _docx_bytes()
    err = refused(data[: len(data) // 2], DOCX)
    assert err.code == errors.CORRUPT
    assert "corrupt or truncated" in str(err)


@pytest.mark.parametrize(
    ("data", "hint"),
    [
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "legacy Office"),
        (b"\x89PNG\r\n\x1a\n" + bytes(100), "needs OCR"),
        (b"{\\rtf1\\ansi Hello}", "RTF"),
    ],
)
def test_unsupported_formats_explain(data: bytes, hint: str) -> None:
    err = refused(data, settings=SimpleNamespace(ocr="off"))
    assert err.code == errors.UNSUPPORTED_TYPE
    assert hint in str(err)


def test_binary_claimed_as_text() -> None:
    data = bytes(range(1, 32)) * 100
    assert refused(data, "text/plain").code == errors.NOT_TEXT


def test_deeply_nested_html() -> None:
    depth = 100_000
    data = b"<html><body>" + b"<div>" * depth + b"deep" + b"</div>" * depth + b"</body></html>"
    started = time.monotonic()
    try:
        doc = sniff_and_extract(data)
    except ExtractionError as err:
        assert err.code in (errors.CORRUPT, errors.NO_TEXT)
    else:
        assert "deep" in doc.text or doc.text
    assert time.monotonic() - started < 10


def test_long_word_text_is_chunked_with_bounds() -> None:
    blob = "A" * 100_000
    doc = sniff_and_extract(f"start {blob} end".encode(), settings=SimpleNamespace(chunk_chars=100))
    assert_chunks_valid(doc.text, doc.chunks, 100)
    assert max(len(c.text) for c in doc.chunks) <= 400


def test_too_much_text() -> None:
    err = refused(b"word " * 1000, "text/plain", SimpleNamespace(max_text_chars=100))
    assert err.code == errors.TOO_MUCH_TEXT


def test_errors_survive_pickling() -> None:
    import pickle

    err = ExtractionError(errors.ENCRYPTED, "msg")
    again = pickle.loads(pickle.dumps(err))
    assert again.code == errors.ENCRYPTED and str(again) == "msg"
