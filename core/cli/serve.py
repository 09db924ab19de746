"""``docgraph serve`` (the HTTP API under uvicorn) and ``docgraph asyncapi`` (the event contract)."""

from __future__ import annotations

import signal
import sys
from typing import Annotated

import typer
from rich.markup import escape

from docgraph.core.cli.common import err, load_settings, setup_logging, setup_telemetry
from docgraph.core.errors import ConfigError


def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Serve the HTTP API (FastAPI under uvicorn); OpenAPI docs at /docs.

    Tokens come from DOCGRAPH_API_TOKENS='["<secret>"]'; without them auth is off.

    Example: [bold]DOCGRAPH_API_TOKENS='["s3cret"]' docgraph serve --port 8000[/bold]
    """
    setup_logging(verbose)
    settings = load_settings()
    setup_telemetry()  # submits are `send` spans: the roots of the jobs' traces
    import uvicorn

    from docgraph.core.api import create_app

    if not settings.api_tokens and host not in ("127.0.0.1", "localhost", "::1"):
        err.print(
            f"[yellow]warning:[/yellow] serving on {host} without DOCGRAPH_API_TOKENS: anyone who can "
            "reach the port can submit and delete jobs"
        )
    try:
        application = create_app(settings)
    except ConfigError as exc:
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from None
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal to the
    # handler it found: make that an exit 0, as `docgraph worker` does
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(application, host=host, port=port, log_level="info" if verbose else "warning")


def asyncapi_cmd(
    yaml: Annotated[bool, typer.Option("--yaml", help="YAML instead of JSON")] = False,
) -> None:
    """Print the AsyncAPI 3 document of the event contract (every stage stream).

    Example: [bold]docgraph asyncapi > asyncapi.json[/bold]
    """
    from docgraph.core.runtime.broker import asyncapi

    spec = asyncapi(load_settings())
    print(spec.to_yaml() if yaml else spec.to_json())
