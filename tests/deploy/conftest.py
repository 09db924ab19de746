"""Fixtures for the container tests: the images, built (cached) by the
project's own script, and small helpers around the docker CLI.

The engine and the images come from deploy/docker/engine.sh and
deploy/docker/build.sh (deploy/test.sh runs them before pytest); the
``images`` fixture runs build.sh once more, which with everything cached only
checks (a few seconds), so the tests always run the image of this tree."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.containers import pid_alive

ROOT = Path(__file__).resolve().parents[2]


def sh(*args: str, timeout: float = 120, check: bool = True, **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure the assertion shows its output."""
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    if check:
        assert proc.returncode == 0, (
            f"{' '.join(args)} -> {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def inspect(container: str) -> dict[str, Any]:
    return json.loads(sh("docker", "inspect", container).stdout)[0]


def wait_healthy(container: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        state = inspect(container)["State"]
        health = state.get("Health", {}).get("Status")
        if health == "healthy":
            return
        assert state["Status"] == "running", (
            f"{container} is {state['Status']}: {sh('docker', 'logs', container).stderr[-2000:]}"
        )
        assert time.monotonic() < deadline, f"{container} not healthy after {timeout}s: {state.get('Health')}"
        time.sleep(0.5)


@pytest.fixture(scope="session")
def images() -> str:
    """The docgraph image reference (and the service images), from deploy/docker/build.sh."""
    if shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True).returncode:
        pytest.skip("no Docker engine: run deploy/docker/engine.sh (deploy/test.sh does)")
    proc = sh(str(ROOT / "deploy/docker/build.sh"), "services", timeout=3600)
    return proc.stdout.strip().splitlines()[-1]


def remove_stale(prefix: str = "dgt-") -> list[str]:
    """Containers, volumes and networks named ``dgt-<pid>-...`` (compose projects
    and ``docker run`` names of these tests) whose test process is gone: what an
    interrupted run left behind."""
    stale = set()
    for kind in ("container", "volume", "network"):
        fmt = "{{.Name}}" if kind != "container" else "{{.Names}}"
        args = ["docker", kind, "ls", "--format", fmt] + (["-a"] if kind == "container" else [])
        for name in sh(*args, check=False).stdout.split():
            parts = name.split("-")
            if (
                name.startswith(prefix)
                and len(parts) > 2
                and parts[1].isdigit()
                and not pid_alive(int(parts[1]))
            ):
                stale.add((kind, name))
    order = ("container", "network", "volume")  # containers first: they hold the others
    for kind, name in sorted(stale, key=lambda kn: order.index(kn[0])):
        flags = {"container": ["-f", "-v"], "volume": ["-f"], "network": []}[
            kind
        ]  # -v: anonymous volumes too
        sh("docker", kind, "rm", *flags, name, check=False)
    return sorted(name for _, name in stale)


@pytest.fixture
def unique(images) -> str:
    """A name for this test's containers, volumes and networks: ``dgt-<pid>-<n>``."""
    remove_stale()
    return f"dgt-{os.getpid()}-{time.monotonic_ns() % 10**6}"
