"""k-fold cross-validation of the NER recipe over train + valid (``docgraph ner cv``).

One split (valid) is what the shipped recipe was tuned on, so its score says how
well the recipe fits that split, not the domain.  Cross-validation scores the
*recipe* (config + rules) on every part of the labelled data in turn:

* sentences are cut into blocks of ``block`` consecutive sentences, shuffled with
  ``seed`` and dealt into ``k`` folds.  A report's sentences are consecutive in
  CyNER and repeat its names, so small blocks leak: with blocks of 25, 57% of a
  held-out fold's mentions also occur in its training folds, against 24% for valid
  versus train; blocks of 300 (the default) bring that to 35%;
* for each fold, a model is trained on the other folds, choosing its best
  checkpoint on a dev part carved from those same folds (``dev_fraction`` of
  their blocks), and scored on the held-out fold it never saw, model alone and
  model + rules;
* the report is mean ± sd over folds per label and micro-averaged.
"""

from __future__ import annotations

import hashlib
import json
import random
import statistics
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docgraph.stages.ner.conll import EvalReport, Sentence, read_conll, write_conll


def split_folds(
    sentences: Sequence[Sentence], k: int, *, seed: int = 0, block: int = 300
) -> list[list[Sentence]]:
    """``k`` folds of whole blocks of consecutive sentences, dealt after a seeded shuffle."""
    if k < 2:
        raise ValueError("cross-validation needs at least 2 folds")
    blocks = [list(sentences[i : i + block]) for i in range(0, len(sentences), block)]
    if len(blocks) < k:
        raise ValueError(
            f"{len(sentences)} sentences make {len(blocks)} blocks of {block}: fewer than {k} folds"
        )
    random.Random(seed).shuffle(blocks)
    folds: list[list[Sentence]] = [[] for _ in range(k)]
    for i, b in enumerate(blocks):
        folds[i % k] += b
    return folds


def train_dev(
    folds: Sequence[Sequence[Sentence]], held_out: int, *, dev_fraction: float, seed: int, block: int
) -> tuple[list[Sentence], list[Sentence]]:
    """The training and dev sentences for one fold: the other folds, a part of them for dev."""
    rest = [s for i, f in enumerate(folds) if i != held_out for s in f]
    blocks = [rest[i : i + block] for i in range(0, len(rest), block)]
    random.Random(seed + held_out).shuffle(blocks)
    n_dev = max(1, round(len(blocks) * dev_fraction))
    dev = [s for b in blocks[:n_dev] for s in b]
    train = [s for b in blocks[n_dev:] for s in b]
    return train, dev


@dataclass
class FoldResult:
    fold: int
    sentences: dict[str, int]
    train_seconds: float
    model: EvalReport
    with_rules: EvalReport


@dataclass
class CvReport:
    k: int
    seed: int
    block: int
    folds: list[FoldResult] = field(default_factory=list)

    def summary(self, kind: str = "model+rules") -> dict[str, dict[str, float]]:
        """``{label: {"mean": f1, "sd": f1, "support": n}}`` plus ``"micro"``, over folds."""
        reports = [f.with_rules if kind == "model+rules" else f.model for f in self.folds]
        labels = sorted({lab for r in reports for lab in r.per_label})
        out: dict[str, dict[str, float]] = {}
        for lab in labels:
            f1s = [r.per_label[lab].f1 if lab in r.per_label else 0.0 for r in reports]
            support = sum(r.per_label[lab].support for r in reports if lab in r.per_label)
            out[lab] = _mean_sd(f1s) | {"support": support}
        micro = [r.micro for r in reports]
        out["micro"] = _mean_sd([m.f1 for m in micro]) | {
            "support": sum(m.support for m in micro),
            "precision": statistics.fmean(m.precision for m in micro),
            "recall": statistics.fmean(m.recall for m in micro),
        }
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "seed": self.seed,
            "block": self.block,
            "summary": {kind: self.summary(kind) for kind in ("model", "model+rules")},
            "folds": [
                {
                    "fold": f.fold,
                    "sentences": f.sentences,
                    "train_seconds": f.train_seconds,
                    "model": f.model.to_dict(),
                    "model+rules": f.with_rules.to_dict(),
                }
                for f in self.folds
            ],
        }


def _mean_sd(values: Sequence[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0}


def cross_validate(
    data_dir: Path,
    *,
    k: int = 5,
    seed: int = 0,
    block: int = 300,
    dev_fraction: float = 0.1,
    config_path: Path | None = None,
    overrides: dict[str, Any] | None = None,
    threads: int = 2,
    models_dir: Path | None = None,
    on_fold: Callable[[FoldResult], None] | None = None,
) -> CvReport:
    """Train and score the recipe ``k`` times (see the module docstring).

    ``models_dir`` keeps the fold models (``fold<i>/``) and reuses those trained with
    the same data, folds and recipe, so a change to the rules alone (which run after
    the model) is scored on every fold in seconds, without retraining."""
    import spacy

    from docgraph.stages.ner.cli import evaluate_model
    from docgraph.stages.ner.model import CONFIG_PATH, is_model_dir
    from docgraph.stages.ner.pack import default_patterns
    from docgraph.stages.ner.train import train_model

    config = config_path or CONFIG_PATH
    sentences = read_conll(data_dir / "train.txt") + read_conll(data_dir / "valid.txt")
    folds = split_folds(sentences, k, seed=seed, block=block)
    recipe = {
        "data": hashlib.sha256(json.dumps([(s.tokens, s.tags) for s in sentences]).encode()).hexdigest(),
        "config": hashlib.sha256(config.read_bytes()).hexdigest(),
        "overrides": overrides or {},
        "split": [k, seed, block, dev_fraction],
    }
    report = CvReport(k=k, seed=seed, block=block)
    with tempfile.TemporaryDirectory(prefix="docgraph-ner-cv-") as tmp:
        for i, held_out in enumerate(folds):
            work = Path(tmp) / f"fold{i}"
            work.mkdir()
            model_dir = (models_dir / f"fold{i}") if models_dir is not None else work / "model"
            stamp = model_dir / "cv-fold.json"
            train, dev = train_dev(folds, i, dev_fraction=dev_fraction, seed=seed, block=block)
            kept = json.loads(stamp.read_text()) if stamp.is_file() and is_model_dir(model_dir) else {}
            if kept.get("recipe") == recipe:
                train_seconds = float(kept["train_seconds"])
            else:
                write_conll(train, work / "train.txt")
                write_conll(dev, work / "valid.txt")  # train_model picks its best checkpoint on it
                summary = train_model(
                    model_dir, config_path=config, data_dir=work, overrides=overrides, threads=threads
                )
                train_seconds = summary["train_seconds"]
                stamp.write_text(json.dumps({"recipe": recipe, "train_seconds": train_seconds}) + "\n")
            nlp = spacy.load(model_dir)
            result = FoldResult(
                fold=i,
                sentences={"train": len(train), "dev": len(dev), "test": len(held_out)},
                train_seconds=train_seconds,
                model=evaluate_model(nlp, held_out),
                with_rules=evaluate_model(nlp, held_out, patterns=default_patterns()),
            )
            report.folds.append(result)
            if on_fold is not None:
                on_fold(result)
    return report


__all__ = ["CvReport", "FoldResult", "cross_validate", "split_folds", "train_dev"]
