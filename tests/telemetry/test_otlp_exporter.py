"""docgraph's OTLP/HTTP span exporter against a local HTTP server: body, headers, retries."""

from __future__ import annotations

import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode_spans
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from docgraph.core.telemetry.otlp import OTLPSpanExporter, parse_headers


class Receiver:
    """An OTLP endpoint that answers from a script of status codes, then 200."""

    def __init__(self, answers: list[tuple[int, dict[str, str]]]) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status, headers = receiver.answers.pop(0) if receiver.answers else (200, {})
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def spans():
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("t").start_as_current_span("send", attributes={"a": 1}):
        pass
    return memory.get_finished_spans()


def test_posts_the_sdks_bytes_with_headers_and_gzip(spans) -> None:
    receiver = Receiver([])
    try:
        env = {
            "OTEL_EXPORTER_OTLP_HEADERS": "api-key=s%3Dcret,x-tenant=t1",
            "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
        }
        exporter = OTLPSpanExporter(receiver.url, env=env)
        assert exporter.export(spans) == SpanExportResult.SUCCESS
        [(headers, body)] = receiver.requests
        assert headers["content-type"] == "application/x-protobuf" and headers["content-encoding"] == "gzip"
        assert (headers["api-key"], headers["x-tenant"]) == ("s=cret", "t1")
        assert gzip.decompress(body) == sdk_encode_spans(spans).SerializeToString()
    finally:
        receiver.close()


def test_retries_transient_answers_and_gives_up_on_the_others(spans) -> None:
    receiver = Receiver([(503, {}), (429, {"Retry-After": "1"}), (200, {})])
    try:
        exporter = OTLPSpanExporter(receiver.url, env={"OTEL_EXPORTER_OTLP_TIMEOUT": "10"})
        assert exporter.export(spans) == SpanExportResult.SUCCESS
        assert len(receiver.requests) == 3
        receiver.answers = [(400, {})]
        assert exporter.export(spans) == SpanExportResult.FAILURE
        assert len(receiver.requests) == 4  # a 400 is not retried
        exporter.shutdown()
        assert exporter.export(spans) == SpanExportResult.FAILURE
    finally:
        receiver.close()


def test_an_unreachable_endpoint_fails_within_the_timeout(spans) -> None:
    exporter = OTLPSpanExporter("http://127.0.0.1:9/v1/traces", env={"OTEL_EXPORTER_OTLP_TIMEOUT": "1.5"})
    assert exporter.export(spans) == SpanExportResult.FAILURE


def test_header_parsing() -> None:
    assert parse_headers("a=1, b = x%20y ,bad,=v") == {"a": "1", "b": "x y"}
    assert parse_headers(None) == {}
