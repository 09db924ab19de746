"""Least-privilege ACL users (``docgraph acl``) on a real redis-server: each role,
with only the grants the command printed, does its job end to end, and Redis
logs no denied command for it (``ACL LOG``); a publisher reading a job record,
deleting a stream or flushing the database is refused (NOPERM)."""

from __future__ import annotations

import asyncio
import json
import shlex
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from docgraph.core.runtime.connection import NotReplicated, connect
from docgraph.core.runtime.jobs import JobStore
from docgraph.core.runtime.keys import Keys
from docgraph.core.settings import Settings
from tests.api.conftest import serve, submit_and_wait
from tests.conftest import run_cli as docgraph
from tests.conftest import worker_env
from tests.runtime.procs import WorkerProcs
from tests.runtime.test_notify import SECRET as WEBHOOK_SECRET
from tests.runtime.test_notify import Receiver, verified
from tests.security.tls import DebianRedis

pytestmark = pytest.mark.service
TOPOLOGY = {"a": [], "b": ["a"]}
ROLES = ("publisher", "submitter", "worker", "api", "monitor")
TOKEN = "acl-test-token"


@dataclass
class Deployment:
    """One redis-server with the five role users, and a worker running as ``docgraph-worker``."""

    server: DebianRedis
    settings: Settings  # as the default (admin) user: the test's own view
    workdir: Path
    passwords: dict[str, str]

    def url(self, role: str) -> str:
        return f"redis://docgraph-{role}:{self.passwords[role]}@127.0.0.1:{self.server.port}/0"

    def as_role(self, role: str, **update: object) -> Settings:
        return self.settings.model_copy(update={"redis_url": self.url(role), **update})

    def env(self, role: str, **extra: str) -> dict[str, str]:
        return worker_env(
            self.as_role(role),
            DOCGRAPH_TOPOLOGY=json.dumps(TOPOLOGY),
            DOCGRAPH_OBJECT_STORE_URL=self.settings.object_store_url,
            DOCGRAPH_TEST_EFFECTS_URL=self.server.url,  # the test stages' counters: admin
            DOCGRAPH_GRAPH_SINK="neo4j",  # never used by the test stages; Debian's Redis has no FalkorDB
            DOCGRAPH_PARTITIONS=str(self.settings.partitions),  # worker_env does not pass it
            # the worker delivers webhooks too (notify): its grants cover that
            DOCGRAPH_NOTIFY__CALLBACK_SECRET=WEBHOOK_SECRET,
            DOCGRAPH_NOTIFY__ALLOW_PRIVATE_TARGETS="true",
            **extra,
        )

    def admin(self) -> redis.Redis:
        return self.server.admin()

    def denied(self, role: str) -> list[dict[str, object]]:
        """What Redis refused ``docgraph-<role>`` so far (``ACL LOG``)."""
        return [e for e in self.admin().acl_log(count=1000) if e["username"] == f"docgraph-{role}"]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    workdir = tmp_path_factory.mktemp("acl")
    server = DebianRedis(workdir / "redis").start()
    settings = Settings(
        redis_url=server.url,
        key_prefix=f"t{uuid.uuid4().hex[:10]}",
        partitions=2,
        plugins=["tests.stageplugin"],
        topology=TOPOLOGY,
        poll_interval=0.2,
        visibility_timeout=5,
        retry={"attempts": 3, "backoff": 0.05, "backoff_max": 0.2, "jitter": 0.2},
        object_store_url=(workdir / "objects").as_uri(),
        api_tokens=[TOKEN],
        graph_sink="neo4j",
    )
    try:
        d = Deployment(server, settings, workdir, {r: f"pw-{r}-{uuid.uuid4().hex[:8]}" for r in ROLES})
        admin = d.admin()
        for role in ROLES:
            env = {**d.env(role), "ROLE_PW": d.passwords[role]}
            out = docgraph(env, "acl", "--role", role, "--password-env", "ROLE_PW")
            assert out.returncode == 0, out.stderr
            lines = out.stdout.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith(f"ACL SETUSER docgraph-{role} reset on #"), (
                out.stdout
            )
            assert d.passwords[role] not in out.stdout
            admin.execute_command(*shlex.split(lines[0]))
        admin.acl_log_reset()
        admin.close()
        yield d
    finally:
        server.stop()  # also when setting the users up fails


