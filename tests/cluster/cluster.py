"""A real Redis Cluster for tests and bench/cluster.py: 3 masters + 3 replicas of
Debian's redis-server on loopback, created with ``redis-cli --cluster create``; and
:func:`start_server`, one plain server with the same settings (the bench's baseline).

Debian's ``redis-server`` and ``redis-tools`` come from ``deploy/setup.sh``; without
them the cluster tests fail loudly (CI forbids skips).  Every process is stopped and
every directory removed at the end, within a bounded time, whatever happened."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.crc import key_slot

from docgraph.core.runtime.embedded import die_with_parent
from docgraph.core.runtime.keys import Keys

NODE_TIMEOUT_MS = 2000  # small: a killed master's replica takes over within a few seconds
BUS_OFFSET = 10000  # Redis Cluster's bus port is the client port + 10000


def binary(name: str) -> str:
    """Debian's ``name`` (redis-server, redis-cli), or a failure saying how to get it."""
    path = shutil.which(name, path="/usr/bin:/usr/local/bin")
    if not path:
        raise RuntimeError(
            f"{name} is not installed (the Redis Cluster tests need Debian's redis-server and "
            "redis-tools): run ./deploy/setup.sh, or apt-get install -y redis-server redis-tools"
        )
    return path


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_ports(n: int) -> list[int]:
    """``n`` client ports whose bus ports (+10000) are free too."""
    ports: list[int] = []
    while len(ports) < n:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + BUS_OFFSET < 65536 and port not in ports and _port_free(port + BUS_OFFSET):
            ports.append(port)
    return ports


def server_args(port: int) -> list[str]:
    """What every server here shares: loopback, AOF ``everysec`` (docgraph's production
    default), no RDB snapshots."""
    return [
        "--port", str(port), "--bind", "127.0.0.1", "--protected-mode", "no",
        "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
        "--dir", ".", "--logfile", "",
    ]  # fmt: skip


