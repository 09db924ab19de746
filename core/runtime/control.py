"""Operator controls held in Redis: pause and resume a stage.

A pause is a field in each partition's ``paused`` hash (see
:mod:`~docgraph.core.runtime.keys`), which the read script checks before
taking entries: every worker of the stage stops taking new entries within one
poll, finishes what it holds, and goes on when the stage is resumed.  It
lives in Redis, so it holds across worker restarts and for every replica.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from docgraph.core.runtime.jobs import now_ms
from docgraph.core.runtime.keys import Keys
from docgraph.core.settings import Settings
from docgraph.core.topology import Topology


class UnknownStage(ValueError):
    """A control named a stage the topology does not have."""


class StageControl:
    """Pause, resume and list paused stages."""

    def __init__(self, client: aioredis.Redis, settings: Settings) -> None:
        self.client = client
        self.keys = Keys(settings.key_prefix, settings.partitions)
        self.stages = Topology(settings.topology).stages

    def _check(self, stage: str) -> None:
        if stage not in self.stages:
            raise UnknownStage(f"no stage {stage!r}; the stages are {', '.join(self.stages)}")

    async def pause(self, stage: str) -> bool:
        """Pause ``stage``; False when it already was."""
        self._check(stage)
        pipe = self.client.pipeline(transaction=False)
        for part in self.keys.all():
            pipe.hsetnx(part.paused, stage, now_ms())
        return any(await pipe.execute())

    async def resume(self, stage: str) -> bool:
        """Resume ``stage``; False when it was not paused."""
        self._check(stage)
        pipe = self.client.pipeline(transaction=False)
        for part in self.keys.all():
            pipe.hdel(part.paused, stage)
        return any(await pipe.execute())

    async def paused(self) -> dict[str, int]:
        """Paused stages -> when they were paused (ms since the epoch)."""
        pipe = self.client.pipeline(transaction=False)
        for part in self.keys.all():
            pipe.hgetall(part.paused)
        out: dict[str, int] = {}
        raw: Any
        for raw in await pipe.execute():
            for stage, since in raw.items():
                name = stage.decode()
                out[name] = min(out.get(name, int(since)), int(since))
        return out
