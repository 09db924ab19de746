"""A trainable document classifier: TF-IDF + logistic regression (scikit-learn).

``docgraph classify train DIR`` learns from a folder per label (any format the
extractors read) and reports cross-validated accuracy; the classify stage uses
the saved model when ``DOCGRAPH_CLASSIFY_MODEL`` points at it.
"""

from __future__ import annotations

import pickle
from functools import lru_cache
from pathlib import Path
from typing import Any


def read_labelled(folder: Path, pm: Any, settings: Any) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """Texts and labels from ``folder/<label>/<files>``; unreadable files are reported, not fatal."""
    from docgraph.core.errors import PermanentError

    texts, labels, skipped = [], [], []
    for label_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        for f in sorted(p for p in label_dir.rglob("*") if p.is_file()):
            data = f.read_bytes()
            try:
                ctype = pm.hook.docgraph_sniff_content_type(head=data, name=f.name)
                doc = pm.hook.docgraph_extract_text(data=data, content_type=ctype, settings=settings)
            except PermanentError as exc:
                skipped.append((str(f), str(exc)))
                continue
            texts.append(doc.text)
            labels.append(label_dir.name)
    return texts, labels, skipped


def train(texts: list[str], labels: list[str], seed: int = 0) -> tuple[Any, int, float, float]:
    """Fit the model on everything; cross-validated accuracy from stratified folds."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline

    counts = {lab: labels.count(lab) for lab in set(labels)}
    if len(counts) < 2:
        raise ValueError(f"need at least two labels (folders), found {sorted(counts)}")
    folds = min(5, min(counts.values()))
    if folds < 2:
        raise ValueError(f"every label needs at least 2 documents; counts: {counts}")

    def model() -> Any:
        return make_pipeline(
            TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=1, max_features=50_000),
            LogisticRegression(max_iter=2000, C=10.0, random_state=seed),
        )

    scores = cross_val_score(
        model(), texts, labels, cv=StratifiedKFold(folds, shuffle=True, random_state=seed)
    )
    fitted = model().fit(texts, labels)
    return fitted, folds, float(scores.mean()), float(scores.std())


def save(model: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(model))


@lru_cache(maxsize=2)
def load(path: str) -> Any:
    """Loaded once per process. Only load models you trained (pickle)."""
    return pickle.loads(Path(path).read_bytes())


def predict(path: str, text: str) -> tuple[str, float]:
    model = load(path)
    proba = model.predict_proba([text[:200_000]])[0]
    best = int(proba.argmax())
    return str(model.classes_[best]), round(float(proba[best]), 4)
