"""CoNLL data: read ``token TAB BIO-tag`` files, convert to spaCy, score entities.

Scoring is entity-level and exact: a predicted entity counts only when its
token span *and* its label equal a gold entity.  BIO tags are decoded the way
``seqeval`` does by default (its non-strict "conlleval" mode):

* ``B-X`` always starts an entity;
* ``I-X`` continues the open entity when it has type ``X``, otherwise it
  starts a new one (so ``I-X`` without a ``B-X`` is still an entity, and
  ``B-X I-Y`` is two entities);
* ``O`` (or anything unknown) closes it.

IOBES tags (``E-``/``S-``) are decoded too, with the same rules as seqeval.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spacy.tokens import Doc, DocBin
    from spacy.vocab import Vocab


@dataclass
class Sentence:
    """One CoNLL sentence: its tokens and one BIO tag per token."""

    tokens: list[str]
    tags: list[str]

    def __post_init__(self) -> None:
        if len(self.tokens) != len(self.tags):
            raise ValueError(f"{len(self.tokens)} tokens but {len(self.tags)} tags")

    @property
    def text(self) -> str:
        """The tokens joined by single spaces (see :func:`token_offsets`)."""
        return " ".join(self.tokens)


# --------------------------------------------------------------------- reading


def parse_conll(lines: Iterable[str], *, source: str = "<string>") -> list[Sentence]:
    """Parse CoNLL lines: ``token<TAB>tag`` (first and last column), blank line between sentences.

    Lines that only have one column raise a :class:`ValueError` naming the line.
    ``-DOCSTART-`` lines are skipped.  Whitespace-separated columns are accepted
    when there is no TAB.
    """
    sentences: list[Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    for lineno, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            if tokens:
                sentences.append(Sentence(tokens, tags))
                tokens, tags = [], []
            continue
        cols = line.split("\t") if "\t" in line else line.split()
        if len(cols) < 2:
            raise ValueError(f"{source}:{lineno}: expected 'token<TAB>tag', got {line!r}")
        token, tag = cols[0], cols[-1].strip()
        if token == "-DOCSTART-":
            continue
        tokens.append(token)
        tags.append(tag or "O")
    if tokens:
        sentences.append(Sentence(tokens, tags))
    return sentences


def read_conll(path: str | Path) -> list[Sentence]:
    """Read a CoNLL file into sentences."""
    path = Path(path)
    with path.open(encoding="utf-8") as handle:
        return parse_conll(handle, source=str(path))


def write_conll(sentences: Iterable[Sentence], path: str | Path) -> None:
    """Write sentences as ``token<TAB>tag`` lines with a blank line between sentences."""
    with Path(path).open("w", encoding="utf-8") as handle:
        for sentence in sentences:
            for token, tag in zip(sentence.tokens, sentence.tags, strict=True):
                handle.write(f"{token}\t{tag}\n")
            handle.write("\n")


# ------------------------------------------------------------------ BIO <-> spans


def _split_tag(tag: str) -> tuple[str, str]:
    """``'B-Malware'`` -> ``('B', 'Malware')``, ``'O'`` -> ``('O', '_')`` (seqeval's convention)."""
    prefix = tag[:1]
    type_ = tag[1:].split("-", maxsplit=1)[-1] or "_"
    return prefix, type_


def _end_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if prev_tag in ("E", "S"):
        return True
    if prev_tag in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev_tag not in ("O", ".") and prev_type != type_


def _start_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if tag in ("B", "S"):
        return True
    if prev_tag in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag not in ("O", ".") and prev_type != type_


def bio_to_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Decode BIO(ES) tags into ``(label, start, end)`` token spans (``end`` exclusive)."""
    spans: list[tuple[str, int, int]] = []
    prev_tag, prev_type, begin = "O", "", 0
    for i, chunk in enumerate([*tags, "O"]):
        tag, type_ = _split_tag(chunk)
        if tag not in ("B", "I", "E", "S"):
            tag, type_ = "O", "_"
        if _end_of_chunk(prev_tag, tag, prev_type, type_):
            spans.append((prev_type, begin, i))
        if _start_of_chunk(prev_tag, tag, prev_type, type_):
            begin = i
        prev_tag, prev_type = tag, type_
    return spans


def spans_to_bio(length: int, spans: Iterable[tuple[str, int, int]]) -> list[str]:
    """Encode non-overlapping ``(label, start, end)`` token spans as BIO tags."""
    tags = ["O"] * length
    for label, start, end in sorted(spans, key=lambda s: (s[1], s[2])):
        if any(tags[i] != "O" for i in range(start, end)):
            raise ValueError(f"overlapping span {(label, start, end)}")
        tags[start] = f"B-{label}"
        for i in range(start + 1, end):
            tags[i] = f"I-{label}"
    return tags


def token_offsets(tokens: Sequence[str]) -> list[tuple[int, int]]:
    """Character offsets of each token in ``" ".join(tokens)``."""
    offsets: list[tuple[int, int]] = []
    pos = 0
    for token in tokens:
        offsets.append((pos, pos + len(token)))
        pos += len(token) + 1
    return offsets


# --------------------------------------------------------------------- spaCy


def sentence_to_doc(sentence: Sentence, vocab: Vocab) -> Doc:
    """A spaCy ``Doc`` with the sentence's tokens (single spaces) and its gold entities."""
    from spacy.tokens import Doc, Span

    doc = Doc(vocab, words=list(sentence.tokens), spaces=[True] * len(sentence.tokens))
    # Every token not in an entity is annotated as "outside" (not "missing").
    doc.set_ents(
        [Span(doc, start, end, label=label) for label, start, end in bio_to_spans(sentence.tags)],
        default="outside",
    )
    return doc


def to_docbin(sentences: Iterable[Sentence], vocab: Vocab | None = None) -> DocBin:
    """Convert sentences to a ``DocBin`` (one Doc per sentence) for ``spacy train``."""
    from spacy.tokens import DocBin
    from spacy.vocab import Vocab as _Vocab

    vocab = vocab if vocab is not None else _Vocab()
    docbin = DocBin(attrs=["ORTH", "ENT_IOB", "ENT_TYPE"], store_user_data=False)
    for sentence in sentences:
        docbin.add(sentence_to_doc(sentence, vocab))
    return docbin


def conll_to_docbin(src: str | Path, dest: str | Path) -> int:
    """Convert a CoNLL file to a ``.spacy`` DocBin file; returns the number of sentences."""
    sentences = read_conll(src)
    Path(dest).parent.mkdir(parents=True, exist_ok=True)
    to_docbin(sentences).to_disk(dest)
    return len(sentences)


def doc_to_tags(doc: Doc, labels: Iterable[str] | None = None) -> list[str]:
    """BIO tags of a Doc's entities, keeping only ``labels`` when given."""
    keep = set(labels) if labels is not None else None
    return spans_to_bio(
        len(doc),
        [(ent.label_, ent.start, ent.end) for ent in doc.ents if keep is None or ent.label_ in keep],
    )


# ------------------------------------------------------------------- scoring


@dataclass
class LabelScore:
    """Entity-level counts and scores for one label (or the micro average)."""

    label: str
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def support(self) -> int:
        """Number of gold entities."""
        return self.tp + self.fn

    @property
    def predicted(self) -> int:
        return self.tp + self.fp

    @property
    def precision(self) -> float:
        return self.tp / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return self.tp / self.support if self.support else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "support": self.support,
            "predicted": self.predicted,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
        }


