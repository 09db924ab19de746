"""Set-up from OTEL_* variables, metrics and JSON logs (in process, no services)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from docgraph.core import telemetry
from docgraph.core.envelope import DocumentRef
from docgraph.core.errors import ConfigError
from docgraph.core.runtime.jobs import JobStore
from docgraph.core.settings import Settings
from tests.runtime.helpers import running_worker, wait_for_states

DOC = DocumentRef(uri="file:///dev/null")


# -- configuration --------------------------------------------------------------


def test_nothing_configured_installs_nothing() -> None:
    assert telemetry.build_tracer_provider({}) is None
    assert telemetry.build_meter_provider({}) is None
    assert telemetry.build_tracer_provider({"OTEL_TRACES_EXPORTER": "none"}) is None
    assert (
        telemetry.build_tracer_provider(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_SDK_DISABLED": "true"}
        )
        is None
    )


def test_endpoint_service_and_sampler_from_env() -> None:
    provider = telemetry.build_tracer_provider(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318/",
            "OTEL_SERVICE_NAME": "docgraph-ner",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=test",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.25",
        }
    )
    try:
        assert provider.resource.attributes["service.name"] == "docgraph-ner"
        assert provider.resource.attributes["deployment.environment.name"] == "test"
        assert "0.25" in provider.sampler.get_description()
        (processor,) = provider._active_span_processor._span_processors
        assert type(processor).__name__ == "BatchSpanProcessor"
        exporter = processor._batch_processor._exporter
        assert exporter.endpoint == "http://127.0.0.1:4318/v1/traces"
    finally:
        provider.shutdown()


@pytest.mark.parametrize(
    "env",
    [
        {"OTEL_TRACES_EXPORTER": "zipkin"},
        {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "sometimes"},
        {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER_ARG": "half"},
        {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
    ],
)
def test_bad_configuration_says_what_is_wrong(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="OTEL_"):
        telemetry.build_tracer_provider(env)


def test_tracing_off_costs_one_call() -> None:
    """No provider: the span helpers hand back a stand-in, no SDK span is created."""
    assert not telemetry.enabled()
    with telemetry.send_span("s", "j") as span:
        assert span.span is None and len(span.traceparent) == 55
    with telemetry.process_span("s", "1-0", "ner", "00-" + "a" * 32 + "-" + "b" * 16 + "-01") as span:
        assert span.span is None and span.traceparent.startswith("00-" + "a" * 32)


# -- metrics ---------------------------------------------------------------------


@pytest.fixture
def metrics() -> Iterator[InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    telemetry.use_meter_provider(provider)
    try:
        yield reader
    finally:
        telemetry.use_meter_provider(None)
        provider.shutdown()


def _points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                out.setdefault(m.name, []).extend(m.data.data_points)
    return out


def _sum(points: list[Any], **attrs: str) -> float:
    return sum(
        p.value for p in points if all(p.attributes.get(f"docgraph.{k}") == v for k, v in attrs.items())
    )


async def test_job_and_stage_metrics(settings: Settings, client, metrics: InMemoryMetricReader) -> None:
    store = JobStore(client, settings)
    ok, _ = await store.submit(DOC, metadata={"fail": {"ner": 1}})
    bad, _ = await store.submit(DOC, metadata={"permanent": {"extract": "encrypted"}})
    again, created = await store.submit(DOC, job_id=ok)
    assert again == ok and not created
    async with running_worker(settings, client):
        await wait_for_states(store, [ok, bad], {"completed", "failed"})
    points = _points(metrics)
    assert _sum(points["docgraph.jobs.submitted"]) == 2  # the repeat created nothing
    assert _sum(points["docgraph.jobs.completed"]) == 1
    assert _sum(points["docgraph.jobs.failed"], stage="extract") == 1
    assert _sum(points["docgraph.jobs.dead_lettered"], stage="extract") == 1
    assert _sum(points["docgraph.stage.retries"], stage="ner") == 1
    assert _sum(points["docgraph.stage.inflight"]) == 0
    durations = {
        (p.attributes["docgraph.stage"], p.attributes["docgraph.outcome"]): p.count
        for p in points["docgraph.stage.duration"]
    }
    assert durations[("ner", "retry")] == 1
    assert durations[("ner", "completed")] == 1
    assert durations[("extract", "failed")] == 1
    assert durations[("ingest", "completed")] == 1


# -- JSON logs -------------------------------------------------------------------


async def _retry_log_line(settings: Settings, client) -> tuple[dict, Any]:
    """The JSON log line of a ner retry, and the job."""
    out = io.StringIO()
    handler = telemetry.json_log_handler(out)
    logger = logging.getLogger("docgraph.runner")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        store = JobStore(client, settings)
        job_id, _ = await store.submit(DOC, metadata={"fail": {"ner": 1}})
        async with running_worker(settings, client):
            await wait_for_states(store, [job_id], {"completed"})
        job = await store.get(job_id)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    retry = [r for r in lines if r.get("job_id") == job_id and "retry in" in r["message"]]
    assert len(retry) == 1, lines
    (rec,) = retry
    assert job is not None and rec["trace_id"] == job.trace_id
    assert rec["stage"] == "ner" and rec["level"] == "INFO" and rec["logger"] == "docgraph.runner"
    assert rec["time"].endswith("Z")
    return rec, job


async def test_json_logs_carry_trace_and_job(settings: Settings, client) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.use_tracer_provider(provider)
    try:
        rec, _ = await _retry_log_line(settings, client)
    finally:
        telemetry.use_tracer_provider(None)
        provider.shutdown()
    failed = next(s for s in exporter.get_finished_spans() if s.attributes.get("docgraph.outcome") == "retry")
    assert rec["span_id"] == f"{failed.context.span_id:016x}"


async def test_json_logs_carry_the_trace_id_with_tracing_off(settings: Settings, client) -> None:
    """No span is recorded, but the line still names the job's trace (the span id is
    the propagated context's: with tracing off every run carries the job's own)."""
    assert not telemetry.enabled()
    rec, job = await _retry_log_line(settings, client)
    assert job.traceparent and rec["span_id"] == job.traceparent[36:52]
