"""Tracer and meter providers from the standard ``OTEL_*`` variables, once per process.

With nothing configured no SDK provider is installed and nothing is imported
from the SDK.  ``state`` holds what :func:`configure` (or a test, through
:func:`use_tracer_provider`) installed; spans and metrics read it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from docgraph.core.errors import ConfigError

log = logging.getLogger("docgraph.telemetry")

INSTRUMENTATION = "docgraph"


@dataclass
class ProviderState:
    """The providers docgraph uses.  None: whatever the global OpenTelemetry API
    provider is (a no-op unless someone installed one)."""

    tracer_provider: Any = None
    meter_provider: Any = None
    tracer: Any = None
    instruments: Any = None
    prometheus_server: Any = None
    configured: bool = False
    # True when the provider's sampler drops every child of an unsampled remote
    # parent (the parent-based samplers): such spans then skip the SDK entirely.
    drops_unsampled_children: bool = False


state = ProviderState()


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
    from docgraph.core.telemetry.otlp import OTLPSpanExporter  # a 3x cheaper encoder than the SDK's

    return OTLPSpanExporter(endpoint=endpoint, env=env)


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
    state.prometheus_server = server
    return reader


def configure(env: Mapping[str, str] | None = None) -> bool:
    """Install tracing (and metrics) from ``OTEL_*`` variables, once per process.

    Returns True when traces are exported.  Installs the providers as the
    global OpenTelemetry ones too, so libraries' own instrumentation joins the
    same traces.  A no-op (nothing imported from the SDK) when unconfigured."""
    if state.configured:
        return state.tracer_provider is not None
    state.configured = True
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
    state.tracer_provider = provider
    state.tracer = None
    state.drops_unsampled_children = _sampler_drops_unsampled_children(getattr(provider, "sampler", None))


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
    state.meter_provider = provider
    state.instruments = None


def enabled() -> bool:
    """True when spans are recorded: a provider was configured here, or an
    application installed an SDK provider globally."""
    if state.tracer_provider is not None:
        return True
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def tracer() -> trace.Tracer:
    if state.tracer is None or state.tracer_provider is None:
        provider = state.tracer_provider or trace.get_tracer_provider()
        t = provider.get_tracer(INSTRUMENTATION)
        if state.tracer_provider is None:
            return t  # the global one may still change; do not cache it
        state.tracer = t
    return state.tracer


def flush(timeout_s: float = 5.0) -> None:
    """Export what is buffered (blocking; call from a thread in async code)."""
    for provider in (state.tracer_provider, state.meter_provider):
        if provider is not None and hasattr(provider, "force_flush"):
            try:
                provider.force_flush(int(timeout_s * 1000))
            except Exception:  # exporting must never break shutdown
                log.warning("telemetry flush failed", exc_info=True)


async def aflush(timeout_s: float = 5.0) -> None:
    if state.tracer_provider is not None or state.meter_provider is not None:
        await asyncio.to_thread(flush, timeout_s)


def shutdown() -> None:
    """Flush and stop the providers configure() installed (worker exit)."""
    for provider in (state.tracer_provider, state.meter_provider):
        if provider is not None and hasattr(provider, "shutdown"):
            try:
                provider.shutdown()
            except Exception:
                log.warning("telemetry shutdown failed", exc_info=True)
    use_tracer_provider(None)
    use_meter_provider(None)
    state.configured = False
    if state.prometheus_server is not None:
        state.prometheus_server.shutdown()
        state.prometheus_server = None
