"""``docgraph classify ...`` commands, contributed through ``docgraph_add_commands``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from docgraph.plugins.hookspecs import hookimpl

classify_app = typer.Typer(help="Train and use the document classifier.", no_args_is_help=True)


@classify_app.command("train")
def train_cmd(
    folder: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="one sub-folder per label")],
    out: Annotated[Path, typer.Option(help="where to write the model")] = Path("classifier.pkl"),
    seed: Annotated[int, typer.Option(help="random seed (folds, solver)")] = 0,
) -> None:
    """Train a TF-IDF + logistic-regression classifier from FOLDER/<label>/<documents>
    and print its cross-validated accuracy.  Use it with DOCGRAPH_CLASSIFY_MODEL=<out>.

    Example: [bold]docgraph classify train ./labelled --out models/classifier.pkl[/bold]
    """
    from rich.console import Console

    from docgraph.core.settings import Settings
    from docgraph.plugins.manager import plugin_manager
    from docgraph.stages.classify_model import read_labelled, save, train

    console = Console()
    settings = Settings()
    texts, labels, skipped = read_labelled(folder, plugin_manager(settings), settings)
    for path, reason in skipped:
        console.print(f"[yellow]skipped[/yellow] {path}: {reason}")
    try:
        model, folds, accuracy, std = train(texts, labels, seed)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    save(model, out)
    counts = {lab: labels.count(lab) for lab in sorted(set(labels))}
    console.print(f"documents per label: {counts}")
    console.print(f"cross-validated accuracy ({folds}-fold): {accuracy:.3f} ± {std:.3f}")
    console.print(f"model written to {out}; use it with DOCGRAPH_CLASSIFY_MODEL={out.resolve()}")


@hookimpl
def docgraph_add_commands(app: Any) -> None:
    app.add_typer(classify_app, name="classify")
