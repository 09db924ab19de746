"""DOCGRAPH_TEST_SERVICES=containers: the suite's service fixtures start Redis,
Neo4j, the S3 server and Jaeger through testcontainers from the local images,
the end-to-end store test passes on them, and no container outlives its run,
even one that was SIGKILLed."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest

from tests import containers
from tests.deploy.conftest import ROOT, sh

pytestmark = pytest.mark.service


def _env(**extra: str) -> dict[str, str]:
    """This environment without the local services' DOCGRAPH_TEST_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCGRAPH_TEST_")}
    return env | {"DOCGRAPH_TEST_SERVICES": "containers", "TESTCONTAINERS_RYUK_DISABLED": "true", **extra}


def _owned_by(pid: int) -> list[str]:
    return sh("docker", "ps", "-aq", "--filter", f"label={containers.OWNER_LABEL}={pid}").stdout.split()


@pytest.mark.slow
def test_e2e_store_test_passes_on_containers(images) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/stages/test_e2e_stores.py",
            "-q",
            "-p",
            "no:cacheprovider",
            "-rA",
        ],
        cwd=ROOT,
        env=_env(DOCGRAPH_CI="1"),  # skips count as failures there too
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        out, _ = proc.communicate(timeout=1500)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(60)
    assert proc.returncode == 0, out[-5000:]
    summary = out.strip().splitlines()[-1]
    assert re.fullmatch(r"1 passed in [0-9.]+s( \(.*\))?", summary), out[-3000:]  # nothing skipped or failed
    assert (
        "PASSED tests/stages/test_e2e_stores.py::test_200_documents_into_neo4j_twice_changes_nothing" in out
    )
    assert _owned_by(proc.pid) == []  # the session removed its containers


def test_containers_of_a_killed_session_are_removed_by_the_next(images) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import time\nfrom tests import containers\ncontainers.start_from_env()\n"
         "print('up', flush=True)\ntime.sleep(600)"],
        cwd=ROOT, env=_env(DOCGRAPH_TEST_CONTAINERS="redis,s3"), stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "up"
        left = _owned_by(child.pid)
        assert len(left) == 2
        for name in left:  # published on loopback only
            ports = sh("docker", "port", name).stdout.split()
            assert ports and all(p.startswith("127.0.0.1:") for p in ports if ":" in p), ports
        child.send_signal(signal.SIGKILL)  # no cleanup of its own can run
        child.wait(30)
        assert len(_owned_by(child.pid)) == 2
        removed = containers.remove_leftovers()  # what the next session does first
        assert len(removed) >= 2
        assert _owned_by(child.pid) == []
    finally:
        if child.poll() is None:
            child.kill()
        for name in _owned_by(child.pid):
            sh("docker", "rm", "-f", "-v", name, check=False)