@dataclass
class EvalReport:
    """Per-label and micro-averaged entity-level precision / recall / F1."""

    per_label: dict[str, LabelScore] = field(default_factory=dict)
    micro: LabelScore = field(default_factory=lambda: LabelScore("micro"))
    sentences: int = 0
    tokens: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def macro_f1(self) -> float:
        scores = [s.f1 for s in self.per_label.values() if s.support]
        return sum(scores) / len(scores) if scores else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "per_label": {k: v.to_dict() for k, v in sorted(self.per_label.items())},
            "micro": self.micro.to_dict(),
            "macro_f1": self.macro_f1,
            "sentences": self.sentences,
            "tokens": self.tokens,
            "meta": dict(self.meta),
        }


def evaluate_spans(
    gold: Sequence[Iterable[tuple[str, int, int]]],
    pred: Sequence[Iterable[tuple[str, int, int]]],
) -> EvalReport:
    """Score predicted ``(label, start, end)`` spans against gold spans, sentence by sentence."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted")
    report = EvalReport(sentences=len(gold))
    for gold_spans, pred_spans in zip(gold, pred, strict=True):
        g, p = set(gold_spans), set(pred_spans)
        for label, _, _ in g | p:
            report.per_label.setdefault(label, LabelScore(label))
        for label, _, _ in g & p:
            report.per_label[label].tp += 1
        for label, _, _ in p - g:
            report.per_label[label].fp += 1
        for label, _, _ in g - p:
            report.per_label[label].fn += 1
    for score in report.per_label.values():
        report.micro.tp += score.tp
        report.micro.fp += score.fp
        report.micro.fn += score.fn
    return report


def evaluate_tags(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> EvalReport:
    """Entity-level P/R/F1 of predicted BIO tag sequences against gold ones (seqeval-style)."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted")
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: {len(g)} gold tags but {len(p)} predicted")
    report = evaluate_spans([bio_to_spans(g) for g in gold], [bio_to_spans(p) for p in pred])
    report.tokens = sum(len(g) for g in gold)
    return report


def iter_docs(sentences: Iterable[Sentence], vocab: Vocab) -> Iterator[Doc]:
    """Unannotated Docs built from the sentences' tokens (the model sees the gold tokenization)."""
    from spacy.tokens import Doc

    for sentence in sentences:
        yield Doc(vocab, words=list(sentence.tokens), spaces=[True] * len(sentence.tokens))
