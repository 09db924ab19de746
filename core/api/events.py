"""``GET /v1/events``: the lifecycle events of every partition as Server-Sent Events.

Each SSE message is one stream entry: ``event:`` its type, ``id:`` the cursor
after it (the entry id with one partition), ``data:`` its fields as JSON.  A
client that reconnects with ``Last-Event-ID`` gets exactly the events after
that one.  Each stream holds a Redis connection of its own (a blocking
``XREAD`` would otherwise tie up one of the pool's).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import StreamingResponse

from docgraph.core.api.auth import require_token
from docgraph.core.api.deps import AUTH_ERRORS, Api
from docgraph.core.api.models import JOB_ID
from docgraph.core.api.problems import Problem
from docgraph.core.runtime.connection import connect
from docgraph.core.runtime.events import EVENT_TYPES, Cursor, Event, EventLog

router = APIRouter(prefix="/v1", dependencies=[Depends(require_token)])

HEARTBEAT_MS = 15_000  # a comment line this often keeps proxies from closing an idle stream
PREFIXES = ("job.*", "stage.*")


def sse(event: Event) -> str:
    """One SSE message (the JSON has no newline, so one ``data:`` line)."""
    data = json.dumps(event.to_dict(), separators=(",", ":"), ensure_ascii=False)
    return f"id: {event.cursor}\nevent: {event.type}\ndata: {data}\n\n"


def check_types(types: list[str]) -> None:
    unknown = [t for t in types if t not in EVENT_TYPES and t not in PREFIXES]
    if unknown:
        raise Problem(
            400,
            f"unknown event type {unknown[0]!r}; use one of {', '.join(EVENT_TYPES)} "
            f"or a prefix ({', '.join(PREFIXES)})",
        )


async def _stream(
    client: Any, log: EventLog, cursor: Cursor, job: str | None, types: list[str], follow: bool
) -> AsyncIterator[str]:
    try:
        yield "retry: 1000\n\n"
        while True:
            batch, after = await log.read(
                cursor, job=job, types=types, block_ms=HEARTBEAT_MS if follow else None
            )
            for event in batch:
                yield sse(event)
            if after == cursor:  # nothing new: the end (follow=false) or a heartbeat
                if not follow:
                    return
                yield ": keepalive\n\n"
            cursor = after
    finally:
        await client.aclose()


@router.get(
    "/events",
    tags=["events"],
    summary="Lifecycle events of every job as Server-Sent Events (resumable with Last-Event-ID)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "an event stream: `id` (resume position), `event` (type), `data` (JSON fields)",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        400: {"description": "bad Last-Event-ID / after, or an unknown type"},
        **AUTH_ERRORS,
    },
)
async def events(
    api: Api,
    job: Annotated[str | None, Query(pattern=JOB_ID, description="only this job's events")] = None,
    type: Annotated[
        list[str] | None,
        Query(description="only these types (repeatable); `job.*` / `stage.*` for a whole group"),
    ] = None,
    after: Annotated[
        str | None,
        Query(
            max_length=20_000,
            description="start after this event id; `0`: every retained event; `$`: only new ones. "
            "Default: `0` with `job` or `follow=false`, else `$`. Last-Event-ID wins over it.",
        ),
    ] = None,
    follow: Annotated[bool, Query(description="keep the stream open for new events")] = True,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20_000)] = None,
) -> StreamingResponse:
    """Follow jobs without polling: `curl -N -H 'Authorization: Bearer …' /v1/events?job=<id>`.
    Each message is one entry of the partitions' events streams (docs/events.md)."""
    types = list(type or [])
    check_types(types)
    start = last_event_id or after or ("0" if job or not follow else "$")
    if start not in ("0", "$"):
        try:
            Cursor.parse(start, api.settings.partitions)
        except ValueError as exc:
            raise Problem(400, f"bad event id: {exc}; pass an `id` this endpoint sent") from None
    client = connect(api.settings.redis_url, max_connections=1)
    log = EventLog(client, api.settings)
    try:  # before the 200: an unreachable Redis is a 503 problem, like on every route
        cursor = await log.start(start)
    except BaseException:
        await client.aclose()
        raise
    return StreamingResponse(
        _stream(client, log, cursor, job, types, follow),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
