"""``docgraph wordcount …``: a command contributed through ``docgraph_add_commands``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

wordcount_app = typer.Typer(help="Count words the way the wordcount stage does.", no_args_is_help=True)


@wordcount_app.command("count")
def count(
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, help="plain-text files")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Print the most frequent words of FILES with the stage's settings
    (DOCGRAPH_WORDCOUNT__MIN_LENGTH, __TOP, __STOPWORDS).

    Example: [bold]docgraph wordcount count notes.txt[/bold]
    """
    from docgraph.core.settings import Settings
    from docgraph.plugins.manager import load_plugins
    from docgraph_wordcount.counting import count_words
    from docgraph_wordcount.plugin import NAMESPACE, WordcountSettings

    settings = load_plugins(Settings()).settings.plugin(NAMESPACE, WordcountSettings)
    counts = count_words(
        "\n".join(f.read_text(errors="replace") for f in files), settings.min_length, settings.stopwords
    )
    top = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: settings.top])
    if as_json:
        print(json.dumps(top))
        return
    for word, n in top.items():
        print(f"{n:6d}  {word}")
