"""Neo4j goes away during a run: ingest retries and completes when it returns;
an outage longer than the retry budget dead-letters, and replay completes it."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from docgraph.core.runtime.dlq import DeadLetters
from docgraph.core.runtime.jobs import JobStore
from docgraph.core.settings import RetryPolicy, StageOptions
from docgraph.core.store import copy_local, open_store
from tests.runtime.helpers import running_worker, wait_for_states
from tests.stages import corpus
from tests.stages.test_e2e_stores import pytestmark as _services_needed

pytestmark = _services_needed
SERVICES = str(corpus.REPO / "deploy" / "local" / "services.sh")


def neo4j(action: str) -> None:
    subprocess.run([SERVICES, action, "neo4j"], check=True, capture_output=True, timeout=300)


async def _submit(settings, client, docs) -> list[str]:
    store, objects = JobStore(client, settings), open_store(settings)
    return [(await store.submit(copy_local(d.path, objects)))[0] for d in docs]


@pytest.mark.slow
async def test_ingest_survives_a_20s_neo4j_outage(store_settings, client, tmp_path):
    settings = store_settings.model_copy(
        update={
            "neo4j_retry_seconds": 2,
            "stages": {"ingest": StageOptions(retry=RetryPolicy(attempts=10, backoff=2, backoff_max=8))},
        }
    )
    docs = corpus.build(tmp_path / "docs", total=40)[-6:]
    store = JobStore(client, settings)
    neo4j("down")
    try:
        ids = await _submit(settings, client, docs)
        async with running_worker(settings, client, with_services=True):
            await asyncio.sleep(20)
            jobs = await store.get_many(ids)
            assert {j.state for j in jobs} <= {"retrying", "running"}, [j.state for j in jobs]
            assert any(st.name == "ingest" and st.attempts >= 2 for j in jobs for st in j.stages)
            neo4j("up")
            await wait_for_states(store, ids, {"completed"}, timeout=180)
    finally:
        neo4j("up")


@pytest.mark.slow
async def test_outage_past_the_retry_budget_dead_letters_then_replay_completes(
    store_settings,
    client,
    tmp_path,
):
    settings = store_settings.model_copy(
        update={
            "neo4j_retry_seconds": 1,
            "stages": {"ingest": StageOptions(retry=RetryPolicy(attempts=2, backoff=0.5, backoff_max=1))},
        }
    )
    docs = corpus.build(tmp_path / "docs", total=40)[-3:]
    store = JobStore(client, settings)
    neo4j("down")
    try:
        ids = await _submit(settings, client, docs)
        async with running_worker(settings, client, with_services=True):
            await wait_for_states(store, ids, {"dead"}, timeout=120)
            letters = await DeadLetters(client, settings).list("ingest")
            assert {lt.job_id for lt in letters} == set(ids)
            assert all(lt.fields["attempts"] == "2" for lt in letters)
            neo4j("up")
            assert await DeadLetters(client, settings).replay("ingest") == len(ids)
            await wait_for_states(store, ids, {"completed"}, timeout=180)
    finally:
        neo4j("up")
