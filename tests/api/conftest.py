"""The HTTP API served by a real uvicorn on a loopback port, against the real redis-server."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from docgraph.core.api import create_app
from docgraph.core.settings import Settings
from tests.redis_server import free_port

TOKENS = ["token-one", "token-two"]


class ServerThread:
    """uvicorn in a thread of its own (own event loop) on a free loopback port.

    (Passing uvicorn a pre-bound socket instead makes every request ~40 ms
    slower: the delayed-ACK stall of a socket without TCP_NODELAY.)"""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@contextlib.contextmanager
def serve(settings: Settings) -> Iterator[ServerThread]:
    server = ServerThread(settings).start()
    try:
        yield server
    finally:
        server.stop()


def api_settings(settings: Settings, tmp_path: Path, **update: object) -> Settings:
    values: dict[str, object] = {
        "object_store_url": (tmp_path / "objects").as_uri(),
        "api_tokens": list(TOKENS),
        "trace_link_template": "http://jaeger.example/trace/{trace_id}",
    }
    values.update(update)
    return settings.model_copy(update=values)


@dataclass
class Api:
    url: str
    settings: Settings
    objects: Path


@pytest.fixture
def api(settings: Settings, tmp_path: Path) -> Iterator[Api]:
    s = api_settings(settings, tmp_path)
    with serve(s) as server:
        yield Api(server.url, s, tmp_path / "objects")


@pytest.fixture
async def http(api: Api) -> AsyncIterator[httpx.AsyncClient]:
    """A client that sends the first token."""
    async with httpx.AsyncClient(
        base_url=api.url, headers={"Authorization": f"Bearer {TOKENS[0]}"}, timeout=30
    ) as c:
        yield c


async def submit_and_wait(http: httpx.AsyncClient, n: int, timeout: float = 60, logs=lambda: "") -> list[str]:
    """POST ``n`` small documents to /v1/jobs and poll until every job completed."""
    ids = []
    for i in range(n):
        r = await http.post("/v1/jobs", files={"file": (f"doc{i}.txt", f"document {i}".encode())})
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    deadline = time.monotonic() + timeout
    while True:
        states = [(await http.get(f"/v1/jobs/{i}")).json()["state"] for i in ids]
        if all(s == "completed" for s in states):
            return ids
        assert time.monotonic() < deadline, f"{states}\n{logs()}"
        await asyncio.sleep(0.1)
