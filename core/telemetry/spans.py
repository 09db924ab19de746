"""One trace per job: ``send`` spans at submit, one ``process`` span per stage run.

Spans follow the OTel messaging semantic conventions.  When tracing is off the
helpers return a stand-in that only carries the W3C ``traceparent`` (a random
one for a new job), so every job still has a trace id.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from docgraph.core.envelope import new_traceparent
from docgraph.core.telemetry.context import current_job, current_stage, current_traceparent
from docgraph.core.telemetry.metrics import instruments
from docgraph.core.telemetry.providers import enabled, state, tracer

MESSAGING_SYSTEM = "redis"
_PROPAGATOR = TraceContextTextMapPropagator()


def traceparent_of(span: Any) -> str | None:
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


def _span_context(traceparent: str) -> SpanContext | None:
    """The remote SpanContext a version-00 ``traceparent`` names (None otherwise)."""
    m = _TRACEPARENT.fullmatch(traceparent)
    if m is None:
        return None
    trace_id, span_id = int(m[1], 16), int(m[2], 16)
    if not trace_id or not span_id:
        return None
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(int(m[3], 16)))


def context_from(traceparent: str | None) -> Context | None:
    """The parent context a W3C ``traceparent`` names (None when absent/invalid).

    Version 00 is parsed here (a third of the propagator's cost); other
    versions go through the propagator, which knows their rules."""
    if not traceparent:
        return None
    if not traceparent.startswith("00-"):
        ctx = _PROPAGATOR.extract({"traceparent": traceparent})
        return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None
    parent = _span_context(traceparent)
    return trace.set_span_in_context(NonRecordingSpan(parent)) if parent is not None else None


def _sampled_out(traceparent: str) -> bool:
    """True when the sampler would drop a child of ``traceparent`` anyway."""
    if not state.drops_unsampled_children or len(traceparent) != 55 or not traceparent.startswith("00-"):
        return False
    return traceparent[54] in "02468ace"  # the flags' low bit, "sampled", is clear


def _error_type(exc: BaseException) -> str:
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


class JobSpan:
    """One send/process span, or a stand-in carrying only the trace context.

    ``traceparent`` is what to store and propagate: the span's own context
    when tracing is on, else the incoming one (or a fresh random one)."""

    __slots__ = ("_t0", "attrs", "span", "stage", "traceparent")

    def __init__(self, span: Any, traceparent: str, stage: str = "", attrs: dict[str, Any] | None = None):
        self.span = span
        self.traceparent = traceparent
        self.stage = stage
        self.attrs = attrs
        self._t0 = time.perf_counter()

    def __enter__(self) -> JobSpan:
        """A stand-in is its own (no-op) context: :func:`send_span` with tracing off, no generator."""
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def set(self, key: str, value: Any) -> None:
        if self.span is not None:
            self.span.set_attribute(key, value)

    def job(self, job_id: str, attempt: int | None = None) -> None:
        current_job.set(job_id)
        if self.span is not None:
            self.span.set_attribute("docgraph.job.id", job_id)
            if attempt is not None:
                self.span.set_attribute("docgraph.attempt", attempt)

    def outcome(self, outcome: str) -> None:
        """How the run ended: completed, retry, failed, dead, dropped, released."""
        if self.span is not None:
            self.span.set_attribute("docgraph.outcome", outcome)
        if self.attrs is not None:
            self.attrs["docgraph.outcome"] = outcome
        inst = instruments()
        if inst is not None and self.stage:
            stage = {"docgraph.stage": self.stage}
            if outcome == "retry":
                inst.retries.add(1, stage)
            elif outcome in ("failed", "dead"):
                inst.dead_lettered.add(1, stage)
                if outcome == "failed":
                    inst.failed.add(1, stage)

    def submitted(self, created: bool) -> None:
        """Submit returned: ``created`` False when the id/idempotency key named an existing job."""
        if self.span is not None:
            self.span.set_attribute("docgraph.job.created", created)
        inst = instruments()
        if inst is not None and created:
            inst.submitted.add(1)

    def job_completed(self) -> None:
        """This run finished the job's last stage."""
        inst = instruments()
        if inst is not None:
            inst.completed.add(1)

    def fail(self, exc: BaseException, outcome: str) -> None:
        """Mark the run failed: exception event, status ERROR, error.type."""
        if self.span is not None:
            self.span.record_exception(exc)
            self.span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:500]))
            self.span.set_attribute("error.type", _error_type(exc))
        self.outcome(outcome)


