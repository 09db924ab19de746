"""``docgraph ner cv``: folds that keep blocks whole and never overlap, and a real
(tiny) cross-validation run through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from docgraph.stages.ner.conll import Sentence, read_conll, write_conll
from docgraph.stages.ner.cv import split_folds, train_dev

DATA = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "cyner"


def _sentences(n: int) -> list[Sentence]:
    return [Sentence([f"s{i}", "word"], ["O", "O"]) for i in range(n)]


def test_folds_partition_the_sentences_in_whole_blocks_and_are_seeded():
    sentences = _sentences(103)
    folds = split_folds(sentences, 4, seed=7, block=10)
    ids = [s.tokens[0] for f in folds for s in f]
    assert sorted(ids) == sorted(s.tokens[0] for s in sentences)  # every sentence once
    for fold in folds:  # blocks of 10 consecutive sentences stay together
        numbers = [int(s.tokens[0][1:]) for s in fold]
        for b in {n // 10 for n in numbers}:
            assert sum(1 for n in numbers if n // 10 == b) == min(10, 103 - 10 * b)
    assert split_folds(sentences, 4, seed=7, block=10) == folds  # deterministic
    assert split_folds(sentences, 4, seed=8, block=10) != folds


def test_the_held_out_fold_is_in_neither_train_nor_dev():
    folds = split_folds(_sentences(200), 5, seed=0, block=10)
    for i, held_out in enumerate(folds):
        train, dev = train_dev(folds, i, dev_fraction=0.1, seed=0, block=10)
        test_ids = {s.tokens[0] for s in held_out}
        assert not test_ids & {s.tokens[0] for s in train + dev}
        assert len(train) + len(dev) + len(held_out) == 200 and dev


def test_too_few_blocks_is_a_clear_error():
    with pytest.raises(ValueError, match="fewer than 5 folds"):
        split_folds(_sentences(30), 5, block=10)


def test_cv_command_trains_and_scores_every_fold(tmp_path):
    """A real run on 160 CyNER training sentences, 2 folds, a few training steps."""
    from docgraph.stages.ner.commands import ner_app

    data = tmp_path / "data"
    data.mkdir()
    sentences = read_conll(DATA / "train.txt")[:160]
    write_conll(sentences[:120], data / "train.txt")
    write_conll(sentences[120:], data / "valid.txt")
    report = tmp_path / "cv.json"
    models = tmp_path / "models"
    args = ["cv", "--data-dir", str(data), "--folds", "2", "--block", "20", "--out", str(report)]
    args += ["--models", str(models)]
    args += ["--set", "training.max_steps=40", "--set", "training.eval_frequency=20", "--json"]
    result = CliRunner().invoke(ner_app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    full = json.loads(report.read_text())
    assert [f["sentences"]["test"] for f in full["folds"]] == [80, 80]
    gold = sum(f["model+rules"]["micro"]["support"] for f in full["folds"])
    assert summary["model+rules"]["micro"]["support"] == gold > 0  # every held-out mention scored
    micro = [f["model+rules"]["micro"]["f1"] for f in full["folds"]]
    assert summary["model+rules"]["micro"]["mean"] == pytest.approx(sum(micro) / 2)
    # the fold models are kept: a rerun with the same recipe trains nothing and scores the same
    stamps = [(models / f"fold{i}" / "cv-fold.json").stat().st_mtime_ns for i in range(2)]
    again = CliRunner().invoke(ner_app, args)
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout.strip().splitlines()[-1]) == summary
    assert [(models / f"fold{i}" / "cv-fold.json").stat().st_mtime_ns for i in range(2)] == stamps


def test_cv_command_names_the_missing_data(tmp_path):
    from docgraph.stages.ner.commands import ner_app

    result = CliRunner().invoke(ner_app, ["cv", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "train.txt not found" in " ".join(result.output.split())
