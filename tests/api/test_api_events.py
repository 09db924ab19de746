"""``GET /v1/events``: SSE from the real events streams, resumable, filtered, authenticated."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx

from docgraph.core.envelope import DocumentRef
from docgraph.core.runtime.events import EventLog
from docgraph.core.runtime.jobs import JobStore
from tests.runtime.helpers import running_worker, wait_for_states

DOC = DocumentRef(uri="file:///docs/a.txt", sha256="cd" * 32, name="a.txt")


async def messages(response: httpx.Response) -> AsyncIterator[dict[str, str]]:
    """SSE messages as {field: value}; comments and the `retry` hint are skipped."""
    message: dict[str, str] = {}
    async for line in response.aiter_lines():
        if not line:
            if "event" in message:
                yield message
            message = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            message[field] = value.removeprefix(" ")


async def backlog(http: httpx.AsyncClient, params: dict, headers: dict | None = None) -> list[dict]:
    """Every retained message (follow=false ends the stream)."""
    out: list[dict] = []
    async with http.stream(
        "GET", "/v1/events", params={**params, "follow": "false"}, headers=headers or {}
    ) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        async for message in messages(response):
            out.append(message)
    return out


async def test_a_job_s_events_resume_after_last_event_id(api, http, client):
    store = JobStore(client, api.settings)
    job_id, _ = await store.submit(DOC)
    other, _ = await store.submit(DOC)
    async with running_worker(api.settings, client):
        await wait_for_states(store, [job_id, other], {"completed"})
    expected = await EventLog(client, api.settings).history(job_id)
    got = await backlog(http, {"job": job_id})
    assert [m["event"] for m in got] == [e.type for e in expected]
    data = [json.loads(m["data"]) for m in got]
    assert [d["seq"] for d in data] == list(range(1, len(expected) + 1))
    assert {d["job_id"] for d in data} == {job_id} and data[-1]["type"] == "job.completed"
    assert data[0]["name"] == "a.txt" and data[0]["id"] == got[0]["id"]  # one partition: the entry id
    # resume after the third event: exactly the later ones
    later = await backlog(http, {"job": job_id}, {"Last-Event-ID": got[2]["id"]})
    assert [m["id"] for m in later] == [m["id"] for m in got[3:]]
    # the same with the `after` query parameter
    assert [m["id"] for m in await backlog(http, {"job": job_id, "after": got[2]["id"]})] == [
        m["id"] for m in got[3:]
    ]


async def follow(http: httpx.AsyncClient, params: dict, n: int, when_open) -> list[dict]:
    """Open a live stream, run ``when_open()`` once its start position is fixed (the
    ``retry:`` line comes after it), read ``n`` messages and disconnect."""

    async def run() -> list[dict]:
        got: list[dict] = []
        async with http.stream("GET", "/v1/events", params=params) as response:
            assert response.status_code == 200
            lines = response.aiter_lines()
            async for line in lines:
                if line.startswith("retry:"):
                    break
            await when_open()
            message: dict[str, str] = {}
            async for line in lines:
                if not line:
                    if "event" in message:
                        got.append(message)
                    message = {}
                    if len(got) == n:
                        break
                elif not line.startswith(":"):
                    field, _, value = line.partition(":")
                    message[field] = value.removeprefix(" ")
        return got

    return await asyncio.wait_for(run(), 30)


async def test_a_live_stream_then_a_reconnect_loses_nothing(api, http, client):
    store = JobStore(client, api.settings)
    ids: list[str] = []

    async def three_jobs_cancelled() -> None:
        for _ in range(3):
            job_id, _ = await store.submit(DOC)
            await store.cancel(job_id)
            ids.append(job_id)

    # live, only new events ($ by default): the first two of six, then the client goes away
    seen = await follow(http, {"type": "job.*"}, 2, three_jobs_cancelled)
    assert [m["event"] for m in seen] == ["job.submitted", "job.cancelled"]
    assert json.loads(seen[0]["data"])["job_id"] == ids[0]
    # reconnecting with the last id it saw: exactly the four it missed, in order
    rest = await backlog(http, {"type": "job.*"}, {"Last-Event-ID": seen[-1]["id"]})
    assert [(m["event"], json.loads(m["data"])["job_id"]) for m in rest] == [
        ("job.submitted", ids[1]),
        ("job.cancelled", ids[1]),
        ("job.submitted", ids[2]),
        ("job.cancelled", ids[2]),
    ]

    # and a live reconnect continues from there too
    async def nothing() -> None:
        return None

    again = await follow(http, {"after": seen[-1]["id"]}, 4, nothing)
    assert [m["id"] for m in again] == [m["id"] for m in rest]


async def test_filters_and_errors(api, http, client):
    store = JobStore(client, api.settings)
    a, _ = await store.submit(DOC)
    b, _ = await store.submit(DOC)
    await store.cancel(b)
    only_b = await backlog(http, {"job": b})
    assert [m["event"] for m in only_b] == ["job.submitted", "job.cancelled"]
    cancelled = await backlog(http, {"type": "job.cancelled"})
    assert [json.loads(m["data"])["job_id"] for m in cancelled] == [b]
    both = await backlog(http, {"type": ["job.cancelled", "job.submitted"]})
    assert [json.loads(m["data"])["job_id"] for m in both] == [a, b, b]
    assert len(await backlog(http, {"type": "job.*"})) == 3
    assert await backlog(http, {"type": "stage.*"}) == []
    bad = await http.get("/v1/events", params={"type": "job.exploded"})
    assert bad.status_code == 400 and "job.exploded" in bad.json()["detail"]
    wrong = await http.get("/v1/events", headers={"Last-Event-ID": "yesterday"})
    assert wrong.status_code == 400 and "not a stream entry id" in wrong.json()["detail"]
    async with httpx.AsyncClient(base_url=api.url) as anonymous:
        assert (await anonymous.get("/v1/events", params={"follow": "false"})).status_code == 401
