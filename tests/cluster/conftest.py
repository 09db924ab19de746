"""The Redis Cluster fixture: one 3-master + 3-replica cluster per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cluster.cluster import RedisCluster


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[RedisCluster]:
    cluster = RedisCluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def own_cluster() -> Iterator[RedisCluster]:
    """A cluster for one test that kills its nodes."""
    cluster = RedisCluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()
