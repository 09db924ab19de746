"""Dead letters: list, show, replay (same job id, same trace) and purge."""

from __future__ import annotations

import builtins
import json
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from docgraph.core.runtime import calls
from docgraph.core.runtime.connection import Scripts
from docgraph.core.runtime.jobs import now_ms
from docgraph.core.runtime.keys import Keys, Lane
from docgraph.core.runtime.notify import STAGE as NOTIFY
from docgraph.core.runtime.notify import redelivered
from docgraph.core.settings import Settings
from docgraph.core.topology import Topology


@dataclass
class DeadLetter:
    id: str
    partition: int
    stage: str
    fields: dict[str, str]

    @property
    def job_id(self) -> str:
        return self.fields.get("job_id", "")

    @property
    def error(self) -> str:
        return f"{self.fields.get('error_type', '')}: {self.fields.get('error', '')}"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.ref, "stage": self.stage, **self.fields}

    @property
    def ref(self) -> str:
        """Unique across partitions: ``<partition>/<entry id>``."""
        return f"{self.partition}/{self.id}"


class DeadLetters:
    def __init__(self, client: aioredis.Redis, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.keys = Keys(settings.key_prefix, settings.partitions)
        self.topology = Topology(settings.topology)
        self.scripts = Scripts(client, settings)

    @property
    def stages(self) -> builtins.list[str]:
        """Every stage that can have dead letters: the topology's, then notify (webhooks)."""
        return [*self.topology.stages, NOTIFY]

    def _check_stage(self, stage: str) -> None:
        if stage not in self.stages:
            raise ValueError(f"unknown stage {stage!r}; stages: {', '.join(self.stages)}")

    async def count(self, stage: str) -> int:
        self._check_stage(stage)
        return sum([await self.client.xlen(p.dlq(stage)) for p in self.keys.all()])

    async def list(
        self, stage: str, *, limit: int = 50, after: str | None = None
    ) -> builtins.list[DeadLetter]:
        """Oldest first; ``after`` is the ref of the last letter of the previous page."""
        self._check_stage(stage)
        out: list[DeadLetter] = []
        start_part, start_id = 0, "-"
        if after:
            p, _, eid = after.partition("/")
            start_part, start_id = int(p), f"({eid}"
        for part in self.keys.all()[start_part:]:
            need = limit - len(out)
            if need <= 0:
                break
            first = start_id if part.partition == start_part else "-"
            rows: Any = await self.client.xrange(part.dlq(stage), first, "+", count=need)
            for entry_id, fields in rows:
                out.append(_letter(part.partition, stage, entry_id, fields))
        return out

    async def get(self, stage: str, ref: str) -> DeadLetter | None:
        self._check_stage(stage)
        p, _, eid = ref.partition("/")
        part = self.keys.part(int(p))
        rows: Any = await self.client.xrange(part.dlq(stage), eid, eid)
        return _letter(part.partition, stage, *rows[0]) if rows else None

    async def replay(self, stage: str, refs: builtins.list[str] | None = None) -> int:
        """Put letters back on their stage stream (all when ``refs`` is None),
        same job id, attempt reset, trace context kept."""
        letters = (
            [lt for r in refs if (lt := await self.get(stage, r))]
            if refs is not None
            else await self._all(stage)
        )
        replayed = 0
        for letter in letters:
            replayed += await self._replay_one(letter)
        return replayed

    async def _all(self, stage: str) -> builtins.list[DeadLetter]:
        letters: builtins.list[DeadLetter] = []
        after = None
        while batch := await self.list(stage, limit=500, after=after):
            letters += batch
            after = batch[-1].ref
        return letters

    async def _replay_one(self, letter: DeadLetter) -> int:
        part = self.keys.part(letter.partition)
        if letter.stage == NOTIFY:  # a webhook delivery: due again now, attempts reset
            try:
                member = redelivered(letter.fields.get("payload", ""))
            except (ValueError, KeyError, TypeError):
                return 0
            call = calls.NotifyReplay(
                dlq=part.dlq(NOTIFY), due=part.notify_due, entry=letter.id, member=member, now=now_ms()
            )
            return int(await self.scripts.run(call))
        try:
            payload = json.loads(letter.fields.get("payload", ""))
            job_id = str(payload["job_id"])
        except (ValueError, KeyError, TypeError):
            return 0  # malformed events cannot be replayed; purge them
        payload["attempt"] = 1
        lane = Lane(payload.get("priority", "normal"))
        done = [s for s in payload.get("outputs", {}) if s in self.topology.stages]
        return int(
            await self.scripts.run(
                calls.Replay(
                    job=part.job(job_id),
                    dlq=part.dlq(letter.stage),
                    target=part.stream(letter.stage, lane),
                    tag=part.tag,
                    entry=letter.id,
                    job_id=job_id,
                    stage=letter.stage,
                    now=now_ms(),
                    payload=json.dumps(payload),
                    traceparent=letter.fields.get("traceparent", ""),
                    done=calls.encode(done),
                    stages=calls.encode(self.topology.stages),
                    events=self.settings.events.cap,
                )
            )
        )

    async def purge(self, stage: str) -> int:
        self._check_stage(stage)
        total = 0
        for part in self.keys.all():
            total += await self.client.xlen(part.dlq(stage))
            await self.client.delete(part.dlq(stage))
        return total


def _letter(partition: int, stage: str, entry_id: Any, fields: Any) -> DeadLetter:
    return DeadLetter(
        id=entry_id.decode(),
        partition=partition,
        stage=stage,
        fields={k.decode(): v.decode(errors="replace") for k, v in fields.items()},
    )
