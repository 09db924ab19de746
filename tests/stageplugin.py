"""Test stages: behaviour chosen per job through its metadata.

``metadata`` keys understood (stage name -> value):
  sleep_ms:    {"ner": [min, max]}  random delay
  block_ms:    {"ner": 2500}        block the worker's event loop (a badly written
                                    async stage: heartbeats on the loop stall too)
  fail:        {"ner": 2}           raise on the first N calls (transient; counted in
                                    the effects hash, so a replay can succeed)
  permanent:   {"extract": "why"}   raise PermanentError
  hold_first_ms: {"extract": 60000} sleep on the first call only (a worker that dies
                                    holding it; whoever reclaims it runs at once)
  spin_ms:     {"ner": 30000}       a sync loop in a thread reporting ctx.progress every
                                    20 ms (a long sync stage; stops when cancelled)
  crash:       {"classify": true}   kill the worker process (exit 137)
  skip:        {"extract": ["ner"]} route around a successor
Every successful run records an effect in the Redis hash named by
DOCGRAPH_TEST_EFFECTS (field ``<job>:<stage>``, or only ``total:<stage>`` when
DOCGRAPH_TEST_EFFECTS_TOTALS is set), so tests can count stage effects
independently of the runtime's own bookkeeping.
"""

from __future__ import annotations

import asyncio
import os
import random
import time

import redis as sync_redis

from docgraph.core.errors import PermanentError
from docgraph.core.stage import StageContext, StageResult, StageSpec
from docgraph.plugins.hookspecs import hookimpl

_effects: dict[str, sync_redis.Redis] = {}


def _effects_client() -> sync_redis.Redis | None:
    url = os.environ.get("DOCGRAPH_TEST_EFFECTS_URL")
    if not url:
        return None
    if url not in _effects:
        _effects[url] = sync_redis.Redis.from_url(url)
    return _effects[url]


def make_stage(name: str):
    async def run(ctx: StageContext) -> StageResult:
        meta = ctx.envelope.metadata
        if name in meta.get("crash", {}):
            os._exit(137)
        if name in meta.get("permanent", {}):
            raise PermanentError(meta["permanent"][name])
        client = _effects_client()
        key = os.environ.get("DOCGRAPH_TEST_EFFECTS", "effects")
        fail = int(meta.get("fail", {}).get(name, 0))
        if fail:
            calls = await asyncio.to_thread(client.hincrby, key, f"{ctx.job_id}:{name}:calls", 1)
            if calls <= fail:
                raise RuntimeError(f"injected transient failure of {name}, call {calls}")
        hold = meta.get("hold_first_ms", {}).get(name)
        if hold:
            calls = await asyncio.to_thread(client.hincrby, key, f"{ctx.job_id}:{name}:held", 1)
            if calls == 1:
                await asyncio.sleep(hold / 1000)
        block = meta.get("block_ms", {}).get(name)
        if block:
            time.sleep(block / 1000)  # noqa: ASYNC251 - deliberately on the event loop
        spin = meta.get("spin_ms", {}).get(name)
        if spin:

            def spin_loop() -> None:
                end = time.monotonic() + spin / 1000
                while time.monotonic() < end:
                    ctx.progress(0.1, "spinning")  # raises JobCancelled once cancelled
                    time.sleep(0.02)

            await asyncio.to_thread(spin_loop)
        delay = meta.get("sleep_ms", {}).get(name)
        if delay:
            await asyncio.sleep(random.uniform(*delay) / 1000)
        ctx.progress(0.5, "halfway")
        if client is not None:
            field = (
                f"total:{name}" if os.environ.get("DOCGRAPH_TEST_EFFECTS_TOTALS") else f"{ctx.job_id}:{name}"
            )
            await asyncio.to_thread(client.hincrby, key, field, 1)
        return StageResult(
            output={"by": name, "seen": sorted(ctx.envelope.outputs)},
            skip=tuple(meta.get("skip", {}).get(name, ())),
        )

    return run


@hookimpl
def docgraph_add_stages(settings):
    return [StageSpec(name=name, func=make_stage(name)) for name in settings.topology]
