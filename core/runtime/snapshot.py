"""``docgraph monitor``: a live view of queues, jobs and failures.

One pipelined snapshot per refresh (XLEN and XPENDING per stage stream, ZCARD
per state, the newest running and failed jobs), so a monitor costs Redis one
round trip a second however many jobs there are.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from docgraph.core.runtime.jobs import JobStatus, JobStore
from docgraph.core.runtime.keys import JOB_STATES, LANES
from docgraph.core.runtime.notify import STAGE as NOTIFY


@dataclass
class StageLimits:
    """A stage's cluster-wide limits as its live workers publish them (core/runtime/limits.py)."""

    max_per_second: float | None = None
    max_in_flight: int | None = None
    in_flight: int = 0  # permits held now (unexpired)

    def __str__(self) -> str:
        """``20/s, 3/4 running``: what monitor and dashboard show."""
        parts = [f"{self.max_per_second:g}/s"] if self.max_per_second is not None else []
        if self.max_in_flight is not None:
            parts.append(f"{self.in_flight}/{self.max_in_flight} running")
        return ", ".join(parts)


@dataclass
class Snapshot:
    taken: float
    queued: dict[str, int] = field(default_factory=dict)  # stage -> entries waiting or in flight
    pending: dict[str, int] = field(default_factory=dict)  # stage -> delivered, not yet handed off
    dead_letters: dict[str, int] = field(default_factory=dict)
    states: dict[str, int] = field(default_factory=dict)
    delayed: int = 0
    paused: dict[str, int] = field(default_factory=dict)  # stage -> paused since (ms)
    webhooks_due: int = 0  # webhook deliveries waiting or being made (notify:due)
    webhook_dead_letters: int = 0
    limits: dict[str, StageLimits] = field(default_factory=dict)  # stages whose workers run limited
    active: list[JobStatus] = field(default_factory=list)
    failures: list[JobStatus] = field(default_factory=list)


async def snapshot(store: JobStore, active: int = 10, failures: int = 5) -> Snapshot:
    stages = store.topology.stages
    parts = store.keys.all()
    pipe = store.client.pipeline(transaction=False)
    for part in parts:
        for stage in stages:
            for lane in LANES:
                pipe.xlen(part.stream(stage, lane))
                pipe.xpending(part.stream(stage, lane), stage)
            pipe.xlen(part.dlq(stage))
        for state in JOB_STATES:
            pipe.zcard(part.state_index(state))
        pipe.zcard(part.delayed)
        pipe.zrevrange(part.state_index("running"), 0, max(active, 1) - 1)
        pipe.zrevrange(part.state_index("dead"), 0, max(failures, 1) - 1)
        pipe.zrevrange(part.state_index("failed"), 0, max(failures, 1) - 1)
        pipe.hgetall(part.paused)
        pipe.zcard(part.notify_due)
        pipe.xlen(part.dlq(NOTIFY))
    now_ms = int(time.time() * 1000)  # this host's clock: close enough for a view
    for stage in stages:
        _, in_flight, config = store.keys.limit(stage)
        pipe.hgetall(config)
        pipe.zcount(in_flight, now_ms, "+inf")
    values: Any = await pipe.execute(raise_on_error=False)
    snap = Snapshot(taken=time.time())
    snap.queued = dict.fromkeys(stages, 0)
    snap.pending = dict.fromkeys(stages, 0)
    snap.dead_letters = dict.fromkeys(stages, 0)
    snap.states = dict.fromkeys(JOB_STATES, 0)
    running: list[str] = []
    failed: list[str] = []
    it = iter(values)
    for _ in parts:
        for stage in stages:
            for _lane in LANES:
                length, pend = next(it), next(it)
                snap.queued[stage] += int(length) if isinstance(length, int) else 0
                snap.pending[stage] += int(pend["pending"]) if isinstance(pend, dict) else 0
            dl = next(it)
            snap.dead_letters[stage] += int(dl) if isinstance(dl, int) else 0
        for state in JOB_STATES:
            snap.states[state] += int(next(it))
        snap.delayed += int(next(it))
        running += [m.decode() for m in next(it)]
        failed += [m.decode() for m in next(it)] + [m.decode() for m in next(it)]
        for stage, since in next(it).items():
            snap.paused[stage.decode()] = int(since)
        snap.webhooks_due += int(next(it))
        snap.webhook_dead_letters += int(next(it))
    for stage in stages:
        config, held = next(it), next(it)
        if isinstance(config, dict) and config:
            per_second, in_flight = config.get(b"max_per_second"), config.get(b"max_in_flight")
            snap.limits[stage] = StageLimits(
                float(per_second) if per_second else None,
                int(in_flight) if in_flight else None,
                int(held) if isinstance(held, int) else 0,
            )
    snap.active = [j for j in await store.get_many(running[:active]) if j] if active else []
    snap.failures = [j for j in await store.get_many(failed) if j][:failures] if failures else []
    return snap


