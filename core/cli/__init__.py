"""The ``docgraph`` command line (typer): one module per command group."""

from docgraph.core.cli.app import app, main

__all__ = ["app", "main"]
