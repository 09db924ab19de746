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


@hookimpl
def docgraph_add_commands(app: Any) -> None:
    app.add_typer(ner_app, name="ner")