def prometheus_text(snap: Snapshot) -> str:
    """The snapshot as Prometheus gauges: what a queue exporter shows (BullMQ's
    and Celery's exporters have the same), read from Redis, so any replica of
    the API reports the whole pipeline."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import GaugeMetricFamily

    class _Collector:
        def collect(self) -> Any:
            jobs = GaugeMetricFamily("docgraph_jobs", "Jobs by state (retained records)", labels=["state"])
            for state, n in snap.states.items():
                jobs.add_metric([state], n)
            waiting = GaugeMetricFamily(
                "docgraph_queue_waiting", "Stage entries not yet delivered", labels=["stage"]
            )
            flight = GaugeMetricFamily(
                "docgraph_queue_in_flight", "Stage entries delivered, not yet handed off", labels=["stage"]
            )
            dead = GaugeMetricFamily("docgraph_dead_letters", "Dead letters per stage", labels=["stage"])
            for stage, queued in snap.queued.items():
                waiting.add_metric([stage], max(0, queued - snap.pending[stage]))
                flight.add_metric([stage], snap.pending[stage])
                dead.add_metric([stage], snap.dead_letters[stage])
            delayed = GaugeMetricFamily("docgraph_retries_scheduled", "Retries waiting for their due time")
            delayed.add_metric([], snap.delayed)
            paused = GaugeMetricFamily(
                "docgraph_stage_paused", "1 while a stage is paused (docgraph stage pause)", labels=["stage"]
            )
            for stage in snap.queued:
                paused.add_metric([stage], 1 if stage in snap.paused else 0)
            dead.add_metric(["notify"], snap.webhook_dead_letters)
            hooks = GaugeMetricFamily(
                "docgraph_webhooks_due", "Webhook deliveries waiting for their (next) try or being made"
            )
            hooks.add_metric([], snap.webhooks_due)
            rate = GaugeMetricFamily(
                "docgraph_stage_limit_per_second",
                "A stage's cluster-wide MAX_PER_SECOND (stages with a rate limit)",
                labels=["stage"],
            )
            cap = GaugeMetricFamily(
                "docgraph_stage_limit_in_flight",
                "A stage's cluster-wide MAX_IN_FLIGHT (stages with an in-flight limit)",
                labels=["stage"],
            )
            held = GaugeMetricFamily(
                "docgraph_stage_permits_in_flight",
                "In-flight permits a limited stage's workers hold now",
                labels=["stage"],
            )
            for stage, lim in snap.limits.items():
                if lim.max_per_second is not None:
                    rate.add_metric([stage], lim.max_per_second)
                if lim.max_in_flight is not None:
                    cap.add_metric([stage], lim.max_in_flight)
                    held.add_metric([stage], lim.in_flight)
            yield from (jobs, waiting, flight, dead, delayed, paused, hooks, rate, cap, held)

    registry = CollectorRegistry()
    registry.register(_Collector())  # type: ignore[arg-type]
    return generate_latest(registry).decode()
