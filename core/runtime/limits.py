"""Cluster-wide limits of one stage: starts per second and jobs in flight.

``DOCGRAPH_STAGES__<STAGE>__MAX_PER_SECOND`` and ``__MAX_IN_FLIGHT`` hold across
every worker of the stage because the state is in Redis (one slot per stage):
a GCRA arrival time for the rate, a sorted set of permits scored by expiry for
the in-flight count (a SIGKILLed worker's permits expire after the stage's
visibility timeout; a live worker renews its own).  A runner takes its starts
*before* it reads entries, so a throttled worker leaves entries for the others,
and sleeps exactly as long as Redis says (no polling loop) when none is free.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from typing import Any

from docgraph.core.runtime import calls
from docgraph.core.runtime.connection import Scripts
from docgraph.core.runtime.keys import Keys


class StageLimiter:
    """One runner's view of its stage's limits."""

    def __init__(
        self,
        scripts: Scripts,
        keys: Keys,
        stage: str,
        *,
        holder: str,
        max_per_second: float | None,
        max_in_flight: int | None,
        lease_ms: int,
    ) -> None:
        self.scripts = scripts
        self.rate_key, self.in_flight_key, self.config_key = keys.limit(stage)
        self.max_per_second = max_per_second
        self.holder = holder
        self.interval_ms = 1000.0 / max_per_second if max_per_second else 0.0
        # a burst of at most one second's worth: a stage idle for an hour does not start
        # an hour's worth at once
        self.burst = max(1, math.floor(max_per_second)) if max_per_second else 1
        self.max_in_flight = max_in_flight or 0
        self.lease_ms = lease_ms
        self.held: set[str] = set()

    @classmethod
    def for_stage(
        cls, scripts: Scripts, keys: Keys, stage: str, settings: Any, holder: str, lease_ms: int
    ) -> StageLimiter | None:
        rate, in_flight = settings.limits_for(stage)
        if rate is None and in_flight is None:
            return None
        return cls(
            scripts,
            keys,
            stage,
            holder=holder,
            max_per_second=rate,
            max_in_flight=in_flight,
            lease_ms=lease_ms,
        )

    async def take(self, want: int, stopping: asyncio.Event, max_wait: float) -> list[str | None]:
        """Up to ``want`` starts: one permit (or None without an in-flight limit) each.
        Empty after waiting at most ``max_wait`` s (or until ``stopping``) for one."""
        reply: Any = await self.scripts.run(
            calls.LimitTake(
                rate=self.rate_key,
                in_flight=self.in_flight_key,
                want=want,
                interval_ms=self.interval_ms,
                burst=self.burst,
                max_in_flight=self.max_in_flight,
                holder=self.holder,
                lease_ms=self.lease_ms,
            )
        )
        granted, wait_ms = int(reply[0]), int(reply[1])
        if granted == 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), min(wait_ms / 1000, max_wait))
            return []
        permits: list[str | None] = [p.decode() for p in reply[2:]] or [None] * granted
        self.held.update(p for p in permits if p)
        return permits

    async def give(self, permits: list[str | None], *, started: bool) -> None:
        """Release permits; ``started=False``: their starts were not made (back to the rate)."""
        named = [p for p in permits if p]
        self.held.difference_update(named)
        if not named and (started or not self.interval_ms):
            return
        await self.scripts.run(
            calls.LimitGive(
                rate=self.rate_key,
                in_flight=self.in_flight_key,
                unused=0 if started else len(permits),
                interval_ms=self.interval_ms,
                permits=calls.encode(named),
            )
        )

    async def renew(self) -> None:
        """Keep this runner's permits alive while their jobs run, and its limits published."""
        await self.scripts.run(
            calls.LimitRenew(
                in_flight=self.in_flight_key,
                config=self.config_key,
                lease_ms=self.lease_ms,
                permits=calls.encode(sorted(self.held)),
                max_per_second=f"{self.max_per_second:g}" if self.max_per_second else "",
                max_in_flight=self.max_in_flight,
            )
        )


__all__ = ["StageLimiter"]
