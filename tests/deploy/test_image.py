"""The docgraph image: `docgraph run` on a mounted folder, non-root, read-only
root filesystem; a worker's HEALTHCHECK and its start-up time to the first read."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from docgraph.core.runtime.connection import connect
from docgraph.core.runtime.jobs import JobStore
from docgraph.core.settings import Settings
from tests.deploy.conftest import inspect, sh, wait_healthy

pytestmark = pytest.mark.service

# Run like in production: nothing writable but the volume and a tmpfs, no capabilities.
LOCKED = ["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true"]

DOCS = {
    "advisory.txt": "APT28 exploited CVE-2021-44228 on Siemens controllers speaking Modbus from 10.1.2.3.\n",
    "sandworm.md": "# Sandworm\n\nSandworm used T1059 against ABB devices over DNP3 (CVE-2019-0708).\n",
    "notes.html": "<html><body><p>Lazarus Group targeted Honeywell via CVE-2020-1472.</p></body></html>",
}


def _docs(folder: Path) -> Path:
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text)
    return folder


def test_run_on_a_mounted_folder_as_non_root_on_a_read_only_root(images, tmp_path, unique) -> None:
    docs = _docs(tmp_path / "docs")
    volume = f"{unique}-data"
    name = f"{unique}-run"
    try:
        started = time.monotonic()
        proc = sh("docker", "run", "--name", name, *LOCKED, "-v", f"{docs}:/docs:ro", "-v", f"{volume}:/data",
                  images, "run", "/docs", "--json", timeout=300)  # fmt: skip
        seconds = time.monotonic() - started
        summary = json.loads(proc.stdout)
        assert summary["states"] == {"completed": len(DOCS)}, summary
        assert sorted(d["name"] for d in summary["documents"]) == sorted(DOCS)
        assert summary["graph"]["Document"] == len(DOCS) and summary["graph"]["MENTIONS"] > 0, summary
        print(f"docker run ... docgraph run /docs ({len(DOCS)} documents): {seconds:.1f} s")

        info = inspect(name)
        assert info["State"]["ExitCode"] == 0
        assert info["HostConfig"]["ReadonlyRootfs"] is True
        assert info["Config"]["User"] == "10001:10001"
        assert info["Config"]["Entrypoint"] == ["docgraph"]
        # What that run wrote (the embedded Redis's AOF, documents, artifacts) belongs to uid 10001 ...
        owners = sh("docker", "run", "--rm", "-v", f"{volume}:/data", "--entrypoint", "find", images,
                    "/data", "-mindepth", "1", "-printf", "%U\\n").stdout.split()  # fmt: skip
        assert owners and set(owners) == {"10001"}, owners
        assert "appendonlydir" in sh("docker", "run", "--rm", "-v", f"{volume}:/data", "--entrypoint", "ls",
                                     images, "/data").stdout  # fmt: skip
        # ... and the same locked-down container can write nowhere else.
        probe = sh("docker", "run", "--rm", *LOCKED, "--entrypoint", "python", images, "-c",
                   "import os\nprint(os.getuid(), os.getgid())\n"
                   "for p in ('/opt/docgraph/x', '/etc/x', '/x'):\n"
                   "    try:\n        open(p, 'w')\n    except OSError as e:\n        print(p, e.errno)\n"
                   "open('/tmp/ok', 'w')\nprint('tmp ok')").stdout.split("\n")  # fmt: skip
        assert probe[0] == "10001 10001"
        assert probe[1:4] == ["/opt/docgraph/x 30", "/etc/x 30", "/x 30"], probe  # EROFS
        assert probe[4] == "tmp ok"
    finally:
        sh("docker", "rm", "-f", "-v", name, check=False)
        sh("docker", "volume", "rm", "-f", volume, check=False)


def test_image_metadata(images) -> None:
    config = inspect(images)["Config"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == "docgraph"
    assert (
        labels["org.opencontainers.image.version"]
        and labels["org.opencontainers.image.revision"] != "unknown"
    )
    assert config["Healthcheck"]["Test"] == ["CMD", "docgraph", "health", "--max-age", "30"]
    assert "DOCGRAPH_HEALTH_FILE=/tmp/docgraph.alive" in config["Env"]
    # one image, every role (the entry point is docgraph), on a read-only root
    roles = "; ".join(
        f"docgraph {r} --help >/dev/null && echo {r}" for r in ("worker", "serve", "run", "monitor", "health")
    )
    ok = sh("docker", "run", "--rm", *LOCKED, "--entrypoint", "sh", images, "-c", roles).stdout.split()
    assert ok == ["worker", "serve", "run", "monitor", "health"], ok
    # the host CA bundle was a build secret: not a file of the image
    found = sh("docker", "run", "--rm", "--entrypoint", "sh", images, "-c",
               "ls /run/secrets 2>/dev/null; grep -rl 'BEGIN CERTIFICATE' /opt/docgraph/pip.conf /etc/pip.conf "
               "2>/dev/null; echo end").stdout.split()  # fmt: skip
    assert found == ["end"], found


async def test_worker_health_and_start_up_to_first_read(images, tmp_path, unique) -> None:
    """A worker container reads its first job within seconds of `docker run`; its
    HEALTHCHECK (`docgraph health`, the liveness file) stays healthy while Redis is
    away, `docgraph health --ready` does not, and a frozen worker fails the check."""
    docs = _docs(tmp_path / "docs")
    net, redis, worker, volume = f"{unique}-net", f"{unique}-redis", f"{unique}-worker", f"{unique}-objects"
    ner = f"{unique}-ner"
    env = ["-e", "DOCGRAPH_REDIS_URL=redis://redis:6379/0"]
    try:
        sh("docker", "network", "create", net)
        sh("docker", "run", "-d", "--name", redis, "--network", net, "--network-alias", "redis",
           "-p", "127.0.0.1::6379", "docgraph-redis:local")  # fmt: skip
        wait_healthy(redis, 60)
        port = sh("docker", "port", redis, "6379").stdout.split(":")[-1].strip()
        submitted = sh("docker", "run", "--rm", *LOCKED, "--network", net, *env, "-v", f"{volume}:/data",
                       "-v", f"{docs}:/docs:ro", images, "submit", "/docs/advisory.txt", "--json").stdout  # fmt: skip
        [job_id] = json.loads(submitted)["jobs"]

        t0 = time.time()
        sh("docker", "run", "-d", "--name", worker, *LOCKED, "--network", net, *env, "-v", f"{volume}:/data",
           "--health-interval", "1s", "--health-start-period", "60s", images, "worker", "--stage", "extract")  # fmt: skip
        client = connect(f"redis://127.0.0.1:{port}/0")
        store = JobStore(client, Settings(redis_url=f"redis://127.0.0.1:{port}/0"))
        deadline = time.monotonic() + 120
        while True:
            job = await store.get(job_id)
            extract = job.stages[0] if job else None
            if extract is not None and extract.started:
                break
            assert time.monotonic() < deadline, (
                f"no read after 120 s: {sh('docker', 'logs', worker).stderr[-2000:]}"
            )
            await asyncio.sleep(0.05)
        first_read = extract.started / 1000 - t0
        print(f"worker start-up to first read: {first_read:.2f} s (docker run -d -> extract started)")
        assert 0 < first_read < 60

        # ner: its first read, and its first result (which includes loading the spaCy pipeline)
        t0 = time.time()
        sh("docker", "run", "-d", "--name", ner, *LOCKED, "--network", net, *env, "-v", f"{volume}:/data",
           images, "worker", "--stage", "ner")  # fmt: skip
        deadline = time.monotonic() + 120
        while True:
            job = await store.get(job_id)
            stage = next(st for st in job.stages if st.name == "ner")
            if stage.finished:
                break
            assert stage.status != "failed" and time.monotonic() < deadline, (
                stage,
                sh("docker", "logs", ner).stderr[-2000:],
            )
            await asyncio.sleep(0.05)
        assert stage.output and stage.output["mentions"] > 0
        print(
            f"ner worker: first read {stage.started / 1000 - t0:.2f} s, first result {stage.finished / 1000 - t0:.2f} s"
        )
        await client.aclose()

        wait_healthy(worker, 60)
        # Liveness does not depend on Redis: with Redis gone the worker stays healthy ...
        sh("docker", "stop", "-t", "5", redis)
        await asyncio.sleep(3)
        assert sh("docker", "exec", worker, "docgraph", "health", check=False).returncode == 0
        assert inspect(worker)["State"]["Health"]["Status"] == "healthy"
        # ... readiness does.
        assert sh("docker", "exec", worker, "docgraph", "health", "--ready", check=False).returncode == 1
        # A frozen worker stops touching the file: the check fails.
        sh("docker", "kill", "--signal", "STOP", worker)
        await asyncio.sleep(4)
        stale = sh("docker", "exec", worker, "docgraph", "health", "--max-age", "2", check=False)
        sh("docker", "kill", "--signal", "CONT", worker)
        assert stale.returncode == 1, stale
    finally:
        for c in (worker, ner, redis):
            sh("docker", "rm", "-f", "-v", c, check=False)
        sh("docker", "volume", "rm", "-f", volume, check=False)
        sh("docker", "network", "rm", net, check=False)
