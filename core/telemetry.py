"""OpenTelemetry for docgraph: one trace per job, stage metrics, JSON logs.

Turned on by the standard ``OTEL_*`` variables and nothing else
(see docs/telemetry.md)::

    OTEL_SERVICE_NAME=docgraph-ner
    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318     # OTLP/HTTP (protobuf)
    OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.1

With nothing configured no SDK provider is installed, the span helpers below
return a stand-in that only carries the W3C ``traceparent`` (a random one for a
new job, so every job still has a trace id), and the runtime's cost is one
function call per job.

Spans (current OTel messaging semantic conventions):

* ``send <stream>`` (PRODUCER): :meth:`JobStore.submit`; the root of the job's
  trace unless a span is active or a ``traceparent`` is passed in.
* ``process <stream>`` (CONSUMER): one per stage run, child of the event's
  ``traceparent`` field.  What the run emits (successor events, the delayed
  retry, the dead letter) carries *this* span's context, so retries, reclaims
  and dead-letter replays stay in the job's trace.

Redis polling creates no spans (docgraph does not instrument redis-py).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import os
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from docgraph.core.envelope import new_traceparent
from docgraph.core.errors import ConfigError

log = logging.getLogger("docgraph.telemetry")

INSTRUMENTATION = "docgraph"
MESSAGING_SYSTEM = "redis"
_PROPAGATOR = TraceContextTextMapPropagator()

# The provider docgraph uses: set by configure() (from OTEL_* variables) or by
# use_tracer_provider() (tests, embedding applications).  None: whatever the
# global OpenTelemetry API provider is (a no-op unless someone installed one).
_tracer_provider: Any = None
_meter_provider: Any = None
_tracer: Any = None
_instruments: Instruments | None = None
_prometheus_server: Any = None
_configured = False
# True when the provider's sampler drops every child of an unsampled remote
# parent (the parent-based samplers): such spans then skip the SDK entirely.
_drops_unsampled_children = False

# Job and stage of the code running now, for log records (see JsonFormatter).
current_job: contextvars.ContextVar[str | None] = contextvars.ContextVar("docgraph_job", default=None)
current_stage: contextvars.ContextVar[str | None] = contextvars.ContextVar("docgraph_stage", default=None)
# The run's traceparent when no span is recorded (tracing off, or sampled out), so
# its log lines still carry the job's trace id.
current_traceparent: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "docgraph_traceparent", default=None
)


# -- set-up -----------------------------------------------------------------------


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _exporters(env: Mapping[str, str], signal: str) -> list[str]:
    """Exporter names for ``signal`` (traces/metrics); [] means off.

    Unlike the SDK's auto-configuration, an unset ``OTEL_<SIGNAL>_EXPORTER``
    means "otlp" only when an OTLP endpoint is configured: with nothing set,
    docgraph exports nothing and installs nothing."""
    if _truthy(env.get("OTEL_SDK_DISABLED")):
        return []
    raw = env.get(f"OTEL_{signal.upper()}_EXPORTER")
    if raw is None:
        endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get(
            f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT"
        )
        return ["otlp"] if endpoint else []
    names = [n.strip().lower() for n in raw.split(",") if n.strip()]
    return [] if "none" in names else names


def _protocol(env: Mapping[str, str], signal: str) -> str:
    return (
        env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()


def _endpoint(env: Mapping[str, str], signal: str, protocol: str) -> str | None:
    specific = env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT")
    if specific:
        return specific
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not base:
        return None
    if protocol == "grpc":
        return base
    return base.rstrip("/") + f"/v1/{signal}"


def _resource(env: Mapping[str, str]) -> Any:
    from opentelemetry.sdk.resources import Resource

    attributes: dict[str, Any] = {}
    if env.get("OTEL_RESOURCE_ATTRIBUTES"):
        for item in env["OTEL_RESOURCE_ATTRIBUTES"].split(","):
            key, sep, value = item.partition("=")
            if sep and key.strip():
                attributes[key.strip()] = value.strip()
    if env.get("OTEL_SERVICE_NAME"):
        attributes["service.name"] = env["OTEL_SERVICE_NAME"]
    attributes.setdefault("service.name", "docgraph")
    return Resource.create(attributes)


def _sampler(env: Mapping[str, str]) -> Any:
    from opentelemetry.sdk.trace import sampling

    name = (env.get("OTEL_TRACES_SAMPLER") or "parentbased_always_on").strip().lower()
    arg = env.get("OTEL_TRACES_SAMPLER_ARG")
    try:
        ratio = float(arg) if arg else 1.0
    except ValueError:
        raise ConfigError(f"OTEL_TRACES_SAMPLER_ARG={arg!r} is not a number (e.g. 0.1)") from None
    choices = {
        "always_on": lambda: sampling.ALWAYS_ON,
        "always_off": lambda: sampling.ALWAYS_OFF,
        "traceidratio": lambda: sampling.TraceIdRatioBased(ratio),
        "parentbased_always_on": lambda: sampling.ParentBased(sampling.ALWAYS_ON),
        "parentbased_always_off": lambda: sampling.ParentBased(sampling.ALWAYS_OFF),
        "parentbased_traceidratio": lambda: sampling.ParentBased(sampling.TraceIdRatioBased(ratio)),
    }
    if name not in choices:
        raise ConfigError(f"OTEL_TRACES_SAMPLER={name!r} is not supported; use one of {', '.join(choices)}")
    return choices[name]()


def _span_exporter(name: str, env: Mapping[str, str]) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name != "otlp":
        raise ConfigError(f"OTEL_TRACES_EXPORTER={name!r} is not supported; use otlp, console or none")
    protocol = _protocol(env, "traces")
    endpoint = _endpoint(env, "traces", protocol)
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found]
                OTLPSpanExporter as GrpcSpanExporter,
            )
        except ImportError:
            raise ConfigError(
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs opentelemetry-exporter-otlp-proto-grpc "
                "(pip install it), or use http/protobuf (port 4318)"
            ) from None
        return GrpcSpanExporter(endpoint=endpoint)
    if protocol != "http/protobuf":
        raise ConfigError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported; use http/protobuf or grpc"
        )
    from docgraph.core.otlp import OTLPSpanExporter  # the SDK's, with a 3x cheaper encoder

    return OTLPSpanExporter(endpoint=endpoint)


def build_tracer_provider(env: Mapping[str, str] | None = None) -> Any:
    """An SDK TracerProvider (BatchSpanProcessor per exporter) from ``OTEL_*``
    variables, or None when tracing is not configured."""
    env = os.environ if env is None else env
    names = _exporters(env, "traces")
    if not names:
        return None
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(sampler=_sampler(env), resource=_resource(env))
    for name in names:
        provider.add_span_processor(BatchSpanProcessor(_span_exporter(name, env)))
    return provider


def build_meter_provider(env: Mapping[str, str] | None = None) -> Any:
    """An SDK MeterProvider from ``OTEL_METRICS_EXPORTER`` / the OTLP endpoint, or None."""
    env = os.environ if env is None else env
    names = _exporters(env, "metrics")
    if not names:
        return None
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader

    readers = []
    for name in names:
        if name == "console":
            readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter()))
        elif name == "otlp":
            protocol = _protocol(env, "metrics")
            if protocol != "http/protobuf":
                raise ConfigError("docgraph exports metrics over OTLP http/protobuf only")
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

            readers.append(
                PeriodicExportingMetricReader(
                    OTLPMetricExporter(endpoint=_endpoint(env, "metrics", protocol))
                )
            )
        elif name == "prometheus":
            readers.append(_prometheus_reader(env))
        else:
            raise ConfigError(
                f"OTEL_METRICS_EXPORTER={name!r} is not supported; use otlp, prometheus, console or none"
            )
    return MeterProvider(metric_readers=readers, resource=_resource(env))


def _prometheus_reader(env: Mapping[str, str]) -> Any:
    """Serve ``/metrics`` for Prometheus to scrape, on OTEL_EXPORTER_PROMETHEUS_HOST
    (default localhost) : OTEL_EXPORTER_PROMETHEUS_PORT (default 9464)."""
    global _prometheus_server
    try:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import CollectorRegistry, start_http_server
    except ImportError:
        raise ConfigError(
            "OTEL_METRICS_EXPORTER=prometheus needs opentelemetry-exporter-prometheus (pip install it)"
        ) from None
    host = env.get("OTEL_EXPORTER_PROMETHEUS_HOST") or "localhost"
    port_s = env.get("OTEL_EXPORTER_PROMETHEUS_PORT") or "9464"
    try:
        port = int(port_s)
    except ValueError:
        raise ConfigError(f"OTEL_EXPORTER_PROMETHEUS_PORT={port_s!r} is not a port number") from None
    registry = CollectorRegistry()
    reader = PrometheusMetricReader(registry=registry)
    try:
        server, _ = start_http_server(port, host, registry=registry)
    except OSError as exc:
        raise ConfigError(
            f"cannot serve Prometheus metrics on {host}:{port} ({exc}); "
            "set OTEL_EXPORTER_PROMETHEUS_HOST / OTEL_EXPORTER_PROMETHEUS_PORT"
        ) from None
    _prometheus_server = server
    return reader


def configure(env: Mapping[str, str] | None = None) -> bool:
    """Install tracing (and metrics) from ``OTEL_*`` variables, once per process.

    Returns True when traces are exported.  Installs the providers as the
    global OpenTelemetry ones too, so libraries' own instrumentation joins the
    same traces.  A no-op (nothing imported from the SDK) when unconfigured."""
    global _configured
    if _configured:
        return _tracer_provider is not None
    _configured = True
    tracer_provider = build_tracer_provider(env)
    meter_provider = build_meter_provider(env)
    if tracer_provider is not None:
        use_tracer_provider(tracer_provider)
        trace.set_tracer_provider(tracer_provider)
    if meter_provider is not None:
        from opentelemetry import metrics

        use_meter_provider(meter_provider)
        metrics.set_meter_provider(meter_provider)
    return tracer_provider is not None


def use_tracer_provider(provider: Any) -> None:
    """Use ``provider`` for docgraph's spans (None: back to the global API provider)."""
    global _tracer_provider, _tracer, _drops_unsampled_children
    _tracer_provider = provider
    _tracer = None
    _drops_unsampled_children = _sampler_drops_unsampled_children(getattr(provider, "sampler", None))


