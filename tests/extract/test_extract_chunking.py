"""Chunking and normalization: the offset invariants, by example and with hypothesis."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from docgraph.plugins.extractors.chunking import build_document, chunk_text
from docgraph.plugins.extractors.limits import Limits
from docgraph.plugins.extractors.normalize import normalize_text

from .helpers import assert_chunks_valid

SENTENCES = (
    "The quick brown fox jumps over the lazy dog. APT28 used CVE-2017-0199 in 2017! "
    "Was it Fancy Bear? Yes.\nA new line starts here, and goes on for a while.\n\n"
)


@pytest.mark.parametrize("size", [1, 5, 20, 80, 300, 1500])
def test_examples(size: int) -> None:
    text = normalize_text(SENTENCES * 40)
    chunks = chunk_text(text, size)
    assert_chunks_valid(text, chunks, size)


def test_prefers_paragraphs_then_sentences() -> None:
    para = "Alpha beta gamma. Delta epsilon zeta. Eta theta iota."  # 53 chars
    text = "\n\n".join([para] * 6)
    chunks = chunk_text(text, 120)
    assert all(c.text.endswith("iota.") for c in chunks)  # paragraph ends
    chunks = chunk_text(" ".join([para] * 4), 40)
    assert all(c.text.endswith(".") for c in chunks[:-1])  # sentence ends


def test_never_splits_words() -> None:
    text = " ".join(["supercalifragilistic"] * 50)
    chunks = chunk_text(text, 30)
    assert {c.text for c in chunks} <= {"supercalifragilistic"}


def test_page_of_chunk_is_where_it_starts() -> None:
    pages = ["one " * 50, "", "three " * 50, "four"]
    doc = build_document(pages, "application/pdf", Limits(chunk_chars=60), paged=True)
    assert doc.pages == 4
    assert_chunks_valid(doc.text, doc.chunks, 60, pages=4)
    starts = [0]
    for page in pages[:-1]:
        starts.append(starts[-1] + len(normalize_text(page)) + (2 if normalize_text(page) else 0))
    for chunk in doc.chunks:
        word = chunk.text.split()[0]
        assert chunk.page == {"one": 1, "three": 3, "four": 4}[word]


def test_normalize() -> None:
    assert normalize_text("a\r\nb\rc\x0bd") == "a\nb\nc\nd"
    assert normalize_text("a\fb\u2029c") == "a\n\nb\n\nc"
    assert normalize_text("x\x00\x07\x1b\x7f\x9fy\u00ad\ufeffz") == "xyz"
    assert normalize_text("\ud800bad") == "bad"
    assert normalize_text("ﬁ ﬂ ﬀ ﬃ ﬄ") == "fi fl ff ffi ffl"
    assert normalize_text("e\u0301") == "\u00e9"  # NFC
    assert normalize_text("a \u00a0\u2003 b\t \tc") == "a b\tc"
    assert normalize_text("  line  \n   \n \n\n next ") == "line\n\nnext"
    assert normalize_text("") == ""


def test_settings_none_and_defaults() -> None:
    limits = Limits.from_settings(None)
    assert limits.chunk_chars == 1500
    assert limits.max_document_bytes == 50 * 1024 * 1024
    assert Limits.from_settings(SimpleNamespace(chunk_chars=0)).chunk_chars == 1
    assert Limits.from_settings(SimpleNamespace(max_pages=None)).max_pages == 2000


def test_real_settings_object() -> None:
    from docgraph.core.settings import Settings

    limits = Limits.from_settings(Settings())
    assert limits.chunk_chars >= 1


hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

WORDS = st.sampled_from(
    [
        "a",
        "word",
        "CVE-2024-3094",
        "日本語",
        "e\u0301té",
        "\u062d\u064e\u0628\u064a\u0628",
        "x" * 40,
        "end.",
        "Stop!",
        "why?",
        "「引用」。",
        "(paren)",
        "—",
        "🙂",
        "a" * 300,
    ]
)
SEPARATORS = st.sampled_from([" ", "  ", "\n", "\n\n", "\n \n\n", "\t", "\u00a0", ". ", "。"])
TEXTS = st.lists(st.tuples(WORDS, SEPARATORS), max_size=120).map(
    lambda pairs: "".join(w + s for w, s in pairs)
)


@settings(max_examples=300, deadline=None)
@given(text=TEXTS, size=st.integers(min_value=1, max_value=400))
def test_chunk_invariants_hypothesis(text: str, size: int) -> None:
    chunks = chunk_text(text, size)
    assert_chunks_valid(text, chunks, size)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=600), size=st.integers(min_value=1, max_value=100))
def test_chunk_invariants_any_text(text: str, size: int) -> None:
    chunks = chunk_text(text, size)
    assert_chunks_valid(text, chunks, size)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=400))
def test_normalize_is_idempotent(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once
    assert "\n\n\n" not in once and "  " not in once and once == once.strip()


@settings(max_examples=200, deadline=None)
@given(
    pages=st.lists(st.one_of(st.just(""), TEXTS), min_size=1, max_size=8),
    size=st.integers(min_value=1, max_value=200),
)
def test_paged_documents(pages: list[str], size: int) -> None:
    if not any(normalize_text(p) for p in pages):
        return
    doc = build_document(pages, "application/pdf", Limits(chunk_chars=size), paged=True)
    assert_chunks_valid(doc.text, doc.chunks, size, pages=len(pages))
    # each chunk starts inside the text of the page it names
    offset = 0
    spans = {}
    for number, page in enumerate(pages, start=1):
        norm = normalize_text(page)
        if norm:
            if offset:
                offset += 2
            spans[number] = (offset, offset + len(norm))
            offset += len(norm)
    for chunk in doc.chunks:
        lo, hi = spans[chunk.page]
        assert lo <= chunk.start < hi
