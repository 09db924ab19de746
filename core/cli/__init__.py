"""The ``docgraph`` command line (typer): one module per command group."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["app", "main"]


def main() -> None:
    """The ``docgraph`` entry point.  ``docgraph health`` (a container probe, every few
    seconds) is answered before the CLI is imported (core/cli/probe.py)."""
    from docgraph.core.cli.probe import quick_health

    code = quick_health(sys.argv[1:])
    if code is not None:
        raise SystemExit(code)
    from docgraph.core.cli.app import main as cli_main

    cli_main()


def __getattr__(name: str) -> Any:
    if name == "app":
        from docgraph.core.cli.app import app

        return app
    raise AttributeError(name)
