"""End to end against a real Jaeger: real worker processes export over OTLP/HTTP,
each job's trace is read back through Jaeger's query API by the trace id in
the job record.

    deploy/local/services.sh up jaeger
    eval "$(deploy/local/services.sh env)"
    pytest tests/telemetry -q

Skips (with the reason) when DOCGRAPH_TEST_OTLP_ENDPOINT / DOCGRAPH_TEST_JAEGER_QUERY
are absent; CI turns skips into failures.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from docgraph.core import telemetry
from docgraph.core.envelope import DocumentRef
from docgraph.core.runtime.dlq import DeadLetters
from docgraph.core.runtime.jobs import JobStore
from docgraph.core.settings import Settings
from tests.runtime.helpers import wait_for_states
from tests.runtime.procs import WorkerProcs
from tests.telemetry.jaegerapi import HOW_TO, Trace, fetch_trace, parent_of, tags

pytestmark = pytest.mark.service

DOC = DocumentRef(uri="file:///dev/null")
STAGES = ("extract", "classify", "ner", "ingest")


@pytest.fixture
def jaeger() -> tuple[str, str]:
    names = ("DOCGRAPH_TEST_OTLP_ENDPOINT", "DOCGRAPH_TEST_JAEGER_QUERY")
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        pytest.skip(f"{', '.join(missing)} not set: {HOW_TO}")
    return os.environ[names[0]], os.environ[names[1]]


@pytest.fixture
def service_name() -> str:
    return f"docgraph-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def client_tracing(jaeger: tuple[str, str], service_name: str) -> Iterator[Any]:
    """This (submitting) process traces too: its provider exports to Jaeger."""
    provider = telemetry.build_tracer_provider(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": jaeger[0],
            "OTEL_SERVICE_NAME": f"{service_name}-client",
        }
    )
    telemetry.use_tracer_provider(provider)
    try:
        yield provider
    finally:
        telemetry.use_tracer_provider(None)
        provider.shutdown()


def _procs(settings: Settings, tmp_path: Path, jaeger: tuple[str, str], service_name: str, **env: str):
    return WorkerProcs(
        settings,
        tmp_path,
        OTEL_EXPORTER_OTLP_ENDPOINT=jaeger[0],
        OTEL_SERVICE_NAME=service_name,
        OTEL_METRICS_EXPORTER="none",  # Jaeger takes traces only
        # Batches would wait a minute: every span the test sees was exported by the
        # SIGTERM path (worker exit flushes the tracer provider).
        OTEL_BSP_SCHEDULE_DELAY="60000",
        **env,
    )


def assert_failed_span(span: dict[str, Any], error_type: str, outcome: str) -> None:
    t = tags(span)
    assert t["otel.status_code"] == "ERROR"
    assert t["error"] is True
    assert t["error.type"] == error_type
    assert t["docgraph.outcome"] == outcome
    events = [{f["key"]: f["value"] for f in log["fields"]} for log in span.get("logs", [])]
    assert any(e.get("event") == "exception" and e.get("exception.type") for e in events), events


async def test_one_trace_per_job_across_worker_processes(
    settings: Settings, client, tmp_path, jaeger, service_name, client_tracing
) -> None:
    """Two worker processes (extract+classify, ner+ingest); ner fails once and is retried."""
    store = JobStore(client, settings)
    plain, _ = await store.submit(DOC, metadata={"name": "plain"})
    retried, _ = await store.submit(DOC, metadata={"name": "retried", "fail": {"ner": 1}})
    client_tracing.force_flush()
    procs = _procs(settings, tmp_path, jaeger, service_name)
    try:
        procs.start(1, stages=["extract", "classify"])
        procs.start(1, stages=["ner", "ingest"])
        await wait_for_states(store, [plain, retried], {"completed"}, timeout=60)
    finally:
        codes = procs.stop()
    assert codes == [0, 0], procs.logs()

    for job_id, ner_runs in ((plain, 1), (retried, 2)):
        job = await store.get(job_id)
        assert job is not None and job.trace_id
        data = await fetch_trace(jaeger[1], job.trace_id, want_spans=1 + len(STAGES) + ner_runs - 1)
        tr = Trace(data, job_id, service_name)
        assert data["traceID"] == job.trace_id
        # the job record and the root events carry the producer span's context
        assert job.traceparent is not None and tr.root["spanID"] in job.traceparent
        assert len(tr.spans) == 1 + len(STAGES) + ner_runs - 1
        assert {st: len(tr.stage_spans(st)) for st in STAGES} == {
            "extract": 1,
            "classify": 1,
            "ner": ner_runs,
            "ingest": 1,
        }
        (extract,) = tr.stage_spans("extract")
        assert parent_of(extract) == tr.root["spanID"]
        assert tr.parent_stage(tr.stage_spans("classify")[0]) == "extract"
        ner = tr.stage_spans("ner")
        assert tr.parent_stage(ner[0]) == "extract"
        # the join is enqueued by whichever branch finished last: ingest is its child,
        # and it links to the other branch
        (ingest,) = tr.stage_spans("ingest")
        branches = {tr.stage_spans("classify")[0]["spanID"], ner[-1]["spanID"]}
        assert parent_of(ingest) in branches
        linked = [r["spanID"] for r in ingest.get("references", []) if r["refType"] == "FOLLOWS_FROM"]
        assert linked == list(branches - {parent_of(ingest)}), ingest.get("references")
        if ner_runs == 1:
            assert tr.errors() == []
            continue
        # the retry is a child of the failed attempt, in the same trace
        assert parent_of(ner[1]) == ner[0]["spanID"]
        assert [int(tags(s)["docgraph.attempt"]) for s in ner] == [1, 2]
        assert tr.errors() == [ner[0]]
        assert_failed_span(ner[0], "RuntimeError", "retry")
        assert tags(ner[1])["docgraph.outcome"] == "completed"


async def test_dead_letter_replay_stays_in_the_trace(
    settings: Settings, client, tmp_path, jaeger, service_name, client_tracing
) -> None:
    """ner fails on all 3 attempts -> dead letter; a replay completes the job in the same trace."""
    store = JobStore(client, settings)
    dlq = DeadLetters(client, settings)
    job_id, _ = await store.submit(DOC, metadata={"fail": {"ner": 3}})
    client_tracing.force_flush()
    procs = _procs(settings, tmp_path, jaeger, service_name)
    try:
        procs.start(1)
        await wait_for_states(store, [job_id], {"dead"}, timeout=60)
        (letter,) = await dlq.list("ner")
        assert letter.job_id == job_id
        assert await dlq.replay("ner") == 1
        await wait_for_states(store, [job_id], {"completed"}, timeout=60)
    finally:
        codes = procs.stop()
    assert codes == [0], procs.logs()

    job = await store.get(job_id)
    assert job is not None and job.trace_id
    # send + extract + classify + ner x3 (dead) + ner (replayed) + ingest
    data = await fetch_trace(jaeger[1], job.trace_id, want_spans=8)
    tr = Trace(data, job_id, service_name)
    assert len(tr.spans) == 8
    ner = tr.stage_spans("ner")
    assert len(ner) == 4
    # attempts 1..3 chain through the delayed retries; the replay starts again at 1
    assert [int(tags(s)["docgraph.attempt"]) for s in ner] == [1, 1, 2, 3]
    first, replayed = ner[0], ner[1]
    if tr.parent_stage(first) != "extract":
        first, replayed = replayed, first
    chain = [first]
    while len(chain) < 3:
        chain.append(next(s for s in ner if parent_of(s) == chain[-1]["spanID"]))
    assert [int(tags(s)["docgraph.attempt"]) for s in chain] == [1, 2, 3]
    for s in chain[:2]:
        assert_failed_span(s, "RuntimeError", "retry")
    assert_failed_span(chain[2], "RuntimeError", "dead")
    # the dead letter kept the failed span's context: the replayed run is its child
    assert letter.fields["traceparent"].split("-")[2] == chain[2]["spanID"]
    assert parent_of(replayed) == chain[2]["spanID"]
    assert tags(replayed)["docgraph.outcome"] == "completed"
    assert len(tr.errors()) == 3


async def test_reclaimed_entry_stays_in_the_trace(
    settings: Settings, client, tmp_path, jaeger, service_name, client_tracing
) -> None:
    """classify kills its worker every time: live workers reclaim the entry until the
    delivery cap dead-letters it, and that span joins the job's trace under extract."""
    settings = settings.model_copy(update={"visibility_timeout": 1.0, "max_deliveries": 2})
    store = JobStore(client, settings)
    job_id, _ = await store.submit(DOC, metadata={"crash": {"classify": True}})
    client_tracing.force_flush()
    procs = _procs(settings, tmp_path, jaeger, service_name)
    try:
        procs.start(1, stages=["extract", "ner", "ingest"])
        procs.start(1, stages=["classify"])
        deadline = time.monotonic() + 90
        while (await store.get(job_id)).state != "dead":  # type: ignore[union-attr]
            assert time.monotonic() < deadline, procs.logs()
            for dead in [p for p in procs.procs if p.poll() is not None]:
                procs.procs.remove(dead)  # only classify's worker dies
                procs.start(1, stages=["classify"])
            await asyncio.sleep(0.2)
    finally:
        procs.stop()
    assert procs.started >= 3, "classify never crashed its worker"

    job = await store.get(job_id)
    assert job is not None and job.trace_id
    # send + extract + ner + the capped classify run (the crashed runs died with their spans)
    data = await fetch_trace(jaeger[1], job.trace_id, want_spans=4)
    tr = Trace(data, job_id, service_name)
    (capped,) = tr.stage_spans("classify")
    assert tr.parent_stage(capped) == "extract"
    assert_failed_span(capped, "docgraph.core.runtime.recovery.DeliveryCapExceeded", "dead")
    assert int(tags(capped)["docgraph.deliveries"]) == 3
