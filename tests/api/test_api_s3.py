"""The API on a real S3 store (versitygw from deploy/local): upload, submit by s3:// URI, readiness."""

from __future__ import annotations

import hashlib
import os
import uuid

import httpx
import pytest

from tests.api.conftest import TOKENS, serve
from tests.api.test_api_basics import assert_problem
from tests.conftest import S3_ENV, requires_env, s3_store

pytestmark = requires_env(S3_ENV, "S3 not configured: run deploy/local/services.sh up s3 and eval its env")


@pytest.fixture
def s3_settings(settings):
    return settings.model_copy(update={**s3_store("api"), "api_tokens": list(TOKENS)})


async def test_upload_and_submit_by_s3_uri(s3_settings):
    bucket = os.environ["DOCGRAPH_TEST_S3_BUCKET"]
    prefix = s3_settings.object_store_url.split("/", 3)[3]
    data = os.urandom(10 * 1024)
    sha = hashlib.sha256(data).hexdigest()
    with serve(s3_settings) as server:
        async with httpx.AsyncClient(
            base_url=server.url, headers={"Authorization": f"Bearer {TOKENS[0]}"}, timeout=30
        ) as http:
            assert (await http.get("/readyz")).json()["checks"] == {"redis": "ok", "objects": "ok"}
            r = await http.post("/v1/jobs", files={"file": ("doc.bin", data, "application/octet-stream")})
            assert r.status_code == 202, r.text

            uri = f"s3://{bucket}/{prefix}/documents/{sha[:2]}/{sha}"
            r = await http.post("/v1/jobs", json={"document": {"uri": uri}})
            assert r.status_code == 202, r.text

            for bad in (
                f"s3://other-bucket/{prefix}/documents/{sha[:2]}/{sha}",
                f"s3://{bucket}/elsewhere/{sha}",
                f"file:///{prefix}/x",
            ):
                assert_problem(
                    await http.post("/v1/jobs", json={"document": {"uri": bad}}), 422, "not in this"
                )
            missing = f"s3://{bucket}/{prefix}/documents/00/{'0' * 64}"
            assert_problem(
                await http.post("/v1/jobs", json={"document": {"uri": missing}}), 422, "does not exist"
            )


async def test_readyz_reports_a_missing_bucket(s3_settings):
    s = s3_settings.model_copy(update={"object_store_url": f"s3://no-such-bucket-{uuid.uuid4().hex[:6]}/x"})
    with serve(s) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            body = assert_problem(await http.get("/readyz"), 503, "objects")
            assert body["checks"]["redis"] == "ok" and "does not exist" in body["checks"]["objects"]


async def test_bucket_notification_starts_one_job_per_created_object(s3_settings, client):
    """An object uploaded to the bucket + its ObjectCreated notification (the AWS
    record format MinIO's webhook target sends) -> a job reading that object."""
    from docgraph.core.runtime.jobs import JobStore
    from docgraph.core.store import open_store

    bucket = os.environ["DOCGRAPH_TEST_S3_BUCKET"]
    prefix = s3_settings.object_store_url.split("/", 3)[3]
    key = f"{prefix}/inbox/report 1.txt"
    store = open_store(s3_settings)
    data = b"CVE-2015-5374 affects Siemens SIPROTEC."
    import io

    store.client.put_object(bucket, key, io.BytesIO(data), len(data), content_type="text/plain")
    event = {
        "EventName": "s3:ObjectCreated:Put",
        "Key": f"{bucket}/{key}",
        "Records": [
            {
                "eventName": "s3:ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": bucket},
                    "object": {
                        "key": key.replace(" ", "+"),
                        "size": len(data),
                        "eTag": "abc",
                        "contentType": "text/plain",
                    },
                },
            },
            {
                "eventName": "s3:ObjectRemoved:Delete",
                "s3": {"bucket": {"name": bucket}, "object": {"key": key}},
            },
        ],
    }
    with serve(s3_settings) as server:
        async with httpx.AsyncClient(
            base_url=server.url, headers={"Authorization": f"Bearer {TOKENS[0]}"}, timeout=30
        ) as http:
            r = await http.post("/v1/events/s3", json=event)
            assert r.status_code == 202, r.text
            body = r.json()
            assert body["ignored"] == 1 and len(body["jobs"]) == 1
            job = body["jobs"][0]
            assert job["created"] and job["uri"] == f"s3://{bucket}/{key}"
            again = (await http.post("/v1/events/s3", json=event)).json()
            assert again["jobs"][0]["id"] == job["id"] and not again["jobs"][0]["created"]
            outside = {
                "Records": [
                    {
                        "eventName": "s3:ObjectCreated:Put",
                        "s3": {"bucket": {"name": "elsewhere"}, "object": {"key": "x"}},
                    }
                ]
            }
            assert_problem(await http.post("/v1/events/s3", json=outside), 422, "not in this")
            test_event = {
                "Service": "S3",
                "Event": "s3:TestEvent",
                "Bucket": bucket,
                "Time": "2026-11-28T00:00:00Z",
            }
            r = await http.post("/v1/events/s3", json=test_event)  # sent when a target is set up
            assert r.status_code == 202 and r.json() == {"jobs": [], "ignored": 0}
            assert (
                await http.post("/v1/events/s3", json=event, headers={"Authorization": ""})
            ).status_code == 401
            # the webhook alone also takes the token as a Basic password (http://user:<token>@host/...)
            basic = httpx.BasicAuth("docgraph", TOKENS[1])
            assert (await http.post("/v1/events/s3", json=event, auth=basic)).status_code == 202
            wrong = httpx.BasicAuth("docgraph", "not-a-token")
            assert_problem(await http.post("/v1/events/s3", json=event, auth=wrong), 403, "not one of")
            bad = {"Authorization": "Basic !!!"}
            assert_problem(await http.post("/v1/events/s3", json=event, headers=bad), 403, "not one of")
            assert_problem(await http.get(f"/v1/jobs/{job['id']}", auth=basic), 401, "bearer token")
    status = await JobStore(client, s3_settings).get(job["id"])
    assert status is not None and status.metadata["name"] == "report 1.txt"
