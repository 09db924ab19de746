"""CoNLL reading, BIO decoding and entity-level scoring on hand-made examples."""

from __future__ import annotations

import pytest

from docgraph.stages.ner.conll import (
    Sentence,
    bio_to_spans,
    evaluate_spans,
    evaluate_tags,
    parse_conll,
    read_conll,
    spans_to_bio,
    to_docbin,
    token_offsets,
    write_conll,
)

SAMPLE = """\
-DOCSTART-\tO

Super\tB-Malware
Mario\tI-Malware
targets\tO
Android\tB-System

See\tO
CVE-2015-5374\tB-Vulnerability
"""


def test_parse_conll_sentences_and_docstart() -> None:
    sentences = parse_conll(SAMPLE.splitlines(keepends=True))
    assert [s.tokens for s in sentences] == [
        ["Super", "Mario", "targets", "Android"],
        ["See", "CVE-2015-5374"],
    ]
    assert sentences[0].tags == ["B-Malware", "I-Malware", "O", "B-System"]
    assert sentences[0].text == "Super Mario targets Android"


def test_parse_conll_accepts_spaces_and_rejects_one_column() -> None:
    assert parse_conll(["a O\n", "b B-X\n"])[0].tags == ["O", "B-X"]
    with pytest.raises(ValueError, match=r":2:"):
        parse_conll(["a\tO\n", "lonely\n"])


def test_write_then_read_round_trip(tmp_path) -> None:
    sentences = parse_conll(SAMPLE.splitlines())
    write_conll(sentences, tmp_path / "x.txt")
    assert read_conll(tmp_path / "x.txt") == sentences


@pytest.mark.parametrize(
    ("tags", "spans"),
    [
        (["B-A", "I-A", "O", "B-B"], [("A", 0, 2), ("B", 3, 4)]),
        (["I-A", "I-A", "O"], [("A", 0, 2)]),  # I- without B- still starts an entity
        (["O", "I-A"], [("A", 1, 2)]),
        (["B-A", "I-B"], [("A", 0, 1), ("B", 1, 2)]),  # type change splits
        (["B-A", "B-A", "I-A"], [("A", 0, 1), ("A", 1, 3)]),
        (["B-A", "I-A"], [("A", 0, 2)]),  # entity at the end of the sentence
        (["O", "O"], []),
        (["S-A", "B-B", "E-B"], [("A", 0, 1), ("B", 1, 3)]),  # IOBES as seqeval
    ],
)
def test_bio_to_spans_like_seqeval(tags, spans) -> None:
    assert bio_to_spans(tags) == spans


def test_spans_to_bio_round_trip() -> None:
    tags = ["B-A", "I-A", "O", "B-B", "B-B"]
    assert spans_to_bio(len(tags), bio_to_spans(tags)) == tags


def test_token_offsets_match_joined_text() -> None:
    tokens = ["hxxp", ":", "//evil", "[", "."]
    text = " ".join(tokens)
    assert [text[a:b] for a, b in token_offsets(tokens)] == tokens


def test_evaluation_by_hand() -> None:
    gold = [
        ["B-Malware", "I-Malware", "O", "B-System"],
        ["B-Indicator", "O", "I-Organization"],
    ]
    pred = [
        ["B-Malware", "O", "B-Indicator", "B-System"],
        ["B-Indicator", "O", "B-Organization"],
    ]
    # gold entities: Malware[0:2] System[3:4] | Indicator[0:1] Organization[2:3]
    # predicted:     Malware[0:1] Indicator[2:3] System[3:4] | Indicator[0:1] Organization[2:3]
    # Malware: tp0 fp1 fn1; System: tp1; Indicator: tp1 fp1; Organization: tp1
    report = evaluate_tags(gold, pred)
    m = report.per_label["Malware"]
    assert (m.tp, m.fp, m.fn) == (0, 1, 1)
    assert (m.precision, m.recall, m.f1) == (0.0, 0.0, 0.0)
    s = report.per_label["System"]
    assert (s.precision, s.recall, s.f1) == (1.0, 1.0, 1.0)
    i = report.per_label["Indicator"]
    assert i.precision == pytest.approx(0.5)
    assert i.recall == pytest.approx(1.0)
    assert i.f1 == pytest.approx(2 / 3)
    assert report.per_label["Organization"].f1 == pytest.approx(1.0)
    # micro: tp=3 fp=2 fn=1 -> P=3/5, R=3/4, F1=2PR/(P+R)=2/3
    assert (report.micro.tp, report.micro.fp, report.micro.fn) == (3, 2, 1)
    assert report.micro.precision == pytest.approx(0.6)
    assert report.micro.recall == pytest.approx(0.75)
    assert report.micro.f1 == pytest.approx(2 * 0.6 * 0.75 / 1.35)
    assert report.micro.support == 4
    assert report.sentences == 2
    assert report.tokens == 7
    d = report.to_dict()
    assert d["micro"]["f1"] == pytest.approx(2 / 3)


def test_evaluation_edge_cases() -> None:
    empty = evaluate_spans([[]], [[]])
    assert empty.micro.f1 == 0.0
    assert empty.per_label == {}
    with pytest.raises(ValueError):
        evaluate_tags([["O"]], [["O", "O"]])
    with pytest.raises(ValueError):
        evaluate_tags([["O"]], [])


def test_to_docbin_keeps_tokens_and_entities() -> None:
    from spacy.vocab import Vocab

    sentences = [
        Sentence(["Super", "Mario", "targets", "Android"], ["B-Malware", "I-Malware", "O", "B-System"]),
        Sentence(["a", "b"], ["I-Indicator", "O"]),
    ]
    vocab = Vocab()
    docs = list(to_docbin(sentences, vocab).get_docs(vocab))
    assert [t.text for t in docs[0]] == sentences[0].tokens
    assert [(e.text, e.label_) for e in docs[0].ents] == [
        ("Super Mario", "Malware"),
        ("Android", "System"),
    ]
    assert [(e.text, e.label_) for e in docs[1].ents] == [("a", "Indicator")]
    assert docs[1][1].ent_iob_ == "O"  # annotated as outside, not missing
