"""``docgraph ner ...`` commands, contributed through ``docgraph_add_commands``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from docgraph.plugins.hookspecs import hookimpl

ner_app = typer.Typer(help="Evaluate and train the NER model.", no_args_is_help=True)


@ner_app.command("eval")
def eval_cmd(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CoNLL file: token TAB BIO-tag")],
    model: Annotated[
        Path | None, typer.Option(help="trained spaCy pipeline (default: shipped model)")
    ] = None,
    rules: Annotated[bool, typer.Option(help="merge the cyber/ICS rule pack, as the stage does")] = True,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Entity-level precision / recall / F1 per label and micro-averaged.

    Example: [bold]docgraph ner eval ../shared/datasets/cyner/valid.txt[/bold]
    """
    import json

    from docgraph.stages.ner.cli import eval_file, print_report

    report = eval_file(file, model_path=model, rules=rules)
    if as_json:
        typer.echo(json.dumps(report.to_dict()))
    else:
        print_report(report, title=f"{file.name} ({'model + rules' if rules else 'model only'})")


@ner_app.command("train")
def train_cmd(
    out: Annotated[Path | None, typer.Option(help="output folder (default: the model cache)")] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="folder with train.txt and valid.txt (default: DOCGRAPH_NER__DATA_DIR)"),
    ] = None,
) -> None:
    """Train the NER model on labelled CoNLL data (reproducible: fixed config and seed).

    Example: [bold]docgraph ner train --data-dir ../shared/datasets/cyner --out ./my-model[/bold]
    """
    from docgraph.stages.ner import train

    args = ["--out", str(out)] if out else []
    args += ["--data-dir", str(data_dir)] if data_dir else []
    raise typer.Exit(train.main(args))


@ner_app.command("cv")
def cv_cmd(
    data_dir: Annotated[
        Path | None,
        typer.Option(help="folder with train.txt and valid.txt (default: DOCGRAPH_NER__DATA_DIR)"),
    ] = None,
    folds: Annotated[int, typer.Option(min=2, help="k of k-fold")] = 5,
    seed: Annotated[int, typer.Option(help="seed of the fold assignment")] = 0,
    block: Annotated[int, typer.Option(min=1, help="consecutive sentences kept in one fold")] = 300,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", metavar="SECTION.KEY=VALUE", help="spaCy config override, e.g. training.max_steps=2000"
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="also write the full report (every fold) as JSON here")
    ] = None,
    models: Annotated[
        Path | None,
        typer.Option(
            help="keep the fold models here; a rerun with the same recipe reuses them (rules-only changes)"
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Cross-validate the NER recipe over train + valid: mean ± sd of F1 per label.

    Trains one model per fold (minutes each on 2 cores); the held-out fold is never
    seen in training or checkpoint selection.

    Example: [bold]docgraph ner cv --data-dir ../shared/datasets/cyner --folds 5 --out cv.json[/bold]
    """
    import json

    from rich.console import Console
    from rich.table import Table

    from docgraph.stages.ner.cv import FoldResult, cross_validate
    from docgraph.stages.ner.model import default_data_dir
    from docgraph.stages.ner.train import _parse_override

    console = Console(stderr=as_json)
    try:
        where = data_dir or default_data_dir()
    except FileNotFoundError as exc:
        console.print(f"[red]{exc}[/red] (use --data-dir)")
        raise typer.Exit(2) from None
    for name in ("train.txt", "valid.txt"):
        if not (where / name).is_file():
            console.print(f"[red]{where / name} not found[/red] (use --data-dir)")
            raise typer.Exit(2)

    def progress(fold: FoldResult) -> None:
        micro = fold.with_rules.micro
        console.print(
            f"fold {fold.fold + 1}/{folds}: F1 {micro.f1:.4f} (model+rules), {fold.model.micro.f1:.4f} (model); "
            f"{fold.sentences['test']} test sentences, trained in {fold.train_seconds:.0f}s"
        )

    report = cross_validate(
        where,
        k=folds,
        seed=seed,
        block=block,
        overrides=dict(_parse_override(s) for s in set_ or []),
        models_dir=models,
        on_fold=progress,
    )
    if out is not None:
        out.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    if as_json:
        typer.echo(json.dumps({k: report.summary(k) for k in ("model", "model+rules")}))
        return
    table = Table(title=f"NER {folds}-fold cross-validation (F1 mean ± sd over folds; seed {seed})")
    for col in ("label", "model", "model + rules", "support"):
        table.add_column(col, justify="left" if col == "label" else "right")
    model, rules = report.summary("model"), report.summary("model+rules")
    for label in [k for k in rules if k != "micro"] + ["micro"]:
        m, r = model.get(label, {"mean": 0.0, "sd": 0.0}), rules[label]
        table.add_row(
            label,
            f"{m['mean']:.3f} ± {m['sd']:.3f}",
            f"{r['mean']:.3f} ± {r['sd']:.3f}",
            str(int(r["support"])),
        )
    console.print(table)


@hookimpl
def docgraph_add_commands(app: Any) -> None:
    app.add_typer(ner_app, name="ner")
