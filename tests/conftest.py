"""Shared fixtures: a real redis-server per test session, isolated key prefixes.

In CI (``DOCGRAPH_CI=1``) a skipped test is reported as a failure: service
tests must run against real servers there.

``DOCGRAPH_TEST_SERVICES=containers`` starts Redis, Neo4j, the S3 server and
Jaeger as containers (testcontainers, locally built images) instead of using
the local processes: see tests/containers.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from docgraph.core.runtime.connection import connect
from docgraph.core.settings import Settings
from tests import containers
from tests.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    # Before collection: test modules read DOCGRAPH_TEST_* when they are imported.
    if containers.enabled():
        config.add_cleanup(containers.start_from_env().stop)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("DOCGRAPH_CI") and report.skipped:
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, which forbids skips: {reason}"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if containers.enabled() and os.environ.get("DOCGRAPH_TEST_REDIS_URL"):
        yield containers.ContainerRedis(os.environ["DOCGRAPH_TEST_REDIS_URL"])  # type: ignore[misc]
        return
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def settings(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> Settings:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("DOCGRAPH_TEST_EFFECTS_URL", redis_server.url.rsplit("/", 1)[0] + "/1")
    monkeypatch.setenv("DOCGRAPH_TEST_EFFECTS", f"{prefix}:effects")
    return Settings(
        redis_url=redis_server.url,
        key_prefix=prefix,
        plugins=["tests.stageplugin"],
        poll_interval=0.2,
        visibility_timeout=5,
        completed_max_count=1_000_000,
        retry={"attempts": 3, "backoff": 0.05, "backoff_max": 1, "jitter": 0.2},
    )


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator:
    c = connect(settings.redis_url)
    yield c
    await c.aclose()


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment for a ``docgraph worker`` subprocess using these settings."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("DOCGRAPH_") or k.startswith("DOCGRAPH_TEST_")
    }
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "DOCGRAPH_REDIS_URL": settings.redis_url,
            "DOCGRAPH_KEY_PREFIX": settings.key_prefix,
            "DOCGRAPH_PARTITIONS": str(settings.partitions),  # a worker reads only the partitions it knows
            "DOCGRAPH_PLUGINS": '["tests.stageplugin"]',
            "DOCGRAPH_POLL_INTERVAL": str(settings.poll_interval),
            "DOCGRAPH_VISIBILITY_TIMEOUT": str(settings.visibility_timeout),
            "DOCGRAPH_COMPLETED_MAX_COUNT": str(settings.completed_max_count),
            "DOCGRAPH_RETRY__ATTEMPTS": str(settings.retry.attempts),
            "DOCGRAPH_RETRY__BACKOFF": str(settings.retry.backoff),
            "DOCGRAPH_RETRY__BACKOFF_MAX": str(settings.retry.backoff_max),
            "DOCGRAPH_MAX_DELIVERIES": str(settings.max_deliveries),
            "DOCGRAPH_CONCURRENCY": str(settings.concurrency),
            "DOCGRAPH_SHUTDOWN_GRACE": str(settings.shutdown_grace),
            "DOCGRAPH_REDIS_WAIT_REPLICAS": str(settings.redis_wait_replicas),
            "DOCGRAPH_REDIS_WAIT_TIMEOUT_MS": str(settings.redis_wait_timeout_ms),
        }
    )
    env.update(extra)
    return env


@pytest.fixture
async def effects(settings: Settings, redis_server: RedisServer) -> AsyncIterator:
    """Read the test stages' effect counters: ``await effects()`` -> {field: count}."""
    c = connect(os.environ["DOCGRAPH_TEST_EFFECTS_URL"])

    async def read() -> dict[str, int]:
        raw = await c.hgetall(os.environ["DOCGRAPH_TEST_EFFECTS"])
        return {k.decode(): int(v) for k, v in raw.items()}

    yield read
    await c.aclose()


S3_ENV = (
    "DOCGRAPH_TEST_S3_ENDPOINT",
    "DOCGRAPH_TEST_S3_ACCESS_KEY",
    "DOCGRAPH_TEST_S3_SECRET_KEY",
    "DOCGRAPH_TEST_S3_BUCKET",
)
NEO4J_ENV = ("DOCGRAPH_TEST_NEO4J_URI", "DOCGRAPH_TEST_NEO4J_PASSWORD")


def requires_env(names: tuple[str, ...], reason: str) -> list[pytest.MarkDecorator]:
    """Marks for a test module that needs the local services' environment
    (``deploy/local/services.sh env``); in CI the skip becomes a failure."""
    return [
        pytest.mark.service,
        pytest.mark.skipif(any(not os.environ.get(v) for v in names), reason=reason),
    ]


def s3_store(prefix: str) -> dict[str, str]:
    """Settings for a private prefix of the local S3 server's bucket."""
    return {
        "object_store_url": f"s3://{os.environ['DOCGRAPH_TEST_S3_BUCKET']}/{prefix}-{uuid.uuid4().hex[:8]}",
        "s3_endpoint": os.environ["DOCGRAPH_TEST_S3_ENDPOINT"],
        "s3_access_key": os.environ["DOCGRAPH_TEST_S3_ACCESS_KEY"],
        "s3_secret_key": os.environ["DOCGRAPH_TEST_S3_SECRET_KEY"],
    }


def run_cli(env: dict[str, str], *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """``docgraph <args>`` as a subprocess with exactly ``env``; output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "docgraph.core.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
