"""Every PDF of the shared corpus through sniff + extract, checked against files.json.

The corpus is read in place from ``../shared/corpus/pdf`` (relative to the
repository; ``DOCGRAPH_PDF_CORPUS`` overrides it) and never copied.  files.json
(py-pdf sample-files) says which file is encrypted and how many pages each has;
which files are image-only (no text layer) it does not say, so that is listed
here, from looking at the files.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from docgraph.plugins.extractors import errors
from docgraph.plugins.extractors.errors import ExtractionError

from .helpers import assert_chunks_valid, sniff, sniff_and_extract

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("DOCGRAPH_PDF_CORPUS", REPO.parent / "shared" / "corpus" / "pdf"))

if not CORPUS.is_dir():
    pytest.skip(f"PDF corpus not found at {CORPUS}", allow_module_level=True)

# Pages that are only images (a photo, a drawing, 16 x 16 pixel bitmaps), without any
# writing: OCR reads them and finds nothing; with OCR off extraction asks for OCR.
IMAGE_ONLY = {
    "cmyk-image.pdf",
    "grayscale-image.pdf",
    "imagemagick-ASCII85Decode.pdf",
    "imagemagick-CCITTFaxDecode.pdf",
    "imagemagick-lzw.pdf",
}
# Words each text file must yield (spot checks of the extraction itself).
EXPECTED_WORDS = {
    "minimal-document.pdf": ["Lorem"],
    "pdflatex-4-pages.pdf": ["alphabet", "information"],
    "habibi.pdf": ["habibi", "\u062d\u064e\u0628\u064a\u0628\u064a"],
    "GeoTopo-komprimiert.pdf": ["Topologie", "offen"],  # "oﬀen" ligature spelled out
    "crazyones-pdfa.pdf": ["crazy"],
    "imagemagick-images.pdf": ["Background"],
    "inline-image.pdf": ["Test"],
}


def _files_json() -> dict[str, dict[str, Any]]:
    path = CORPUS / "files.json"
    if not path.exists():
        return {}
    entries = json.loads(path.read_text(encoding="utf-8"))["data"]
    return {Path(e["path"]).name: e for e in entries}


FILES = _files_json()
PDFS = sorted(p.name for p in CORPUS.glob("*.pdf"))


def test_corpus_is_there() -> None:
    assert PDFS, f"no PDF in {CORPUS}"
    assert FILES, f"no files.json in {CORPUS}"


@pytest.mark.parametrize("name", PDFS)
def test_corpus_pdf(name: str) -> None:
    data = (CORPUS / name).read_bytes()
    # sniffing ignores a misleading name
    assert sniff(data, name) == "application/pdf"
    assert sniff(data, "notes.txt") == "application/pdf"
    entry = FILES.get(name)
    started = time.monotonic()
    try:
        doc = sniff_and_extract(data, name)
    except ExtractionError as err:
        outcome: Any = err
    else:
        outcome = doc
    assert time.monotonic() - started < 60

    if entry is not None and entry.get("encrypted"):
        assert isinstance(outcome, ExtractionError), "an encrypted PDF must be refused"
        assert outcome.code == errors.ENCRYPTED
        assert "encrypted" in str(outcome) and "decrypt it first" in str(outcome)
        return
    if name in IMAGE_ONLY:
        # OCR (on by default, Tesseract required) reads their pages: pictures without writing
        assert isinstance(outcome, ExtractionError), "an image-only PDF has no text"
        assert outcome.code == errors.NO_TEXT
        assert "no text layer and OCR found no text" in str(outcome)
        with pytest.raises(ExtractionError) as off:
            sniff_and_extract(data, name, SimpleNamespace(ocr="off"))
        assert off.value.code == errors.NEEDS_OCR and "ocrmypdf" in str(off.value)
        return
    if entry is None:
        # not described: text, or a permanent error with a reason - nothing else
        if isinstance(outcome, ExtractionError):
            assert outcome.code in errors.CODES and len(str(outcome)) > 40
            return
    assert not isinstance(outcome, Exception), f"{name}: {outcome}"
    assert outcome.content_type == "application/pdf"
    assert outcome.text.strip()
    if entry is not None:
        assert outcome.pages == entry["pages"]
    assert_chunks_valid(outcome.text, outcome.chunks, 1500, pages=outcome.pages)
    for word in EXPECTED_WORDS.get(name, []):
        assert word in outcome.text, word


def test_pages_of_chunks_follow_the_document() -> None:
    data = (CORPUS / "pdflatex-4-pages.pdf").read_bytes()
    doc = sniff_and_extract(data, settings=type("S", (), {"chunk_chars": 500})())
    assert doc.pages == 4
    assert {c.page for c in doc.chunks} == {1, 2, 3, 4}
    assert_chunks_valid(doc.text, doc.chunks, 500, pages=4)


def test_truncated_corpus_pdf() -> None:
    data = (CORPUS / "pdflatex-4-pages.pdf").read_bytes()
    with pytest.raises(ExtractionError) as info:
        sniff_and_extract(data[: len(data) // 2])
    assert info.value.code == errors.TRUNCATED
    assert "truncated" in str(info.value)


def corpus_table() -> str:
    """The Markdown table in docs/extract.md: ``python -m tests.extract.test_extract_corpus``."""
    rows = ["| file | pages | chars | chunks | result |", "|---|---:|---:|---:|---|"]
    for name in PDFS:
        data = (CORPUS / name).read_bytes()
        pages = FILES.get(name, {}).get("pages", "?")
        try:
            doc = sniff_and_extract(data, name)
        except ExtractionError as err:
            rows.append(f"| {name} | {pages} | - | - | error `{err.code}` |")
        else:
            note = "text"
            if "pages_without_text" in doc.metadata:
                note += f" (no text on pages {doc.metadata['pages_without_text']}"
                if "ocr_pages" in doc.metadata:
                    note += ", not even by OCR"
                note += ")"
            rows.append(f"| {name} | {doc.pages} | {len(doc.text):,} | {len(doc.chunks)} | {note} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(corpus_table())
