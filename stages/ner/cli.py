"""Entity-level evaluation of the NER model on CoNLL data, with rich tables.

``eval_file(path)`` scores the trained model on a CoNLL file (``token TAB
BIO-tag``); ``print_report`` prints per-label and micro-averaged precision,
recall and F1.  Wired as ``docgraph ner eval FILE``; also runnable as
``python -m docgraph.stages.ner.cli FILE [--no-rules] [--model DIR] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from docgraph.stages.ner import LABELS
from docgraph.stages.ner.conll import (
    EvalReport,
    Sentence,
    bio_to_spans,
    evaluate_spans,
    iter_docs,
    read_conll,
)

if TYPE_CHECKING:
    from rich.console import Console
    from spacy.language import Language

    from docgraph.plugins.types import EntityPattern


def predict_spans(
    nlp: Language,
    sentences: Sequence[Sentence],
    *,
    patterns: Sequence[EntityPattern] = (),
    use_model: bool = True,
    labels: Sequence[str] = LABELS,
    batch_size: int = 64,
) -> list[list[tuple[str, int, int]]]:
    """Predicted ``(label, start, end)`` token spans per sentence, on the gold tokenization.

    The model runs on Docs built from the sentence tokens (its tokenizer is not
    used); rule ``patterns`` run on the tokens joined by spaces and are merged
    with the model's entities as in :func:`~docgraph.stages.ner.pack.find_mentions`.
    Only ``labels`` are kept.
    """
    from docgraph.stages.ner.pack import compile_patterns, merge_spans, model_spans, rule_matches

    keep = set(labels)
    compiled = compile_patterns(patterns) if patterns else ()
    docs = nlp.pipe(iter_docs(sentences, nlp.vocab), batch_size=batch_size)
    predicted: list[list[tuple[str, int, int]]] = []
    for sentence, doc in zip(sentences, docs, strict=True):
        model = model_spans(doc, keep) if use_model else []
        rules = rule_matches(sentence.text, compiled) if compiled else []
        spans: list[tuple[str, int, int]] = []
        taken: set[int] = set()
        for match in merge_spans(model, rules):
            if match.label not in keep:
                continue
            span = doc.char_span(match.start, match.end, alignment_mode="expand")
            if span is None or taken.intersection(range(span.start, span.end)):
                continue
            taken.update(range(span.start, span.end))
            spans.append((match.label, span.start, span.end))
        predicted.append(spans)
    return predicted


def evaluate_model(
    nlp: Language,
    sentences: Sequence[Sentence],
    *,
    patterns: Sequence[EntityPattern] = (),
    use_model: bool = True,
) -> EvalReport:
    """Entity-level P/R/F1 of the model (plus rule ``patterns`` if given) on gold sentences."""
    predicted = predict_spans(nlp, sentences, patterns=patterns, use_model=use_model)
    report = evaluate_spans([bio_to_spans(s.tags) for s in sentences], predicted)
    report.tokens = sum(len(s.tokens) for s in sentences)
    report.meta["rules"] = bool(patterns)
    report.meta["model"] = use_model
    return report


def eval_file(
    path: str | Path,
    *,
    model_path: str | Path | None = None,
    rules: bool = True,
    nlp: Language | None = None,
) -> EvalReport:
    """Score the trained NER model on a CoNLL file (``token TAB BIO-tag``).

    By default (``rules=True``) the cyber/ICS entity pack's matches are merged
    into the model's entities, as the ner stage does; ``rules=False`` scores the
    model alone.  ``nlp`` reuses an already loaded pipeline; otherwise it is
    loaded with :func:`~docgraph.stages.ner.model.load_ner_model` (``model_path``).
    """
    from docgraph.stages.ner.model import find_model_dir, load_ner_model
    from docgraph.stages.ner.pack import default_patterns

    sentences = read_conll(path)
    if nlp is None:
        model_dir = find_model_dir(str(model_path) if model_path is not None else None)
        nlp = load_ner_model(str(model_dir))
        model_name = str(model_dir)
    else:
        model_name = nlp.meta.get("name", "nlp")
    report = evaluate_model(nlp, sentences, patterns=default_patterns() if rules else ())
    report.meta.update({"file": str(path), "model_path": model_name})
    return report


def print_report(report: EvalReport, console: Console | None = None, title: str | None = None) -> None:
    """Print per-label and micro-averaged entity-level P/R/F1 as a rich table."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    if title is None:
        source = "model + rules" if report.meta.get("rules") else "model"
        where = report.meta.get("file", "")
        title = f"NER entity-level scores ({source}){': ' + where if where else ''}"
    table = Table(title=title)
    table.add_column("Label")
    for name in ("Precision", "Recall", "F1"):
        table.add_column(name, justify="right")
    table.add_column("Support", justify="right")
    table.add_column("Predicted", justify="right")
    for label in sorted(report.per_label):
        score = report.per_label[label]
        table.add_row(
            label,
            f"{score.precision:.4f}",
            f"{score.recall:.4f}",
            f"{score.f1:.4f}",
            str(score.support),
            str(score.predicted),
        )
    micro = report.micro
    table.add_section()
    table.add_row(
        "[bold]micro avg[/bold]",
        f"[bold]{micro.precision:.4f}[/bold]",
        f"[bold]{micro.recall:.4f}[/bold]",
        f"[bold]{micro.f1:.4f}[/bold]",
        str(micro.support),
        str(micro.predicted),
    )
    table.add_row("macro avg F1", "", "", f"{report.macro_f1:.4f}", "", "")
    console.print(table)
    console.print(f"{report.sentences} sentences, {report.tokens} tokens")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m docgraph.stages.ner.cli",
        description="Entity-level P/R/F1 of the NER model on a CoNLL file (token TAB BIO-tag).",
    )
    parser.add_argument("file", type=Path)
    parser.add_argument("--model", type=Path, default=None, help="trained pipeline directory")
    parser.add_argument("--no-rules", dest="rules", action="store_false", help="score the model alone")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    report = eval_file(args.file, model_path=args.model, rules=args.rules)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
