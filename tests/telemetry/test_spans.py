"""Tracing in process, with the SDK's in-memory exporter (no services needed).

The end-to-end proof against a real Jaeger is test_jaeger.py; these tests pin
the span model cheaply and also cover "tracing off" (no provider installed).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from docgraph.core import telemetry
from docgraph.core.envelope import DocumentRef
from docgraph.core.runtime.jobs import JobStore
from docgraph.core.settings import Settings
from tests.runtime.helpers import running_worker, wait_for_states

DOC = DocumentRef(uri="file:///dev/null")


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.use_tracer_provider(provider)
    try:
        yield exporter
    finally:
        telemetry.use_tracer_provider(None)
        provider.shutdown()


def _of_trace(exporter: InMemorySpanExporter, trace_id: str) -> list:
    return [s for s in exporter.get_finished_spans() if f"{s.context.trace_id:032x}" == trace_id]


async def test_one_trace_per_job_with_retry(settings: Settings, client, spans: InMemorySpanExporter) -> None:
    store = JobStore(client, settings)
    job_id, _ = await store.submit(DOC, metadata={"fail": {"ner": 1}})
    async with running_worker(settings, client):
        await wait_for_states(store, [job_id], {"completed"})
    job = await store.get(job_id)
    assert job is not None and job.trace_id
    got = _of_trace(spans, job.trace_id)
    by_id = {s.context.span_id: s for s in got}
    roots = [s for s in got if s.parent is None]
    assert len(roots) == 1 and roots[0].kind is SpanKind.PRODUCER
    assert roots[0].name.startswith("send ") and roots[0].name.endswith(":stream:extract:normal")
    assert job.traceparent == telemetry.traceparent_of(roots[0])
    process = [s for s in got if s.kind is SpanKind.CONSUMER]
    stages = sorted(s.attributes["docgraph.stage"] for s in process)
    assert stages == ["classify", "extract", "ingest", "ner", "ner"]
    for s in process:
        assert s.parent is not None and s.parent.span_id in by_id
        assert s.attributes["messaging.system"] == "redis"
        assert s.attributes["messaging.operation.type"] == "process"
        assert s.attributes["messaging.destination.name"] == s.name.removeprefix("process ")
        assert s.attributes["messaging.consumer.group.name"] == s.attributes["docgraph.stage"]
        assert s.attributes["messaging.message.id"]
        assert s.attributes["docgraph.job.id"] == job_id
    failed = [s for s in process if s.status.status_code is StatusCode.ERROR]
    assert len(failed) == 1 and failed[0].attributes["docgraph.stage"] == "ner"
    assert failed[0].attributes["error.type"] == "RuntimeError"
    assert failed[0].attributes["docgraph.outcome"] == "retry"
    assert any(e.name == "exception" for e in failed[0].events)
    retried = next(s for s in process if s.attributes["docgraph.stage"] == "ner" and s is not failed[0])
    assert retried.parent.span_id == failed[0].context.span_id
    assert retried.attributes["docgraph.attempt"] == 2


async def test_tracing_off_keeps_random_trace_ids(settings: Settings, client) -> None:
    assert not telemetry.enabled()
    store = JobStore(client, settings)
    job_id, _ = await store.submit(DOC)
    async with running_worker(settings, client):
        await wait_for_states(store, [job_id], {"completed"})
    job = await store.get(job_id)
    assert job is not None and job.trace_id and len(job.trace_id) == 32


async def test_submit_joins_the_callers_trace(
    settings: Settings, client, spans: InMemorySpanExporter
) -> None:
    """A traceparent passed in (e.g. the API's header), or an active span, parents the send span."""
    store = JobStore(client, settings)
    incoming = "00-" + "4bf92f3577b34da6a3ce929d0e0e4736" + "-" + "00f067aa0ba902b7" + "-01"
    job_id, _ = await store.submit(DOC, traceparent=incoming)
    job = await store.get(job_id)
    assert job is not None and job.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    (send,) = spans.get_finished_spans()
    assert f"{send.parent.span_id:016x}" == "00f067aa0ba902b7"
    assert job.traceparent == telemetry.traceparent_of(send)

    spans.clear()
    with telemetry.tracer().start_as_current_span("POST /jobs") as http:
        other, _ = await store.submit(DOC)
    job = await store.get(other)
    send = next(s for s in spans.get_finished_spans() if s.name.startswith("send "))
    assert send.parent.span_id == http.get_span_context().span_id
    assert job is not None and job.trace_id == f"{http.get_span_context().trace_id:032x}"
    assert send.attributes["docgraph.job.created"] is True
    again, created = await store.submit(DOC, job_id=other)
    assert not created
    dup = [s for s in spans.get_finished_spans() if s.attributes.get("docgraph.job.created") is False]
    assert len(dup) == 1


def test_process_span_parents(spans: InMemorySpanExporter) -> None:
    """Malformed or missing traceparent: a new root; an unsampled parent stays unsampled."""
    for bad in ("", "garbage", "00-" + "0" * 32 + "-" + "0" * 16 + "-01"):
        with telemetry.process_span("st", "1-0", "ner", bad) as span:
            assert span.traceparent and span.traceparent != bad
    assert [s.parent for s in spans.get_finished_spans()] == [None, None, None]
    spans.clear()
    unsampled = "00-" + "c" * 32 + "-" + "d" * 16 + "-00"
    with telemetry.process_span("st", "1-0", "ner", unsampled) as span:
        assert span.traceparent.startswith("00-" + "c" * 32 + "-")
        assert span.traceparent.endswith("-00") and "-" + "d" * 16 + "-" not in span.traceparent
    assert spans.get_finished_spans() == ()
