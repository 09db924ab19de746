"""A worker serving Prometheus metrics itself (OTEL_METRICS_EXPORTER=prometheus)."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request

from docgraph.core.envelope import DocumentRef
from docgraph.core.runtime.jobs import JobStore
from docgraph.core.settings import Settings
from tests.redis_server import free_port
from tests.runtime.helpers import wait_for_states
from tests.runtime.procs import WorkerProcs

DOC = DocumentRef(uri="file:///dev/null")


def _scrape(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return str(resp.read().decode())
    except (urllib.error.URLError, OSError):
        return ""


def _value(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
    return total


async def test_worker_serves_metrics(settings: Settings, client, tmp_path) -> None:
    port = free_port()
    procs = WorkerProcs(
        settings,
        tmp_path,
        OTEL_METRICS_EXPORTER="prometheus",
        OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
        OTEL_EXPORTER_PROMETHEUS_PORT=str(port),
        OTEL_SERVICE_NAME="docgraph-prom-test",
    )
    store = JobStore(client, settings)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        ok, _ = await store.submit(DOC, metadata={"fail": {"ner": 1}})
        bad, _ = await store.submit(DOC, metadata={"permanent": {"classify": "no"}})
        procs.start(1)
        await wait_for_states(store, [ok, bad], {"completed", "failed"}, timeout=60)
        deadline = time.monotonic() + 15
        while True:
            text = await asyncio.to_thread(_scrape, url)
            if _value(text, "docgraph_jobs_completed_total") == 1:
                break
            assert time.monotonic() < deadline, f"no metrics at {url}: {text[-2000:]}\n{procs.logs()}"
            await asyncio.sleep(0.2)
    finally:
        codes = procs.stop()
    assert codes == [0], procs.logs()
    assert _value(text, "docgraph_stage_retries_total", docgraph_stage="ner") == 1
    assert _value(text, "docgraph_jobs_failed_total", docgraph_stage="classify") == 1
    assert _value(text, "docgraph_jobs_dead_lettered_total", docgraph_stage="classify") == 1
    # ner ran twice for the retried job and once for the other (its branch is independent)
    assert _value(text, "docgraph_stage_duration_seconds_count", docgraph_stage="ner") == 3
    count = "docgraph_stage_duration_seconds_count"
    assert _value(text, count, docgraph_stage="ner", docgraph_outcome="retry") == 1
    assert _value(text, count, docgraph_stage="classify", docgraph_outcome="failed") == 1
    assert _value(text, "docgraph_stage_inflight", docgraph_stage="ner") == 0
    assert 'service_name="docgraph-prom-test"' in text  # target_info