def _sampler_drops_unsampled_children(sampler: Any) -> bool:
    """Ask the sampler (public API, no private fields) what it does with a child
    of an unsampled remote parent; trace id 1 is one any ratio sampler keeps."""
    if sampler is None:
        return False
    from opentelemetry.sdk.trace.sampling import Decision

    parent = trace.set_span_in_context(
        NonRecordingSpan(SpanContext(1, 1, is_remote=True, trace_flags=TraceFlags(0)))
    )
    return bool(sampler.should_sample(parent, 1, "probe").decision == Decision.DROP)


def use_meter_provider(provider: Any) -> None:
    global _meter_provider, _instruments
    _meter_provider = provider
    _instruments = None


def enabled() -> bool:
    """True when spans are recorded: a provider was configured here, or an
    application installed an SDK provider globally."""
    if _tracer_provider is not None:
        return True
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def tracer() -> trace.Tracer:
    global _tracer
    if _tracer is None or _tracer_provider is None:
        provider = _tracer_provider or trace.get_tracer_provider()
        t = provider.get_tracer(INSTRUMENTATION)
        if _tracer_provider is None:
            return t  # the global one may still change; do not cache it
        _tracer = t
    return _tracer


def flush(timeout_s: float = 5.0) -> None:
    """Export what is buffered (blocking; call from a thread in async code)."""
    for provider in (_tracer_provider, _meter_provider):
        if provider is not None and hasattr(provider, "force_flush"):
            try:
                provider.force_flush(int(timeout_s * 1000))
            except Exception:  # exporting must never break shutdown
                log.warning("telemetry flush failed", exc_info=True)


