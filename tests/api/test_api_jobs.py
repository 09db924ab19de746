"""Submitting (upload and object URI), idempotency, status, delete, size limits."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shutil
import time

import httpx

from docgraph.core.runtime.jobs import JobStore
from tests.api.conftest import TOKENS, api_settings, serve
from tests.api.test_api_basics import assert_problem
from tests.runtime.helpers import running_worker

AUTH = {"Authorization": f"Bearer {TOKENS[1]}"}


async def wait_state(http: httpx.AsyncClient, job_id: str, states: set[str], timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        r = await http.get(f"/v1/jobs/{job_id}")
        if r.status_code == 200 and r.json()["state"] in states:
            return r.json()
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} not in {states}: {r.status_code} {r.text[:300]}")
        await asyncio.sleep(0.05)


async def test_upload_10kb_then_the_job_completes(api, http, client):
    data = os.urandom(10 * 1024)
    r = await http.post(
        "/v1/jobs",
        files={"file": ("report.bin", data, "application/octet-stream")},
        data={"priority": "high", "metadata": json.dumps({"tenant": "acme"})},
        headers={"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
    )
    assert r.status_code == 202, r.text
    body = r.json()
    job_id = body["id"]
    assert body["created"] is True and body["state"] == "queued"
    assert r.headers["location"] == f"{api.url}/v1/jobs/{job_id}" == body["status_url"]

    # the bytes are in the object store, content-addressed
    sha = hashlib.sha256(data).hexdigest()
    stored = api.objects / "documents" / sha[:2] / sha
    assert stored.read_bytes() == data
    assert not [p for p in (api.objects / "documents").iterdir() if p.name.startswith(".upload-")]

    queued = (await http.get(r.headers["location"])).json()
    assert queued["priority"] == "high"
    assert queued["metadata"] == {"tenant": "acme", "name": "report.bin"}
    assert queued["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert queued["trace_link"] == "http://jaeger.example/trace/4bf92f3577b34da6a3ce929d0e0e4736"

    async with running_worker(api.settings, client):
        done = await wait_state(http, job_id, {"completed"})
    assert done["progress"] == 1.0
    assert [s["name"] for s in done["stages"]] == list(api.settings.topology)
    for st in done["stages"]:
        assert st["status"] == "done" and st["attempts"] == 1 and st["error"] is None
        assert st["started"] <= st["finished"]
        assert st["output"]["by"] == st["name"]
    # a finished job can be deleted too
    assert (await http.delete(f"/v1/jobs/{job_id}")).status_code == 204
    assert_problem(await http.get(f"/v1/jobs/{job_id}"), 404)
    assert await JobStore(client, api.settings).get(job_id) is None


async def test_json_submit_names_an_object_in_the_store(api, http):
    up = await http.post("/v1/jobs", files={"file": ("a.txt", b"hello world", "text/plain")})
    sha = hashlib.sha256(b"hello world").hexdigest()
    uri = (api.objects / "documents" / sha[:2] / sha).as_uri()
    assert up.status_code == 202

    r = await http.post("/v1/jobs", json={"document": {"uri": uri}, "priority": "low", "metadata": {"x": 1}})
    assert r.status_code == 202, r.text
    job = (await http.get(r.headers["location"])).json()
    assert job["priority"] == "low" and job["metadata"] == {"x": 1}

    outside = [
        "file:///etc/passwd",
        (api.objects / ".." / "elsewhere").as_uri(),
        "s3://bucket/key",
        "http://example.com/a.pdf",
    ]
    for bad in outside:
        r = await http.post("/v1/jobs", json={"document": {"uri": bad}})
        assert_problem(r, 422, "not in this API's object store")
    r = await http.post("/v1/jobs", json={"document": {"uri": (api.objects / "documents" / "nope").as_uri()}})
    assert_problem(r, 422, "does not exist")
    assert_problem(await http.post("/v1/jobs", json={"document": {}}), 422, "document.uri")
    assert_problem(await http.post("/v1/jobs", json={"document": {"uri": uri}, "priority": "urgent"}), 422)
    assert_problem(
        await http.post("/v1/jobs", content=b"{not json", headers={"content-type": "application/json"}),
        422,
        "invalid JSON",
    )
    assert_problem(
        await http.post("/v1/jobs", content=b"x", headers={"content-type": "text/plain"}), 415, "multipart"
    )
    assert_problem(
        await http.post("/v1/jobs", data={"priority": "high"}, files={"other": b"x"}), 422, "'file'"
    )
    assert_problem(await http.post("/v1/jobs", files={"file": b"x"}, data={"priority": "urgent"}), 422)
    assert_problem(
        await http.post("/v1/jobs", files={"file": b"x"}, data={"metadata": "[1]"}), 422, "metadata"
    )
    assert_problem(await http.post("/v1/jobs", files={"file": b"x"}, data={"metadata": "{"}), 422, "metadata")


async def test_idempotency_key_returns_the_same_job(api, http):
    headers = {"Idempotency-Key": "order-77"}
    first = await http.post("/v1/jobs", files={"file": ("a.txt", b"abc")}, headers=headers)
    again = await http.post("/v1/jobs", files={"file": ("a.txt", b"abc")}, headers=headers)
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["id"] == again.json()["id"]
    assert again.json()["created"] is False
    assert again.headers["location"] == first.headers["location"]
    # JSON submissions honour it too; another key is another job
    sha = hashlib.sha256(b"abc").hexdigest()
    doc = {"document": {"uri": (api.objects / "documents" / sha[:2] / sha).as_uri()}}
    r1 = await http.post("/v1/jobs", json=doc, headers={"Idempotency-Key": "k2"})
    r2 = await http.post("/v1/jobs", json=doc, headers={"Idempotency-Key": "k2"})
    assert (r1.status_code, r2.status_code) == (202, 200)
    assert r1.json()["id"] == r2.json()["id"] != first.json()["id"]

    # concurrent retries of one request: exactly one creates the job
    rs = await asyncio.gather(
        *[http.post("/v1/jobs", json=doc, headers={"Idempotency-Key": "burst"}) for _ in range(20)]
    )
    assert sorted(r.status_code for r in rs) == [200] * 19 + [202]
    assert len({r.json()["id"] for r in rs}) == 1


async def test_delete_while_the_job_runs(api, http, client, effects):
    r = await http.post(
        "/v1/jobs",
        files={"file": ("slow.txt", b"slow")},
        data={"metadata": json.dumps({"sleep_ms": {"extract": [1500, 1500]}})},
    )
    job_id = r.json()["id"]
    async with running_worker(api.settings, client):
        job = await wait_state(http, job_id, {"running"})
        assert next(s for s in job["stages"] if s["name"] == "extract")["status"] == "running"
        assert (await http.delete(f"/v1/jobs/{job_id}")).status_code == 204
        assert_problem(await http.get(f"/v1/jobs/{job_id}"), 404)
        assert_problem(await http.delete(f"/v1/jobs/{job_id}"), 404)
        await asyncio.sleep(2.5)  # extract finishes; nothing after it may run
        assert_problem(await http.get(f"/v1/jobs/{job_id}"), 404)
    done = {k.split(":")[1] for k in await effects() if k.startswith(job_id)}
    assert done <= {"extract"}
    for state in ("queued", "running", "completed", "cancelled"):
        page = (await http.get("/v1/jobs", params={"state": state})).json()
        assert job_id not in [j["id"] for j in page["jobs"]]


async def test_size_limits(settings, tmp_path):
    s = api_settings(settings, tmp_path, api_max_upload_bytes=64 * 1024, max_document_bytes=32 * 1024)
    with serve(s) as server:
        async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=30) as http:
            # under both limits
            r = await http.post("/v1/jobs", files={"file": ("ok.bin", os.urandom(30 * 1024))})
            assert r.status_code == 202, r.text
            # under the body limit, over the document limit: refused by the store
            r = await http.post("/v1/jobs", files={"file": ("big.bin", os.urandom(40 * 1024))})
            assert_problem(r, 413, "DOCGRAPH_MAX_DOCUMENT_BYTES")
            # Content-Length over the body limit: refused before reading
            r = await http.post("/v1/jobs", files={"file": ("huge.bin", os.urandom(200 * 1024))})
            assert_problem(r, 413, "DOCGRAPH_API_MAX_UPLOAD_BYTES")

            # chunked (no Content-Length): refused while streaming
            boundary = "b0undary"
            head = (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="c.bin"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()

            async def chunks():
                yield head
                for _ in range(20):
                    yield os.urandom(8 * 1024)
                yield f"\r\n--{boundary}--\r\n".encode()

            r = await http.post(
                "/v1/jobs",
                content=chunks(),
                headers={"content-type": f"multipart/form-data; boundary={boundary}"},
            )
            assert_problem(r, 413, "limit")
            # JSON bodies have their own (small) limit
            big_meta = {"document": {"uri": "file:///x"}, "metadata": {"pad": "x" * (2 * 1024 * 1024)}}
            assert_problem(await http.post("/v1/jobs", json=big_meta), 413, "DOCGRAPH_API_MAX_JSON_BYTES")
        leftovers = [
            p for p in (tmp_path / "objects" / "documents").iterdir() if p.name.startswith(".upload-")
        ]
        assert leftovers == []


async def test_object_store_failure_is_a_503(api, http):
    shutil.rmtree(api.objects)  # the store's folder vanished (unmounted volume)
    r = await http.post("/v1/jobs", files={"file": ("a.txt", b"abc")})
    assert_problem(r, 503, "object store")
    assert r.headers["retry-after"] == "5"
    body = assert_problem(await http.get("/readyz"), 503, "objects")
    assert body["checks"]["redis"] == "ok"


async def test_an_aborted_upload_leaves_nothing_behind(api, http, caplog):
    class Aborted(Exception):
        pass

    async def chunks():
        yield b'--xx\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n\r\n'
        for _ in range(4):
            yield os.urandom(512 * 1024)
        raise Aborted

    with caplog.at_level(logging.INFO, logger="docgraph.api"):
        try:
            await http.post(
                "/v1/jobs", content=chunks(), headers={"content-type": "multipart/form-data; boundary=xx"}
            )
        except (Aborted, httpx.HTTPError):
            pass
        # the server is fine and stored nothing
        assert (await http.get("/healthz")).status_code == 200
        deadline = time.monotonic() + 5
        while not any("disconnected" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
            await asyncio.sleep(0.05)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [p for p in (api.objects / "documents").rglob("*") if p.is_file()] == []


async def test_not_before_holds_an_uploaded_job_s_first_stage(api, http):
    r = await http.post(
        "/v1/jobs",
        params={"not_before": "2099-01-01T00:00:00Z"},
        files={"file": ("later.txt", b"later", "text/plain")},
    )
    assert r.status_code == 202, r.text
    job = (await http.get(r.headers["location"])).json()
    assert job["state"] == "queued"
    assert {s["name"]: s["status"] for s in job["stages"]}["extract"] == "scheduled", job
    bad = await http.post("/v1/jobs", params={"not_before": "tomorrow"}, files={"file": ("x.txt", b"x")})
    assert_problem(bad, 422, "not_before")
