"""Pausing a stage: its workers take nothing new, finish what they hold, resume on command."""

from __future__ import annotations

import asyncio
import json

from docgraph.core.runtime.control import StageControl
from docgraph.core.runtime.jobs import JobStore
from docgraph.core.runtime.snapshot import prometheus_text, snapshot
from tests.cli.test_cli import docgraph
from tests.runtime.helpers import running_worker, wait_for_states


async def _stage_states(store: JobStore, ids: list[str], stage: str) -> set[str]:
    return {(j.stage(stage).status if j and j.stage(stage) else "?") for j in await store.get_many(ids)}


async def test_a_paused_stage_holds_its_jobs_across_a_worker_restart_until_resumed(settings, client):
    store = JobStore(client, settings)
    control = StageControl(client, settings)
    assert await control.pause("ner") is True
    assert await control.pause("ner") is False  # already paused
    ids = [(await store.submit(None))[0] for _ in range(10)]
    async with running_worker(settings, client) as worker:
        await wait_for_states(store, ids, {"running"})
        for _ in range(50):  # the other branch finishes; ner waits
            if await _stage_states(store, ids, "classify") == {"completed"}:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(5 * settings.poll_interval)
        assert await _stage_states(store, ids, "ner") == {"queued"}
        assert next(r for r in worker.runners if r.stage == "ner").paused
    # a new worker process would see the same: the pause is in Redis
    assert list(await control.paused()) == ["ner"]
    snap = await snapshot(store)
    assert snap.paused.keys() == {"ner"}
    assert 'docgraph_stage_paused{stage="ner"} 1.0' in prometheus_text(snap)
    async with running_worker(settings, client):
        await asyncio.sleep(5 * settings.poll_interval)
        assert await _stage_states(store, ids, "ner") == {"queued"}
        assert await control.resume("ner") is True
        states = await wait_for_states(store, ids, {"completed"}, timeout=60)
    assert set(states.values()) == {"completed"}
    assert await control.resume("ner") is False
    assert await control.paused() == {}


async def test_stage_commands_pause_list_resume(settings):
    assert docgraph(settings, "stage", "pause", "ingest").returncode == 0
    listed = json.loads(docgraph(settings, "stage", "list", "--json").stdout)
    assert {r["stage"]: r["paused"] for r in listed} == {
        "extract": False,
        "classify": False,
        "ner": False,
        "ingest": True,
    }
    out = docgraph(settings, "stage", "resume", "ingest")
    assert out.returncode == 0 and "ingest: running" in out.stdout
    bad = docgraph(settings, "stage", "pause", "nope")
    assert bad.returncode == 2 and "no stage 'nope'" in bad.stderr
