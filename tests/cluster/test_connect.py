"""``connect()`` on a real 3-master Redis Cluster (Debian's redis-server, created
with ``redis-cli --cluster create``): PING, SET/GET on keys of every master, and a
partition's keys in one slot.  The whole pipeline on a cluster, and failover, are
in test_cluster.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from docgraph.core.runtime.connection import connect, connect_sync
from docgraph.core.runtime.keys import Keys
from docgraph.core.settings import Settings
from tests.cluster.cluster import RedisCluster

pytestmark = pytest.mark.service


@pytest.fixture(scope="module")
def cluster() -> Iterator[list[int]]:
    """Three masters, no replicas: the client ports."""
    nodes = RedisCluster(replicas_per_master=0).start()
    try:
        yield [n.port for n in nodes.nodes]
    finally:
        nodes.stop()


async def test_connect_returns_a_working_cluster_client(cluster: list[int]):
    settings = Settings(
        redis_url=f"redis+cluster://127.0.0.1:{cluster[0]},127.0.0.1:{cluster[1]}", partitions=6
    )
    client = connect(settings)
    try:
        assert await client.ping()
        keys = [f"k{i}" for i in range(30)]  # spread over the slots of all three masters
        for k in keys:
            await client.set(k, k.encode())
        assert [await client.get(k) for k in keys] == [k.encode() for k in keys]
        nodes = {client.get_node_from_key(k).port for k in keys}  # type: ignore[attr-defined]
        assert nodes == set(cluster), nodes
        # one partition's keys share a slot: a multi-key script on them is allowed
        part = Keys(settings.key_prefix, settings.partitions).part(3)
        lua = "redis.call('SET', KEYS[1], ARGV[1]); redis.call('SET', KEYS[2], ARGV[1]); return 1"
        assert await client.eval(lua, 2, part.job("j1"), part.delayed, "x") == 1
    finally:
        await client.aclose()
    sync = connect_sync(settings)
    assert sync.get("k1") == b"k1"
    sync.close()
