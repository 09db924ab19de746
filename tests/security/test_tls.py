"""TLS to Redis on a real TLS-only redis-server (Debian's build; plaintext port 0):
a real ``docgraph worker`` process and the HTTP API work over ``rediss://`` end
to end, mutual TLS works with a client certificate, and the ways it goes wrong
(an untrusted certificate, no client certificate, plaintext to the TLS port)
each end with one line naming the URL (password masked) and the setting to change."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from docgraph.core.runtime.connection import connect
from docgraph.core.runtime.jobs import JobStore
from docgraph.core.settings import Settings
from tests.api.conftest import serve, submit_and_wait
from tests.conftest import run_cli as docgraph
from tests.conftest import worker_env
from tests.runtime.procs import WorkerProcs
from tests.security.tls import DebianRedis, Pki, make_pki

pytestmark = pytest.mark.service
TOPOLOGY = {"a": [], "b": ["a"]}
TOKEN = "tls-test-token"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[DebianRedis]:
    server = DebianRedis(tmp_path_factory.mktemp("tls-redis"), pki=pki).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mtls_redis(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[DebianRedis]:
    server = DebianRedis(tmp_path_factory.mktemp("mtls-redis"), pki=pki, mutual=True).start()
    yield server
    server.stop()


def tls_settings(url: str, tmp_path: Path, **tls: object) -> Settings:
    return Settings(
        redis_url=url,
        redis_tls=tls,
        key_prefix=f"t{uuid.uuid4().hex[:10]}",
        plugins=["tests.stageplugin"],
        topology=TOPOLOGY,
        poll_interval=0.2,
        object_store_url=(tmp_path / "objects").as_uri(),
        api_tokens=[TOKEN],
    )


def env_for(settings: Settings, **extra: str) -> dict[str, str]:
    """A docgraph subprocess's environment: these settings, TLS variables, no test effects."""
    tls = {
        f"DOCGRAPH_REDIS_TLS__{name.upper()}": str(getattr(settings.redis_tls, name))
        for name in settings.redis_tls.model_fields_set
    }
    return worker_env(
        settings,
        DOCGRAPH_TOPOLOGY=json.dumps(TOPOLOGY),
        DOCGRAPH_OBJECT_STORE_URL=settings.object_store_url,
        DOCGRAPH_TEST_EFFECTS_URL="",
        **tls,
        **extra,
    )


async def test_a_worker_process_and_the_api_work_over_tls(tmp_path: Path, pki: Pki, tls_redis: DebianRedis):
    settings = tls_settings(tls_redis.url, tmp_path, ca_file=pki.ca)
    procs = WorkerProcs(settings, tmp_path)
    procs.env = env_for(settings)
    procs.start(1)
    try:
        with serve(settings) as api:
            async with httpx.AsyncClient(
                base_url=api.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
            ) as http:
                ids = await submit_and_wait(http, 5, logs=procs.logs)
                listed = (await http.get("/v1/jobs", params={"state": "completed"})).json()
                assert {j["id"] for j in listed["jobs"]} >= set(ids)
        client = connect(settings)
        try:
            jobs = await JobStore(client, settings).get_many(ids)
            for job in jobs:
                assert job is not None
                assert [(s.name, s.status, s.completions) for s in job.stages] == [
                    ("a", "done", 1),
                    ("b", "done", 1),
                ]
        finally:
            await client.aclose()
    finally:
        codes = procs.stop()
    assert codes == [0], procs.logs()
    log = procs.logs()
    assert "Traceback" not in log, log


async def test_mutual_tls_with_a_client_certificate(tmp_path: Path, pki: Pki, mtls_redis: DebianRedis):
    settings = tls_settings(
        mtls_redis.url, tmp_path, ca_file=pki.ca, cert_file=pki.client_cert, key_file=pki.client_key
    )
    client = connect(settings)
    try:
        assert await client.ping()
        await client.set(f"{settings.key_prefix}:probe", b"mtls")
        assert await client.get(f"{settings.key_prefix}:probe") == b"mtls"
    finally:
        await client.aclose()
    ok = docgraph(env_for(settings), "jobs", "--json")
    assert ok.returncode == 0, ok.stderr

    no_cert = tls_settings(mtls_redis.url, tmp_path, ca_file=pki.ca)
    refused = docgraph(env_for(no_cert), "jobs")
    assert refused.returncode == 3, refused.stderr
    line = " ".join(refused.stderr.split())
    # the server's alert, or (TLS 1.3, racy) a reset after the handshake: both name the setting
    assert "requires a client certificate" in line and "DOCGRAPH_REDIS_TLS__CERT_FILE" in line, line
    assert "Traceback" not in refused.stderr


def test_a_wrong_ca_fails_with_a_clear_message(tmp_path: Path, pki: Pki, tls_redis: DebianRedis):
    url = tls_redis.url.replace("rediss://", "rediss://default:s3cret-pw@")
    settings = tls_settings(url, tmp_path, ca_file=pki.other_ca)
    env = env_for(settings)
    worker = docgraph(env, "worker", timeout=60)  # not retried forever: exit 2 at once
    status = docgraph(env, "status", "some-job")
    for result, code in ((worker, 2), (status, 3)):
        line = " ".join(result.stderr.split())
        assert result.returncode == code, result.stderr
        assert f"rediss://default:***@127.0.0.1:{tls_redis.port}/0" in line, line
        assert "s3cret-pw" not in result.stderr
        assert f"DOCGRAPH_REDIS_TLS__CA_FILE='{pki.other_ca}'" in line, line
        assert "not trusted" in line and "Traceback" not in result.stderr, line
        assert "[SSL: CERTIFICATE_VERIFY_FAILED]" in line, line  # printed as is, not eaten as markup


def test_plaintext_to_the_tls_port_fails_with_a_clear_message(tmp_path: Path, tls_redis: DebianRedis):
    settings = tls_settings(tls_redis.url.replace("rediss://", "redis://"), tmp_path)
    result = docgraph(env_for(settings), "jobs")
    line = " ".join(result.stderr.split())
    assert result.returncode == 3, result.stderr
    assert f"redis://127.0.0.1:{tls_redis.port}/0" in line and "DOCGRAPH_REDIS_URL" in line, line
    assert "use rediss://" in line and "Traceback" not in result.stderr, line


def test_tls_settings_with_a_plaintext_url_are_refused_at_load(tmp_path: Path, pki: Pki):
    env = worker_env(
        tls_settings("rediss://127.0.0.1:1/0", tmp_path),
        DOCGRAPH_REDIS_URL="redis://127.0.0.1:1/0",
        DOCGRAPH_REDIS_TLS__CA_FILE=str(pki.ca),
    )
    result = docgraph(env, "jobs")
    assert result.returncode == 2, result.stderr
    line = " ".join(result.stderr.split())
    assert "configuration error" in line and "use rediss://" in line, line
    missing = docgraph(
        {
            **env,
            "DOCGRAPH_REDIS_URL": "rediss://127.0.0.1:1/0",
            "DOCGRAPH_REDIS_TLS__CA_FILE": str(tmp_path / "nope.pem"),
        },
        "jobs",
    )
    assert missing.returncode == 2, missing.stderr
    assert "DOCGRAPH_REDIS_TLS__CA_FILE" in missing.stderr and "not a readable file" in missing.stderr
