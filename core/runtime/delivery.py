"""One stream entry handed to a consumer, and the trace context it carries."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

from docgraph.core import telemetry
from docgraph.core.runtime.keys import Lane, PartitionKeys


@dataclass
class Delivery:
    """One stream entry handed to this consumer."""

    stream: str
    entry_id: str
    fields: dict[bytes, bytes]
    part: PartitionKeys
    lane: Lane
    deliveries: int = 1
    received: float = 0.0
    span: telemetry.JobSpan | None = None  # while its stage runs
    suspect: bool = False  # reclaimed after dying more than once: may be what kills workers
    job_key: str = ""  # while its stage runs:
    work: asyncio.Future[object] | None = None  # the stage run
    work_started: float = 0.0
    cancel: threading.Event | None = None  # set when the job is cancelled meanwhile
    permit: str | None = None  # its in-flight permit under DOCGRAPH_STAGES__<STAGE>__MAX_IN_FLIGHT

    @property
    def traceparent(self) -> str:
        value = self.fields.get(b"traceparent")
        return value.decode() if value else ""

    @property
    def links(self) -> list[str]:
        """Traceparents this run's span links to (a join's other branches)."""
        value = self.fields.get(b"links")
        return value.decode().split() if value else []

    @property
    def out_traceparent(self) -> str:
        """Trace context for what this run emits: its process span's when tracing is on."""
        return self.span.traceparent if self.span is not None else self.traceparent
