"""The repo's otel-collector.yaml, run for real: workers export traces and
metrics over OTLP/HTTP to a collector started from that file, which forwards
traces to the test Jaeger (OTLP gRPC) and serves the metrics to Prometheus.

The collector is docgraph-otelcol, built by deploy/local/services.sh from the
OpenTelemetry Collector's Go modules (deploy/local/otelcol: exactly the
components the yaml names). The yaml runs unchanged; only its listen addresses
move to free 127.0.0.1 ports (``--set``).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from docgraph.core import telemetry
from docgraph.core.envelope import DocumentRef
from docgraph.core.runtime.jobs import JobStore
from docgraph.core.settings import Settings
from tests.redis_server import free_port
from tests.runtime.helpers import wait_for_states
from tests.runtime.procs import WorkerProcs
from tests.telemetry.jaegerapi import HOW_TO, Trace, fetch_trace

pytestmark = pytest.mark.service

ROOT = Path(__file__).resolve().parents[2]
DOC = DocumentRef(uri="file:///dev/null")


def _collector_binary() -> str:
    binary = os.environ.get("DOCGRAPH_TEST_OTELCOL_BIN", "")
    if not binary or not os.access(binary, os.X_OK):
        pytest.skip(f"no collector binary (DOCGRAPH_TEST_OTELCOL_BIN={binary!r}): {HOW_TO}")
    return binary


def test_the_yaml_validates() -> None:
    """`otelcol validate` parses and type-checks every component's settings."""
    binary = _collector_binary()
    env = {**os.environ, "JAEGER_OTLP_ENDPOINT": "127.0.0.1:4317"}
    config = ROOT / "otel-collector.yaml"
    ok = subprocess.run([binary, "validate", f"--config={config}"], env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    broken = config.read_text().replace("timeout: 1s", "timeout: soon")
    assert broken != config.read_text()
    bad = subprocess.run(
        [binary, "validate", "--config=yaml:" + broken], env=env, capture_output=True, text=True
    )
    assert bad.returncode != 0 and "timeout" in bad.stderr


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return str(resp.read().decode())
    except (urllib.error.URLError, OSError):
        return None


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[dict[str, str]]:
    names = ("DOCGRAPH_TEST_OTLP_ENDPOINT_GRPC", "DOCGRAPH_TEST_JAEGER_QUERY")
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        pytest.skip(f"{', '.join(missing)} not set: {HOW_TO}")
    binary = _collector_binary()
    config = ROOT / "otel-collector.yaml"
    http, grpc, health, prom = free_port(), free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "JAEGER_OTLP_ENDPOINT": os.environ["DOCGRAPH_TEST_OTLP_ENDPOINT_GRPC"],
        "PROMETHEUS_LISTEN": f"127.0.0.1:{prom}",
    }
    log = open(tmp_path / "collector.log", "wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config={config}",
            f"--set=receivers.otlp.protocols.http.endpoint=127.0.0.1:{http}",
            f"--set=receivers.otlp.protocols.grpc.endpoint=127.0.0.1:{grpc}",
            f"--set=extensions.health_check.endpoint=127.0.0.1:{health}",
            "--set=service.telemetry.metrics.level=none",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    try:
        deadline = time.monotonic() + 30
        while _get(f"http://127.0.0.1:{health}/") is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("collector did not start:\n" + (tmp_path / "collector.log").read_text()[-3000:])
            time.sleep(0.2)
        yield {
            "otlp": f"http://127.0.0.1:{http}",
            "metrics": f"http://127.0.0.1:{prom}/metrics",
            "query": os.environ["DOCGRAPH_TEST_JAEGER_QUERY"],
            "log": str(tmp_path / "collector.log"),
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _metric(text: str, name: str, service: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and f'service_name="{service}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_collector_forwards_traces_and_serves_metrics(settings: Settings, client, tmp_path, collector):
    service = f"docgraph-test-{uuid.uuid4().hex[:10]}"
    provider = telemetry.build_tracer_provider(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": collector["otlp"], "OTEL_SERVICE_NAME": f"{service}-client"}
    )
    telemetry.use_tracer_provider(provider)
    procs = WorkerProcs(
        settings,
        tmp_path,
        OTEL_EXPORTER_OTLP_ENDPOINT=collector["otlp"],
        OTEL_SERVICE_NAME=service,
        OTEL_METRIC_EXPORT_INTERVAL="500",
    )
    store = JobStore(client, settings)
    try:
        job_id, _ = await store.submit(DOC, metadata={"fail": {"ner": 1}})
        provider.force_flush()
        procs.start(1)
        await wait_for_states(store, [job_id], {"completed"}, timeout=60)
    finally:
        codes = procs.stop()
        telemetry.use_tracer_provider(None)
        provider.shutdown()
    assert codes == [0], procs.logs()

    job = await store.get(job_id)
    assert job is not None and job.trace_id
    tr = Trace(await fetch_trace(collector["query"], job.trace_id, want_spans=6), job_id, service)
    assert len(tr.spans) == 6 and len(tr.stage_spans("ner")) == 2

    deadline = time.monotonic() + 20
    while True:
        text = await asyncio.to_thread(_get, collector["metrics"]) or ""
        completed = _metric(text, "docgraph_jobs_completed_total", service)
        retries = _metric(text, "docgraph_stage_retries_total", service)
        durations = _metric(text, "docgraph_stage_duration_seconds_count", service)
        if completed == 1 and retries == 1 and durations == 5:
            break
        if time.monotonic() > deadline:
            found = [ln for ln in text.splitlines() if service in ln]
            raise AssertionError(f"metrics not in Prometheus output: {found[:20]}")
        await asyncio.sleep(0.3)
    assert re.search(r"docgraph_stage_duration_seconds_bucket\{[^}]*docgraph_stage=\"ner\"", text)
