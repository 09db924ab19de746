"""``docgraph events``: print the lifecycle events streams, or follow them live."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.markup import escape

from docgraph.core.cli.common import err, load_settings, redis_session
from docgraph.core.runtime.connection import connect
from docgraph.core.runtime.events import EVENT_TYPES, Cursor, Event, EventLog
from docgraph.core.settings import Settings

FINAL_EVENTS = {"job.completed", "job.failed", "job.dead", "job.cancelled", "job.deleted"}
BLOCK_MS = 1000  # a blocking read returns this often, so Ctrl-C is prompt


def line(event: Event) -> str:
    """One event as a line: time, type, job, then what the type carries."""
    f = event.fields
    when = datetime.fromtimestamp(int(f.get("time", 0)) / 1000, UTC).isoformat(timespec="milliseconds")
    parts = [when.replace("+00:00", "Z"), f"{event.type:<15}", event.job_id]
    if "stage" in f:
        parts.append(f["stage"])
    if "attempt" in f:
        parts.append(f"attempt {f['attempt']}")
    if f.get("name") or f.get("uri"):
        parts.append(f.get("name") or f["uri"])
    if "entities" in f:
        parts.append(f"{f['entities']} entities, {f.get('relations', '0')} relations")
    if "error" in f:
        parts.append(f"— {f['error']}")
    return "  ".join(parts)


async def _print_events(
    settings: Settings, follow: bool, job: str | None, types: list[str], after: str | None, as_json: bool
) -> int:
    client = connect(settings)
    log = EventLog(client, settings)
    try:
        cursor = await log.start(after or ("0" if job or not follow else "$"))
        while True:
            batch, moved = await log.read(cursor, job=job, types=types, block_ms=BLOCK_MS if follow else None)
            for event in batch:
                print(json.dumps(event.to_dict(), ensure_ascii=False) if as_json else line(event), flush=True)
                if follow and job and event.type in FINAL_EVENTS:
                    return 0 if event.type == "job.completed" else 1
            if moved == cursor and not follow:
                return 0
            cursor = moved
    finally:
        await client.aclose()


def events(
    follow: Annotated[
        bool,
        typer.Option(
            "--follow", "-f", help="keep printing new events (with --job: until the job's final event)"
        ),
    ] = False,
    job: Annotated[str | None, typer.Option("--job", help="only this job's events")] = None,
    type_: Annotated[
        list[str] | None,
        typer.Option("--type", help="only this type (repeatable); job.* / stage.* for a group"),
    ] = None,
    after: Annotated[
        str | None,
        typer.Option(help="start after this event id (0: every retained event; $: only new ones)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """Print lifecycle events (job.submitted, stage.started, ..., job.completed), oldest
    first; with --follow, new ones as they happen (from now, or from the job's start with
    --job).  Exit status with --follow --job: 0 the job completed, 1 it failed, died, was
    cancelled or deleted.  Fields and types: docs/events.md.

    Example: [bold]docgraph events --follow --job 3f2a...[/bold]  or  [bold]docgraph events --type job.dead[/bold]
    """
    types = list(type_ or [])
    unknown = [t for t in types if t not in EVENT_TYPES and t not in ("job.*", "stage.*")]
    if unknown:
        err.print(
            f"[red]error:[/red] --type {unknown[0]}: not an event type; use one of {', '.join(EVENT_TYPES)}"
        )
        raise typer.Exit(2)
    settings = load_settings()
    if after not in (None, "0", "$"):
        try:
            Cursor.parse(after, settings.partitions)
        except ValueError as exc:
            err.print(f"[red]error:[/red] --after: {escape(str(exc))}")
            raise typer.Exit(2) from None
    with redis_session(settings) as settings:
        try:
            status = asyncio.run(_print_events(settings, follow, job, types, after, as_json))
        except KeyboardInterrupt:
            status = 0
    raise typer.Exit(status)