@dataclass
class Node:
    port: int
    data_dir: Path
    proc: subprocess.Popen[bytes] | None = None

    def launch(self, args: list[str]) -> Node:
        """Start Debian's redis-server with ``args`` in :attr:`data_dir` (log: server.log)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with (self.data_dir / "server.log").open("ab") as log:  # a restart appends
            self.proc = subprocess.Popen(
                [binary("redis-server"), *args],
                cwd=self.data_dir,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent(),
            )
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5, socket_connect_timeout=2)

    def cluster_info(self) -> dict[str, str]:
        """``CLUSTER INFO`` as text fields (redis-py parses it into a dict)."""
        with self.client() as c:
            raw = c.execute_command("CLUSTER INFO")
        return {str(k): str(v) for k, v in dict(raw).items()}

    def role(self) -> str:
        with self.client() as c:
            return str(c.execute_command("ROLE")[0].decode())


@dataclass
class RedisCluster:
    """Start with :meth:`start`, stop with :meth:`stop` (idempotent, bounded)."""

    masters: int = 3
    replicas_per_master: int = 1
    nodes: list[Node] = field(default_factory=list)
    root: Path | None = None

    @property
    def url(self) -> str:
        """``DOCGRAPH_REDIS_URL`` for docgraph: every node as a seed."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self, timeout: float = 60.0) -> RedisCluster:
        cli = binary("redis-cli")
        self.root = Path(tempfile.mkdtemp(prefix="docgraph-cluster-"))
        try:
            count = self.masters * (1 + self.replicas_per_master)
            for port in cluster_ports(count):
                self.nodes.append(Node(port, self.root / str(port)).launch(self._config(port)))
            deadline = time.monotonic() + timeout
            for node in self.nodes:
                self._wait(lambda n=node: n.client().ping(), deadline, f"node {node.port} to answer")
            create = [cli, "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in self.nodes)]
            create += ["--cluster-replicas", str(self.replicas_per_master), "--cluster-yes"]
            out = subprocess.run(create, capture_output=True, timeout=timeout, check=False)
            if out.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed: {out.stdout!r} {out.stderr!r}")
            self.wait_ok(deadline)
            self.wait_replicas_synced(deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def restart(self, node: Node, timeout: float = 60.0) -> None:
        """Start a killed node again in its own directory: its ``nodes.conf`` makes it
        rejoin, as a replica of whoever took over its slots (a promoted master needs a
        replica again before ``WAIT 1`` can succeed)."""
        node.launch(self._config(node.port))
        self._wait(lambda: node.client().ping(), time.monotonic() + timeout, f"node {node.port} to answer")

    @staticmethod
    def _config(port: int) -> list[str]:
        return [
            *server_args(port),
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
            # a replica syncs at once, and may take over however long ago it heard from
            # its master: a loaded machine must not leave a master without a successor
            "--repl-diskless-sync-delay", "0", "--cluster-replica-validity-factor", "0",
        ]  # fmt: skip

    @staticmethod
    def _wait(check: object, deadline: float, what: str) -> None:
        last: BaseException | None = None
        while time.monotonic() < deadline:
            try:
                if check():  # type: ignore[operator]
                    return
            except (redis.RedisError, OSError) as exc:
                last = exc
            time.sleep(0.1)
        raise RuntimeError(f"timed out waiting for {what} ({last})")

    def live(self) -> list[Node]:
        return [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]

    def wait_ok(self, deadline: float) -> None:
        """Until every live node says ``cluster_state:ok`` and knows the same masters."""

        def ok() -> bool:
            return all(n.cluster_info().get("cluster_state") == "ok" for n in self.live())

        self._wait(ok, deadline, "cluster_state:ok on every node")

    def wait_replicas_synced(self, deadline: float) -> None:
        """Until every replica has finished its first sync (``master_link_status:up``):
        a replica killed into failover before that has no data to take over with."""

        def synced() -> bool:
            replicas = [n for n in self.live() if n.role() == "slave"]
            return len(replicas) == self.masters * self.replicas_per_master and all(
                n.client().info("replication").get("master_link_status") == "up" for n in replicas
            )

        self._wait(synced, deadline, "every replica's first sync")

    def master_nodes(self) -> list[Node]:
        return [n for n in self.live() if n.role() == "master"]

    def owners(self) -> dict[int, int]:
        """Slot -> port of the master that serves it (``CLUSTER SLOTS`` of a live node)."""
        with self.live()[0].client() as c:
            slots = c.execute_command("CLUSTER SLOTS")
        out: dict[int, int] = {}
        for start, end, primary, *_replicas in slots:  # [start, end, [host, port, id], ...]
            out.update(dict.fromkeys(range(int(start), int(end) + 1), int(primary[1])))
        return out

    def spread_prefix(self, partitions: int, attempts: int = 10_000) -> str:
        """A fresh key prefix whose partitions land as evenly as they can on the masters
        (counts differ by at most one, as many masters used as there are partitions):
        each partition's hash tag is one slot, and which master owns it is the luck of
        CRC16 (``docs/runtime.md`` says how a deployment checks its own)."""
        slot_owner = self.owners()
        masters = len(set(slot_owner.values()))
        for _ in range(attempts):
            prefix = f"t{uuid.uuid4().hex[:10]}"
            ports = [slot_owner[key_slot(p.tag.encode())] for p in Keys(prefix, partitions).all()]
            counts = [ports.count(port) for port in set(ports)]
            if len(counts) == min(partitions, masters) and max(counts) - min(counts) <= 1:
                return prefix
        raise RuntimeError(f"no prefix spreads {partitions} partitions over {masters} masters")

    def kill9(self, node: Node) -> None:
        if node.proc is not None and node.proc.poll() is None:
            node.proc.send_signal(signal.SIGKILL)
            node.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM every server, SIGKILL what is left after 10 s, remove the directories."""
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.terminate()
        deadline = time.monotonic() + 10
        for node in self.nodes:
            if node.proc is None:
                continue
            try:
                node.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait(5)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def logs(self) -> str:
        if self.root is None:
            return ""
        return "\n".join(
            f"--- {n.port}\n{(n.data_dir / 'server.log').read_text(errors='replace')[-2000:]}"
            for n in self.nodes
            if (n.data_dir / "server.log").exists()
        )
