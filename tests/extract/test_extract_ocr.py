"""OCR with Tesseract: image-only PDF pages and PNG/JPEG/TIFF images yield text with
per-page confidence; bombs, timeouts, OCR off and Tesseract absent are refused with
the reason; character error rates on scans with known text are printed
(``python -m tests.extract.test_extract_ocr`` prints the table in docs/extract.md).

Tesseract is a requirement of these tests, not an option: deploy/setup.sh installs
it, and a machine without it fails here loudly instead of skipping.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path
from types import SimpleNamespace

import pypdfium2 as pdfium
import pytesseract
import pytest
from PIL import Image

from docgraph.core.settings import ExtractSettings, Settings
from docgraph.plugins.extractors import errors, ocr, pdf_ocr, tesseract
from docgraph.plugins.extractors.errors import ExtractionError
from docgraph.plugins.types import ExtractedDocument

from .helpers import assert_chunks_valid, make_pdf, sniff, sniff_and_extract
from .scans import KNOWN_TEXT, SECOND_PAGE, cer, degrade, encode, render

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("DOCGRAPH_PDF_CORPUS", REPO.parent / "shared" / "corpus" / "pdf"))
IMAGE_ONLY = [
    "cmyk-image.pdf",
    "grayscale-image.pdf",
    "imagemagick-ASCII85Decode.pdf",
    "imagemagick-CCITTFaxDecode.pdf",
    "imagemagick-lzw.pdf",
]
DPI = 150  # fast, and enough for 12 pt text
FAST = SimpleNamespace(ocr_dpi=DPI)
OFF = SimpleNamespace(ocr="off")
CER_BOUND = 0.05  # generated scans: clean text, one font
DEGRADED_CER_BOUND = 0.05  # tilted, blurred, speckled, JPEG quality 40: the median filter cleans it
REAL_CER_BOUND = 0.15  # corpus pages rendered as scans: real layouts, small print


def ocr_extract(data: bytes, settings: object = FAST) -> ExtractedDocument:
    doc = sniff_and_extract(data, settings=settings)
    assert_chunks_valid(doc.text, doc.chunks, 1500, pages=doc.pages)
    return doc


def refused(data: bytes, settings: object = FAST) -> ExtractionError:
    with pytest.raises(ExtractionError) as info:
        sniff_and_extract(data, settings=settings)
    return info.value


def confidences(doc: ExtractedDocument) -> list[float]:
    return [float(c) for c in doc.metadata["ocr_confidence"].split(",") if c != "-"]


def report(what: str, rate: float, doc: ExtractedDocument) -> None:
    print(f"\nOCR CER {what}: {rate:.4f} (confidence {doc.metadata.get('ocr_confidence')})")


# --- Tesseract is there -------------------------------------------------------------


def test_tesseract_is_installed() -> None:
    found = tesseract.engine("eng")
    assert found.ok, f"{found.reason}: run deploy/setup.sh (CI needs Tesseract, the OCR tests do not skip)"
    assert found.version.split(".")[0] >= "4"
    assert ocr.describe(None).startswith("OCR available: Tesseract ")


# --- scans with known text ------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF"])
def test_image_scan(fmt: str) -> None:
    data = encode([render(KNOWN_TEXT, DPI)], fmt, DPI)
    assert sniff(data) == f"image/{fmt.lower()}"
    doc = ocr_extract(data)
    assert doc.content_type == f"image/{fmt.lower()}" and doc.pages == 1
    assert doc.metadata["ocr_pages"] == "1" and doc.metadata["ocr_engine"].startswith("tesseract ")
    assert confidences(doc)[0] > 80
    rate = cer(KNOWN_TEXT, doc.text)
    report(fmt, rate, doc)
    assert rate < CER_BOUND, doc.text
    assert "CVE-2023-23397" in doc.text and "APT28" in doc.text


def test_degraded_scan() -> None:
    data = encode([degrade(render(KNOWN_TEXT, DPI))], "JPEG", DPI)
    doc = ocr_extract(data)
    rate = cer(KNOWN_TEXT, doc.text)
    report("degraded JPEG", rate, doc)
    assert rate < DEGRADED_CER_BOUND, doc.text
    raw = ocr_extract(data, SimpleNamespace(ocr_dpi=DPI, ocr_despeckle=False))
    report("degraded JPEG, no despeckle", cer(KNOWN_TEXT, raw.text), raw)


def test_photo_of_a_page_is_turned_upright() -> None:
    page = render(KNOWN_TEXT, DPI).rotate(90, expand=True)  # a phone held sideways
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: turn 90 degrees clockwise to view
    out = io.BytesIO()
    page.save(out, "JPEG", exif=exif, dpi=(DPI, DPI))
    doc = ocr_extract(out.getvalue())
    assert cer(KNOWN_TEXT, doc.text) < CER_BOUND, doc.text


@pytest.mark.parametrize("turn", [90, 180])
def test_sideways_scan_is_turned(turn: int) -> None:
    data = encode([render(KNOWN_TEXT, DPI).rotate(turn, expand=True)], "PNG", DPI)  # no EXIF to go by
    doc = ocr_extract(data)
    assert doc.metadata["ocr_rotated"] == f"1:{turn}"  # PIL turned it counter-clockwise
    rate = cer(KNOWN_TEXT, doc.text)
    report(f"turned {turn} degrees", rate, doc)
    assert rate < CER_BOUND, doc.text


def test_multipage_tiff_has_pages() -> None:
    data = encode([render(KNOWN_TEXT, DPI), render(SECOND_PAGE, DPI)], "TIFF", DPI)
    doc = ocr_extract(data)
    assert doc.pages == 2 and doc.metadata["ocr_pages"] == "1,2"
    assert len(confidences(doc)) == 2
    assert {c.page for c in doc.chunks} <= {1, 2}
    second = doc.text.index("Page two")
    assert doc.text[:second].strip() and cer(SECOND_PAGE, doc.text[second:]) < CER_BOUND


def test_image_only_pdf_scan() -> None:
    data = encode([render(KNOWN_TEXT, DPI), render(SECOND_PAGE, DPI)], "PDF", DPI)
    assert sniff(data) == "application/pdf"
    doc = ocr_extract(data)
    assert doc.content_type == "application/pdf" and doc.pages == 2
    assert doc.metadata["ocr_pages"] == "1,2" and "pages_without_text" not in doc.metadata
    assert min(confidences(doc)) > 80 and float(doc.metadata["ocr_mean_confidence"]) > 80
    rate = cer(KNOWN_TEXT + " " + SECOND_PAGE, doc.text)
    report("image-only PDF", rate, doc)
    assert rate < CER_BOUND, doc.text


def test_only_pages_without_text_are_ocred() -> None:
    scanned = encode([render(SECOND_PAGE, DPI)], "PDF", DPI)
    text_page = make_pdf(["A page with a text layer."])
    import pypdf

    writer = pypdf.PdfWriter()
    writer.append(pypdf.PdfReader(io.BytesIO(text_page)))
    writer.append(pypdf.PdfReader(io.BytesIO(scanned)))
    out = io.BytesIO()
    writer.write(out)
    doc = ocr_extract(out.getvalue())
    assert doc.metadata["ocr_pages"] == "2"
    assert doc.text.startswith("A page with a text layer.\n\n")
    assert "WindowsUpdateCheck" in doc.text


# --- the shared corpus -------------------------------------------------------------------


@pytest.mark.parametrize("name", IMAGE_ONLY)
def test_corpus_image_only_pdf_is_ocred(name: str) -> None:
    """These five are pictures without any writing (a photo, a drawing, 16 x 16 pixel test
    images): OCR runs on every page and, rightly, reads nothing - the refusal says so."""
    started = time.monotonic()
    err = refused((CORPUS / name).read_bytes(), settings=None)  # the defaults: 300 DPI
    assert time.monotonic() - started < 30
    assert err.code == errors.NO_TEXT, err
    assert "no text layer and OCR found no text" in str(err)


def test_corpus_partly_image_pdf_reports_ocr_pages() -> None:
    doc = ocr_extract((CORPUS / "imagemagick-images.pdf").read_bytes(), settings=None)
    assert doc.metadata["ocr_pages"] == "4,5"
    assert doc.metadata["ocr_confidence"] == "-,-"  # no words on those tiny images
    assert doc.metadata["pages_without_text"] == "4,5"


def scan_of(name: str, dpi: int = DPI, pages: int = 1) -> bytes:
    """A corpus PDF with a text layer, printed and scanned: its pages as an image-only PDF."""
    document = pdfium.PdfDocument((CORPUS / name).read_bytes())
    images = [document[i].render(scale=dpi / 72, grayscale=True).to_pil() for i in range(pages)]
    document.close()
    return encode(images, "PDF", dpi)


REAL_PAGES = ["minimal-document.pdf", "crazyones-pdfa.pdf", "google-doc-document.pdf"]


@pytest.mark.parametrize("name", REAL_PAGES)
def test_corpus_pages_scanned_read_back(name: str) -> None:
    reference = sniff_and_extract((CORPUS / name).read_bytes(), settings=OFF).text
    doc = ocr_extract(scan_of(name))
    assert doc.metadata["ocr_pages"] == "1"
    rate = cer(reference, doc.text)
    report(f"{name} scanned at {DPI} DPI", rate, doc)
    assert rate < REAL_CER_BOUND, doc.text


# --- bounds -----------------------------------------------------------------------------


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels in a few bytes (a bomb's header)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 1024))
        + chunk(b"IEND", b"")
    )


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow's, then ours
@pytest.mark.parametrize("side", [12_000, 40_000])  # past our limit; past twice Pillow's too
def test_decompression_bomb_image_is_refused(side: int) -> None:
    data = png_header(side, side)
    assert len(data) < 200
    err = refused(data)
    assert err.code == errors.DECOMPRESSION_BOMB
    assert "decompression bomb" in str(err) and "not" in str(err)
    if side == 12_000:
        assert "12,000 x 12,000 pixels (144,000,000)" in str(err)
        assert "DOCGRAPH_EXTRACT__OCR_MAX_PIXELS" in str(err)


def test_pixel_limit_applies_to_pdf_images() -> None:
    data = encode([render(KNOWN_TEXT, DPI)], "PDF", DPI)
    err = refused(data, SimpleNamespace(ocr_dpi=DPI, ocr_max_pixels=1_000_000))
    assert err.code == errors.DECOMPRESSION_BOMB
    assert "page 1 (its images together)" in str(err) and "1,000,000" in str(err)


def test_huge_page_is_rendered_within_the_pixel_limit() -> None:
    # a letter page at 1200 DPI would be 134.6 million pixels: drawn at a lower resolution instead
    data = encode([render(KNOWN_TEXT, 72)], "PDF", 72)  # its image: 612 x 792 pixels, allowed
    options = ocr.OcrOptions(dpi=1200, max_pixels=2_000_000)
    image = pdf_ocr._render(data, 1, options)
    assert image.width * image.height <= 2_000_000 and image.width > 1000
    image.close()
    doc = ocr_extract(data, SimpleNamespace(ocr_dpi=1200, ocr_max_pixels=2_000_000))
    assert "CVE-2023-23397" in doc.text


def test_page_timeout() -> None:
    data = encode([render(KNOWN_TEXT, DPI)], "PNG", DPI)
    err = refused(data, SimpleNamespace(ocr_dpi=DPI, ocr_page_timeout=0.01))
    assert err.code == errors.NO_TEXT and "In the image (image/png) OCR found no text" in str(err)
    assert "OCR timed out on pages 1; raise DOCGRAPH_EXTRACT__OCR_PAGE_TIMEOUT" in str(err)
    pdf = encode([render(KNOWN_TEXT, DPI)], "PDF", DPI)
    err = refused(pdf, SimpleNamespace(ocr_dpi=DPI, ocr_page_timeout=0.01))
    assert "OCR timed out on pages 1" in str(err) and "DOCGRAPH_EXTRACT__OCR_PAGE_TIMEOUT" in str(err)


def test_extraction_deadline_covers_ocr() -> None:
    data = encode([render(KNOWN_TEXT, DPI)] * 3, "PDF", DPI)
    started = time.monotonic()
    err = refused(data, SimpleNamespace(ocr_dpi=DPI, extract_timeout=0.3))
    assert err.code == errors.TIMEOUT and "DOCGRAPH_EXTRACT__TIMEOUT" in str(err)
    assert time.monotonic() - started < 5


def test_corrupt_image() -> None:
    err = refused(b"\x89PNG\r\n\x1a\n" + bytes(100))
    assert err.code == errors.CORRUPT and "image (image/png) is corrupt" in str(err)


# --- OCR off, Tesseract absent: the old refusal ----------------------------------------------


def test_ocr_off_pdf_needs_ocr() -> None:
    data = encode([render(KNOWN_TEXT, DPI)], "PDF", DPI)
    err = refused(data, OFF)
    assert err.code == errors.NEEDS_OCR
    assert "no text layer" in str(err) and "needs OCR; OCR is off (DOCGRAPH_EXTRACT__OCR=off" in str(err)
    assert "ocrmypdf" in str(err)


def test_ocr_off_image_is_unsupported() -> None:
    err = refused(encode([render(KNOWN_TEXT, DPI)], "PNG", DPI), OFF)
    assert err.code == errors.UNSUPPORTED_TYPE
    assert "it is an image; extracting text from it needs OCR; OCR is off" in str(err)
    assert "images with OCR" not in str(err)


def test_tesseract_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    tesseract.engine.cache_clear()
    try:
        err = refused(encode([render(KNOWN_TEXT, DPI)], "PDF", DPI))
        assert err.code == errors.NEEDS_OCR
        assert "OCR is not available: Tesseract is not installed (apt-get install tesseract-ocr" in str(err)
        assert refused(encode([render(KNOWN_TEXT, DPI)], "TIFF", DPI)).code == errors.UNSUPPORTED_TYPE
        assert ocr.describe(None).startswith("OCR is not available")
    finally:
        monkeypatch.undo()
        tesseract.engine.cache_clear()
    assert tesseract.engine("eng").ok


def test_language_data_missing() -> None:
    err = refused(encode([render(KNOWN_TEXT, DPI)], "PDF", DPI), SimpleNamespace(ocr_languages="eng+zzz"))
    assert err.code == errors.NEEDS_OCR
    assert "Tesseract has no data for zzz (DOCGRAPH_EXTRACT__OCR_LANGUAGES=eng+zzz" in str(err)


# --- settings ----------------------------------------------------------------------------------


def test_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ExtractSettings().ocr == "auto"
    monkeypatch.setenv("DOCGRAPH_EXTRACT__OCR", "off")
    monkeypatch.setenv("DOCGRAPH_EXTRACT__OCR_DPI", "200")
    settings = Settings(_env_file=None)
    assert settings.extract.ocr == "off" and settings.extract.ocr_dpi == 200
    options = ocr.OcrOptions.from_settings(settings)
    assert options.mode == "off" and options.dpi == 200 and options.unavailable() is not None
    monkeypatch.setenv("DOCGRAPH_EXTRACT__OCR", "sometimes")
    with pytest.raises(ValueError, match="ocr"):
        Settings(_env_file=None)


# --- through the extract stage -----------------------------------------------------------------------


async def test_extract_stage_completes_with_ocr(monkeypatch: pytest.MonkeyPatch) -> None:
    from docgraph.testing import run_stages

    for name in list(os.environ):
        if name.startswith("DOCGRAPH_") and not name.startswith("DOCGRAPH_TEST_"):
            monkeypatch.delenv(name)
    settings = Settings(_env_file=None, topology={"extract": []}, extract={"ocr_dpi": DPI})
    async with run_stages(settings) as harness:
        scan = encode([render(KNOWN_TEXT, DPI)], "PNG", DPI)
        job = await harness.submit_bytes(scan, name="scan.png")
        status = await harness.wait(job, timeout=120)
        assert status.state == "completed", status.to_dict()
        out = status.output("extract")
        assert out["content_type"] == "image/png" and out["ocr_pages"] == "1"
        assert float(out["ocr_mean_confidence"]) > 80
        text = harness.services.objects.get_json(out["artifact"])["text"]
        assert cer(KNOWN_TEXT, text) < CER_BOUND


def test_docgraph_run_says_whether_ocr_is_available(tmp_path: Path) -> None:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("DOCGRAPH_") or k.startswith("DOCGRAPH_TEST_")
    }
    (tmp_path / "empty").mkdir()
    cli = [sys.executable, "-m", "docgraph.core.cli", "run", str(tmp_path / "empty")]
    on = subprocess.run(cli, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert on.stderr.splitlines()[0].startswith("OCR available: Tesseract "), on.stderr
    assert on.returncode == 1 and "nothing to process" in on.stderr
    # the same line, from the same function, when OCR is off (one CLI start is enough: they are slow)
    off = ocr.describe(SimpleNamespace(ocr="off"))
    assert off.startswith("OCR is off (DOCGRAPH_EXTRACT__OCR=off") and "needs OCR" in off


def cer_table() -> str:
    """The CER table of docs/extract.md."""
    rows = [
        "| scan | DPI | CER | confidence | seconds | CER, no despeckle | confidence | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    cases: list[tuple[str, int, bytes, str]] = []
    for dpi in (150, 300):
        page = render(KNOWN_TEXT, dpi)
        for fmt in ("PNG", "JPEG", "TIFF", "PDF"):
            cases.append((f"generated, {fmt}", dpi, encode([page], fmt, dpi), KNOWN_TEXT))
        for fmt in ("JPEG", "PDF"):
            cases.append((f"generated, degraded, {fmt}", dpi, encode([degrade(page)], fmt, dpi), KNOWN_TEXT))
    for name in REAL_PAGES:
        ref = sniff_and_extract((CORPUS / name).read_bytes(), settings=OFF).text
        for dpi in (150, 300):
            cases.append((f"{name} page 1, rendered", dpi, scan_of(name, dpi), ref))
    for what, dpi, data, ref in cases:
        cells = []
        for despeckle in (True, False):
            started = time.monotonic()
            doc = sniff_and_extract(data, settings=SimpleNamespace(ocr_dpi=dpi, ocr_despeckle=despeckle))
            took = time.monotonic() - started
            cells.append(f"{cer(ref, doc.text):.2%} | {doc.metadata['ocr_mean_confidence']} | {took:.1f}")
        rows.append(f"| {what} | {dpi} | {' | '.join(cells)} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(cer_table())
