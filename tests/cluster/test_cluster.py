"""docgraph on a real 3-master + 3-replica Redis Cluster (tests/cluster/cluster.py).

Two ``docgraph worker`` processes with ``DOCGRAPH_REDIS_URL=redis+cluster://…`` and
6 partitions: every job completes, each stage's hand-off is recorded once, and the
keys land on all three masters.  The stage effects are counted on the session's
single redis-server (``DOCGRAPH_TEST_EFFECTS_URL``), apart from the cluster under test.

Bounded: every wait has a deadline; the cluster and the workers are stopped
whatever happens."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis

from docgraph.core.runtime.connection import connect, torn_down
from docgraph.core.runtime.dlq import DeadLetters
from docgraph.core.runtime.jobs import JobStore
from docgraph.core.runtime.recovery import Upkeep
from docgraph.core.runtime.snapshot import snapshot
from docgraph.core.settings import Settings
from tests.cluster.cluster import Node, RedisCluster
from tests.cluster.failover import STAGES, assert_each_stage_recorded_once, run_through_failover
from tests.runtime.procs import WorkerProcs

pytestmark = [pytest.mark.service, pytest.mark.slow]

PARTITIONS = 6


def _count(node: Node, pattern: str) -> int:
    """How many keys matching ``pattern`` ``node`` holds (SCAN on that node alone)."""
    with node.client() as c:
        return sum(1 for _ in c.scan_iter(match=pattern, count=1000))


def keys_on(node: Node, prefix: str) -> int:
    """How many of ``prefix``'s partitioned keys ``node`` holds."""
    return _count(node, f"{{{prefix}:p*")


@pytest.fixture
async def cluster_settings(redis_cluster: RedisCluster, settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "redis_url": redis_cluster.url,
            "key_prefix": redis_cluster.spread_prefix(PARTITIONS),
            "partitions": PARTITIONS,
            "concurrency": 8,
        }
    )


@pytest.fixture
async def store(cluster_settings: Settings) -> AsyncIterator[JobStore]:
    client = connect(cluster_settings)
    yield JobStore(client, cluster_settings)
    await client.aclose()


