"""docgraph through a real Sentinel failover: 1 master, 1 replica and 3 Sentinels of
Debian's redis-server on loopback, ``DOCGRAPH_REDIS_URL=redis+sentinel://…/mymaster``.

The master is SIGKILLed while 2 ``docgraph worker`` processes run 1,000 jobs and a
submitter keeps submitting: the Sentinels promote the replica, the workers' clients
ask a Sentinel again on reconnect and follow it (redis-py's ``SentinelConnectionPool``
discovers the master on every new connection), the old master comes back as the new
one's replica, and every job whose submit survived completes with each stage recorded
once.  With ``DOCGRAPH_REDIS_WAIT_REPLICAS=1`` no acknowledged submit is lost.

Bounded: every wait has a deadline; every server and worker is stopped whatever happens."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from docgraph.core.runtime.embedded import die_with_parent
from docgraph.core.settings import Settings
from tests.cluster.failover import run_through_failover
from tests.redis_server import free_port, stop_processes, wait_until_answers
from tests.security.tls import debian_redis_server

pytestmark = [pytest.mark.service, pytest.mark.slow]

MASTER = "mymaster"
DOWN_AFTER_MS = 1000  # small: a dead master is promoted away within a few seconds
FAILOVER_TIMEOUT_MS = 5000


def _client(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2, socket_connect_timeout=2)


def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Until ``check()`` is true (Redis errors count as not yet), or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (redis.RedisError, OSError) as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} ({last})")


@dataclass
class SentinelSet:
    """A master, its replica and 3 Sentinels; :meth:`stop` ends them all (bounded)."""

    root: Path
    ports: list[int] = field(default_factory=list)  # data servers: [first master, first replica]
    sentinels: list[int] = field(default_factory=list)
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return "redis+sentinel://" + ",".join(f"127.0.0.1:{p}" for p in self.sentinels) + f"/{MASTER}"

    def _spawn(self, port: int, args: list[str]) -> None:
        log = (self.root / f"{port}.log").open("ab")
        self.procs[port] = subprocess.Popen(
            [debian_redis_server(), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent(),
        )
        log.close()

    def start_server(self, port: int, *replica_of: int) -> None:
        d = self.root / str(port)
        d.mkdir(exist_ok=True)
        args = ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(d), "--save", ""]
        args += ["--appendonly", "yes", "--appendfsync", "everysec", "--repl-diskless-sync-delay", "0"]
        if replica_of:
            args += ["--replicaof", "127.0.0.1", str(replica_of[0])]
        self._spawn(port, args)
        wait_until_answers(port)

    def start(self) -> SentinelSet:
        master, replica = free_port(), free_port()
        self.ports = [master, replica]
        self.start_server(master)
        self.start_server(replica, master)
        for _ in range(3):
            port = free_port()
            conf = self.root / f"sentinel-{port}.conf"  # a Sentinel rewrites its config: one file each
            conf.write_text(
                f"bind 127.0.0.1\nport {port}\ndir {self.root}\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {master} 2\n"
                f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}\n"
            )
            self._spawn(port, [str(conf), "--sentinel"])
            self.sentinels.append(port)
            wait_until_answers(port)
        self.wait_synced(replica, 60)

        def sentinels_agree() -> bool:
            for port in self.sentinels:
                state = _client(port).sentinel_master(MASTER)
                if int(state["num-slaves"]) != 1 or int(state["num-other-sentinels"]) != 2:
                    return False
            return True

        _until(sentinels_agree, 60, "every Sentinel to know the replica and the other Sentinels")
        return self

    def master_port(self) -> int:
        """The port the Sentinels name as master (the first one's answer)."""
        host, port = _client(self.sentinels[0]).sentinel_get_master_addr_by_name(MASTER)
        return int(port)

    def wait_synced(self, replica: int, timeout: float) -> None:
        """Until ``replica`` is a replica that finished its sync (``master_link_status:up``)."""

        def synced() -> bool:
            info = _client(replica).info("replication")
            return info.get("role") == "slave" and info.get("master_link_status") == "up"

        _until(synced, timeout, f"127.0.0.1:{replica} to sync as a replica")

    def kill9(self, port: int) -> None:
        proc = self.procs[port]
        proc.kill()
        proc.wait(10)

    def wait_promoted(self, new_master: int, timeout: float) -> None:
        """Until every Sentinel names ``new_master`` and it says it is one."""

        def promoted() -> bool:
            named = {int(_client(s).sentinel_get_master_addr_by_name(MASTER)[1]) for s in self.sentinels}
            return named == {new_master} and _client(new_master).info("replication")["role"] == "master"

        _until(promoted, timeout, f"127.0.0.1:{new_master} to be promoted")

    def stop(self) -> None:
        stop_processes([p for p in self.procs.values() if p.poll() is None])

    def logs(self) -> str:
        return "\n".join(
            f"--- {f.name}\n{f.read_text(errors='replace')[-2000:]}" for f in sorted(self.root.glob("*.log"))
        )


@pytest.fixture
def sentinel_set(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSet]:
    """A fresh master + replica + 3 Sentinels for one test that kills the master."""
    s = SentinelSet(tmp_path_factory.mktemp("sentinel-failover"))
    try:
        yield s.start()
    finally:
        s.stop()


@pytest.mark.parametrize("wait_replicas", [0, 1], ids=["no-wait", "wait-1"])
async def test_a_killed_sentinel_master_s_replica_takes_over_and_jobs_complete(
    sentinel_set: SentinelSet, settings: Settings, effects, tmp_path, wait_replicas: int
) -> None:
    """SIGKILL the master mid-run: the Sentinels promote the replica, the workers
    follow it, every surviving job completes with each stage recorded once; with
    WAIT 1 nothing acknowledged is lost."""
    sentinel_settings = settings.model_copy(
        update={
            "redis_url": sentinel_set.url,
            "partitions": 3,
            "concurrency": 8,
            "shutdown_grace": 10.0,
            "redis_wait_replicas": wait_replicas,
        }
    )
    old, new = sentinel_set.ports
    assert sentinel_set.master_port() == old

    async def kill_and_heal() -> None:
        sentinel_set.kill9(old)
        try:
            await asyncio.to_thread(sentinel_set.wait_promoted, new, 60)
            # back with its stale data: the Sentinels turn it into the new master's replica
            await asyncio.to_thread(sentinel_set.start_server, old)
            await asyncio.to_thread(sentinel_set.wait_synced, old, 60)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{sentinel_set.logs()}") from None

    cost = await run_through_failover(sentinel_settings, tmp_path, effects, kill_and_heal)
    assert sentinel_set.master_port() == new
    if wait_replicas:
        assert cost.lost == 0, cost
