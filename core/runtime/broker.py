"""FastStream's RedisBroker: the published event contract.

The event contract is published as AsyncAPI from FastStream's declarations of
every stage stream (``docgraph asyncapi``).  The runner reads the streams with
redis-py itself (see docs/runtime.md for why FastStream's subscriber loop does
not fit), so a worker process never imports FastStream: it costs ~15 MiB of RSS.
"""

from __future__ import annotations

import ssl
from typing import Any

from faststream.redis import RedisBroker, StreamSub
from faststream.specification import AsyncAPI

from docgraph.core.envelope import Envelope
from docgraph.core.runtime.connection import connection_options
from docgraph.core.runtime.events import LifecycleEvent
from docgraph.core.runtime.keys import LANES, Keys
from docgraph.core.settings import RedisTlsSettings, Settings
from docgraph.core.topology import Topology


def redis_broker(settings: Settings) -> RedisBroker:
    """FastStream's broker for ``DOCGRAPH_REDIS_URL`` in any mode, with the same TLS
    (``DOCGRAPH_REDIS_TLS__*``, as an ``SSLContext``: FastStream's ``security``)."""
    from faststream.redis import RedisClusterBroker, RedisSentinelBroker
    from faststream.security import BaseSecurity

    target = settings.redis_target
    security = BaseSecurity(ssl_context=ssl_context(settings.redis_tls)) if target.tls else None
    options: dict[str, Any] = {**connection_options(), "security": security}
    if target.mode == "single":
        return RedisBroker(settings.redis_url, **options)
    auth = f"{target.username or ''}:{target.password}@" if target.password else ""
    host, port = target.nodes[0]
    url = f"redis://{auth}{host}:{port}/{target.db}"
    if target.mode == "cluster":
        return RedisClusterBroker(url, **options)
    return RedisSentinelBroker(
        url, sentinels=list(target.nodes), sentinel_master_name=target.master, **options
    )


def ssl_context(tls: RedisTlsSettings) -> ssl.SSLContext:
    """An ``SSLContext`` for ``DOCGRAPH_REDIS_TLS__*`` (what redis-py builds from its ``ssl_*`` options)."""
    context = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
    if tls.cert_file:
        context.load_cert_chain(str(tls.cert_file), str(tls.key_file) if tls.key_file else None)
    context.check_hostname = tls.verify and tls.check_hostname
    if not tls.verify:
        context.verify_mode = ssl.CERT_NONE
    return context


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
