"""The trained CyNER model: where it lives, that it loads, and how well it scores on valid."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from docgraph.stages.ner import LABELS
from docgraph.stages.ner.cli import eval_file, print_report
from docgraph.stages.ner.model import (
    BUILD_COMMAND,
    BUNDLED_MODEL_DIR,
    CONFIG_PATH,
    NerModelNotFound,
    cache_root,
    find_model_dir,
    input_digests,
    load_ner_model,
    model_hash,
)
from docgraph.stages.ner.pack import find_mentions

DATA = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "cyner"  # the repo's neighbour
VALID = DATA / "valid.txt"
MIN_MICRO_F1 = 0.65


@pytest.fixture(scope="module")
def nlp():
    return load_ner_model()


def test_bundled_model_is_shipped_and_small() -> None:
    assert find_model_dir() == BUNDLED_MODEL_DIR
    size = sum(p.stat().st_size for p in BUNDLED_MODEL_DIR.rglob("*") if p.is_file())
    assert size < 15_000_000
    meta = json.loads((BUNDLED_MODEL_DIR / "training.json").read_text())
    # the shipped model was trained from this config and this data (the cache hash
    # also covers the spaCy version, which may differ by a patch release here)
    assert meta["inputs_sha256"] == input_digests(CONFIG_PATH, DATA), (
        f"stages/ner/model/ is stale (config or data changed): rebuild it with {BUILD_COMMAND} --bundle"
    )


def test_missing_model_error_says_how_to_build(tmp_path) -> None:
    with pytest.raises(NerModelNotFound, match=r"python -m docgraph\.stages\.ner\.train"):
        load_ner_model(str(tmp_path / "nowhere"))


def test_cache_dir_is_keyed_by_hash() -> None:
    from docgraph.stages.ner.model import cached_model_dir

    path = cached_model_dir(CONFIG_PATH, DATA)
    assert path.parent == cache_root()
    assert path.name == f"cyner-ner-{model_hash(CONFIG_PATH, DATA)}"
    assert len(model_hash(CONFIG_PATH, DATA)) == 12


def test_loaded_model_predicts_cyner_labels_and_keeps_cves_whole(nlp) -> None:
    assert set(LABELS) <= set(nlp.get_pipe("ner").labels)
    doc = nlp("The FakeSpy malware exploits CVE-2015-5374. It targets Android users.")
    assert "CVE-2015-5374" in [t.text for t in doc]
    mentions = find_mentions(nlp, [doc.text])[0]
    assert ("CVE-2015-5374", "Vulnerability") in [(m.text, m.label) for m in mentions]


def test_valid_micro_f1(nlp) -> None:
    started = time.perf_counter()
    report = eval_file(VALID, nlp=nlp)  # model + rules, as the ner stage runs
    assert time.perf_counter() - started < 120
    assert report.micro.f1 >= MIN_MICRO_F1, report.to_dict()
    assert set(report.per_label) == set(LABELS)


def test_eval_file_and_report_table(nlp, tmp_path, capsys) -> None:
    sample = tmp_path / "sample.txt"
    sample.write_text(
        "Android\tB-System\nusers\tO\n.\tO\n\nCVE-2015-5374\tB-Vulnerability\n", encoding="utf-8"
    )
    report = eval_file(sample, nlp=nlp, rules=True)
    assert report.sentences == 2
    assert report.per_label["Vulnerability"].tp == 1
    print_report(report)
    out = capsys.readouterr().out
    assert "micro avg" in out
    assert "Vulnerability" in out


@pytest.mark.slow
def test_training_recipe_reaches_target(tmp_path) -> None:
    """Retrain from scratch with the shipped config (several minutes on 2 cores)."""
    from docgraph.stages.ner.train import limit_threads, train_model

    limit_threads(2)
    summary = train_model(tmp_path / "model", config_path=CONFIG_PATH, data_dir=DATA)
    # the pipeline as the ner stage runs it (model + rule pack) meets the target;
    # the model alone scores about 0.64 with seed 42
    assert summary["valid"]["model+rules"]["micro"]["f1"] >= MIN_MICRO_F1
    assert summary["valid"]["model"]["micro"]["f1"] >= 0.60
    bundled = json.loads((BUNDLED_MODEL_DIR / "training.json").read_text())
    # same seed, same config and data: the same scores as the shipped model
    assert summary["valid"]["model"]["micro"]["f1"] == pytest.approx(
        bundled["valid"]["model"]["micro"]["f1"], abs=0.02
    )


def test_training_data_is_never_assumed_outside_the_package(monkeypatch, tmp_path) -> None:
    from docgraph.stages.ner.model import DATA_DIR_VARIABLE, default_data_dir

    monkeypatch.delenv(DATA_DIR_VARIABLE, raising=False)
    with pytest.raises(FileNotFoundError, match=DATA_DIR_VARIABLE):
        default_data_dir()
    monkeypatch.setenv(DATA_DIR_VARIABLE, str(tmp_path))
    assert default_data_dir() == tmp_path
