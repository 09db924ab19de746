"""HTTP API errors as RFC 9457 ``application/problem+json``, and the body-size limit.

Every error the API returns — its own, FastAPI's validation errors, unknown
routes, an oversized body, Redis being unreachable — is a problem document
whose ``detail`` says what is wrong and what to do about it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from http import HTTPStatus
from typing import Any
from urllib.parse import urlparse

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match

log = logging.getLogger("docgraph.api")

PROBLEM = "application/problem+json"
DRAIN_MAX = 16 * 1024 * 1024  # bytes of a refused body read and discarded before answering

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Problem(Exception):
    """Raise to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers
        self.extra = extra


def problem_response(
    status: int,
    detail: str,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


class BodyTooLarge(Exception):
    def __init__(self, limit: int, what: str) -> None:
        super().__init__(f"request body over {limit} bytes")
        self.limit = limit
        self.what = what


def _too_large_detail(limit: int, what: str) -> str:
    setting = (
        "DOCGRAPH_API_MAX_UPLOAD_BYTES / DOCGRAPH_MAX_DOCUMENT_BYTES"
        if what == "upload"
        else "DOCGRAPH_API_MAX_JSON_BYTES"
    )
    return (
        f"the request body is over the {limit:,}-byte limit for {what} requests ({setting}); "
        "split the document or ask the operator to raise the limit"
    )


class BodyLimit:
    """Refuses bodies over the limit: at once when Content-Length says so, and
    while streaming otherwise (chunked uploads), before the app buffers them."""

    def __init__(self, app: ASGIApp, upload_limit: int, json_limit: int) -> None:
        self.app = app
        self.upload_limit = upload_limit
        self.json_limit = json_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        multipart = headers.get(b"content-type", b"").lower().startswith(b"multipart/")
        limit, what = (self.upload_limit, "upload") if multipart else (self.json_limit, "JSON")
        # a client that waits for "100 Continue" never sent the body: nothing to drain
        expects_continue = headers.get(b"expect", b"").lower() == b"100-continue"
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                await problem_response(400, "Content-Length is not a number")(scope, receive, send)
                return
            if too_big:
                if not expects_continue:
                    await _drain(receive, 0)
                response = problem_response(
                    413, _too_large_detail(limit, what), headers={"Connection": "close"}
                )
                await response(scope, receive, send)
                return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if message.get("more_body", False) and not expects_continue:
                        await _drain(receive, received)
                    raise BodyTooLarge(limit, what)
            return message

        await self.app(scope, limited, send)


async def _drain(receive: Receive, received: int) -> None:
    """Read and discard what the client is still sending (up to DRAIN_MAX), so
    that it reads the 413 instead of a connection reset."""
    while received < DRAIN_MAX:
        message = await receive()
        if message["type"] != "http.request":
            return
        received += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


def _redis_where(url: str) -> str:
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.hostname or ''}{f':{parsed.port}' if parsed.port else ''}{parsed.path}"


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


class ProblemDoc(BaseModel):
    """An RFC 9457 problem document."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None


def document_problems(app: FastAPI) -> None:
    """Make the OpenAPI document say what the API does: every 4xx/5xx response
    is application/problem+json."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Problem"] = ProblemDoc.model_json_schema()
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                responses = operation.get("responses", {})
                if (
                    any(k == "422" for k in responses)
                    or operation.get("parameters")
                    or operation.get("requestBody")
                ):
                    responses.setdefault("422", {"description": "invalid request"})
                for code, response in responses.items():
                    if code[0] in "45":
                        response["content"] = problem
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_problem_handlers(app: FastAPI, redis_url: str) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(
            exc.status, exc.detail, instance=request.url.path, headers=exc.headers, **exc.extra
        )

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no such endpoint {request.url.path}; the endpoints are listed at /docs"
        headers = dict(exc.headers) if exc.headers else None
        if exc.status_code == 405:
            allowed = _allowed_methods(request)
            detail = f"{request.method} is not allowed on {request.url.path}; use {', '.join(allowed)}"
            headers = {**(headers or {}), "Allow": ", ".join(allowed)}
        return problem_response(exc.status_code, detail, instance=request.url.path, headers=headers)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in exc.errors()
        ]
        detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors) or "invalid request"
        return problem_response(422, f"invalid request: {detail}", instance=request.url.path, errors=errors)

    async def on_too_large(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, BodyTooLarge)
        return problem_response(
            413,
            _too_large_detail(exc.limit, exc.what),
            instance=request.url.path,
            headers={"Connection": "close"},
        )

    async def on_redis(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, MaxConnectionsError):
            return problem_response(
                503,
                "the API is serving as many requests as it has Redis connections; retry shortly",
                instance=request.url.path,
                headers={"Retry-After": "1"},
            )
        log.warning("redis unavailable: %s", exc)
        return problem_response(
            503,
            f"Redis at {_redis_where(redis_url)} is unreachable ({exc}); check that it runs and "
            "DOCGRAPH_REDIS_URL, then retry",
            instance=request.url.path,
            headers={"Retry-After": "5"},
        )

    async def on_disconnect(request: Request, exc: Exception) -> JSONResponse:
        # the client went away mid-request (e.g. an aborted upload): nobody reads this
        log.info("client disconnected during %s %s", request.method, request.url.path)
        return problem_response(400, "the client disconnected before the request body was complete")

    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        ref = uuid.uuid4().hex[:12]
        log.error("unhandled error %s on %s %s", ref, request.method, request.url.path, exc_info=exc)
        return problem_response(
            500,
            f"internal error (reference {ref} in the server log); please report it",
            instance=request.url.path,
        )

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(BodyTooLarge, on_too_large)
    app.add_exception_handler(RedisConnectionError, on_redis)
    app.add_exception_handler(RedisTimeoutError, on_redis)
    app.add_exception_handler(ClientDisconnect, on_disconnect)
    app.add_exception_handler(Exception, on_error)
