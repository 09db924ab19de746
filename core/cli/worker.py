"""``docgraph worker`` and ``docgraph health``: a stage worker process and its container probe."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import typer
from rich.markup import escape

from docgraph.core import telemetry
from docgraph.core.cli.common import (
    console,
    err,
    load_plugins,
    load_settings,
    setup_logging,
    setup_telemetry,
)
from docgraph.core.cli.probe import liveness
from docgraph.core.errors import ConfigError
from docgraph.core.runtime.connection import REDIS_DOWN
from docgraph.core.stage import Services


def worker(
    stage: Annotated[
        list[str] | None,
        typer.Option(
            "--stage",
            "-s",
            help="stage to run (repeat; default: all, and notify when webhooks are configured); "
            "notify delivers the webhooks of DOCGRAPH_NOTIFY__*",
        ),
    ] = None,
    concurrency: Annotated[int | None, typer.Option(help="jobs at once per stage")] = None,
    upkeep_only: Annotated[
        bool,
        typer.Option(
            "--upkeep-only",
            help="run no stage: only promote due retries and apply retention (the always-on replica "
            "when stages autoscale to zero)",
        ),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    log_json: Annotated[
        bool, typer.Option("--log-json", help="JSON log lines with trace_id/span_id/job_id/stage")
    ] = False,
) -> None:
    """Run stage workers against the configured Redis until SIGTERM / Ctrl-C.

    Tracing and metrics follow the standard OTEL_* variables (docs/telemetry.md).
    With DOCGRAPH_HEALTH_FILE set, the worker keeps that file fresh for `docgraph health`.
    Started before its Redis answers (a container's normal start), it logs one
    line and retries with backoff (up to 5 s apart) until it does.

    Exit status: 0 stopped by SIGTERM / Ctrl-C (also while waiting for Redis);
    2 usage or configuration error.

    Example: [bold]DOCGRAPH_REDIS_URL=redis://127.0.0.1:6379/0 docgraph worker --stage ner[/bold]
    """
    if upkeep_only and stage:
        err.print("[red]--upkeep-only runs no stage: drop --stage[/red]")
        raise typer.Exit(2)
    loaded = load_plugins(concurrency=concurrency)
    settings = loaded.settings
    setup_logging(verbose, log_json or settings.log_json)
    setup_telemetry()
    from docgraph.core.runtime.services import build_services
    from docgraph.core.runtime.worker import Worker
    from docgraph.plugins.manager import describe_unused

    notify = not upkeep_only and ("notify" in (stage or []) or (not stage and settings.notify.active))
    if notify and not settings.notify.active:
        err.print(
            "[yellow]warning:[/yellow] notify has nothing to deliver: set DOCGRAPH_NOTIFY__WEBHOOKS "
            "or DOCGRAPH_NOTIFY__CALLBACK_SECRET (docs/events.md)"
        )
    topology_stages = [s for s in stage or [] if s != "notify"]
    try:
        specs = loaded.specs(
            [] if upkeep_only or (stage and not topology_stages) else topology_stages or None
        )
        services: Services | None = build_services(settings, loaded.manager)
    except REDIS_DOWN:  # a graph sink that lives in that Redis: built once Redis answers
        services = None
    except ConfigError as exc:
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from None
    if loaded.unused and not upkeep_only:
        err.print(f"[yellow]warning:[/yellow] {describe_unused(loaded)}")

    async def main() -> None:
        from docgraph.core.runtime.recovery import touch_liveness

        stopping = asyncio.Event()  # SIGTERM before the worker runs: stop waiting, exit 0
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        # the liveness file is fresh from the first moment the loop runs: waiting for Redis
        # or starting stages on a busy machine is not being stuck (a probe would restart it)
        alive = asyncio.Event()
        toucher = (
            asyncio.create_task(touch_liveness(settings.health_file, alive))
            if settings.health_file is not None
            else None
        )
        try:
            await run_worker(stopping)
        finally:
            alive.set()
            if toucher is not None:
                await toucher

    async def run_worker(stopping: asyncio.Event) -> None:
        from docgraph.core.runtime.connection import RedisConfigError, connect, wait_until_up
        from docgraph.core.runtime.layout import PartitionCountMismatch

        probe = connect(settings)
        try:
            if not await wait_until_up(probe, settings, stopping):
                return
        except RedisConfigError as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))} (exit status 2)")
            raise typer.Exit(2) from None
        finally:
            await probe.aclose()
        built = (
            services
            if services is not None
            else await asyncio.to_thread(build_services, settings, loaded.manager)
        )
        client = connect(settings)
        notifier = None
        if notify:
            from docgraph.core.runtime.notify import Notifier
            from docgraph.stages.notify import WebhookSender

            sender = WebhookSender(
                timeout=settings.notify.timeout, allow_private=settings.notify.allow_private_targets
            )
            notifier = Notifier(settings, client, sender)
        w = Worker(settings, specs, client, services=built, notifier=notifier)
        w.install_signal_handlers()
        if stopping.is_set():
            w.stop()
        try:
            await w.run()
        except PartitionCountMismatch as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))} (exit status 2)")
            raise typer.Exit(2) from None
        finally:
            await client.aclose()

    try:
        asyncio.run(main())
    finally:
        telemetry.shutdown()  # export the last spans before the process exits


def health(
    max_age: Annotated[
        float, typer.Option(help="seconds since the worker last touched DOCGRAPH_HEALTH_FILE")
    ] = 30.0,
    ready: Annotated[
        bool, typer.Option("--ready", help="also require Redis to answer PING (readiness, not liveness)")
    ] = False,
) -> None:
    """Exit 0 if this container's worker is alive (and with --ready, Redis answers); else 1.

    Liveness reads only the file the worker touches every 5 s, so a Redis outage
    never fails it. Meant for HEALTHCHECK and Kubernetes exec probes.

    Example: [bold]DOCGRAPH_HEALTH_FILE=/tmp/docgraph.alive docgraph health --max-age 30[/bold]
    """
    settings = load_settings()
    path = settings.health_file
    if path is None:
        err.print("DOCGRAPH_HEALTH_FILE is not set: set it for the worker and for this check")
        raise typer.Exit(1)
    problem = liveness(path, max_age)
    if problem:
        err.print(problem, markup=False)
        raise typer.Exit(1)
    if ready:
        import redis

        from docgraph.core.runtime.connection import connect_sync, describe_failure

        try:
            connect_sync(settings, socket_timeout=2, socket_connect_timeout=2).ping()
        except redis.RedisError as exc:
            err.print(f"not ready: {describe_failure(settings, exc)}", markup=False)
            raise typer.Exit(1) from None
    console.print("ok")
