"""FastStream's RedisBroker: the published event contract.

The event contract is published as AsyncAPI from FastStream's declarations of
every stage stream (``docgraph asyncapi``).  The runner reads the streams with
redis-py itself (see docs/runtime.md for why FastStream's subscriber loop does
not fit), so a worker process never imports FastStream: it costs ~15 MiB of RSS.
"""

from __future__ import annotations

from typing import Any

from faststream.redis import RedisBroker, StreamSub
from faststream.specification import AsyncAPI

from docgraph.core.envelope import Envelope
from docgraph.core.runtime.connection import connection_options
from docgraph.core.runtime.events import LifecycleEvent
from docgraph.core.runtime.keys import LANES, Keys
from docgraph.core.settings import Settings
from docgraph.core.topology import Topology


def redis_broker(settings: Settings) -> RedisBroker:
    return RedisBroker(settings.redis_url, **connection_options())


def asyncapi(settings: Settings) -> Any:
    """The AsyncAPI 3 document of every stage stream and the lifecycle events stream of partition 0."""
    broker = redis_broker(settings)
    part = Keys(settings.key_prefix, settings.partitions).part(0)
    topology = Topology(settings.topology)

    async def handler(body: Envelope) -> None:  # documents the payload; never started
        raise NotImplementedError

    for stage in topology.stages:
        preds = ", ".join(topology.predecessors[stage]) or "submit"
        for lane in LANES:
            broker.subscriber(
                stream=StreamSub(part.stream(stage, lane), group=stage, consumer="<worker>"),
                title=f"{stage}.{lane.value}",
                description=(
                    f"Events for stage '{stage}' ({lane.value} lane), published by {preds}. "
                    "Fields: payload (this JSON), traceparent (W3C, optional)."
                ),
            )(handler)
    broker.publisher(
        stream=part.events,
        title="events",
        description=(
            f"Lifecycle events of every job of the partition ({part.events}; one stream per partition, "
            "{prefix:pN}:events), appended by the same Lua step as the state change each reports. "
            "Plain stream fields (this schema), not one JSON blob: read them with XREAD or a consumer "
            "group of your own. Trimmed to about DOCGRAPH_EVENTS__MAX_LEN entries and "
            "DOCGRAPH_EVENTS__MAX_AGE seconds. See docs/events.md."
        ),
        schema=LifecycleEvent,
    )
    return AsyncAPI(broker, title="docgraph events", version="1").to_specification()
