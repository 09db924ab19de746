"""JSON log lines carrying the trace id, span id, job id and stage of the running code."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from opentelemetry import trace

from docgraph.core.telemetry.context import current_job, current_stage, current_traceparent


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
