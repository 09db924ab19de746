"""``DOCGRAPH_REDIS_WAIT_REPLICAS``: every script round trip ends with ``WAIT`` on the
connection that carried its writes (on a cluster, one per node written to), and a
round trip fewer replicas confirmed raises ``NotReplicated``, which the runtime treats
as Redis being unavailable.  N = 0 sends no WAIT at all.  Failover with WAIT is in
test_cluster.py and test_sentinel_failover.py."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from docgraph.core.runtime.connection import REDIS_DOWN, NotReplicated, connect
from docgraph.core.runtime.embedded import die_with_parent
from docgraph.core.runtime.jobs import JobStore
from docgraph.core.settings import Settings
from tests.cluster.cluster import RedisCluster
from tests.redis_server import free_port, stop_processes, wait_until_answers
from tests.security.tls import debian_redis_server

pytestmark = pytest.mark.service


def waits(port: int) -> int:
    """How many WAIT commands the server on ``port`` has run."""
    with redis.Redis(host="127.0.0.1", port=port) as c:
        return int(c.info("commandstats").get("cmdstat_wait", {}).get("calls", 0))


def _port(settings: Settings) -> int:
    return settings.redis_target.nodes[0][1]


async def test_no_wait_is_sent_by_default(settings: Settings) -> None:
    """N = 0: the round trips are what they were (no WAIT, no pipeline for one call)."""
    assert settings.redis_wait_replicas == 0
    client = connect(settings)
    store = JobStore(client, settings)
    before = waits(_port(settings))
    try:
        await store.submit(None)
        await store.submit_many([None] * 20)
        await asyncio.gather(*(store.submit(None) for _ in range(20)))
    finally:
        await client.aclose()
    assert waits(_port(settings)) == before


async def test_too_few_replicas_raise_not_replicated(settings: Settings) -> None:
    """A server without replicas cannot confirm WAIT 1: submits raise NotReplicated
    (a REDIS_DOWN error) after the timeout, alone, pipelined and batched; the master
    applied the writes (what is not confirmed may still exist)."""
    waiting = settings.model_copy(update={"redis_wait_replicas": 1, "redis_wait_timeout_ms": 50})
    client = connect(waiting)
    store = JobStore(client, waiting)
    try:
        with pytest.raises(NotReplicated, match=r"0 of 1 replicas .* within 50 ms") as raised:
            await store.submit(None, job_id="unconfirmed")
        assert isinstance(raised.value, REDIS_DOWN)
        assert (await store.get("unconfirmed")) is not None  # applied, not confirmed
        with pytest.raises(NotReplicated):
            await store.submit_many([None] * 5)
        results = await asyncio.gather(*(store.submit(None) for _ in range(10)), return_exceptions=True)
        assert all(isinstance(r, NotReplicated) for r in results), results
    finally:
        await client.aclose()


def test_the_settings_refuse_a_wait_that_blocks_forever(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read from ``DOCGRAPH_REDIS_WAIT_*``; ``WAIT n 0`` blocks until the replicas
    answer, so the timeout must be at least 1 ms."""
    monkeypatch.setenv("DOCGRAPH_REDIS_WAIT_REPLICAS", "2")
    monkeypatch.setenv("DOCGRAPH_REDIS_WAIT_TIMEOUT_MS", "250")
    s = Settings()
    assert (s.redis_wait_replicas, s.redis_wait_timeout_ms) == (2, 250)
    monkeypatch.delenv("DOCGRAPH_REDIS_WAIT_REPLICAS")
    monkeypatch.delenv("DOCGRAPH_REDIS_WAIT_TIMEOUT_MS")
    with pytest.raises(ValueError, match="redis_wait_timeout_ms"):
        Settings(redis_wait_replicas=1, redis_wait_timeout_ms=0)
    with pytest.raises(ValueError, match="redis_wait_replicas"):
        Settings(redis_wait_replicas=-1)


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    """A master and its replica (Debian's redis-server): their ports."""
    d: Path = tmp_path_factory.mktemp("replicated")
    master, replica = free_port(), free_port()
    base = ["--bind", "127.0.0.1", "--save", "", "--dir", str(d), "--repl-diskless-sync-delay", "0"]
    procs = [
        subprocess.Popen(
            [debian_redis_server(), "--port", str(port), *base, *extra],
            stdout=subprocess.DEVNULL,
            preexec_fn=die_with_parent(),
        )
        for port, extra in ((master, []), (replica, ["--replicaof", "127.0.0.1", str(master)]))
    ]
    try:
        wait_until_answers(master)
        wait_until_answers(replica)
        with redis.Redis(host="127.0.0.1", port=master) as c:
            c.execute_command("WAIT", 1, 30_000)  # the replica is connected and synced
        yield master, replica
    finally:
        stop_processes(procs)


async def test_a_confirmed_submit_is_on_the_replica(replicated: tuple[int, int], settings: Settings) -> None:
    """With WAIT 1 a submit returns once the replica has it: readable there at once;
    one WAIT per round trip (a 2,500-job submit_many: 3 pipelines of 1,000)."""
    master, replica = replicated
    waiting = settings.model_copy(
        update={"redis_url": f"redis://127.0.0.1:{master}/0", "redis_wait_replicas": 1}
    )
    client = connect(waiting)
    store = JobStore(client, waiting)
    await store.scripts.load()  # a fresh server: no NOSCRIPT round trips in the count
    before = waits(master)
    try:
        job_id, created = await store.submit(None)
        ids = [j for j, _ in await store.submit_many([None] * 2500)]
    finally:
        await client.aclose()
    assert created and waits(master) == before + 1 + 3
    key = store.keys.for_job(job_id).job(job_id)
    with redis.Redis(host="127.0.0.1", port=replica) as r:
        assert r.hget(key, "id") == job_id.encode()
        pipe = r.pipeline(transaction=False)
        for j in ids:
            pipe.exists(store.keys.for_job(j).job(j))
        assert sum(pipe.execute()) == 2500


async def test_a_cluster_pipeline_waits_on_every_node_it_wrote_to(
    redis_cluster: RedisCluster, settings: Settings
) -> None:
    """On a cluster a pipeline's writes go to several masters, each on its own
    connection: one WAIT per master, and the replicas hold every record once it
    returns; WAIT 2 (one replica each) raises NotReplicated."""
    waiting = settings.model_copy(
        update={
            "redis_url": redis_cluster.url,
            "key_prefix": redis_cluster.spread_prefix(6),
            "partitions": 6,
            "redis_wait_replicas": 1,
        }
    )
    masters = redis_cluster.master_nodes()
    client = connect(waiting)
    store = JobStore(client, waiting)
    await store.scripts.load()
    before = [waits(m.port) for m in masters]
    try:
        ids = [j for j, _ in await store.submit_many([None] * 300)]
        assert [waits(m.port) - b for m, b in zip(masters, before, strict=True)] == [1, 1, 1]
        replicas = [n for n in redis_cluster.live() if n.role() == "slave"]
        on_replicas = 0
        for node in replicas:
            with node.client() as c:
                on_replicas += sum(
                    1 for _ in c.scan_iter(match=f"{{{waiting.key_prefix}:p*}}:job:*", count=1000)
                )
        assert on_replicas == len(ids) == 300
        strict = JobStore(
            client, waiting.model_copy(update={"redis_wait_replicas": 2, "redis_wait_timeout_ms": 50})
        )
        with pytest.raises(NotReplicated, match="1 of 2 replicas"):
            await strict.submit_many([None] * 30)
    finally:
        await client.aclose()
