"""What a newcomer hits after ``docgraph run``: the commands it invites open its
embedded data, an unreachable Redis is one line and exit 3, a worker started
before its Redis waits for it.  Real processes and real redis-servers; every
data dir is a tmp dir (never the repo's .docgraph)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from docgraph.core.runtime.connection import connect
from docgraph.core.runtime.embedded import EmbeddedRedis
from docgraph.core.runtime.jobs import JobStore
from tests.conftest import ROOT, worker_env
from tests.redis_server import RedisServer, free_port
from tests.runtime.helpers import wait_for_states

CLI = [sys.executable, "-m", "docgraph.core.cli"]


def embedded_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """No DOCGRAPH_REDIS_URL: the embedded default on ``data_dir``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCGRAPH_")}
    return {**env, "PYTHONPATH": str(ROOT), "DOCGRAPH_DATA_DIR": str(data_dir), "COLUMNS": "200", **extra}


def cli(*args: str, env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def no_server_left(data_dir: Path) -> None:
    """The command stopped the server it started: no record, the lock is free."""
    assert not (data_dir / "redis.json").exists()
    probe = EmbeddedRedis(data_dir)
    assert probe._own()  # nobody holds the data dir any more
    probe._release()


def table_row(screen: str, first: str) -> list[str]:
    line = next(ln for ln in screen.splitlines() if ln.strip().startswith(f"│ {first} "))
    return [c.strip() for c in line.split("│")[1:-1]]


def test_after_run_the_invited_commands_open_its_data(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "manual.txt").write_text(
        "Siemens S7-1500 PLC manual: configure Modbus TCP on port 502, firmware update procedure. " * 20
    )
    (docs / "invoice.txt").write_text("Invoice 2291. Total due: 1,200 EUR. Payment within 30 days. " * 10)
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 cut short")
    data = tmp_path / "state"
    env = embedded_env(data, DOCGRAPH_RUN_PROCESSES="1")

    run = cli("run", str(docs), env=env, cwd=tmp_path, timeout=300)
    assert run.returncode == 1, run.stderr  # one job failed
    assert (data / "appendonlydir").is_dir()
    no_server_left(data)
    # the failure line names the document, not only the job id
    [failure] = [ln for ln in run.stdout.splitlines() if ln.startswith("failed ")]
    job_id = re.search(r"\(job ([0-9a-f]+)\)", failure).group(1)  # type: ignore[union-attr]
    assert failure.startswith(f"failed broken.pdf (job {job_id}) at extract: ") and "truncated" in failure
    assert f"docgraph status {job_id}" in run.stderr and "docgraph dlq list extract" in run.stderr
    # the results table: a confidence is averaged, never summed; counts are totalled
    confidences = [float(table_row(run.stdout, n)[3]) for n in ("manual.txt", "invoice.txt")]
    measure, n, total, mean, low, high = table_row(run.stdout, "classify.confidence")
    assert (n, total) == ("2", "")
    assert float(mean) == pytest.approx(sum(confidences) / 2, abs=0.001)
    assert (float(low), float(high)) == (min(confidences), max(confidences))
    chunks = [int(table_row(run.stdout, n)[4]) for n in ("manual.txt", "invoice.txt")]
    assert table_row(run.stdout, "extract.chunks")[2] == str(sum(chunks))

    # what the output invites, with DOCGRAPH_REDIS_URL unset: each opens the embedded data
    status = cli("status", job_id, "--json", env=env, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["state"] == "failed"
    assert "started for this command" in status.stderr
    failed = cli("jobs", "--state", "failed", "--json", env=env, cwd=tmp_path)
    assert [j["id"] for j in json.loads(failed.stdout)["jobs"]] == [job_id]
    letters = json.loads(cli("dlq", "list", "extract", "--json", env=env, cwd=tmp_path).stdout)
    assert [lt["job_id"] for lt in letters] == [job_id]
    screen = cli("monitor", "--once", env=env, cwd=tmp_path)
    assert screen.returncode == 0 and "recent failures" in screen.stdout
    assert table_row(screen.stdout, "extract")[3] == "1"  # one dead letter
    assert cli("cancel", "nope", env=env, cwd=tmp_path).returncode == 1  # reached Redis: no such job
    no_server_left(data)


def test_a_run_where_every_document_fails_still_prints_its_summary(tmp_path: Path) -> None:
    # nothing reaches ingest, so the embedded graph was never created: counts are zero
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "empty.txt").write_text("")
    data = tmp_path / "state"
    run = cli("run", str(docs), env=embedded_env(data, DOCGRAPH_RUN_PROCESSES="1"), cwd=tmp_path, timeout=300)
    assert run.returncode == 1, run.stderr  # the job failed; the run did not crash
    assert "Traceback" not in run.stderr and "graph: Document 0, Chunk 0, Entity 0" in run.stdout
    assert "failed empty.txt" in run.stdout
    no_server_left(data)


def test_a_live_server_on_the_data_dir_is_shared_never_doubled(tmp_path: Path) -> None:
    data = tmp_path / "state"
    owner = EmbeddedRedis(data, graph=False)  # this test process plays a running `docgraph run`
    url = owner.start()
    try:
        record = json.loads((data / "redis.json").read_text())
        assert record["owner"] == os.getpid() and record["port"] == owner.port
        redis.Redis.from_url(url).set("docgraph:marker", "1")
        env = embedded_env(data)
        status = cli("status", "nope", env=env, cwd=tmp_path)
        assert status.returncode == 1 and "no job nope" in status.stderr  # it reached a Redis
        assert f"shared with {record['command']}, pid {os.getpid()}" in status.stderr
        assert redis.Redis.from_url(url).get("docgraph:marker") == b"1"  # ours, still up
        # `docgraph run` on the same data dir refuses: one server per data dir
        (tmp_path / "a.txt").write_text("hello")
        refused = cli("run", str(tmp_path / "a.txt"), env=env, cwd=tmp_path)
        assert refused.returncode == 3
        assert f"in use by pid {os.getpid()}" in refused.stderr and "Traceback" not in refused.stderr
        assert redis.Redis.from_url(url).ping()
    finally:
        owner.stop()
    no_server_left(data)
    # a record left by a killed owner (dead pid) is stale: the next command starts its own server
    (data / "redis.json").write_text(
        json.dumps({"pid": 2**22 + 1, "port": 1, "owner": 2**22 + 1, "command": "x"})
    )
    status = cli("status", "nope", env=embedded_env(data), cwd=tmp_path)
    assert status.returncode == 1 and "started for this command" in status.stderr, status.stderr
    no_server_left(data)


def test_commands_attach_to_a_running_docgraph_run(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(150):  # long enough to be running while the other command looks
        (docs / f"note-{i}.txt").write_text(f"Siemens S7 PLCs speaking Modbus, note {i}. " * 400)
    data = tmp_path / "state"
    env = embedded_env(data, DOCGRAPH_RUN_PROCESSES="1")
    run = subprocess.Popen(
        [*CLI, "run", str(docs)], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while (EmbeddedRedis(data).owner() or {}).get("owner") != run.pid:
            assert run.poll() is None and time.monotonic() < deadline, "docgraph run did not start its Redis"
            time.sleep(0.1)
        server = redis.Redis(port=EmbeddedRedis(data).owner()["port"])  # type: ignore[index]
        while not (keys := server.keys("*:job:*")):  # run has submitted its first job
            assert run.poll() is None and time.monotonic() < deadline, "docgraph run submitted nothing"
            time.sleep(0.1)
        job_id = keys[0].decode().rsplit(":", 1)[1]
        status = cli("status", job_id, "--json", env=env, cwd=tmp_path)
        assert status.returncode == 0, status.stderr  # run's job, seen from another command
        assert json.loads(status.stdout)["id"] == job_id
        assert f"shared with docgraph run, pid {run.pid}" in status.stderr
        assert run.poll() is None and server.ping()  # its server is left running
    finally:
        run.terminate()
        run.wait(60)
    no_server_left(data)


def test_unreachable_redis_is_one_line_and_exit_3(tmp_path: Path) -> None:
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    env = {**embedded_env(tmp_path / "none"), "DOCGRAPH_REDIS_URL": url}
    (tmp_path / "a.txt").write_text("hello")
    commands = [
        ("status", "x"),
        ("jobs", "--state", "failed"),
        ("cancel", "x"),
        ("submit", str(tmp_path / "a.txt")),
        ("monitor", "--once"),
        ("dlq", "list", "ner"),
        ("dlq", "show", "ner", "0/1-0"),
        ("dlq", "replay", "ner", "--all"),
        ("dlq", "purge", "ner", "--yes"),
    ]
    procs = [
        subprocess.Popen(
            [*CLI, *c], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for c in commands
    ]
    for command, proc in zip(commands, procs, strict=True):
        out, errs = proc.communicate(timeout=120)
        assert proc.returncode == 3, (command, errs)
        lines = [ln for ln in errs.splitlines() if ln.strip()]
        assert len(lines) == 1, (command, errs)
        [line] = lines
        assert url.replace("s3cret", "***") in line and "s3cret" not in line, (command, line)
        assert "DOCGRAPH_REDIS_URL" in line and "exit status 3" in line, (command, line)
    # a Redis that answers but refuses the password: the same one line, saying so
    server = RedisServer(tmp_path / "redis").start()
    try:
        redis.Redis.from_url(server.url).config_set("requirepass", "right")
        wrong = server.url.replace("redis://", "redis://:wrong@")
        denied = cli("status", "x", env={**env, "DOCGRAPH_REDIS_URL": wrong}, cwd=tmp_path)
        assert denied.returncode == 3, denied.stderr
        [line] = [ln for ln in denied.stderr.splitlines() if ln.strip()]
        assert "put the right user and password in DOCGRAPH_REDIS_URL" in line and "wrong" not in line
    finally:
        server.stop()


def _wait_for_text(path: Path, text: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text not in path.read_text(errors="replace"):
        assert proc.poll() is None, path.read_text(errors="replace")
        assert time.monotonic() < deadline, path.read_text(errors="replace")
        time.sleep(0.1)


def _start_worker(settings, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = worker_env(settings, DOCGRAPH_REDIS_URL=f"redis://127.0.0.1:{port}/0")
    with open(log, "wb") as out:
        return subprocess.Popen([*CLI, "worker"], env=env, stdout=out, stderr=subprocess.STDOUT)


async def test_worker_started_before_redis_waits_then_works(settings, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "worker.log"
    proc = _start_worker(settings, port, log)
    server = None
    try:
        _wait_for_text(log, "does not answer", proc)
        await asyncio.sleep(1.5)  # a few more attempts: still waiting, still one line
        assert proc.poll() is None
        assert log.read_text().count("does not answer") == 1 and "Traceback" not in log.read_text()
        server = RedisServer(tmp_path / "redis", port=port).start()
        client = connect(server.url)
        try:
            store = JobStore(client, settings.model_copy(update={"redis_url": server.url}))
            job, _ = await store.submit(None)
            assert await wait_for_states(store, [job], {"completed"}, timeout=60) == {job: "completed"}
        finally:
            await client.aclose()
        assert "answers after" in log.read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if server is not None:
            server.stop()


def test_sigterm_while_waiting_for_redis_exits_0(settings, tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    proc = _start_worker(settings, free_port(), log)
    try:
        _wait_for_text(log, "does not answer", proc)
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert proc.wait(10) == 0, log.read_text()
        assert time.monotonic() - started < 5  # not after the next backoff round or more
        assert "Traceback" not in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
