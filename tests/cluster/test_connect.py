"""``connect()`` on a real 3-master Redis Cluster (Debian's redis-server, created
with ``redis-cli --cluster create``): PING, SET/GET on keys of every master, and a
partition's keys in one slot.  Running the whole pipeline on a cluster (and
surviving failover) is the next part of issue 10, not tested here."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from docgraph.core.runtime.connection import connect, connect_sync
from docgraph.core.runtime.keys import Keys
from docgraph.core.settings import Settings
from tests.redis_server import free_port, stop_processes
from tests.security.tls import debian_redis_server

pytestmark = pytest.mark.service


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    binary = debian_redis_server()
    cli = shutil.which("redis-cli", path="/usr/bin:/usr/local/bin")
    assert cli, "redis-cli (Debian's redis-tools) is missing: run ./deploy/setup.sh"
    ports = [free_port() for _ in range(3)]
    procs = []
    for port in ports:
        d: Path = tmp_path_factory.mktemp(f"node{port}")
        cmd = [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(d), "--save", ""]
        cmd += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--appendonly", "no"]
        cmd += ["--cluster-port", str(free_port())]  # the bus port; default port + 10000 may not exist
        with open(d / "redis.log", "wb") as log:
            procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=d))
    try:
        for port, proc in zip(ports, procs, strict=True):
            deadline = time.monotonic() + 30
            while True:
                try:
                    redis.Redis(host="127.0.0.1", port=port, socket_timeout=2).ping()
                    break
                except redis.RedisError:
                    log = Path(proc.args[proc.args.index("--dir") + 1]) / "redis.log"  # type: ignore[union-attr]
                    assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
                    time.sleep(0.05)
        create = [cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports), "--cluster-yes"]
        out = subprocess.run(create, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        deadline = time.monotonic() + 60
        while any(
            redis.Redis(host="127.0.0.1", port=p).cluster("info")["cluster_state"] != "ok" for p in ports
        ):  # every node agrees the slots are covered
            assert time.monotonic() < deadline, "cluster did not become ok"
            time.sleep(0.1)
        yield ports
    finally:
        stop_processes(procs)


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
