"""The test services as containers: ``DOCGRAPH_TEST_SERVICES=containers``.

Instead of the processes ``deploy/local/services.sh`` starts, the session
starts Redis, Neo4j, the S3 server (versitygw) and Jaeger through
testcontainers-python from the images ``deploy/docker/build.sh services``
builds locally, and exports the same ``DOCGRAPH_TEST_*`` variables the local
scripts print, so every test runs unchanged. Ports are published on
127.0.0.1 only, on random host ports.

testcontainers' reaper (Ryuk) is an image from a registry, which is not
reachable here: it runs with ``TESTCONTAINERS_RYUK_DISABLED=true`` and the
suite removes its containers itself. Each container carries the label
``org.docgraph.test.owner=<pid>``; the session removes its own at the end
(also after failures and Ctrl-C, via pytest's cleanup and ``atexit``), and at
start removes any whose owner process is gone (a run that was SIGKILLed).

``DOCGRAPH_TEST_CONTAINERS=redis,s3`` starts only those (default: all four);
``DOCGRAPH_TEST_<SERVICE>_IMAGE`` picks another image.
"""

from __future__ import annotations

import atexit
import os
import time
from dataclasses import dataclass, field
from typing import Any

OWNER_LABEL = "org.docgraph.test.owner"
SERVICES = ("redis", "neo4j", "s3", "jaeger")
NEO4J_PASSWORD = "docgraph-test-pw"
S3_ACCESS, S3_SECRET, S3_BUCKET, S3_REGION = "docgraph", "docgraph-test-secret", "docgraph", "us-east-1"


def enabled() -> bool:
    return os.environ.get("DOCGRAPH_TEST_SERVICES", "local") == "containers"


def _image(service: str) -> str:
    return os.environ.get(f"DOCGRAPH_TEST_{service.upper()}_IMAGE", f"docgraph-{service}:local")


def pid_alive(pid: int) -> bool:
    """True while process ``pid`` exists (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers() -> list[str]:
    """Remove containers of earlier test sessions whose process is gone; returns their names."""
    import docker

    client = docker.from_env()
    removed = []
    try:
        for c in client.containers.list(all=True, filters={"label": OWNER_LABEL}):
            owner = c.labels.get(OWNER_LABEL, "")
            if owner.isdigit() and pid_alive(int(owner)) and int(owner) != os.getpid():
                continue  # another live session's
            c.remove(force=True, v=True)
            removed.append(c.name)
    finally:
        client.close()
    return removed


@dataclass
class TestServices:
    """The running containers and the environment they answer on."""

    env: dict[str, str] = field(default_factory=dict)
    containers: dict[str, Any] = field(default_factory=dict)

    def start(self, names: list[str]) -> TestServices:
        os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
        atexit.register(self.stop)
        try:
            for name in names:
                getattr(self, f"_start_{name}")()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        while self.containers:
            _, container = self.containers.popitem()
            try:
                container.stop(force=True, delete_volume=True)
            except Exception:  # already gone: nothing left to remove
                pass

    def _container(self, name: str, port: int, *more_ports: int, env: dict[str, str] | None = None) -> Any:
        from testcontainers.core.container import DockerContainer
        from testcontainers.core.wait_strategies import HealthcheckWaitStrategy

        c = DockerContainer(_image(name)).with_kwargs(labels={OWNER_LABEL: str(os.getpid())})
        for p in (port, *more_ports):
            # docker-py's (ip,) binding: 127.0.0.1 and a random host port (with_bind_ports takes no address)
            c.ports[f"{p}/tcp"] = ("127.0.0.1",)
        for k, v in (env or {}).items():
            c = c.with_env(k, v)
        # the images' own HEALTHCHECKs (deploy/docker/services.Dockerfile) say when they serve
        c = c.waiting_for(HealthcheckWaitStrategy().with_startup_timeout(240))
        self.containers[name] = c
        c.start()
        return c

    def _port(self, name: str, port: int) -> int:
        return int(self.containers[name].get_exposed_port(port))

    def _start_redis(self) -> None:
        self._container("redis", 6379)
        self.env["DOCGRAPH_TEST_REDIS_URL"] = f"redis://127.0.0.1:{self._port('redis', 6379)}/0"

    def _start_neo4j(self) -> None:
        self._container("neo4j", 7687, env={"NEO4J_PASSWORD": NEO4J_PASSWORD})
        self.env |= {
            "DOCGRAPH_TEST_NEO4J_URI": f"bolt://127.0.0.1:{self._port('neo4j', 7687)}",
            "DOCGRAPH_TEST_NEO4J_USER": "neo4j",
            "DOCGRAPH_TEST_NEO4J_PASSWORD": NEO4J_PASSWORD,
        }

    def _start_s3(self) -> None:
        from minio import Minio

        self._container("s3", 7070, env={"ROOT_ACCESS_KEY": S3_ACCESS, "ROOT_SECRET_KEY": S3_SECRET})
        endpoint = f"127.0.0.1:{self._port('s3', 7070)}"
        s3 = Minio(endpoint, S3_ACCESS, S3_SECRET, secure=False, region=S3_REGION)
        deadline = time.monotonic() + 30
        while True:
            try:
                if not s3.bucket_exists(S3_BUCKET):
                    s3.make_bucket(S3_BUCKET)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.env |= {
            "DOCGRAPH_TEST_S3_ENDPOINT": endpoint,
            "DOCGRAPH_TEST_S3_ACCESS_KEY": S3_ACCESS,
            "DOCGRAPH_TEST_S3_SECRET_KEY": S3_SECRET,
            "DOCGRAPH_TEST_S3_BUCKET": S3_BUCKET,
            "DOCGRAPH_TEST_S3_REGION": S3_REGION,
        }

    def _start_jaeger(self) -> None:
        self._container("jaeger", 4317, 4318, 16686)
        self.env |= {
            "DOCGRAPH_TEST_OTLP_ENDPOINT": f"http://127.0.0.1:{self._port('jaeger', 4318)}",
            "DOCGRAPH_TEST_OTLP_ENDPOINT_GRPC": f"http://127.0.0.1:{self._port('jaeger', 4317)}",
            "DOCGRAPH_TEST_JAEGER_QUERY": f"http://127.0.0.1:{self._port('jaeger', 16686)}",
        }


@dataclass
class ContainerRedis:
    """Stands in for :class:`tests.redis_server.RedisServer` (``url``, ``stop``):
    the Redis container. Tests that kill and restart Redis need the local one."""

    url: str

    def stop(self) -> None:  # the session's cleanup removes the container
        pass


def start_from_env() -> TestServices:
    """Remove leftovers, start the services ``DOCGRAPH_TEST_CONTAINERS`` names
    and export their ``DOCGRAPH_TEST_*`` variables into ``os.environ``."""
    wanted = [s.strip() for s in os.environ.get("DOCGRAPH_TEST_CONTAINERS", ",".join(SERVICES)).split(",")]
    unknown = sorted(set(wanted) - set(SERVICES) - {""})
    if unknown:
        raise ValueError(f"DOCGRAPH_TEST_CONTAINERS: unknown {unknown}; choose from {', '.join(SERVICES)}")
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    remove_leftovers()
    services = TestServices().start([s for s in SERVICES if s in wanted])
    os.environ.update(services.env)
    return services
