"""``docgraph stage pause / resume / list``: hold a stage's work while a downstream service is down."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from docgraph.core.cli.common import console, with_redis
from docgraph.core.runtime.control import StageControl

stage_app = typer.Typer(
    help="Pause and resume stages.  A paused stage's workers finish what they hold and take "
    "nothing new until it is resumed; the pause lives in Redis (it survives restarts).  "
    "Exit status: 2 no such stage; 3 Redis unreachable.",
    no_args_is_help=True,
)


def _control(action: Any) -> Any:
    return with_redis(lambda client, settings: action(StageControl(client, settings)))  # UnknownStage: exit 2


@stage_app.command("pause")
def pause(stage: str) -> None:
    """Stop workers taking new entries of STAGE (within one poll).

    Example: [bold]docgraph stage pause ingest[/bold]   (while Neo4j is upgraded)
    """
    changed = _control(lambda c: c.pause(stage))
    console.print(f"{stage}: paused" + ("" if changed else " (already)"))


@stage_app.command("resume")
def resume(stage: str) -> None:
    """Let workers take entries of STAGE again.

    Example: [bold]docgraph stage resume ingest[/bold]
    """
    changed = _control(lambda c: c.resume(stage))
    console.print(f"{stage}: running" + ("" if changed else " (was not paused)"))


@stage_app.command("list")
def list_stages(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every stage of the topology and whether it is paused."""

    async def both(c: StageControl) -> tuple[tuple[str, ...], dict[str, int]]:
        return c.stages, await c.paused()

    stages, paused = _control(both)
    rows = [
        {
            "stage": s,
            "paused": s in paused,
            "since": datetime.fromtimestamp(paused[s] / 1000, UTC).isoformat() if s in paused else None,
        }
        for s in stages
    ]
    if as_json:
        console.print_json(json.dumps(rows))
        return
    for r in rows:
        console.print(f"{r['stage']:12s} " + (f"paused since {r['since']}" if r["paused"] else "running"))
