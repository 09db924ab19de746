"""Health, OpenAPI, auth and problem+json errors over real HTTP."""

from __future__ import annotations

import logging

import httpx

from docgraph.core.runtime.jobs import JobStore
from tests.api.conftest import TOKENS, api_settings, serve
from tests.redis_server import free_port

PROBLEM = "application/problem+json"


def assert_problem(r: httpx.Response, status: int, *words: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM), r.headers
    body = r.json()
    assert body["status"] == status
    assert body["title"] and body["detail"]
    for w in words:
        assert w in body["detail"], body["detail"]
    return body


async def test_health_ready_and_openapi_need_no_token(api):
    async with httpx.AsyncClient(base_url=api.url) as c:
        assert (await c.get("/healthz")).json() == {"status": "ok"}
        ready = await c.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"redis": "ok", "objects": "ok"}
        spec = (await c.get("/openapi.json")).json()
        assert {
            "/v1/jobs",
            "/v1/jobs/{job_id}",
            "/v1/dlq/{stage}",
            "/v1/dlq/{stage}/replay",
            "/v1/events",
        } <= set(spec["paths"])
        body = spec["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]
        assert {"multipart/form-data", "application/json"} <= set(body)
        assert "HTTPBearer" in spec["components"]["securitySchemes"]
        docs = await c.get("/docs")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()


async def test_readyz_reports_an_unreachable_redis(settings, tmp_path):
    s = api_settings(settings, tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with serve(s) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
            body = assert_problem(await c.get("/readyz"), 503, "redis")
            assert body["checks"]["redis"].startswith("error")
            assert body["checks"]["objects"] == "ok"
            # a Redis outage is a 503 with a hint, not a 500
            r = await c.get("/v1/jobs/abc", headers={"Authorization": f"Bearer {TOKENS[0]}"})
            assert_problem(r, 503, "DOCGRAPH_REDIS_URL")
            assert r.headers["retry-after"] == "5"
            r = await c.get("/v1/events", headers={"Authorization": f"Bearer {TOKENS[0]}"})
            assert_problem(r, 503, "DOCGRAPH_REDIS_URL")  # before the stream starts


async def test_bearer_tokens(api):
    async with httpx.AsyncClient(base_url=api.url) as c:
        r = await c.get("/v1/jobs", params={"state": "queued"})
        assert_problem(r, 401, "Authorization: Bearer")
        assert r.headers["www-authenticate"].startswith("Bearer")
        r = await c.get("/v1/jobs", params={"state": "queued"}, headers={"Authorization": "Basic eDp5"})
        assert_problem(r, 401)
        r = await c.get("/v1/jobs", params={"state": "queued"}, headers={"Authorization": "Bearer nope"})
        assert_problem(r, 403, "DOCGRAPH_API_TOKENS")
        r = await c.get(
            "/v1/jobs", params={"state": "queued"}, headers={"Authorization": f"Bearer {TOKENS[0]}x"}
        )
        assert_problem(r, 403)
        for token in TOKENS:
            r = await c.get(
                "/v1/jobs", params={"state": "queued"}, headers={"Authorization": f"Bearer {token}"}
            )
            assert r.status_code == 200, r.text
        # every /v1 endpoint is protected
        for method, path in [
            ("POST", "/v1/jobs"),
            ("GET", "/v1/jobs/x"),
            ("DELETE", "/v1/jobs/x"),
            ("POST", "/v1/jobs/x/cancel"),
            ("GET", "/v1/dlq/extract"),
            ("GET", "/v1/dlq/extract/0/1-0"),
            ("POST", "/v1/dlq/extract/replay"),
            ("DELETE", "/v1/dlq/extract"),
        ]:
            assert (await c.request(method, path)).status_code == 401, (method, path)


async def test_auth_off_without_tokens_logs_a_warning(settings, tmp_path, caplog):
    s = api_settings(settings, tmp_path, api_tokens=[])
    with caplog.at_level(logging.WARNING, logger="docgraph.api"), serve(s) as server:
        async with httpx.AsyncClient(base_url=server.url) as c:
            assert (await c.get("/v1/jobs", params={"state": "queued"})).status_code == 200
    assert any("DOCGRAPH_API_TOKENS is empty" in r.getMessage() for r in caplog.records)


async def test_errors_are_problem_json(http):
    assert_problem(await http.get("/v1/jobs/nope"), 404, "nope")
    assert_problem(await http.delete("/v1/jobs/nope"), 404)
    assert_problem(await http.post("/v1/jobs/nope/cancel"), 404)
    assert_problem(await http.get("/v1/nothing-here"), 404, "/docs")
    assert_problem(await http.put("/v1/jobs"), 405)
    body = assert_problem(await http.get("/v1/jobs"), 422, "state")
    assert body["errors"][0]["loc"] == ["query", "state"]
    assert_problem(await http.get("/v1/jobs", params={"state": "bogus"}), 422, "state")
    assert_problem(await http.get("/v1/jobs", params={"state": "queued", "limit": 0}), 422, "limit")
    assert_problem(await http.get("/v1/jobs", params={"state": "queued", "cursor": "!!"}), 422, "cursor")
    assert_problem(await http.get("/v1/jobs", params={"state": "queued", "cursor": "bm9wZQ"}), 400, "cursor")
    assert_problem(await http.get("/v1/jobs/bad id!"), 422)


async def test_cancel_keeps_the_record(api, http, client):
    store = JobStore(client, api.settings)
    job_id, _ = await store.submit(None)
    r = await http.post(f"/v1/jobs/{job_id}/cancel")
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    assert (await http.get(f"/v1/jobs/{job_id}")).json()["state"] == "cancelled"


async def test_metrics_match_the_jobs_run(api, client):
    from tests.runtime.helpers import running_worker, wait_for_states

    store = JobStore(client, api.settings)
    ok = [(await store.submit(None))[0] for _ in range(4)]
    bad, _ = await store.submit(None, metadata={"permanent": {"ner": "unreadable"}})
    async with running_worker(api.settings, client):
        await wait_for_states(store, [*ok, bad], {"completed", "failed"})
    waiting, _ = await store.submit(None)
    async with httpx.AsyncClient(base_url=api.url) as c:
        r = await c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    values = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in r.text.splitlines()
        if line and not line.startswith("#")
    }
    assert values['docgraph_jobs{state="completed"}'] == 4
    assert values['docgraph_jobs{state="failed"}'] == 1
    assert values['docgraph_jobs{state="queued"}'] == 1
    assert values['docgraph_dead_letters{stage="ner"}'] == 1
    assert values['docgraph_queue_waiting{stage="extract"}'] == 1
    assert values['docgraph_queue_in_flight{stage="extract"}'] == 0
