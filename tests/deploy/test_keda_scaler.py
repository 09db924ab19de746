"""KEDA's own redis-streams scaler (v2.18.1, deploy/helm/keda-check) on the
triggers `helm template` rendered, against a real Redis holding real docgraph
streams written by docgraph's JobStore and by real `docgraph worker`
processes started with the commands the chart's Deployments run."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from docgraph.core.runtime.connection import connect
from docgraph.core.runtime.jobs import JobStore
from docgraph.core.runtime.keys import LANES, Keys
from docgraph.core.settings import Settings
from tests.conftest import worker_env
from tests.deploy.chart import (
    CHART,
    PRODUCTION,
    by_kind,
    deployment_command,
    keda_check,
    needs_tools,
    render,
    scaled_objects,
)
from tests.redis_server import RedisServer

pytestmark = needs_tools

STAGES = ("extract", "classify", "ner", "ingest")
DEFAULTS = yaml.safe_load((CHART / "values.yaml").read_text())


def docgraph_exe() -> str:
    exe = Path(sys.executable).with_name("docgraph")
    return str(exe) if exe.exists() else shutil.which("docgraph") or "docgraph"


class Proc:
    """A chart command (`docgraph ...` from a rendered Deployment) as a real process."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        assert command[0] == "docgraph", command  # the image's ENTRYPOINT
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [docgraph_exe(), *command[1:]], env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def stop(self, timeout: float) -> int:
        """SIGTERM, as the kubelet sends it; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"not stopped {timeout} s after SIGTERM:\n{self.output()}") from None

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for p in started:  # never leave a worker behind, also after a failure
        if p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait()


async def wait_for(what: str, check: Callable[[], Awaitable[bool]], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.1)


def chart_for(settings: Settings, server: RedisServer, *files: Path, **values: Any) -> list[dict[str, Any]]:
    """The chart rendered for the test Redis (its address is the chart's redis.host/port)."""
    return render(
        *files,
        values={
            "redis.host": "127.0.0.1",
            "redis.port": server.port,
            "redis.database": 0,
            "docgraph.keyPrefix": settings.key_prefix,
            **values,
        },
    )


async def backlog(client, settings: Settings, stage: str) -> int:
    keys = Keys(settings.key_prefix, settings.partitions)
    return sum([await client.xlen(p.stream(stage, lane)) for p in keys.all() for lane in LANES])


def desired_replicas(result: dict[str, Any], so: dict[str, Any]) -> int:
    """What the HPA makes of KEDA's composite metric (AverageValue target), with
    KEDA's activation: 0 when inactive and minReplicaCount is 0."""
    spec = so["spec"]
    if not result["isActive"]:
        return spec["minReplicaCount"]
    want = math.ceil(result["composite"]["value"] / float(spec["advanced"]["scalingModifiers"]["target"]))
    return max(1, spec["minReplicaCount"], min(spec["maxReplicaCount"], want))


def check(so: dict[str, Any], auth: dict[str, str] | None = None) -> dict[str, Any]:
    result = keda_check(so, auth)
    assert [t["name"] for t in result["triggers"]] == [t["name"] for t in so["spec"]["triggers"]]
    return result


def assert_ok(result: dict[str, Any]) -> None:
    errors = [t["error"] for t in result["triggers"] if t.get("error")]
    assert not errors and not result["composite"].get("error"), result


async def test_idle_queued_in_flight_and_handed_back(
    settings: Settings, redis_server: RedisServer, client, procs: list[Proc], tmp_path: Path
) -> None:
    objects = chart_for(settings, redis_server)
    sos = scaled_objects(objects)
    assert sorted(sos) == sorted(STAGES)
    target = DEFAULTS["autoscaling"]["streamLength"]

    # idle: nothing queued anywhere -> every stage inactive (KEDA scales it to zero)
    for stage in STAGES:
        result = check(sos[stage])
        assert_ok(result)
        assert result["isActive"] is False and result["composite"]["value"] == 0
        assert all(t["metricValue"] == 0 and t["isActive"] is False for t in result["triggers"])
        assert all(t["target"] == target and t["targetType"] == "AverageValue" for t in result["triggers"])
        assert desired_replicas(result, sos[stage]) == 0

    # 100 jobs through the real extract stage: each hand-off enqueues ner (and classify)
    store = JobStore(client, settings)
    for _ in range(100):
        await store.submit(None, metadata={"sleep_ms": {"ner": [60_000, 60_000]}})
    env = worker_env(settings, DOCGRAPH_CONCURRENCY="32", DOCGRAPH_SHUTDOWN_GRACE="2")
    extract = Proc(deployment_command(objects, "worker-extract"), env, tmp_path / "extract.log")
    procs.append(extract)

    async def handed_on() -> bool:
        return (
            await backlog(client, settings, "ner") == 100 and await backlog(client, settings, "extract") == 0
        )

    await wait_for("100 jobs queued for ner", handed_on)
    assert extract.stop(timeout=20) == 0, extract.output()

    result = check(sos["ner"])
    assert_ok(result)
    assert result["isActive"] is True
    assert result["composite"]["value"] == 100
    by_name = {t["name"]: t for t in result["triggers"]}
    assert by_name["p0_normal"]["metricValue"] == 100 and by_name["p0_normal"]["isActive"] is True
    assert by_name["p0_high"]["metricValue"] == 0 and by_name["p0_low"]["metricValue"] == 0
    # the chart's thresholds: ceil(100 / streamLength 16) = 7 replicas (max 10)
    assert desired_replicas(result, sos["ner"]) == math.ceil(100 / target) == 7
    assert check(sos["classify"])["composite"]["value"] == 100
    assert check(sos["extract"])["isActive"] is False
    assert check(sos["ingest"])["isActive"] is False  # waits for classify too

    # in flight: a real ner worker holds all 100 (60 s jobs), nothing new is queued
    env = worker_env(settings, DOCGRAPH_CONCURRENCY="128", DOCGRAPH_SHUTDOWN_GRACE="1")
    ner = Proc(deployment_command(objects, "worker-ner"), env, tmp_path / "ner.log")
    procs.append(ner)
    part = Keys(settings.key_prefix, 1).part(0)
    stream = part.stream("ner", "normal")

    async def all_delivered() -> bool:
        try:
            return (await client.xpending(stream, "ner"))["pending"] == 100
        except Exception:  # the group is created by the worker
            return False

    await wait_for("ner holds all 100 entries", all_delivered)
    result = check(sos["ner"])
    assert_ok(result)
    assert result["isActive"] is True and result["composite"]["value"] == 100, "scaled to zero mid-job"
    assert desired_replicas(result, sos["ner"]) == 7

    # why not lag mode: KEDA's lag scaler on the same stream sees nothing to do
    lag = copy.deepcopy(sos["ner"])
    for t in lag["spec"]["triggers"]:
        t["metadata"].update(consumerGroup="ner", lagCount=str(target))
    del lag["spec"]["advanced"]
    lag_result = check(lag)
    assert lag_result["isActive"] is False, lag_result
    assert {t["name"]: t["metricValue"] for t in lag_result["triggers"]}["p0_normal"] == 0

    # rolling update: SIGTERM -> grace -> the jobs are handed back, exit 0, nothing lost
    assert ner.stop(timeout=30) == 0, ner.output()
    assert (await client.xpending(stream, "ner"))["pending"] == 0
    result = check(sos["ner"])
    assert result["isActive"] is True and result["composite"]["value"] == 100


async def test_delayed_retry_is_promoted_by_the_upkeep_replica(
    settings: Settings, redis_server: RedisServer, client, procs: list[Proc], tmp_path: Path
) -> None:
    objects = chart_for(settings, redis_server)
    sos = scaled_objects(objects)
    part = Keys(settings.key_prefix, 1).part(0)
    store = JobStore(client, settings)
    job, _ = await store.submit(None, metadata={"fail": {"extract": 1}})

    # the first try fails (transient): the job waits in the retry schedule
    env = worker_env(
        settings, DOCGRAPH_RETRY__BACKOFF="2", DOCGRAPH_RETRY__BACKOFF_MAX="2", DOCGRAPH_RETRY__JITTER="0"
    )
    extract = Proc(deployment_command(objects, "worker-extract"), env, tmp_path / "extract.log")
    procs.append(extract)

    async def scheduled() -> bool:
        return await client.zcard(part.delayed) == 1

    await wait_for("the retry in the delayed set", scheduled)
    assert extract.stop(timeout=20) == 0, extract.output()
    assert await client.zcard(part.delayed) == 1, "promoted before the worker stopped: raise the backoff"

    # every stage at zero: KEDA cannot see the delayed set
    for stage in STAGES:
        result = check(sos[stage])
        assert_ok(result)
        assert result["isActive"] is False, (stage, result)
    await asyncio.sleep(3)  # due now, but no process runs upkeep: it stays put
    assert await client.zcard(part.delayed) == 1
    assert check(sos["extract"])["isActive"] is False

    # the always-on upkeep replica, with the chart's command and probes
    alive = tmp_path / "docgraph.alive"
    env = worker_env(settings, DOCGRAPH_HEALTH_FILE=str(alive))
    upkeep = Proc(deployment_command(objects, "upkeep"), env, tmp_path / "upkeep.log")
    procs.append(upkeep)

    async def promoted() -> bool:
        return await backlog(client, settings, "extract") == 1

    await wait_for("upkeep to promote the retry", promoted, timeout=30)
    assert await client.zcard(part.delayed) == 0
    result = check(sos["extract"])
    assert_ok(result)
    assert result["isActive"] is True and result["composite"]["value"] == 1
    assert desired_replicas(result, sos["extract"]) == 1
    assert (await store.get(job)).state == "retrying"

    (dep,) = [d for d in by_kind(objects, "Deployment").values() if d["metadata"]["name"].endswith("-upkeep")]
    container = dep["spec"]["template"]["spec"]["containers"][0]
    probes = {k: container[k]["exec"]["command"] for k in ("livenessProbe", "readinessProbe")}

    def probe(command: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [docgraph_exe(), *command[1:]], env=env, capture_output=True, text=True, timeout=60
        )

    async def file_written() -> bool:
        return alive.exists()

    await wait_for("the liveness file", file_written)
    for name, command in probes.items():
        out = probe(command)
        assert out.returncode == 0, (name, out.stdout, out.stderr)
    assert upkeep.stop(timeout=20) == 0, upkeep.output()
    out = probe(probes["livenessProbe"])
    assert out.returncode == 1 and "does not exist" in out.stderr  # the probe does fail


@contextlib.contextmanager
def not_tls_server() -> Iterator[int]:
    """A loopback port that answers like a plain-TCP Redis (which this test's
    redis-server is: it has no TLS), so a TLS client fails its handshake at once."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(4096)
                conn.sendall(b"-ERR unknown command\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        sock.close()


def make_ca(directory: Path) -> Path:
    """A throwaway self-signed CA certificate (what the redis-ca Secret holds)."""
    ca = directory / "ca.crt"
    subprocess.run(
        [
            *"openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=redis-ca -days 1 -keyout".split(),
            str(directory / "ca.key"),
            "-out",
            str(ca),
        ],
        check=True,
        capture_output=True,
    )
    return ca


@pytest.fixture
def acl_redis(tmp_path: Path) -> Iterator[tuple[RedisServer, str, str]]:
    """A private Redis that only lets the ACL user in (as production's does)."""
    import redis

    server = RedisServer(tmp_path / "acl-redis").start()
    user, password = "docgraph-worker", "s3cret-pw"
    admin = redis.Redis(host="127.0.0.1", port=server.port)
    admin.execute_command("ACL", "SETUSER", user, "on", f">{password}", "~*", "&*", "+@all")
    admin.execute_command("ACL", "SETUSER", "default", "off")
    admin.close()
    yield server, user, password
    server.stop()


async def test_production_values_four_partitions_with_trigger_authentication(
    acl_redis: tuple[RedisServer, str, str], tmp_path: Path
) -> None:
    server, user, password = acl_redis
    prod = yaml.safe_load(PRODUCTION.read_text())
    assert prod["redis"]["username"] == user and prod["docgraph"]["partitions"] == 4
    settings = Settings(
        redis_url=f"redis://{user}:{password}@127.0.0.1:{server.port}/0",
        key_prefix="prod",
        partitions=4,
        plugins=["tests.stageplugin"],
    )
    # this machine's test Redis speaks no TLS: everything else is production's
    objects = chart_for(settings, server, PRODUCTION, **{"redis.tls.enabled": False})
    sos = scaled_objects(objects)
    so = sos["extract"]
    assert len(so["spec"]["triggers"]) == 4 * 3

    client = connect(settings.redis_url)
    try:
        store = JobStore(client, settings)
        for _ in range(100):
            await store.submit(None)
    finally:
        await client.aclose()

    # what KEDA's operator resolves from the TriggerAuthentication: parameter <- Secret key
    (auth,) = by_kind(objects, "TriggerAuthentication").values()
    secrets = {prod["redis"]["auth"]["existingSecret"]: {prod["redis"]["auth"]["passwordKey"]: password}}
    auth_params = {r["parameter"]: secrets[r["name"]][r["key"]] for r in auth["spec"]["secretTargetRef"]}
    assert set(auth_params) == {"password"}

    result = check(so, auth_params)
    assert_ok(result)
    per_stream = [t["metricValue"] for t in result["triggers"]]
    assert sum(per_stream) == 100 and sum(1 for v in per_stream if v) >= 2, (
        per_stream
    )  # spread over partitions
    assert result["composite"]["value"] == 100 and result["isActive"] is True
    # summed by the formula: ceil(100 / 16) = 7, where the largest single stream alone would give fewer
    assert desired_replicas(result, so) == 7 > math.ceil(max(per_stream) / 16)
    ner = check(sos["ner"], auth_params)
    assert_ok(ner)
    assert ner["isActive"] is False and desired_replicas(ner, sos["ner"]) == 1  # production keeps 1 ner warm

    # TLS as production renders it: KEDA takes enableTLS and the CA from the
    # TriggerAuthentication and starts a TLS handshake (this Redis has no TLS)
    ca = make_ca(tmp_path)
    with not_tls_server() as port:
        tls_objects = chart_for(settings, server, PRODUCTION, **{"redis.port": port})
        (tls_auth,) = by_kind(tls_objects, "TriggerAuthentication").values()
        secrets["redis-ca"] = {"ca.crt": ca.read_text()}
        tls_params = {
            r["parameter"]: secrets[r["name"]][r["key"]] for r in tls_auth["spec"]["secretTargetRef"]
        }
        assert set(tls_params) == {"password", "ca"}
        tls = check(scaled_objects(tls_objects)["extract"], tls_params)
    tls_errors = {t.get("error") for t in tls["triggers"]}
    assert tls_errors == {
        "connection to redis failed: tls: first record does not look like a TLS handshake"
    }, tls_errors

    # without the Secret, KEDA cannot read the streams: errors, not a silent zero
    denied = check(so)
    assert all(t.get("error") for t in denied["triggers"]), denied
    assert denied["isActive"] is False
    assert any(
        "NOAUTH" in t["error"] or "WRONGPASS" in t["error"] or "auth" in t["error"].lower()
        for t in denied["triggers"]
    )


def test_binaries_are_the_pinned_versions() -> None:
    out = subprocess.run(
        [os.environ["DOCGRAPH_TEST_HELM_BIN"], "version", "--short"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "v3.22.0", out


async def test_activation_threshold_and_max_replicas_are_the_values(
    settings: Settings, redis_server: RedisServer, client
) -> None:
    objects = chart_for(
        settings,
        redis_server,
        **{
            "autoscaling.activationLagCount": 5,
            "autoscaling.streamLength": 2,
            "autoscaling.maxReplicaCount": 3,
        },
    )
    so = scaled_objects(objects)["extract"]
    store = JobStore(client, settings)
    for _ in range(5):
        await store.submit(None, priority="low")
    result = check(so)
    assert_ok(result)
    # 5 queued is not above activationLagCount 5: KEDA keeps the stage at zero
    assert result["composite"]["value"] == 5 and result["isActive"] is False
    assert desired_replicas(result, so) == 0
    await store.submit(None, priority="high")
    result = check(so)
    assert result["composite"]["value"] == 6 and result["isActive"] is True
    by_name = {t["name"]: t["metricValue"] for t in result["triggers"]}
    assert by_name == {"p0_high": 1, "p0_normal": 0, "p0_low": 5}
    # ceil(6 / 2) = 3 = maxReplicaCount; more backlog stays capped
    assert desired_replicas(result, so) == 3
    for _ in range(10):
        await store.submit(None)
    assert desired_replicas(check(so), so) == 3