@pytest.fixture(scope="module")
def worker(deployment: Deployment) -> Iterator[WorkerProcs]:
    """A real ``docgraph worker`` connected as ``docgraph-worker``."""
    procs = WorkerProcs(deployment.as_role("worker"), deployment.workdir)
    procs.env = deployment.env("worker")
    procs.start(1)
    yield procs
    codes = procs.stop(timeout=60)
    assert deployment.denied("worker") == [], procs.logs()
    assert codes == [0], procs.logs()
    assert "Traceback" not in procs.logs(), procs.logs()


def event(job_id: str, metadata: dict[str, object] | None = None) -> str:
    """A root event as any system publishes it (README: plain JSON, no SDK)."""
    doc = {"v": 1, "job_id": job_id, "stage": "a", "document": {"uri": "file:///dev/null"}}
    return json.dumps({**doc, "metadata": metadata or {}})


def wait_completed(
    d: Deployment, job_ids: list[str], worker: WorkerProcs, timeout: float = 60
) -> dict[str, dict[bytes, bytes]]:
    keys = Keys(d.settings.key_prefix, d.settings.partitions)
    admin = d.admin()
    deadline = time.monotonic() + timeout
    while True:
        records = {j: admin.hgetall(keys.for_job(j).job(j)) for j in job_ids}
        if all(r.get(b"state") == b"completed" for r in records.values()):
            return records
        if time.monotonic() > deadline or not worker.alive():
            states = {j: r.get(b"state") for j, r in records.items()}
            raise AssertionError(f"{states}\ndenied: {d.denied('worker')}\n{worker.logs()}")
        time.sleep(0.1)


def test_the_worker_role_runs_jobs_through_retries(deployment: Deployment, worker: WorkerProcs):
    """Submitted as admin: the worker user reads, hands off, retries (RETRY + PROMOTE), completes."""
    admin = deployment.admin()
    keys = Keys(deployment.settings.key_prefix, deployment.settings.partitions)
    ids = []
    for i in range(6):
        job_id = f"w{i}-{uuid.uuid4().hex[:6]}"
        meta = {"fail": {"b": 1}} if i % 2 else {}
        admin.xadd(keys.for_job(job_id).stream("a", "normal"), {"payload": event(job_id, meta)})
        ids.append(job_id)
    records = wait_completed(deployment, ids, worker)
    for i, job_id in enumerate(ids):
        assert records[job_id][b"b:attempts"] == (b"2" if i % 2 else b"1")
    assert deployment.denied("worker") == [], worker.logs()


async def test_the_worker_role_delivers_webhooks(deployment: Deployment, worker: WorkerProcs):
    """The worker also runs notify (a callback secret is set): with its grants it fans
    events out and delivers a job's callback."""
    receiver = Receiver().start()
    try:
        settings = deployment.settings.model_copy(
            update={"notify": Settings(notify={"callback_secret": WEBHOOK_SECRET}).notify}
        )
        client = connect(settings)
        try:
            job_id, _ = await JobStore(client, settings).submit(None, callback_url=receiver.url("/acl"))
        finally:
            await client.aclose()
        deadline = time.monotonic() + 60
        while not receiver.on("/acl"):
            assert time.monotonic() < deadline and worker.alive(), worker.logs()
            await asyncio.sleep(0.1)
        body = verified(receiver.on("/acl")[0])
        assert (body["type"], body["data"]["job_id"]) == ("job.completed", job_id)
    finally:
        receiver.stop()
    assert deployment.denied("worker") == [], worker.logs()


def test_a_publisher_may_only_xadd_to_root_streams(deployment: Deployment, worker: WorkerProcs):
    keys = Keys(deployment.settings.key_prefix, deployment.settings.partitions)
    pub = redis.Redis.from_url(deployment.url("publisher"), socket_timeout=5)
    job_id = f"pub-{uuid.uuid4().hex[:6]}"
    part = keys.for_job(job_id)
    pub.xadd(part.stream("a", "high"), {"payload": event(job_id)})
    wait_completed(deployment, [job_id], worker)
    refused = {
        "HGETALL job record": lambda: pub.hgetall(part.job(job_id)),
        "DEL a stream": lambda: pub.delete(part.stream("a", "high")),
        "FLUSHALL": lambda: pub.flushall(),
        "XADD to a non-root stage": lambda: pub.xadd(part.stream("b", "normal"), {"payload": "{}"}),
        "XRANGE a root stream": lambda: pub.xrange(part.stream("a", "high")),
        "KEYS": lambda: pub.keys("*"),
        "CONFIG GET": lambda: pub.config_get("*"),
    }
    for what, call in refused.items():
        with pytest.raises(redis.exceptions.NoPermissionError):
            call()
            pytest.fail(f"{what} was allowed")
    assert deployment.admin().exists(part.job(job_id))  # nothing was deleted


