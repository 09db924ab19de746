"""DOCX, HTML, text and Markdown fixtures generated in the tests, through the plugins."""

from __future__ import annotations

import io
from types import SimpleNamespace

import docx
import pytest

from docgraph.plugins.extractors import errors
from docgraph.plugins.extractors.errors import ExtractionError
from docgraph.plugins.extractors.sniff import DOCX
from docgraph.plugins.extractors.sniff import sniff as sniff_full

from .helpers import assert_chunks_valid, extract, make_pdf, sniff, sniff_and_extract

FRENCH = (
    "Les élèves préfèrent les crêpes à la crème, déjà payées. Où est le garçon? "
    "Ça coûte très cher: 12 € pour un café noir. Naïve façade, à bientôt."
)
GERMAN = "Müller & Söhne GmbH, Hauptstraße 5, 80331 München. Größe: 3 µm; Grüße aus Köln!"


# --- DOCX ----------------------------------------------------------------------------


def make_docx(tmp_path, name: str = "report.docx") -> bytes:
    document = docx.Document()
    document.core_properties.title = "Incident report"
    document.add_heading("Incident report", level=1)
    document.add_paragraph("First paragraph about APT29 and CVE-2023-1234.")
    p = document.add_paragraph("Second paragraph with ")
    p.add_run("bold").bold = True
    p.add_run(" text.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "Vendor"
    table.cell(0, 1).text = "Product"
    table.cell(1, 0).text = "Siemens"
    table.cell(1, 1).text = "S7-1200"
    document.add_paragraph("Ünïcödé paragraph: 日本語のテキスト。")
    path = tmp_path / name
    document.save(str(path))
    return path.read_bytes()


def test_docx(tmp_path) -> None:
    data = make_docx(tmp_path)
    assert sniff(data, "report.docx") == DOCX
    assert sniff(data, "report.pdf") == DOCX  # the name does not matter
    assert sniff(data[:4096], None) == DOCX  # from the local headers of a partial head
    doc = sniff_and_extract(data)
    assert doc.content_type == DOCX
    assert doc.pages is None
    assert doc.metadata["title"] == "Incident report"
    assert doc.text.startswith("Incident report\n\nFirst paragraph about APT29")
    assert "Second paragraph with bold text." in doc.text
    assert "Vendor\tProduct\nSiemens\tS7-1200" in doc.text
    assert "Ünïcödé paragraph: 日本語のテキスト。" in doc.text
    assert_chunks_valid(doc.text, doc.chunks, 1500)


def test_docx_long_document_chunks(tmp_path) -> None:
    document = docx.Document()
    for i in range(200):
        document.add_paragraph(f"Paragraph {i}. " + "Some words in a sentence. " * 8)
    buf = io.BytesIO()
    document.save(buf)
    doc = sniff_and_extract(buf.getvalue(), settings=SimpleNamespace(chunk_chars=600))
    assert len(doc.chunks) > 40
    assert all(c.page is None for c in doc.chunks)
    assert_chunks_valid(doc.text, doc.chunks, 600)
    # chunks end on paragraph or sentence boundaries
    assert all(c.text.endswith(".") for c in doc.chunks)


def test_empty_docx(tmp_path) -> None:
    buf = io.BytesIO()
    docx.Document().save(buf)
    with pytest.raises(ExtractionError) as info:
        sniff_and_extract(buf.getvalue())
    assert info.value.code == errors.NO_TEXT


# --- HTML ----------------------------------------------------------------------------

HTML_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>  Threat   brief </title>
<style>body { color: red }</style><script>var secret = "do not index";</script></head>
<body>
<nav><a href="/">Home</a> | <a href="/about">About</a></nav>
<h1>Threat brief</h1>
<p>The actor   used
   <b>Cobalt Strike</b> and <a href="#">Mimikatz</a>.</p>
<p>Second<br>line.</p>
<ul><li>one</li><li>two</li></ul>
<table><tr><th>IP</th><th>Port</th></tr><tr><td>10.0.0.1</td><td>443</td></tr></table>
<div hidden>hidden text</div>
<noscript>enable JS</noscript>
<!-- a comment -->
<p>caf&eacute; &amp; cr&egrave;me</p>
</body></html>
"""


def test_html() -> None:
    data = HTML_PAGE.encode("utf-8")
    assert sniff(data, "page.txt") == "text/html"
    doc = sniff_and_extract(data)
    assert doc.content_type == "text/html"
    assert doc.metadata["title"] == "Threat brief"
    assert doc.text == (
        "Threat brief\n\nThe actor used Cobalt Strike and Mimikatz.\n\nSecond\nline.\n\n"
        "one\ntwo\n\nIP\tPort\n10.0.0.1\t443\n\ncafé & crème"
    )
    for dropped in ("secret", "Home", "About", "hidden text", "enable JS", "comment", "color"):
        assert dropped not in doc.text
    assert_chunks_valid(doc.text, doc.chunks, 1500)


def test_html_meta_charset_latin1() -> None:
    page = f'<html><head><meta charset="iso-8859-1"></head><body><p>{FRENCH}</p></body></html>'
    doc = sniff_and_extract(page.encode("latin-1", "replace"))
    assert doc.text == FRENCH.replace("€", "?")


def test_html_utf16_with_bom() -> None:
    page = f"<!doctype html><html><body><p>{GERMAN}</p></body></html>"
    data = "\ufeff".encode("utf-16-le") + page.encode("utf-16-le")
    assert sniff(data) == "text/html"
    assert sniff_and_extract(data).text == GERMAN


def test_xhtml() -> None:
    page = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>T</title></head>'
        "<body><p>Hello XHTML</p></body></html>"
    )
    data = page.encode()
    assert sniff(data) == "application/xhtml+xml"
    doc = sniff_and_extract(data)
    assert doc.text == "Hello XHTML"
    assert doc.metadata["title"] == "T"


def test_html_without_visible_text() -> None:
    data = b"<html><head><script>alert(1)</script></head><body>  </body></html>"
    with pytest.raises(ExtractionError) as info:
        sniff_and_extract(data)
    assert info.value.code == errors.NO_TEXT
    assert "JavaScript" in str(info.value)


# --- text and Markdown ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [
        ("utf-8", b""),
        ("utf-8", b"\xef\xbb\xbf"),
        ("utf-16-le", b"\xff\xfe"),
        ("utf-16-be", b"\xfe\xff"),
        ("utf-16-le", b""),
        ("utf-32-le", b"\xff\xfe\x00\x00"),
    ],
)
def test_unicode_text(encoding: str, bom: bytes) -> None:
    original = f"{GERMAN}\n\n{FRENCH}\n\nعربي и русский, 日本語。"
    data = bom + original.encode(encoding)
    assert sniff(data, "notes.txt") == "text/plain"
    doc = sniff_and_extract(data)
    assert doc.text == original
    assert doc.content_type == "text/plain"
    assert_chunks_valid(doc.text, doc.chunks, 1500)


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252"])
@pytest.mark.parametrize("sample", [FRENCH, GERMAN, "Müller"])
def test_legacy_western_text(encoding: str, sample: str) -> None:
    data = sample.encode(encoding, "replace")
    assert sniff(data) == "text/plain"
    doc = sniff_and_extract(data)
    assert doc.text == data.decode(encoding)
    assert doc.metadata["encoding"] in ("cp1252", "latin-1")


def test_cyrillic_code_page() -> None:
    original = "Привет, как дела? Это проверка кодировки windows-1251 для русского текста."
    doc = sniff_and_extract(original.encode("cp1251"))
    assert doc.text == original


def test_declared_charset_wins() -> None:
    original = "Příliš žluťoučký kůň úpěl ďábelské ódy."
    doc = extract(original.encode("cp1250"), "text/plain; charset=windows-1250")
    assert doc.text == original


def test_markdown_by_name_only_when_text() -> None:
    md = "# Title\n\nSome *emphasis* and a [link](http://example.com).\n\n- item\n- item 2\n"
    data = md.encode()
    assert sniff(data, "README.md") == "text/markdown"
    assert sniff(data, "README.txt") == "text/plain"
    assert sniff(data, None) == "text/plain"
    doc = sniff_and_extract(data, "README.md")
    assert doc.content_type == "text/markdown"
    assert doc.text == md.strip()
    # an HTML comment at the top of a Markdown file does not make it HTML
    assert sniff(b"<!-- lint: off -->\n# Title\n", "doc.md") == "text/markdown"
    # but binary named .md is still binary
    assert sniff(bytes(range(256)) * 4, "evil.md") == "application/octet-stream"


def test_whitespace_normalization() -> None:
    raw = "  a\u00a0\u00a0b\t\tc  \r\nline two\r\n\r\n\r\n\n  para\u2029xy\u00adz ﬁle\u0065\u0301 "
    doc = sniff_and_extract(raw.encode("utf-8"))
    assert doc.text == "a b\tc\nline two\n\npara\n\nxyz file\u00e9"


def test_whitespace_only_text() -> None:
    with pytest.raises(ExtractionError) as info:
        sniff_and_extract(b" \n\t\r\n  ")
    assert info.value.code == errors.NO_TEXT


# --- sniffing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"%PDF-1.7\n", "application/pdf"),
        (b"\n\n  %PDF-1.4 junk before header", "application/pdf"),
        (b"\x00\x05\x11\x80\x81junk%PDF-1.4\n", "application/pdf"),
        (b"Every PDF starts with %PDF-1.7 and ends with %%EOF.", "text/plain"),
        (b"\xef\xbb\xbf  <!DOCTYPE html><p>x", "text/html"),
        (b"\n\n<HTML><body>x", "text/html"),
        (b"<!-- c --><html>", "text/html"),
        (b"<p>para</p>", "text/html"),
        (b'<?xml version="1.0"?><note>x</note>', "application/xml"),
        (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "image/png"),
        (b"\xff\xd8\xff\xe0\0\x10JFIF", "image/jpeg"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "application/x-ole-storage"),
        (b"{\\rtf1\\ansi hello}", "application/rtf"),
        (b"BMW is a car maker.", "text/plain"),
        (b"", "application/octet-stream"),
        (b"\x00\x01\x02\x03\xff\xfe\xfd" * 50, "application/octet-stream"),
    ],
)
def test_sniff_magic(head: bytes, expected: str) -> None:
    assert sniff_full(head, None) == expected


def test_sniff_zip_kinds(tmp_path) -> None:
    import zipfile

    def make(names: list[str], mimetype: str | None = None) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            if mimetype:
                zf.writestr("mimetype", mimetype, compress_type=zipfile.ZIP_STORED)
            for n in names:
                zf.writestr(n, "<x/>")
        return buf.getvalue()

    assert sniff_full(make(["[Content_Types].xml", "word/document.xml"])) == DOCX
    xlsx = make(["[Content_Types].xml", "xl/workbook.xml"])
    assert sniff_full(xlsx).endswith("spreadsheetml.sheet")
    odt = make(["content.xml"], "application/vnd.oasis.opendocument.text")
    assert sniff_full(odt) == "application/vnd.oasis.opendocument.text"
    assert sniff_full(make(["a.txt", "b.txt"])) == "application/zip"


def test_generated_pdf_pages_and_offsets() -> None:
    pages = [f"Page {i} says hello.\nSecond line of page {i}." for i in range(1, 6)]
    data = make_pdf(pages, compress=True)
    doc = sniff_and_extract(data, settings=SimpleNamespace(chunk_chars=30))
    assert doc.pages == 5
    assert_chunks_valid(doc.text, doc.chunks, 30, pages=5)
    for chunk in doc.chunks:
        number = chunk.text.split()[1] if chunk.text.startswith("Page") else None
        if number:
            assert chunk.page == int(number)
    assert doc.text.split("\n\n") == pages
