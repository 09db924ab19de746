"""What every command shares: the consoles, settings with readable errors, logging and tracing set-up."""

from __future__ import annotations

import logging
import sys
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console

from docgraph.core import telemetry
from docgraph.core.errors import ConfigError
from docgraph.core.settings import Settings, unknown_variables

console = Console()
err = Console(stderr=True, soft_wrap=True)  # one line per message: grep-able, copy-pasteable

FINAL = {"completed", "failed", "dead", "cancelled"}


def load_settings(**overrides: Any) -> Settings:
    """The settings, every problem printed as one line naming the variable (exit 2);
    a DOCGRAPH_* variable no setting reads is a warning with the closest valid name."""
    for message in unknown_variables():
        err.print(f"[yellow]warning:[/yellow] {message}")
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        for e in exc.errors():
            where = ".".join(str(p) for p in e["loc"])
            err.print(f"[red]configuration error[/red] {where}: {e['msg']}")
        raise typer.Exit(2) from None


def setup_logging(verbose: bool, json_logs: bool = False) -> None:
    """Plain text on stderr, or (``--log-json`` / DOCGRAPH_LOG_JSON) one JSON object
    per line carrying trace_id, span_id, job_id and stage."""
    level = logging.INFO if verbose else logging.WARNING
    if json_logs:
        logging.basicConfig(level=level, handlers=[telemetry.json_log_handler(sys.stderr)])
        return
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


def setup_telemetry() -> None:
    """OpenTelemetry from the standard OTEL_* variables (nothing when unset)."""
    try:
        telemetry.configure()
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
