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
from docgraph.core.runtime.keys import LANES, Keys
from docgraph.core.settings import Settings
from docgraph.core.topology import Topology


def redis_broker(settings: Settings) -> RedisBroker:
    return RedisBroker(settings.redis_url, **connection_options())


def asyncapi(settings: Settings) -> Any:
    """The AsyncAPI 3 document of every stage stream of partition 0."""
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
    return AsyncAPI(broker, title="docgraph events", version="1").to_specification()
