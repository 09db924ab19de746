"""core/otlp.py writes exactly the bytes the SDK's OTLP encoder writes."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)
from opentelemetry.trace.span import TraceState

from docgraph.core.telemetry.otlp import encode_spans

VALUES = {
    "s": "plain",
    "empty": "",
    "unicode": 'Ωμέγα — 日本語 "quoted" \\ back',
    "t": True,
    "f": False,
    "zero": 0,
    "neg": -42,
    "big": 2**62,
    "float": 3.25,
    "fzero": 0.0,
    "strs": ("a", "", "c"),
    "ints": [1, -2, 3],
    "bools": [True, False],
    "floats": (0.5, -1.0),
}


def _spans() -> list:
    memory = InMemorySpanExporter()
    resources = [
        Resource.create({"service.name": "docgraph-test", "k8s.pod.name": "w-1"}),
        Resource.create({"service.name": "other"}, schema_url="https://opentelemetry.io/schemas/1.21.0"),
    ]
    for resource in resources:
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(SimpleSpanProcessor(memory))
        for scope, version in (("docgraph", None), ("docgraph.stages", "1.2.3")):
            tracer = provider.get_tracer(scope, version)
            with tracer.start_as_current_span("root", kind=SpanKind.PRODUCER, attributes=VALUES) as root:
                root.add_event("checkpoint", {"n": 1, "what": "x"})
                root.add_event("")
                with tracer.start_as_current_span("child", kind=SpanKind.CONSUMER) as child:
                    child.set_status(Status(StatusCode.ERROR, "boom"))
                    child.record_exception(ValueError("bad value"))
            remote = SpanContext(
                0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(1), trace_state=TraceState([("v", "1")])
            )
            linked = SpanContext(0x123, 0x456, is_remote=False, trace_flags=TraceFlags(1))
            span = tracer.start_span(
                "process s",
                context=set_span_in_context(NonRecordingSpan(remote)),
                kind=SpanKind.CONSUMER,
                links=[Link(linked, {"docgraph.attempt": 2}), Link(remote)],
            )
            span.set_status(Status(StatusCode.OK))
            span.end()
            tracer.start_span("internal").end()
    return list(memory.get_finished_spans())


def test_bytes_equal_the_sdk_encoder():
    spans = _spans()
    assert len(spans) == 16
    assert encode_spans(spans) == sdk_encode_spans(spans).SerializeToString()
    for one in spans:  # and span by span (every field combination on its own)
        assert encode_spans([one]) == sdk_encode_spans([one]).SerializeToString()
    assert encode_spans([]) == sdk_encode_spans([]).SerializeToString() == b""
