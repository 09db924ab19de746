"""``docgraph submit / status / jobs / cancel``: jobs in the configured Redis."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from docgraph.core.cli.common import console, err, load_settings, redis_session, setup_telemetry
from docgraph.core.cli.run import expand_paths, print_summary, watch_jobs
from docgraph.core.runtime.connection import connect
from docgraph.core.runtime.jobs import JobStatus, JobStore, check_callback, epoch_ms
from docgraph.core.runtime.keys import JOB_STATES, Lane
from docgraph.core.settings import Settings


def open_job_store(settings: Settings) -> tuple[Any, JobStore]:
    client = connect(settings)
    return client, JobStore(client, settings)


def submit(
    paths: Annotated[list[Path], typer.Argument(help="files, folders or globs")],
    priority: Annotated[Lane, typer.Option(help="queue lane")] = Lane.normal,
    wait: Annotated[bool, typer.Option(help="show progress until the jobs finish")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    not_before: Annotated[
        datetime | None,
        typer.Option(
            "--not-before",
            formats=["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"],
            help="UTC date-time: the jobs' first stage waits until then (delayed submission)",
        ),
    ] = None,
    callback_url: Annotated[
        str | None,
        typer.Option(
            "--callback-url",
            help="POST the jobs' lifecycle events there, signed (needs DOCGRAPH_NOTIFY__CALLBACK_SECRET "
            "and a notify worker)",
        ),
    ] = None,
    latest_wins: Annotated[
        bool | None,
        typer.Option(
            "--latest-wins/--no-latest-wins",
            help="cancel an older job of the same file name that has not started yet "
            "(default: DOCGRAPH_LATEST_WINS)",
        ),
    ] = None,
) -> None:
    """Submit documents as jobs to the configured Redis.

    Exit status: 0 submitted; 2 bad option or path; 3 Redis unreachable.

    Example: [bold]docgraph submit reports/*.pdf --priority high --wait[/bold]
    Tonight: [bold]docgraph submit archive/ --priority low --not-before 2026-12-03T01:00[/bold]
    """
    settings = load_settings()
    try:
        check_callback(settings, callback_url)
    except ValueError as exc:
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from None
    setup_telemetry()
    files = expand_paths(paths)

    async def main() -> list[str]:
        from docgraph.core.store import copy_local, open_store

        client, store = open_job_store(settings)
        objects = open_store(settings)
        started = time.monotonic()
        refs = [await asyncio.to_thread(copy_local, f, objects) for f in files]
        metadata = [{"name": f.name} for f in files]
        ids = [
            job_id
            for job_id, _ in await store.submit_many(
                refs,
                priority=priority,
                metadata=metadata,
                not_before=not_before,
                callback_url=callback_url,
                latest_wins=latest_wins,
            )
        ]
        if wait:
            per_job = [f.name for f in files] if len(files) <= 20 else None
            jobs = await watch_jobs(store, ids, quiet=as_json, names=per_job)
            print_summary(jobs, store.topology.stages, time.monotonic() - started, as_json)
        await client.aclose()
        return ids

    with redis_session(settings) as settings:
        ids = asyncio.run(main())
    if as_json and not wait:
        console.print_json(json.dumps({"jobs": ids}))
    elif not wait:
        for f, i in zip(files, ids, strict=True):
            console.print(f"{i}  {f}")


def status(
    job_id: str,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show one job: state, per-stage status, progress, attempts, errors, trace.

    Exit status: 0 found; 1 no such job; 3 Redis unreachable.

    Example: [bold]docgraph status 3f2a…[/bold]
    """
    settings = load_settings()

    async def main() -> JobStatus | None:
        client, store = open_job_store(settings)
        job = await store.get(job_id)
        await client.aclose()
        return job

    with redis_session(settings) as settings:
        job = asyncio.run(main())
    if job is None:
        err.print(f"[red]no job {job_id}[/red] (it may have expired: see DOCGRAPH_COMPLETED_MAX_AGE)")
        raise typer.Exit(1)
    data = job.to_dict(settings.trace_link_template)
    if as_json:
        console.print_json(json.dumps(data))
        return
    console.print(f"[bold]{job.id}[/bold]  {job.state}  {job.progress:.0%}  trace {job.trace_id}")
    if data["trace_link"]:
        console.print(f"trace: {data['trace_link']}")
    table = Table()
    for col in ("stage", "status", "progress", "attempts", "seconds", "error"):
        table.add_column(col)
    for st in job.stages:
        secs = f"{(st.finished - st.started) / 1000:.3f}" if st.started and st.finished else ""
        table.add_row(
            st.name,
            st.status,
            f"{st.progress:.0%} {st.message}".strip(),
            str(st.attempts),
            secs,
            st.error or "",
        )
    console.print(table)


def jobs(
    state: Annotated[str, typer.Option(help=f"one of {', '.join(JOB_STATES)}")] = "completed",
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    cursor: Annotated[str | None, typer.Option(help="from the previous page's output")] = None,
    stage: Annotated[
        str | None,
        typer.Option(help="only jobs in STATE at this stage (queued/running/retrying/failed/dead)"),
    ] = None,
    since: Annotated[
        datetime | None, typer.Option(help="entered the state at or after (ISO 8601, UTC if no zone)")
    ] = None,
    until: Annotated[datetime | None, typer.Option(help="entered the state at or before")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List jobs in a state, newest first, a page at a time.

    Exit status: 0 listed; 2 bad option; 3 Redis unreachable.

    Example: [bold]docgraph jobs --state dead --stage ner --since 2026-11-28T09:00[/bold]
    """
    settings = load_settings()

    async def main() -> Any:
        client, store = open_job_store(settings)
        try:
            return await store.list(
                state, limit=limit, cursor=cursor, stage=stage, since=epoch_ms(since), until=epoch_ms(until)
            )
        finally:
            await client.aclose()

    try:
        with redis_session(settings) as settings:
            page = asyncio.run(main())
    except ValueError as exc:
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from None
    if as_json:
        console.print_json(
            json.dumps({"jobs": [j.to_dict() for j in page.jobs], "next_cursor": page.next_cursor})
        )
        return
    table = Table(title=f"{state} jobs")
    for col in ("id", "updated", "progress", "error"):
        table.add_column(col)
    for j in page.jobs:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(j.updated / 1000))
        table.add_row(j.id, when, f"{j.progress:.0%}", j.error or "")
    console.print(table)
    if page.next_cursor:
        filters = "".join(
            f" --{name} {value.isoformat() if isinstance(value, datetime) else value}"
            for name, value in (("stage", stage), ("since", since), ("until", until))
            if value is not None
        )
        console.print(f"next page: docgraph jobs --state {state}{filters} --cursor {page.next_cursor}")


def cancel(
    job_id: str,
    delete: Annotated[bool, typer.Option(help="also remove the job's record")] = False,
) -> None:
    """Cancel a job: queued and delayed work never runs; a running stage finishes
    and nothing after it runs.

    Exit status: 0 cancelled; 1 no such job; 3 Redis unreachable.

    Example: [bold]docgraph cancel 3f2a… --delete[/bold]
    """
    settings = load_settings()

    async def main() -> str | None:
        client, store = open_job_store(settings)
        try:
            return await store.cancel(job_id, remove=delete)
        finally:
            await client.aclose()

    with redis_session(settings) as settings:
        prev = asyncio.run(main())
    if prev is None:
        err.print(f"[red]no job {job_id}[/red]")
        raise typer.Exit(1)
    console.print(f"{job_id}: was {prev}, now {'deleted' if delete else 'cancelled'}")
