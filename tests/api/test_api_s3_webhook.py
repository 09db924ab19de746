"""Uploading to a real S3 bucket starts the pipeline through ``POST /v1/events/s3``.

The test runs an S3 server of its own: the versitygw that deploy/local/services.sh
builds (MinIO's server is AGPL, which this project does not use), on a loopback
port and a private posix directory, its bucket notifications pointed at the API.
versitygw cannot send a bearer token, but a ``http://user:<token>@host`` URL gives
Basic auth, which the webhook (alone) takes: this API runs with tokens.  versitygw
posts each notification once, from a goroutine of its own (in no set order), and
drops it on failure: the test records the API's answers and waits for them."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from minio import Minio

from docgraph.core.api import create_app
from docgraph.core.runtime.jobs import JobStore
from tests.api import conftest as api_conftest
from tests.redis_server import free_port

pytestmark = pytest.mark.service

BUCKET = "docgraph-hook"
ACCESS, SECRET = "docgraph", "docgraph-test-secret"  # as deploy/local/services.sh
TOKEN = "webhook-token"
Call = tuple[Any, int, Any]  # (notification, status, answer)


def _versitygw() -> str:
    """$DOCGRAPH_TEST_VERSITYGW_BIN, else the newest $DOCGRAPH_CACHE/bin/versitygw-*."""
    binary = os.environ.get("DOCGRAPH_TEST_VERSITYGW_BIN", "")
    if not binary:
        cache = Path(os.environ.get("DOCGRAPH_CACHE") or Path.home() / ".cache" / "docgraph")
        built = [p for p in (cache / "bin").glob("versitygw-*") if not p.name.endswith(".tmp")]
        binary = str(max(built, key=lambda p: p.stat().st_mtime, default=""))
    if not binary or not os.access(binary, os.X_OK):
        pytest.skip(
            f"no versitygw binary (DOCGRAPH_TEST_VERSITYGW_BIN={binary!r}): build it with "
            "deploy/local/services.sh up s3, or point DOCGRAPH_TEST_VERSITYGW_BIN at one"
        )
    return binary


class Hook:
    """Wraps the API app and records every ``POST /v1/events/s3`` it answered."""

    def __init__(self, log: Path) -> None:
        self.app: Any = None
        self.log = log
        self.calls: list[Call] = []

    def wrap(self, app: Any) -> Hook:
        self.app = app
        return self

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/v1/events/s3":
            return await self.app(scope, receive, send)
        request, answer, status = bytearray(), bytearray(), [0]

        async def tee() -> Any:
            message = await receive()
            request.extend(message.get("body", b""))
            return message

        async def capture(message: Any) -> None:
            status[0] = message.get("status", status[0])
            answer.extend(message.get("body", b""))
            await send(message)

        await self.app(scope, tee, capture)
        self.calls.append((json.loads(request), status[0], json.loads(answer)))

    async def answered(self, n: int, timeout: float = 30) -> list[Call]:
        """All the calls, once there are ``n`` (and no more)."""
        deadline = time.monotonic() + timeout
        while len(self.calls) < n:
            assert time.monotonic() < deadline, (
                f"{len(self.calls)} of {n} notifications answered: {self.calls}\n"
                f"versitygw: {self.log.read_text()[-2000:]}"
            )
            await asyncio.sleep(0.02)
        assert len(self.calls) == n, self.calls
        return self.calls


@pytest.fixture
def notifying_s3(settings, tmp_path, monkeypatch) -> Iterator[tuple[Minio, Hook, Any]]:
    """The API (store s3://BUCKET/in, token TOKEN) and a versitygw that notifies it."""
    binary, port = _versitygw(), free_port()
    s = settings.model_copy(
        update={"object_store_url": f"s3://{BUCKET}/in", "s3_endpoint": f"127.0.0.1:{port}",
                "s3_access_key": ACCESS, "s3_secret_key": SECRET, "api_tokens": [TOKEN]}
    )  # fmt: skip
    hook = Hook(tmp_path / "versitygw.log")
    monkeypatch.setattr(api_conftest, "create_app", lambda st: hook.wrap(create_app(st)))  # for serve()
    # the API first: versitygw posts a test event at start-up and exits if it cannot connect
    with api_conftest.serve(s) as server, hook.log.open("wb") as out:
        webhook = server.url.replace("http://", f"http://docgraph:{TOKEN}@") + "/v1/events/s3"
        (tmp_path / "s3").mkdir()
        proc = subprocess.Popen(
            [binary, "--port", f"127.0.0.1:{port}", "--access", ACCESS, "--secret", SECRET,
             "--region", "us-east-1", "--event-webhook-url", webhook,
             "posix", str(tmp_path / "s3")],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            s3 = Minio(f"127.0.0.1:{port}", ACCESS, SECRET, secure=False, region="us-east-1")
            deadline = time.monotonic() + 30
            while True:  # ready: the bucket can be made
                try:
                    s3.make_bucket(BUCKET)
                    break
                except Exception:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        pytest.fail(f"versitygw did not start:\n{hook.log.read_text()[-2000:]}")
                    time.sleep(0.05)
            yield s3, hook, s
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _record(call: Call) -> tuple[str, str]:
    """(eventName, key) of a one-record notification."""
    record = call[0]["Records"][0]
    return record["eventName"], record["s3"]["object"]["key"]


async def test_uploads_to_the_bucket_start_one_job_each(notifying_s3, client) -> None:
    s3, hook, settings = notifying_s3
    store = JobStore(client, settings)

    def put(key: str, data: bytes) -> None:
        s3.put_object(BUCKET, key, io.BytesIO(data), len(data), content_type="text/plain")

    # a space and a plus: versitygw sends keys as they are, AWS and MinIO URL-encoded
    # ("a+b.txt" decoded would name "a b.txt", which exists by then)
    keys = ["in/a b.txt", "in/report one.txt", "in/a+b.txt", "in/sub/c.md"]
    for i, key in enumerate(keys):
        await asyncio.to_thread(put, key, f"document {i}\n".encode())
    calls = await hook.answered(1 + len(keys))
    assert all(status == 202 for _, status, _ in calls), calls
    [(test_event, _, answer)] = [c for c in calls if "Records" not in c[0]]  # posted at start-up
    assert test_event["Event"] == "s3:TestEvent" and answer == {"jobs": [], "ignored": 0}
    created = {}
    for call in (c for c in calls if "Records" in c[0]):
        event, key = _record(call)
        [job] = call[2]["jobs"]
        assert event == "s3:ObjectCreated:Put" and job["created"], call
        assert job["uri"] == f"s3://{BUCKET}/{key}"
        created[key] = job["id"]
    assert sorted(created) == sorted(keys)

    jobs = (await store.list("queued", limit=100)).jobs
    assert {j.id: j.metadata for j in jobs} == {
        created[k]: {"name": k.rsplit("/", 1)[-1], "source": "s3:s3:ObjectCreated:Put"} for k in keys
    }
    roots = [part.stream(store.topology.roots[0], "normal") for part in store.keys.all()]
    envelopes = [json.loads(f[b"payload"]) for r in roots for _, f in await client.xrange(r)]
    assert {e["job_id"]: e["document"]["uri"] for e in envelopes} == {
        created[k]: f"s3://{BUCKET}/{k}" for k in keys
    }

    # the same bytes again (same eTag: the same job), new bytes (a new job), a delete (ignored)
    await asyncio.to_thread(put, keys[0], b"document 0\n")
    await asyncio.to_thread(put, keys[1], b"document 1, edited\n")
    await asyncio.to_thread(s3.remove_object, BUCKET, keys[2])
    calls = (await hook.answered(1 + len(keys) + 3))[1 + len(keys) :]
    assert all(status == 202 for _, status, _ in calls), calls
    answers = {_record(call): call[2] for call in calls}
    [again] = answers["s3:ObjectCreated:Put", keys[0]]["jobs"]
    assert (again["id"], again["created"]) == (created[keys[0]], False)
    [edited] = answers["s3:ObjectCreated:Put", keys[1]]["jobs"]
    assert edited["created"] and edited["id"] != created[keys[1]]
    assert answers["s3:ObjectRemoved:Delete", keys[2]] == {"jobs": [], "ignored": 1}
    queued = {j.id for j in (await store.list("queued", limit=100)).jobs}
    assert queued == {*created.values(), edited["id"]}


async def test_docgraph_own_objects_start_no_jobs(notifying_s3, client) -> None:
    """Stage artifacts (jobs/) and uploaded documents (documents/) land in the same
    bucket and are notified too: they must not become jobs (or every artifact
    would start another job, forever)."""
    s3, hook, settings = notifying_s3
    store = JobStore(client, settings)
    keys = ["in/jobs/j1/extract.json", "in/documents/ab/abcdef", "in/jobs.txt", "other/jobs/x.json"]
    for key in keys:
        await asyncio.to_thread(s3.put_object, BUCKET, key, io.BytesIO(b"{}\n"), 3, content_type="text/plain")
    calls = [c for c in await hook.answered(1 + len(keys)) if "Records" in c[0]]
    answers = {_record(call)[1]: (call[1], call[2]) for call in calls}
    assert answers["in/jobs/j1/extract.json"] == (202, {"jobs": [], "ignored": 1})
    assert answers["in/documents/ab/abcdef"] == (202, {"jobs": [], "ignored": 1})
    [job] = answers["in/jobs.txt"][1]["jobs"]  # a document that merely starts with "jobs"
    assert job["created"]
    assert answers["other/jobs/x.json"][0] == 422  # outside the store: refused as before, not ignored
    assert {j.id for j in (await store.list("queued", limit=100)).jobs} == {job["id"]}
