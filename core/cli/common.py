"""What every command shares: the consoles, settings with readable errors, the
Redis a command talks to (:func:`redis_session`), logging and tracing set-up.

Exit statuses (README "Exit status"): 0 ok; 1 the thing asked for failed or
does not exist (a job failed, no such job or letter); 2 usage or configuration
error; 3 Redis unreachable (:data:`EXIT_REDIS_DOWN`).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import redis.exceptions
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from docgraph.core import telemetry
from docgraph.core.errors import ConfigError
from docgraph.core.runtime.connection import mask_url
from docgraph.core.settings import ENV_PREFIX, Settings, unknown_variables

T = TypeVar("T")

if TYPE_CHECKING:
    from docgraph.plugins.manager import LoadedPlugins

console = Console()
err = Console(stderr=True, soft_wrap=True)  # one line per message: grep-able, copy-pasteable

FINAL = {"completed", "failed", "dead", "cancelled"}
EXIT_REDIS_DOWN = 3


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
            variable = ENV_PREFIX + "__".join(str(p) for p in e["loc"]).upper()  # what the user set
            err.print(f"[red]configuration error[/red] {variable}: {escape(e['msg'])}")
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
        err.print(f"[red]configuration error[/red] {escape(str(exc))}")
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
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from None


@contextmanager
def redis_session(settings: Settings, *, check_layout: bool = True) -> Iterator[Settings]:
    """The settings a command talks to Redis with, for the ``with`` block.

    With DOCGRAPH_REDIS_URL set (environment or .env) that Redis.  Otherwise, if
    ``docgraph run`` has left its embedded data in DOCGRAPH_DATA_DIR (default
    ``.docgraph``), that data: attached to the live server of a ``docgraph run``
    on it, else a private redis-server started on it for the block.

    A Redis that does not answer ends the command with one line naming the URL
    and DOCGRAPH_REDIS_URL, exit status 3 (never a traceback); a DOCGRAPH_PARTITIONS
    other than the one recorded there (``check_layout``), one line and exit status 2.
    """
    from docgraph.core.runtime.embedded import EmbeddedRedis

    server = None
    if "redis_url" not in settings.model_fields_set and (settings.data_dir / "appendonlydir").is_dir():
        server = EmbeddedRedis(settings.data_dir, settings.appendfsync)
        try:
            url = server.start(share=True)
        except ConfigError as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}")
            raise typer.Exit(EXIT_REDIS_DOWN) from None
        owner = server.attached
        how = f"shared with {owner['command']}, pid {owner['owner']}" if owner else "started for this command"
        err.print(f"[dim]using the embedded Redis in {server.data_dir} ({how})[/dim]")
        settings = settings.model_copy(update={"redis_url": url})
    try:
        if check_layout:
            _check_layout(settings)
        yield settings
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        redis_down(settings, exc)
    finally:
        if server is not None:
            server.stop()


def _check_layout(settings: Settings) -> None:
    """Exit 2 on a DOCGRAPH_PARTITIONS other than the one recorded in Redis (read-only)."""
    from docgraph.core.runtime.connection import connect_sync
    from docgraph.core.runtime.layout import check_partition_count_sync

    client = connect_sync(settings)
    try:
        check_partition_count_sync(client, settings)
    except ConfigError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))} (exit status 2)")
        raise typer.Exit(2) from None
    finally:
        client.close()


def redis_down(settings: Settings, exc: BaseException) -> None:
    """One line for an unreachable Redis, then exit 3."""
    from docgraph.core.runtime.connection import describe_failure, is_tls_misconfigured

    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    tls_related = settings.redis_target.tls or any(
        s in reason.lower()
        for s in ("closed by server", "reset by peer")  # plaintext to a TLS port
    )
    if is_tls_misconfigured(exc) or tls_related:
        line = escape(describe_failure(settings, exc))  # "[SSL: …]" is not markup
        err.print(f"[red]error:[/red] {line} (exit status {EXIT_REDIS_DOWN})")
        raise typer.Exit(EXIT_REDIS_DOWN) from None
    if isinstance(exc, redis.exceptions.AuthenticationError):
        source, todo = "DOCGRAPH_REDIS_URL", "put the right user and password in DOCGRAPH_REDIS_URL"
    elif "redis_url" in settings.model_fields_set:
        source, todo = "DOCGRAPH_REDIS_URL", "start it, or point DOCGRAPH_REDIS_URL at a Redis that answers"
    else:
        source = f"the default: DOCGRAPH_REDIS_URL is unset and {settings.data_dir} has no embedded data"
        todo = "set DOCGRAPH_REDIS_URL, or run `docgraph run <files>` first to create the embedded one"
    err.print(
        f"[red]error:[/red] cannot reach Redis at {mask_url(settings.redis_url)} ({source}): "
        f"{reason.rstrip('.')}; {todo} (exit status {EXIT_REDIS_DOWN})"
    )
    raise typer.Exit(EXIT_REDIS_DOWN) from None


def with_redis(action: Callable[[Any, Settings], Awaitable[T]], *, check_layout: bool = True) -> T:
    """Run ``action(client, settings)`` against the configured Redis (see
    :func:`redis_session`) and close the client; a ``ValueError`` or
    ``ConfigError`` it raises (a bad name or reference, a DOCGRAPH_PARTITIONS
    other than the recorded one unless not ``check_layout``) is one red line and
    exit status 2."""
    from docgraph.core.runtime.connection import connect

    settings = load_settings()

    async def main() -> T:
        client = connect(settings)
        try:
            return await action(client, settings)
        finally:
            await client.aclose()

    try:
        with redis_session(settings, check_layout=check_layout) as settings:
            return asyncio.run(main())
    except (ValueError, ConfigError) as exc:
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from None
