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
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("docgraph.api")

PROBLEM = "application/problem+json"

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
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                await problem_response(400, "Content-Length is not a number")(scope, receive, send)
                return
            if too_big:
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
                    raise BodyTooLarge(limit, what)
            return message

        await self.app(scope, limited, send)


def _redis_where(url: str) -> str:
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.hostname or ''}{f':{parsed.port}' if parsed.port else ''}{parsed.path}"


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
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}; see /docs"
        headers = dict(exc.headers) if exc.headers else None
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
        log.warning("redis unavailable: %s", exc)
        return problem_response(
            503,
            f"Redis at {_redis_where(redis_url)} is unreachable ({exc}); check that it runs and "
            "DOCGRAPH_REDIS_URL, then retry",
            instance=request.url.path,
            headers={"Retry-After": "5"},
        )

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
    app.add_exception_handler(Exception, on_error)
