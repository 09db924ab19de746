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

from docgraph.core.telemetry.context import current_job, current_stage, current_traceparent
from docgraph.core.telemetry.logs import JsonFormatter, TraceContextFilter, json_log_handler
from docgraph.core.telemetry.metrics import Instruments, instruments
from docgraph.core.telemetry.providers import (
    aflush,
    build_meter_provider,
    build_tracer_provider,
    configure,
    enabled,
    flush,
    shutdown,
    tracer,
    use_meter_provider,
    use_tracer_provider,
)
from docgraph.core.telemetry.spans import JobSpan, context_from, process_span, send_span, traceparent_of

__all__ = [
    "Instruments",
    "JobSpan",
    "JsonFormatter",
    "TraceContextFilter",
    "aflush",
    "build_meter_provider",
    "build_tracer_provider",
    "configure",
    "context_from",
    "current_job",
    "current_stage",
    "current_traceparent",
    "enabled",
    "flush",
    "instruments",
    "json_log_handler",
    "process_span",
    "send_span",
    "shutdown",
    "traceparent_of",
    "tracer",
    "use_meter_provider",
    "use_tracer_provider",
]
