"""What the running code is doing, for log records and spans: job, stage, trace context."""

from __future__ import annotations

import contextvars

current_job: contextvars.ContextVar[str | None] = contextvars.ContextVar("docgraph_job", default=None)
current_stage: contextvars.ContextVar[str | None] = contextvars.ContextVar("docgraph_stage", default=None)
# The run's traceparent when no span is recorded (tracing off, or sampled out), so
# its log lines still carry the job's trace id.
current_traceparent: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "docgraph_traceparent", default=None
)