async def aflush(timeout_s: float = 5.0) -> None:
    if _tracer_provider is not None or _meter_provider is not None:
        await asyncio.to_thread(flush, timeout_s)


def shutdown() -> None:
    """Flush and stop the providers configure() installed (worker exit)."""
    global _configured, _prometheus_server
    for provider in (_tracer_provider, _meter_provider):
        if provider is not None and hasattr(provider, "shutdown"):
            try:
                provider.shutdown()
            except Exception:
                log.warning("telemetry shutdown failed", exc_info=True)
    use_tracer_provider(None)
    use_meter_provider(None)
    _configured = False
    if _prometheus_server is not None:
        _prometheus_server.shutdown()
        _prometheus_server = None


# -- metrics ------------------------------------------------------------------------


class Instruments:
    """docgraph's metric instruments on one meter."""

    def __init__(self, meter: Any) -> None:
        self.submitted = meter.create_counter(
            "docgraph.jobs.submitted", unit="{job}", description="jobs created by submit"
        )
        self.completed = meter.create_counter(
            "docgraph.jobs.completed", unit="{job}", description="jobs whose every stage finished"
        )
        self.failed = meter.create_counter(
            "docgraph.jobs.failed", unit="{job}", description="jobs stopped by a permanent error"
        )
        self.dead_lettered = meter.create_counter(
            "docgraph.jobs.dead_lettered",
            unit="{event}",
            description="events written to a dead-letter stream (permanent errors and exhausted retries)",
        )
        self.retries = meter.create_counter(
            "docgraph.stage.retries",
            unit="{retry}",
            description="stage runs that failed and were scheduled again",
        )
        self.duration = meter.create_histogram(
            "docgraph.stage.duration", unit="s", description="time one stage run took, hand-off included"
        )
        self.inflight = meter.create_up_down_counter(
            "docgraph.stage.inflight", unit="{job}", description="stage runs in progress"
        )