def send_span(
    stream: str, job_id: str, traceparent: str | None = None, *, priority: str | None = None
) -> AbstractContextManager[JobSpan]:
    """PRODUCER span ``send <stream>`` around submitting a job.

    Parent: ``traceparent`` if given, else the active span, else none (root).
    With tracing off, the stand-in itself (the submit hot path: no generator)."""
    if not enabled():
        return JobSpan(None, traceparent or new_traceparent())
    return _send_span(stream, job_id, traceparent, priority)


@contextmanager
def _send_span(stream: str, job_id: str, traceparent: str | None, priority: str | None) -> Iterator[JobSpan]:
    attrs = {
        "messaging.system": MESSAGING_SYSTEM,
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": stream,
        "docgraph.job.id": job_id,
    }
    if priority:
        attrs["docgraph.priority"] = priority
    span = tracer().start_span(
        f"send {stream}", context=context_from(traceparent), kind=SpanKind.PRODUCER, attributes=attrs
    )
    handle = JobSpan(span, traceparent_of(span) or traceparent or new_traceparent())
    try:
        with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
            yield handle
    except BaseException as exc:
        handle.fail(exc, "error")
        raise
    finally:
        span.end()


@contextmanager
def process_span(
    stream: str,
    entry_id: str,
    stage: str,
    traceparent: str,
    deliveries: int = 1,
    links: list[str] | None = None,
) -> Iterator[JobSpan]:
    """CONSUMER span ``process <stream>`` around one stage run of one entry;
    its parent is the event's ``traceparent``; ``links`` (traceparents, a
    join's other branches) become span links."""
    inst = instruments()
    attrs: dict[str, Any] | None = None
    if inst is not None:
        attrs = {"docgraph.stage": stage}
        inst.inflight.add(1, {"docgraph.stage": stage})
    stage_token = current_stage.set(stage)
    job_token = current_job.set(None)
    handle: JobSpan | None = None
    try:
        sampled_out = _sampled_out(traceparent)
        if sampled_out:  # skip the SDK; propagate a child span id, as its non-recording span would
            traceparent = f"{traceparent[:36]}{os.urandom(8).hex()}{traceparent[52:]}"
        if sampled_out or not enabled():
            handle = JobSpan(None, traceparent, stage, attrs)
            tp_token = current_traceparent.set(traceparent)
            try:
                yield handle
            except asyncio.CancelledError:
                handle.outcome("released")
                raise
            finally:
                current_traceparent.reset(tp_token)
            return
        span = tracer().start_span(
            f"process {stream}",
            context=context_from(traceparent),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": MESSAGING_SYSTEM,
                "messaging.operation.type": "process",
                "messaging.operation.name": "process",
                "messaging.destination.name": stream,
                "messaging.consumer.group.name": stage,
                "messaging.message.id": entry_id,
                "docgraph.stage": stage,
                "docgraph.deliveries": deliveries,
            },
            links=[Link(c) for c in map(_span_context, links) if c is not None] if links else None,
        )
        handle = JobSpan(span, traceparent_of(span) or traceparent, stage, attrs)
        try:
            with trace.use_span(
                span, end_on_exit=False, record_exception=False, set_status_on_exception=False
            ):
                yield handle
        except asyncio.CancelledError:
            handle.outcome("released")  # shutdown handed the entry back: not an error
            raise
        except BaseException as exc:
            handle.fail(exc, "error")
            raise
        finally:
            span.end()
    finally:
        current_stage.reset(stage_token)
        current_job.reset(job_token)
        if inst is not None and attrs is not None:
            inst.inflight.add(-1, {"docgraph.stage": stage})
            if handle is not None:
                inst.duration.record(time.perf_counter() - handle._t0, attrs)
