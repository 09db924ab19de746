"""The real `docgraph` command as a subprocess, and the monitor in a pseudo-terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from docgraph.core.runtime.jobs import JobStore
from tests.conftest import run_cli, worker_env
from tests.runtime.helpers import running_worker, wait_for_states


def docgraph(
    settings, *args: str, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_cli({**worker_env(settings, **(env or {})), "COLUMNS": "200"}, *args, timeout=timeout)


async def test_submit_status_jobs_cancel_dlq(settings, client, tmp_path):
    settings = settings.model_copy(update={"object_store_url": (tmp_path / "objects").as_uri()})
    doc = tmp_path / "a.txt"
    doc.write_text("hello")
    env_extra = {"DOCGRAPH_OBJECT_STORE_URL": settings.object_store_url}
    os.environ.update(env_extra)
    try:
        out = docgraph(settings, "submit", str(doc), "--json")
    finally:
        for k in env_extra:
            os.environ.pop(k)
    assert out.returncode == 0, out.stderr
    [job_id] = json.loads(out.stdout)["jobs"]
    store = JobStore(client, settings)
    async with running_worker(settings, client):
        await wait_for_states(store, [job_id], {"completed"})
    status = docgraph(settings, "status", job_id, "--json")
    data = json.loads(status.stdout)
    assert data["state"] == "completed" and len(data["trace_id"]) == 32
    assert [s["status"] for s in data["stages"]] == ["done"] * 4
    listing = json.loads(docgraph(settings, "jobs", "--state", "completed", "--json").stdout)
    assert job_id in [j["id"] for j in listing["jobs"]]
    window = ("--since", "2020-01-01T00:00:00", "--until", "2999-01-01T00:00:00+00:00", "--json")
    assert job_id in [
        j["id"]
        for j in json.loads(docgraph(settings, "jobs", "--state", "completed", *window).stdout)["jobs"]
    ]
    later = json.loads(
        docgraph(settings, "jobs", "--state", "completed", "--since", "2999-01-01", "--json").stdout
    )
    assert later["jobs"] == []
    wrong = docgraph(settings, "jobs", "--state", "completed", "--stage", "ner")
    assert wrong.returncode == 2 and "applies to" in wrong.stderr
    missing = docgraph(settings, "status", "nope")
    assert missing.returncode == 1 and "no job nope" in missing.stderr
    assert docgraph(settings, "jobs", "--state", "bogus").returncode == 2
    queued, _ = await store.submit(None)
    cancel = docgraph(settings, "cancel", queued)
    assert cancel.returncode == 0 and "now cancelled" in cancel.stdout
    assert docgraph(settings, "dlq", "purge", "ner").returncode == 2  # needs --yes
    assert docgraph(settings, "dlq", "purge", "ner", "--yes").returncode == 0


def test_every_command_has_help_with_an_example(settings):
    for cmd in (
        "run",
        "worker",
        "submit",
        "status",
        "jobs",
        "cancel",
        "monitor",
        "events",
        "serve",
        "asyncapi",
        "health",
        "dlq list",
        "dlq replay",
        "ner eval",
        "ner cv",
        "classify train",
        "config show",
    ):
        out = docgraph(settings, *cmd.split(), "--help")
        assert out.returncode == 0, (cmd, out.stderr)
        assert "Example" in out.stdout, cmd


async def test_monitor_once_shows_queues_states_and_failures(settings, client):
    store = JobStore(client, settings)
    ok = [(await store.submit(None))[0] for _ in range(3)]
    bad, _ = await store.submit(None, metadata={"permanent": {"extract": "encrypted; decrypt it first"}})
    async with running_worker(settings, client):
        await wait_for_states(store, [*ok, bad], {"completed", "failed"})
    await store.submit(None)  # one waiting
    screen = docgraph(settings, "monitor", "--once").stdout
    for text in ("stages", "extract", "jobs by state", "recent failures", "encrypted; decrypt it first"):
        assert text in screen, (text, screen)
    row = next(line for line in screen.splitlines() if line.strip().startswith("│ extract"))
    assert row.split("│")[2].strip() == "1"  # waiting
    assert row.split("│")[4].strip() == "1"  # dead letters


def test_monitor_live_in_a_pty(settings):
    pexpect = pytest.importorskip("pexpect")
    env = {**worker_env(settings), "COLUMNS": "120", "LINES": "40", "TERM": "xterm"}
    child = pexpect.spawn(
        sys.executable,
        ["-m", "docgraph.core.cli", "monitor", "--interval", "0.3"],
        env=env,
        dimensions=(40, 120),
        encoding="utf-8",
        timeout=30,
    )
    child.expect("docgraph monitor")
    child.expect("jobs by state")
    time.sleep(1)
    child.sendcontrol("c")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_health_reads_the_liveness_file_and_readiness_pings_redis(settings, tmp_path):
    alive = tmp_path / "alive"
    env = {"DOCGRAPH_HEALTH_FILE": str(alive)}
    missing = docgraph(settings, "health", env=env)
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    proc = subprocess.Popen(
        [sys.executable, "-m", "docgraph.core.cli", "worker", "--upkeep-only"],
        env=worker_env(settings, **env),
    )
    try:
        deadline = time.monotonic() + 30
        while not alive.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert docgraph(settings, "health", env=env).returncode == 0
        assert docgraph(settings, "health", "--ready", env=env).returncode == 0
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
    assert not alive.exists()  # removed on a clean stop
    alive.touch()
    os.utime(alive, (time.time() - 120, time.time() - 120))
    stale = docgraph(settings, "health", "--max-age", "30", env=env)
    assert stale.returncode == 1 and "stuck" in stale.stderr
    alive.touch()
    down = docgraph(settings, "health", "--ready", env={**env, "DOCGRAPH_REDIS_URL": "redis://127.0.0.1:1/0"})
    assert down.returncode == 1 and "DOCGRAPH_REDIS_URL" in down.stderr
    assert docgraph(settings, "health", env={}).returncode == 1
    assert docgraph(settings, "worker", "--upkeep-only", "--stage", "ner").returncode == 2