def instruments() -> Instruments | None:
    """The instruments, or None when no meter provider is configured (no cost)."""
    global _instruments
    if _meter_provider is None:
        return None
    if _instruments is None:
        _instruments = Instruments(_meter_provider.get_meter(INSTRUMENTATION))
    return _instruments


# -- spans --------------------------------------------------------------------------


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
    if not _drops_unsampled_children or len(traceparent) != 55 or not traceparent.startswith("00-"):
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


@contextmanager
def send_span(
    stream: str, job_id: str, traceparent: str | None = None, *, priority: str | None = None
) -> Iterator[JobSpan]:
    """PRODUCER span ``send <stream>`` around submitting a job.

    Parent: ``traceparent`` if given, else the active span, else none (root)."""
    if not enabled():
        yield JobSpan(None, traceparent or new_traceparent())
        return
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


# -- logs -----------------------------------------------------------------------------


class TraceContextFilter(logging.Filter):
    """Adds trace_id, span_id, job_id and stage of the running code to records."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = trace.get_current_span().get_span_context()
        tp = None if ctx.is_valid else current_traceparent.get()
        if tp is not None and len(tp) == 55:  # no span recorded: the run's own traceparent
            record.trace_id, record.span_id = tp[3:35], tp[36:52]
        else:
            record.trace_id = f"{ctx.trace_id:032x}" if ctx.is_valid else None
            record.span_id = f"{ctx.span_id:016x}" if ctx.is_valid else None
        record.job_id = current_job.get()
        record.stage = current_stage.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, trace/job context."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("trace_id", "span_id", "job_id", "stage"):
            value = getattr(record, key, None)
            if value:
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def json_log_handler(stream: Any = None) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(TraceContextFilter())
    return handler
