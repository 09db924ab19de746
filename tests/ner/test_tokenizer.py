"""The cyber entity pack's tokenizer fix keeps CVE IDs whole."""

from __future__ import annotations

import pytest
import spacy

from docgraph.stages.ner.pack import CVE_TOKEN_PATTERN, apply_tokenizer_fix


@pytest.fixture(scope="module")
def nlp():
    return apply_tokenizer_fix(spacy.blank("en"))


def test_plain_spacy_splits_cve() -> None:
    assert "CVE-2015-5374" not in [t.text for t in spacy.blank("en")("See CVE-2015-5374.")]


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("CVE-2015-5374", ["CVE-2015-5374"]),
        ("Siemens fixed CVE-2015-5374.", ["Siemens", "fixed", "CVE-2015-5374", "."]),
        ("(CVE-2015-5374)", ["(", "CVE-2015-5374", ")"]),
        ("cve-2021-44228, CVE-2014-0160;", ["cve-2021-44228", ",", "CVE-2014-0160", ";"]),
        ("CVE-2023-1234567 is long", ["CVE-2023-1234567", "is", "long"]),
    ],
)
def test_cve_is_one_token(nlp, text, tokens) -> None:
    assert [t.text for t in nlp(text)] == tokens


def test_fix_is_idempotent_and_keeps_other_rules(nlp) -> None:
    apply_tokenizer_fix(nlp)
    pattern = nlp.tokenizer.token_match.__self__.pattern
    assert pattern.count(CVE_TOKEN_PATTERN) == 1
    assert [t.text for t in nlp("don't stop")] == ["do", "n't", "stop"]
    assert [t.text for t in nlp("x https://a.com/b?c=d.")][1] == "https://a.com/b?c=d"


def test_fix_survives_save_and_load(nlp, tmp_path) -> None:
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert [t.text for t in loaded("in CVE-2015-5374.")] == ["in", "CVE-2015-5374", "."]
