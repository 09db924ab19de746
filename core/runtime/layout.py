"""The partition count is recorded in Redis, and a process with another one is refused.

A job's partition is derived from its id and ``DOCGRAPH_PARTITIONS``, so every
process must agree on the count: one with fewer partitions never reads some
streams (their jobs wait forever), one with more looks for records in the wrong
place.  The first process to write records the count; later ones compare.
Changing it is ``docgraph partitions set N``, refused while any job is in flight.
"""

from __future__ import annotations

from typing import Any

from docgraph.core.errors import ConfigError
from docgraph.core.runtime.keys import Keys
from docgraph.core.settings import Settings

__all__ = [
    "PartitionCountMismatch",
    "check_partition_count",
    "check_partition_count_sync",
    "recorded_partition_count",
    "set_partition_count",
]

FIELD = "partitions"


class PartitionCountMismatch(ConfigError):
    """``DOCGRAPH_PARTITIONS`` differs from the count this Redis's jobs use."""


async def recorded_partition_count(client: Any, settings: Settings) -> int | None:
    """The count recorded for ``settings.key_prefix``, or None if nothing has run yet."""
    raw = await client.hget(Keys(settings.key_prefix, settings.partitions).layout, FIELD)
    return None if raw is None else int(raw)


async def check_partition_count(client: Any, settings: Settings) -> None:
    """Record the configured count if none is, else refuse a different one (one round
    trip; read-only callers, the CLI, use :func:`check_partition_count_sync`)."""
    key = Keys(settings.key_prefix, settings.partitions).layout
    pipe = client.pipeline(transaction=False)
    pipe.hsetnx(key, FIELD, settings.partitions)
    pipe.hget(key, FIELD)
    _, raw = await pipe.execute()
    _refuse_other(settings, None if raw is None else int(raw))


def check_partition_count_sync(client: Any, settings: Settings) -> None:
    """:func:`check_partition_count` without recording, for a sync client (the CLI)."""
    raw = client.hget(Keys(settings.key_prefix, settings.partitions).layout, FIELD)
    _refuse_other(settings, None if raw is None else int(raw))


def _refuse_other(settings: Settings, recorded: int | None) -> None:
    if recorded is not None and recorded != settings.partitions:
        raise PartitionCountMismatch(
            f"DOCGRAPH_PARTITIONS={settings.partitions}, but the jobs under prefix "
            f"{settings.key_prefix!r} in this Redis use {recorded} partitions: set "
            f"DOCGRAPH_PARTITIONS={recorded} (every process must agree), or change it for all "
            f"with `docgraph partitions set {settings.partitions}` once no job is in flight"
        )


IN_FLIGHT = ("queued", "running", "retrying")


async def set_partition_count(client: Any, settings: Settings, partitions: int) -> int | None:
    """Record ``partitions`` as the count, refused (ConfigError) while any job is in flight
    under the recorded count.  Returns the count it replaced (None: none was recorded).

    Finished jobs' records stay in the partitions of the old count: the new one does
    not find them (retention removes them in time)."""
    from docgraph.core.runtime.jobs import JobStore  # jobs imports this module

    if partitions < 1:
        raise ConfigError(f"a partition count must be at least 1, not {partitions}")
    old = await recorded_partition_count(client, settings)
    current = settings.model_copy(update={"partitions": old or settings.partitions})
    counts = await JobStore(client, current).count_by_state()
    busy = {state: counts[state] for state in IN_FLIGHT if counts[state]}
    if busy:
        listed = ", ".join(f"{n} {state}" for state, n in busy.items())
        raise ConfigError(
            f"refused: jobs are in flight ({listed}) under {current.partitions} partitions; "
            "wait until they finish (docgraph monitor), or cancel them, then try again"
        )
    await client.hset(Keys(settings.key_prefix, current.partitions).layout, FIELD, partitions)
    return old
