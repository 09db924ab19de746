"""The HTTP API: submit documents, follow jobs, page through them, replay dead letters.

``create_app(settings)`` builds the FastAPI app; ``docgraph serve`` runs it
under uvicorn.  One Redis client per app (opened in the lifespan), the same
JobStore / DeadLetters the CLI uses, bearer-token auth from
``DOCGRAPH_API_TOKENS``, errors as ``application/problem+json``.
See docs/api.md for every endpoint with curl examples.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from redis.exceptions import RedisError

from docgraph.core import telemetry
from docgraph.core.api import dlq, events, graph, jobs, stages, ui, webhook
from docgraph.core.api.deps import Api, ApiState
from docgraph.core.api.models import API_REDIS_CONNECTIONS
from docgraph.core.api.problems import BodyLimit, Problem, document_problems, install_problem_handlers
from docgraph.core.runtime.connection import connect
from docgraph.core.runtime.dlq import DeadLetters
from docgraph.core.runtime.jobs import JobStore
from docgraph.core.runtime.layout import check_partition_count
from docgraph.core.settings import Settings
from docgraph.core.store import open_store

log = logging.getLogger("docgraph.api")


def create_app(settings: Settings) -> FastAPI:
    """The docgraph HTTP API for these settings (Redis client opened in the lifespan).

    Raises ConfigError for an unusable object store URL before anything serves."""
    objects = open_store(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # past the pool size a request gets 503 + Retry-After (see api_errors)
        client = connect(settings, max_connections=API_REDIS_CONNECTIONS)
        try:  # a mismatch stops the API before it serves; an unreachable Redis does not (503s)
            await check_partition_count(client, settings)
        except (RedisError, OSError) as exc:
            log.warning("partition count not checked at start (Redis: %s); submits check it", exc)
        app.state.api = ApiState(
            settings=settings,
            jobs=JobStore(client, settings),
            dlq=DeadLetters(client, settings),
            objects=objects,
            client=client,
            graph=graph.GraphReader(settings),
        )
        try:
            yield
        finally:
            await asyncio.to_thread(app.state.api.graph.close)
            await client.aclose()

    app = FastAPI(
        title="docgraph",
        version=_version(),
        description=(
            "Submit documents to the docgraph pipeline, follow their jobs stage by stage, "
            "page through jobs by state, follow their lifecycle events (SSE), manage dead "
            "letters and read the graph (entities, document graphs). Errors are "
            "application/problem+json (RFC 9457)."
        ),
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry (HTTP server spans, parents of the submit's
        # send span) when docgraph's is configured; otherwise off, as its per-request
        # provider lookups cost 2-4% of the CPU of a status query
        telemetry=None if telemetry.enabled() else {"tracing": False, "metrics": False, "logs": False},
    )
    app.state.tokens = [t.encode() for t in settings.api_tokens if t]
    if not app.state.tokens:
        log.warning(
            "DOCGRAPH_API_TOKENS is empty: the HTTP API accepts requests without authentication; "
            "set DOCGRAPH_API_TOKENS='[\"<secret>\"]' unless it only listens on a trusted interface"
        )
    app.add_middleware(
        BodyLimit, upload_limit=settings.api_upload_limit, json_limit=settings.api_max_json_bytes
    )
    install_problem_handlers(app, settings.redis_url)
    document_problems(app)

    @app.get("/healthz", tags=["health"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["health"],
        summary="Redis answers PING and the object store is reachable",
        responses={503: {"description": "a dependency is down (problem+json with `checks`)"}},
    )
    async def readyz(api: Api) -> dict[str, Any]:
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(api.client.ping(), 3)
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {exc or type(exc).__name__}"
        try:
            await asyncio.wait_for(asyncio.to_thread(api.objects.ping), 5)
            checks["objects"] = "ok"
        except Exception as exc:
            checks["objects"] = f"error: {exc or type(exc).__name__}"
        failing = [k for k, v in checks.items() if v != "ok"]
        if failing:
            raise Problem(
                503,
                f"not ready: {', '.join(f'{k} ({checks[k]})' for k in failing)}; check "
                "DOCGRAPH_REDIS_URL / DOCGRAPH_OBJECT_STORE_URL and that the services run",
                checks=checks,
            )
        return {"status": "ready", "checks": checks}

    @app.get(
        "/metrics",
        tags=["health"],
        summary="Pipeline gauges in the Prometheus text format (jobs by state, queues, dead letters)",
        response_class=PlainTextResponse,
    )
    async def metrics(api: Api) -> PlainTextResponse:
        from docgraph.core.runtime.snapshot import prometheus_text, snapshot

        snap = await snapshot(api.jobs, active=0, failures=0)
        return PlainTextResponse(prometheus_text(snap), media_type="text/plain; version=0.0.4")

    for routes in (jobs, webhook, dlq, stages, events, graph):
        app.include_router(routes.router)
    ui.install(app)  # the dashboard at /ui
    return app


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("docgraph")
    except PackageNotFoundError:  # pragma: no cover
        return "0"