def test_a_submitter_submits_with_docgraph_submit_and_waits(deployment: Deployment, worker: WorkerProcs):
    doc = deployment.workdir / "report.txt"
    doc.write_text("a report")
    out = docgraph(deployment.env("submitter"), "submit", str(doc), "--wait", "--json")
    assert out.returncode == 0, out.stderr
    assert deployment.denied("submitter") == []
    # latest wins (the same file twice: the first is cancelled in the second's SUBMIT)
    out = docgraph(deployment.env("submitter"), "submit", str(doc), str(doc), "--latest-wins", "--json")
    assert out.returncode == 0, out.stderr
    assert deployment.denied("submitter") == []
    sub = redis.Redis.from_url(deployment.url("submitter"), socket_timeout=5)
    with pytest.raises(redis.exceptions.NoPermissionError):
        sub.flushall()
    with pytest.raises(redis.exceptions.NoPermissionError):
        sub.xreadgroup(
            "a", "me", {Keys(deployment.settings.key_prefix, 2).part(0).stream("a", "normal"): ">"}
        )


async def test_roles_that_run_scripts_may_wait_for_replicas(deployment: Deployment) -> None:
    """``DOCGRAPH_REDIS_WAIT_REPLICAS`` ends each script round trip with WAIT: granted
    with the scripts, so a role's user gets ``NotReplicated`` (no replica here), never NOPERM."""
    deployment.admin().acl_log_reset()  # other tests here are refused on purpose
    for role in ("submitter", "worker", "api"):
        settings = deployment.as_role(role, redis_wait_replicas=1, redis_wait_timeout_ms=20)
        client = connect(settings)
        try:
            with pytest.raises(NotReplicated):
                await JobStore(client, settings).submit(None)
        finally:
            await client.aclose()
        assert deployment.denied(role) == [], role


async def test_the_api_role_serves_submit_status_list_cancel_and_metrics(
    deployment: Deployment, worker: WorkerProcs
):
    settings = deployment.as_role("api")
    with serve(settings) as api:
        async with httpx.AsyncClient(
            base_url=api.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        ) as http:
            ids = await submit_and_wait(http, 3)
            listed = await http.get("/v1/jobs", params={"state": "completed"})
            assert listed.status_code == 200 and {j["id"] for j in listed.json()["jobs"]} >= set(ids)
            assert (await http.delete(f"/v1/jobs/{ids[0]}")).status_code == 204
            assert (await http.get(f"/v1/jobs/{ids[0]}")).status_code == 404
            dlq = await http.get("/v1/dlq/a")
            assert dlq.status_code == 200, dlq.text
            metrics = await http.get("/metrics")
            assert metrics.status_code == 200, metrics.text
    assert deployment.denied("api") == []


def test_the_monitor_role_reads_counts_and_writes_nothing(deployment: Deployment, worker: WorkerProcs):
    env = deployment.env("monitor")
    frame = docgraph(env, "monitor", "--once")
    assert frame.returncode == 0, frame.stderr
    listed = docgraph(env, "jobs", "--state", "completed", "--json")
    assert listed.returncode == 0, listed.stderr
    assert deployment.denied("monitor") == []
    mon = redis.Redis.from_url(deployment.url("monitor"), socket_timeout=5)
    part = Keys(deployment.settings.key_prefix, 2).part(0)
    assert mon.xlen(part.stream("a", "normal")) >= 0
    for call in (
        lambda: mon.xadd(part.stream("a", "normal"), {"payload": "{}"}),
        lambda: mon.hset(part.job("x"), "state", "completed"),
        lambda: mon.delete(part.delayed),
        lambda: mon.flushall(),
    ):
        with pytest.raises(redis.exceptions.NoPermissionError):
            call()
