"""``docgraph monitor``: a live view of queues, jobs by state, active jobs and failures (one Redis round trip per refresh)."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import typer
from rich.console import Group
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table

from docgraph.core.cli.common import console, load_settings, redis_session
from docgraph.core.cli.jobs import open_job_store
from docgraph.core.runtime.keys import JOB_STATES
from docgraph.core.runtime.snapshot import Snapshot


def monitor(
    interval: Annotated[float, typer.Option(min=0.2, help="seconds between refreshes")] = 1.0,
    once: Annotated[bool, typer.Option("--once", help="print one frame and exit")] = False,
) -> None:
    """Live full-screen view: per-stage queue depth and in-flight entries, jobs by
    state, completions per second, active jobs with progress bars, recent failures.

    Exit status: 0 quit (Ctrl-C) or --once; 3 Redis unreachable.

    Example: [bold]docgraph monitor[/bold]   (one Redis round trip per refresh)
    """
    from rich.live import Live

    from docgraph.core.runtime.snapshot import snapshot

    settings = load_settings()

    async def main() -> None:
        client, store = open_job_store(settings)
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

    with redis_session(settings) as settings:
        try:
            asyncio.run(main())
        except KeyboardInterrupt:
            pass


def render(snap: Snapshot, previous: Snapshot | None = None) -> Group:
    stages = Table(title="stages", expand=True)
    for col in ("stage", "waiting", "in flight", "dead letters", "limits"):
        stages.add_column(col, justify="right" if col != "stage" else "left")
    for stage, queued in snap.queued.items():
        pend = snap.pending[stage]
        name = f"{stage} [yellow](paused)[/yellow]" if stage in snap.paused else stage
        limits = str(snap.limits[stage]) if stage in snap.limits else "-"
        stages.add_row(name, str(max(0, queued - pend)), str(pend), str(snap.dead_letters[stage]), limits)
    if snap.webhooks_due or snap.webhook_dead_letters:  # webhook deliveries (docgraph worker --stage notify)
        stages.add_row("notify (webhooks)", str(snap.webhooks_due), "", str(snap.webhook_dead_letters), "")
    states = Table(title="jobs by state", expand=True)
    for state in JOB_STATES:
        states.add_column(state, justify="right")
    states.add_row(*(str(snap.states[s]) for s in JOB_STATES))
    rate = ""
    if previous is not None and snap.taken > previous.taken:
        done = snap.states["completed"] - previous.states["completed"]
        rate = f"  completed/s {max(0, done) / (snap.taken - previous.taken):.1f}"
    active = Table(title=f"active jobs (retries waiting: {snap.delayed}){rate}", expand=True)
    active.add_column("job")
    active.add_column("stage")
    active.add_column("progress", ratio=2)
    active.add_column("message")
    for job in snap.active:
        running = [s for s in job.stages if s.status == "running"] or job.stages[:1]
        st = running[0]
        active.add_row(job.label, st.name, ProgressBar(total=1.0, completed=job.progress), st.message)
    failures = Table(title="recent failures", expand=True)
    failures.add_column("job")
    failures.add_column("state")
    failures.add_column("error")
    for job in snap.failures:
        failures.add_row(job.label, job.state, (job.error or "")[:120])
    stamp = time.strftime("%H:%M:%S", time.localtime(snap.taken))
    return Group(Panel(f"docgraph monitor  {stamp}  (Ctrl-C to quit)"), stages, states, active, failures)
