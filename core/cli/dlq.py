"""``docgraph dlq list / show / replay / purge``: dead letters per stage."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.table import Table

from docgraph.core.cli.common import console, err, load_settings, redis_session
from docgraph.core.runtime.connection import connect
from docgraph.core.runtime.dlq import DeadLetters
from docgraph.core.settings import Settings

dlq_app = typer.Typer(
    help="Inspect, replay and purge dead letters.  Exit status: 1 no such letter (show); "
    "2 bad option; 3 Redis unreachable.",
    no_args_is_help=True,
)


def _dlq(settings: Settings) -> tuple[Any, DeadLetters]:
    client = connect(settings)
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
        with redis_session(settings) as settings:
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
