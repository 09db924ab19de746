"""What every command shares: the consoles, settings with readable errors, logging and tracing set-up."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

import typer
from pydantic import ValidationError
from rich.console import Console

from docgraph.core import telemetry
from docgraph.core.errors import ConfigError
from docgraph.core.settings import Settings, unknown_variables

if TYPE_CHECKING:
    from docgraph.plugins.manager import LoadedPlugins

console = Console()
err = Console(stderr=True, soft_wrap=True)  # one line per message: grep-able, copy-pasteable

FINAL = {"completed", "failed", "dead", "cancelled"}


def load_plugins(**overrides: Any) -> LoadedPlugins:
    """The settings and the plugins, resolved to the effective configuration every
    process shares (topology with plugins' stages, stage options, plugin settings).

    Every problem is one line naming the variable (exit 2); a DOCGRAPH_* variable
    no setting (core or plugin) reads is a warning with the closest valid name."""
    from docgraph.plugins.manager import load_plugins as resolve
    from docgraph.plugins.manager import plugin_manager, settings_models

    try:
        base = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        for message in unknown_variables():
            err.print(f"[yellow]warning:[/yellow] {message}")
        for e in exc.errors():
            where = ".".join(str(p) for p in e["loc"])
            err.print(f"[red]configuration error[/red] {where}: {e['msg']}")
        raise typer.Exit(2) from None
    try:
        loaded = resolve(base)
    except ConfigError as exc:
        try:
            models = settings_models(plugin_manager(base))
        except ConfigError:
            models = {}
        for message in unknown_variables(plugins=models):
            err.print(f"[yellow]warning:[/yellow] {message}")
        err.print(f"[red]configuration error[/red] {exc}")
        raise typer.Exit(2) from None
    for message in unknown_variables(plugins=loaded.settings_models):
        err.print(f"[yellow]warning:[/yellow] {message}")
    return loaded


def load_settings(**overrides: Any) -> Settings:
    """The effective settings (see :func:`load_plugins`); problems exit 2 with one line each."""
    return load_plugins(**overrides).settings


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
