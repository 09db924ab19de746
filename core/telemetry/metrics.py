"""docgraph's metric instruments (stage durations, retries, jobs by outcome)."""

from __future__ import annotations

from typing import Any

from docgraph.core.telemetry.providers import INSTRUMENTATION, state


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
    if state.meter_provider is None:
        return None
    if state.instruments is None:
        state.instruments = Instruments(state.meter_provider.get_meter(INSTRUMENTATION))
    return state.instruments