async def _wait_finished(procs: WorkerProcs, store: JobStore, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = await store.count_by_state()
        if counts["completed"] + counts["dead"] + counts["failed"] >= n:
            return
        if not procs.alive():
            break
        await asyncio.sleep(0.2)
    raise AssertionError(f"not finished: {await store.count_by_state()}\n{procs.logs()}")


async def test_1000_jobs_on_a_3_master_cluster(
    redis_cluster: RedisCluster, cluster_settings: Settings, store: JobStore, effects, tmp_path
) -> None:
    """1,000 jobs through the default DAG, 6 partitions, 2 worker processes."""
    flaky = {"fail": {"ner": 1}}  # retried: the delayed set and promote on every partition
    meta = [flaky if i % 50 == 0 else None for i in range(1000)]
    ids = [job_id for job_id, _ in await store.submit_many([None] * 1000, metadata=meta)]
    bad = [j for j, _ in await store.submit_many([None] * 12, metadata=[{"permanent": {"ner": "no"}}] * 12)]
    assert len(set(ids)) == 1000
    assert (await store.count_by_state())["queued"] == 1012
    masters = redis_cluster.master_nodes()
    assert len(masters) == 3
    assert all(keys_on(m, cluster_settings.key_prefix) > 0 for m in masters)  # every master holds jobs

    procs = WorkerProcs(cluster_settings, tmp_path)
    try:
        procs.start(2)
        await _wait_finished(procs, store, len(ids) + len(bad), timeout=300)
        leases = sum(_count(m, f"{cluster_settings.key_prefix}:lease:*") for m in masters)
        assert leases == 2 * len(STAGES)  # renewed by each process's thread over its own cluster client
    finally:
        codes = procs.stop()
    assert sum(_count(m, f"{cluster_settings.key_prefix}:lease:*") for m in masters) == 0  # given up at exit
    assert codes == [0, 0], procs.logs()
    logs = procs.logs()  # the lease thread's cluster pipeline, upkeep and reclaim ran without errors
    assert not any(s in logs for s in ("Traceback", "renewal failed", "upkeep failed", "CROSSSLOT")), logs

    await assert_each_stage_recorded_once(store, ids)
    counts = await effects()
    for stage in STAGES:
        assert [counts.get(f"{i}:{stage}", 0) for i in ids] == [1] * len(ids), stage
    assert await store.count_by_state() == {
        "queued": 0, "running": 0, "retrying": 0, "completed": 1000, "failed": 12, "dead": 0, "cancelled": 0,
    }  # fmt: skip
    assert sum(counts.get(f"{i}:ner:calls", 0) for i in ids) == 2 * 20  # 20 flaky jobs, each retried once

    # the read side visits every partition on whichever master owns it
    page = await store.list("completed", limit=400)
    seen = {j.id for j in page.jobs}
    while page.next_cursor:
        page = await store.list("completed", limit=400, cursor=page.next_cursor)
        seen |= {j.id for j in page.jobs}
    assert seen == set(ids)
    snap = await snapshot(store)
    assert snap.states["completed"] == 1000 and snap.queued == dict.fromkeys(STAGES, 0)
    assert snap.dead_letters == {"extract": 0, "classify": 0, "ner": 12, "ingest": 0}
    letters = DeadLetters(store.client, cluster_settings)
    assert await letters.count("ner") == 12
    listed = await letters.list("ner", limit=5)
    while len(listed) < 12 and (more := await letters.list("ner", limit=5, after=listed[-1].ref)):
        listed += more
    assert sorted(lt.job_id for lt in listed) == sorted(bad)
    assert len({lt.partition for lt in listed}) > 1  # spread over partitions, read from each owner
    got = await letters.get("ner", listed[-1].ref)
    assert got is not None and got.job_id == listed[-1].job_id
    assert await letters.purge("ner") == 12 and await letters.count("ner") == 0
    upkeep = Upkeep(cluster_settings, store.client)
    assert await upkeep.promote_due() == 0
    await upkeep.sweep()
    per_master = [keys_on(m, cluster_settings.key_prefix) for m in masters]
    assert all(n > 0 for n in per_master), per_master


def test_the_cluster_fixture_serves_every_slot(redis_cluster: RedisCluster) -> None:
    """3 masters, each with one replica, all 16384 slots served."""
    assert len(redis_cluster.owners()) == 16384
    assert sorted(n.role() for n in redis_cluster.live()) == ["master"] * 3 + ["slave"] * 3
    with redis.RedisCluster(host="127.0.0.1", port=redis_cluster.nodes[0].port) as c:
        assert c.set("{x}a", 1) and c.get("{x}a") == b"1"


async def _wait_failover(cluster: RedisCluster, timeout: float = 60) -> None:
    """Until a replica has taken over: 3 live masters, ``cluster_state:ok`` everywhere."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if len(cluster.master_nodes()) == 3:
                cluster.wait_ok(deadline)
                return
        except (redis.RedisError, RuntimeError):
            pass
        await asyncio.sleep(0.2)
    raise AssertionError(f"no replica took over in {timeout}s\n{cluster.logs()}")


@pytest.mark.parametrize("wait_replicas", [0, 1], ids=["no-wait", "wait-1"])
async def test_a_killed_master_s_replica_takes_over_and_jobs_complete(
    own_cluster: RedisCluster, settings: Settings, effects, tmp_path, wait_replicas: int
) -> None:
    """SIGKILL one master mid-run, a submitter still submitting: its replica is
    promoted, the workers carry on, the old master comes back as the new one's
    replica, and every job whose submit survived completes with each stage recorded
    once.  Without WAIT, writes the master acknowledged but had not yet replicated
    may be lost (reported); with ``DOCGRAPH_REDIS_WAIT_REPLICAS=1`` no acknowledged
    submit is."""
    cluster_settings = settings.model_copy(
        update={
            "redis_url": own_cluster.url,
            "key_prefix": own_cluster.spread_prefix(PARTITIONS),
            "partitions": PARTITIONS,
            "concurrency": 8,
            "shutdown_grace": 10.0,  # in-flight work left at the end is handed back, not waited on
            "redis_wait_replicas": wait_replicas,
        }
    )

    async def kill_and_heal() -> None:
        victim = own_cluster.master_nodes()[0]
        own_cluster.kill9(victim)
        await _wait_failover(own_cluster)
        own_cluster.restart(victim)  # back as the promoted replica's replica: WAIT 1 can succeed again
        deadline = time.monotonic() + 60
        own_cluster.wait_ok(deadline)
        own_cluster.wait_replicas_synced(deadline)

    cost = await run_through_failover(cluster_settings, tmp_path, effects, kill_and_heal)
    if wait_replicas:
        assert cost.lost == 0, cost


async def test_scripts_come_back_on_every_primary_after_a_cache_flush(
    redis_cluster: RedisCluster, store: JobStore
) -> None:
    """A promoted replica has no script cache: NOSCRIPT, pipelined or not, reloads them."""
    await store.scripts.load()  # SCRIPT LOAD goes to every primary
    for node in redis_cluster.master_nodes():
        with node.client() as c:
            assert all(c.script_exists(*store.scripts.sha.values()))
            c.script_flush()
    results = await store.submit_many([None] * 30)  # pipelined over the three masters
    for node in redis_cluster.master_nodes():
        with node.client() as c:
            c.script_flush()
    _, created = await store.submit(None)  # one call: EVALSHA, then EVAL
    assert created and len({j for j, _ in results}) == 30
    assert (await store.count_by_state())["queued"] == 31


def test_a_connection_torn_down_inside_redis_py_counts_as_redis_down() -> None:
    """redis-py 8.1 leaks ``AttributeError`` when a killed node's connection goes away
    under a command: the read loop retries it; the same error from our code raises."""

    def raised_in(filename: str) -> BaseException:
        code = compile("None.writelines([])", filename, "exec")
        try:
            exec(code, {})
        except AttributeError as exc:
            return exc
        raise AssertionError("no error")

    assert torn_down(raised_in("/venv/site-packages/redis/asyncio/connection.py"))
    assert not torn_down(raised_in("/work/core/runtime/runner.py"))
    assert not torn_down(ValueError("x"))
