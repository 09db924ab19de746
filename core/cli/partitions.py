"""``docgraph partitions [set N]``: the partition count recorded in Redis, and changing it."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from docgraph.core.cli.common import console, with_redis
from docgraph.core.runtime.layout import recorded_partition_count, set_partition_count
from docgraph.core.settings import Settings

partitions_app = typer.Typer(
    help="The partition count every process must share (DOCGRAPH_PARTITIONS), as recorded in "
    "Redis by the first worker or submit.  A process with another count is refused.  "
    "Exit status: 2 refused or mismatched; 3 Redis unreachable.",
    invoke_without_command=True,
)


@partitions_app.callback()
def show(ctx: typer.Context) -> None:
    """Print the recorded count and this process's DOCGRAPH_PARTITIONS."""
    if ctx.invoked_subcommand is not None:
        return

    async def read(client: Any, settings: Settings) -> tuple[int | None, int]:
        return await recorded_partition_count(client, settings), settings.partitions

    recorded, configured = with_redis(read, check_layout=False)
    console.print(
        f"recorded: {recorded if recorded is not None else 'none yet'}; DOCGRAPH_PARTITIONS: {configured}"
    )


@partitions_app.command("set")
def set_count(partitions: Annotated[int, typer.Argument(min=1, help="the new partition count")]) -> None:
    """Change the recorded count, once no job is queued, running or retrying.

    Then restart every worker, API and submitter with DOCGRAPH_PARTITIONS=N.
    Records of finished jobs stay where the old count put them.

    Example: [bold]docgraph partitions set 6[/bold]
    """
    old = with_redis(
        lambda client, settings: set_partition_count(client, settings, partitions), check_layout=False
    )
    console.print(
        f"partitions: {old if old is not None else 'none'} -> {partitions}; now set "
        f"DOCGRAPH_PARTITIONS={partitions} in every process"
    )
