"""Hosts on a private switch, built from Linux network namespaces, for split-host tests.

Each host is a network namespace (``ip netns add``) with one veth whose other end
is on a bridge inside a "switch" namespace of its own, so the host's network is not
touched except for one veth that lets the test process itself reach the hosts.
Cutting a host's link puts its switch-side veth down: its packets are lost.  Its
kernel then fails ARP for its peers within seconds ("no route to host": connections
fail fast), unless :meth:`Switch.pin_neighbours` made the entries static: then the
loss is silent and TCP connections survive, to deliver what was queued on restore.

Needs root and iproute2 (``ip``): without them :meth:`Switch.create` fails with a
message saying what to install (CI forbids skips).  Names are unique per run and
everything is removed by :meth:`Switch.destroy`, idempotent and bounded."""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field

IP_TIMEOUT = 10.0  # seconds one ``ip`` command may take


def _ip_binary() -> str:
    path = shutil.which("ip", path="/usr/sbin:/sbin:/usr/bin:/bin")
    if path is None:
        raise RuntimeError(
            "the split-host tests need iproute2's `ip` (network namespaces, veth pairs): "
            "run ./deploy/setup.sh, or apt-get install -y iproute2"
        )
    return path


def ip(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``ip <args>`` (inside namespace ``ns`` if given); a failure names the command."""
    cmd = [_ip_binary(), *(("-n", ns) if ns else ()), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=IP_TIMEOUT, check=False)
    if check and out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}): {out.stderr.strip()}")
    return out


def _free_subnet() -> ipaddress.IPv4Network:
    """A random 10.x.y.0/24 that no route of the host's covers or overlaps."""
    routes = ip("-4", "route", "show", "table", "all").stdout.split()
    used = []
    for word in routes:
        try:
            used.append(ipaddress.ip_network(word, strict=False))
        except ValueError:
            continue
    for _ in range(100):
        net = ipaddress.ip_network(f"10.{secrets.randbelow(200) + 50}.{secrets.randbelow(250)}.0/24")
        if not any(net.overlaps(u) for u in used if u.prefixlen > 0):
            return net
    raise RuntimeError("no free 10.x.y.0/24 subnet for the test switch")


@dataclass
class Host:
    """One namespace on the switch: ``ns`` runs its processes, ``addr`` is its address."""

    name: str
    ns: str
    addr: str
    port: str  # the switch-side veth (cut it to unplug the host)

    def exec_prefix(self) -> list[str]:
        """Prefix a command with this to run it on this host (``ip netns exec``)."""
        return [_ip_binary(), "netns", "exec", self.ns]


@dataclass
class Switch:
    """A bridge in its own namespace, hosts plugged into it, and the test process
    (the root namespace) plugged in too at ``.254``."""

    run_id: str = field(default_factory=lambda: secrets.token_hex(3))
    hosts: dict[str, Host] = field(default_factory=dict)
    subnet: ipaddress.IPv4Network | None = None
    namespaces: list[str] = field(default_factory=list)
    host_veth: str | None = None

    @property
    def sw(self) -> str:
        return f"dg{self.run_id}-sw"

    def create(self) -> Switch:
        """The switch namespace, its bridge and the root namespace's port into it."""
        if os.geteuid() != 0:
            raise RuntimeError("the split-host tests create network namespaces: run them as root")
        self.subnet = _free_subnet()
        try:
            self._add_ns(self.sw)
            ip("link", "add", "br0", "type", "bridge", ns=self.sw)
            ip("link", "set", "br0", "up", ns=self.sw)
            self.host_veth = f"dg{self.run_id}h"
            ip("link", "add", self.host_veth, "type", "veth", "peer", "name", "tohost", "netns", self.sw)
            ip("link", "set", "tohost", "master", "br0", "up", ns=self.sw)
            ip("addr", "add", f"{self._addr(254)}/24", "dev", self.host_veth)
            ip("link", "set", self.host_veth, "up")
        except BaseException as exc:
            self.destroy()
            if isinstance(exc, RuntimeError) and "netns" in str(exc):
                raise RuntimeError(f"{exc}; network namespaces must work here (root, iproute2)") from exc
            raise
        return self

    def _addr(self, n: int) -> str:
        assert self.subnet is not None
        return str(self.subnet.network_address + n)

    def _add_ns(self, ns: str) -> None:
        ip("netns", "add", ns)
        self.namespaces.append(ns)
        ip("link", "set", "lo", "up", ns=ns)

    def add_host(self, name: str) -> Host:
        """A new namespace plugged into the switch, with the next free address."""
        n = len(self.hosts) + 1
        ns = f"dg{self.run_id}-{name}"
        port = f"p{n}"
        self._add_ns(ns)
        ip("link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", port, ns=self.sw)
        ip("link", "set", port, "master", "br0", "up", ns=self.sw)
        ip("addr", "add", f"{self._addr(n)}/24", "dev", "eth0", ns=ns)
        ip("link", "set", "eth0", "up", ns=ns)
        host = Host(name, ns, self._addr(n), port)
        self.hosts[name] = host
        return host

    def mac(self, host: Host) -> str:
        return ip("-j", "link", "show", "eth0", ns=host.ns).stdout.split('"address":"')[1].split('"')[0]

    def pin_neighbours(self, a: Host, b: Host) -> None:
        """Static ARP entries between ``a`` and ``b``: with the link cut, their packets
        then vanish silently (as past a broken router) instead of the kernel failing
        neighbour resolution and reporting "no route to host" after a few seconds."""
        ip("neigh", "replace", b.addr, "lladdr", self.mac(b), "dev", "eth0", "nud", "permanent", ns=a.ns)
        ip("neigh", "replace", a.addr, "lladdr", self.mac(a), "dev", "eth0", "nud", "permanent", ns=b.ns)

    def cut(self, host: Host) -> None:
        """Unplug ``host``: its switch port goes down, its packets are lost."""
        ip("link", "set", host.port, "down", ns=self.sw)

    def restore(self, host: Host) -> None:
        ip("link", "set", host.port, "up", ns=self.sw)

    def destroy(self) -> None:
        """Remove every namespace (their veths go with them) and the root namespace's veth.
        Processes still running in a namespace keep it alive only until they exit:
        stop them first."""
        if self.host_veth is not None:
            ip("link", "del", self.host_veth, check=False)
            self.host_veth = None
        for ns in reversed(self.namespaces):
            ip("netns", "del", ns, check=False)
        self.namespaces.clear()
        self.hosts.clear()
