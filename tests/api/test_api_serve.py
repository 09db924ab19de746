"""`docgraph serve` as a real process: env configuration, tokens, SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx

from tests.conftest import worker_env
from tests.redis_server import free_port


def test_docgraph_serve_process(settings, tmp_path):
    port = free_port()
    env = worker_env(
        settings,
        DOCGRAPH_API_TOKENS='["cli-token"]',
        DOCGRAPH_OBJECT_STORE_URL=(tmp_path / "objects").as_uri(),
    )
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "docgraph.core.cli", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "docgraph serve did not become ready"
            time.sleep(0.1)
        assert httpx.get(f"{url}/v1/jobs", params={"state": "queued"}).status_code == 401
        r = httpx.post(
            f"{url}/v1/jobs",
            files={"file": ("a.txt", b"hello")},
            headers={"Authorization": "Bearer cli-token"},
        )
        assert r.status_code == 202, r.text
        assert (
            httpx.get(r.headers["location"], headers={"Authorization": "Bearer cli-token"}).json()["state"]
            == "queued"
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        log.close()


def test_docgraph_serve_refuses_a_bad_store_url(settings, tmp_path):
    env = worker_env(settings, DOCGRAPH_OBJECT_STORE_URL="ftp://nowhere/x")
    done = subprocess.run(
        [sys.executable, "-m", "docgraph.core.cli", "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "DOCGRAPH_OBJECT_STORE_URL" in done.stderr


def _peak_rss_kb(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_100_mb_upload_is_streamed_not_held_in_memory(settings, tmp_path):
    port = free_port()
    env = worker_env(
        settings,
        DOCGRAPH_OBJECT_STORE_URL=(tmp_path / "objects").as_uri(),
        DOCGRAPH_MAX_DOCUMENT_BYTES=str(200 * 1024 * 1024),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "docgraph.core.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    big = tmp_path / "big.bin"
    with big.open("wb") as f:
        for _ in range(100):
            f.write(os.urandom(1024 * 1024))
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.1)
        # warm up the upload path once, then measure the peak over a 100 MB upload
        assert httpx.post(f"{url}/v1/jobs", files={"file": ("w.txt", b"warm")}).status_code == 202
        before = _peak_rss_kb(proc.pid)
        with big.open("rb") as f:
            r = httpx.post(f"{url}/v1/jobs", files={"file": ("big.bin", f)}, timeout=120)
        assert r.status_code == 202, r.text
        grown_mb = (_peak_rss_kb(proc.pid) - before) / 1024
        assert grown_mb < 30, f"peak RSS grew {grown_mb:.0f} MB during a 100 MB upload"
        stored = list((tmp_path / "objects" / "documents").rglob("*"))
        assert any(p.is_file() and p.stat().st_size == 100 * 1024 * 1024 for p in stored)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
