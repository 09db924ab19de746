"""Reading docgraph job traces back from Jaeger's HTTP query API."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from typing import Any

HOW_TO = 'start it with deploy/local/services.sh up jaeger && eval "$(deploy/local/services.sh env)"'


def _get_json(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


async def fetch_trace(query: str, trace_id: str, want_spans: int, timeout: float = 20) -> dict[str, Any]:
    """The trace as Jaeger's HTTP API returns it, once it has ``want_spans`` spans."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        body = await asyncio.to_thread(_get_json, f"{query}/api/traces/{trace_id}")
        traces = (body or {}).get("data") or []
        if traces:
            last = traces
            if len(traces) == 1 and len(traces[0]["spans"]) >= want_spans:
                return traces[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"trace {trace_id}: wanted {want_spans} spans, Jaeger has {last}")
        await asyncio.sleep(0.3)


def tags(span: dict[str, Any]) -> dict[str, Any]:
    return {t["key"]: t["value"] for t in span.get("tags", [])}


def parent_of(span: dict[str, Any]) -> str | None:
    refs = [r for r in span.get("references", []) if r["refType"] == "CHILD_OF"]
    assert len(refs) <= 1, span
    if refs:
        assert refs[0]["traceID"] == span["traceID"], "parent in another trace"
    return refs[0]["spanID"] if refs else None


class Trace:
    """A Jaeger trace, checked for the shape every docgraph job trace has."""

    def __init__(self, data: dict[str, Any], job_id: str, service: str):
        self.spans = data["spans"]
        self.by_id = {s["spanID"]: s for s in self.spans}
        self.services = {s["spanID"]: data["processes"][s["processID"]]["serviceName"] for s in self.spans}
        self.job_id = job_id
        roots = [s for s in self.spans if parent_of(s) is None]
        assert len(roots) == 1, f"{len(roots)} root spans"
        self.root = roots[0]
        rt = tags(self.root)
        assert rt["span.kind"] == "producer"
        assert self.root["operationName"].startswith("send ")
        assert self.root["operationName"].endswith(":stream:extract:normal")
        assert rt["messaging.system"] == "redis"
        assert rt["messaging.operation.type"] == "send"
        assert rt["messaging.destination.name"] == self.root["operationName"].removeprefix("send ")
        assert rt["docgraph.job.id"] == job_id
        assert self.services[self.root["spanID"]] == f"{service}-client"
        self.process = [s for s in self.spans if s is not self.root]
        for s in self.process:
            t = tags(s)
            assert t["span.kind"] == "consumer", t
            assert s["operationName"] == f"process {t['messaging.destination.name']}"
            assert t["messaging.system"] == "redis"
            assert t["messaging.operation.type"] == "process"
            assert t["messaging.consumer.group.name"] == t["docgraph.stage"]
            assert ":stream:" + t["docgraph.stage"] + ":" in t["messaging.destination.name"]
            assert t["messaging.message.id"]
            assert t["docgraph.job.id"] == job_id
            assert int(t["docgraph.attempt"]) >= 1
            assert parent_of(s) in self.by_id, "parent span missing from the trace"
            assert self.services[s["spanID"]] == service

    def stage_spans(self, stage: str) -> list[dict[str, Any]]:
        found = [s for s in self.process if tags(s)["docgraph.stage"] == stage]
        return sorted(found, key=lambda s: int(tags(s)["docgraph.attempt"]))

    def parent_stage(self, span: dict[str, Any]) -> str | None:
        parent = self.by_id[parent_of(span) or ""]
        return None if parent is self.root else tags(parent)["docgraph.stage"]

    def errors(self) -> list[dict[str, Any]]:
        return [s for s in self.spans if tags(s).get("otel.status_code") == "ERROR"]
