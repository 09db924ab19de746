"""`docgraph run`'s child processes (embedded redis-server, helper workers) do not
outlive it, even when it is killed with SIGKILL (Linux: PR_SET_PDEATHSIG)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")


def _children(pid: int) -> dict[int, str]:
    """Direct children of ``pid`` and their command lines."""
    kids = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                raw = Path(f"/proc/{child}/cmdline").read_bytes()
                kids[int(child)] = raw.replace(b"\0", b" ").strip().decode(errors="replace")
            except OSError:
                pass
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent (now init) has not reaped it


def test_children_die_with_a_killed_run(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(40):
        (docs / f"note-{i}.txt").write_text(f"Siemens S7 PLCs speaking Modbus, note {i}. " * 400)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCGRAPH_")}  # the embedded default
    env["DOCGRAPH_RUN_PROCESSES"] = "2"
    run = subprocess.Popen(
        [sys.executable, "-m", "docgraph.core.cli", "run", str(docs)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:  # both children up: redis-server and one helper worker
            kids = _children(run.pid)
            if any("redis-server" in c for c in kids.values()) and any(" worker" in c for c in kids.values()):
                break
            assert run.poll() is None and time.monotonic() < deadline, (
                "docgraph run did not start its children"
            )
            time.sleep(0.1)
    finally:
        run.kill()
        run.wait()
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in kids):
        if time.monotonic() > deadline:
            for pid in kids:  # do not leave them behind, then fail
                if _alive(pid):
                    os.kill(pid, 9)
            pytest.fail(f"children outlived a killed docgraph run: {kids}")
        time.sleep(0.1)
