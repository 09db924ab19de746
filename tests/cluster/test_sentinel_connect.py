"""``connect()`` through a real Sentinel (Debian's redis-server in sentinel mode)
to the master it names: PING, SET/GET, and the sync client too.  Following a
failover mid-run: test_sentinel_failover.py."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
import redis

from docgraph.core.runtime.connection import connect, connect_sync
from docgraph.core.settings import Settings
from tests.redis_server import free_port, stop_processes, wait_until_answers
from tests.security.tls import debian_redis_server

pytestmark = pytest.mark.service


@pytest.fixture(scope="module")
def sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    binary = debian_redis_server()
    d = tmp_path_factory.mktemp("sentinel")
    master, sport = free_port(), free_port()
    conf = d / "sentinel.conf"  # sentinel rewrites its config: a file of its own
    conf.write_text(
        f"bind 127.0.0.1\nport {sport}\ndir {d}\n"
        f"sentinel monitor mymaster 127.0.0.1 {master} 1\nsentinel down-after-milliseconds mymaster 2000\n"
    )
    procs = [
        subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(master), "--dir", str(d), "--save", ""],
            stdout=subprocess.DEVNULL,
        ),
        subprocess.Popen([binary, str(conf), "--sentinel"], stdout=subprocess.DEVNULL),
    ]
    try:
        wait_until_answers(master)
        wait_until_answers(sport)
        yield master, sport
    finally:
        stop_processes(procs)


async def test_connect_finds_the_master_through_sentinel(sentinel: tuple[int, int]):
    master, sport = sentinel
    settings = Settings(redis_url=f"redis+sentinel://127.0.0.1:{sport}/mymaster/0")
    client = connect(settings)
    try:
        assert await client.ping()
        await client.set("via-sentinel", b"yes")
        assert await client.get("via-sentinel") == b"yes"
    finally:
        await client.aclose()
    assert redis.Redis(host="127.0.0.1", port=master).get("via-sentinel") == b"yes"  # it was the master
    sync = connect_sync(settings)
    assert sync.get("via-sentinel") == b"yes"
    sync.close()
