"""Uploading to a real S3 bucket starts the pipeline: an S3 server of the
test's own (the versitygw that deploy/local/services.sh builds; MinIO's server
is AGPL, which this project does not use) is started with its bucket
notifications pointed at the API's ``POST /v1/events/s3``.

versitygw sends no ``Authorization`` header with its notifications, so this API
runs without tokens (deploy it on a trusted interface, or put the webhook
behind a proxy that adds the header)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from minio import Minio

from docgraph.core.jobs import JobStore
from tests.api.conftest import serve
from tests.redis_server import free_port

pytestmark = pytest.mark.service

BUCKET = "docgraph-hook"
ACCESS, SECRET = "hook-access", "hook-secret-key"


def _binary() -> str:
    binary = os.environ.get("DOCGRAPH_TEST_VERSITYGW_BIN", "")
    if not binary or not os.access(binary, os.X_OK):
        pytest.skip(
            f"no S3 server binary (DOCGRAPH_TEST_VERSITYGW_BIN={binary!r}): "
            'run deploy/local/services.sh up s3 and eval "$(deploy/local/services.sh env)"'
        )
    return binary


def _start_s3(binary: str, data: Path, port: int, webhook: str, log: Path) -> subprocess.Popen[bytes]:
    """versitygw on 127.0.0.1:port notifying ``webhook``; ready when the bucket exists."""
    data.mkdir()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [binary, "--port", f"127.0.0.1:{port}", "--access", ACCESS, "--secret", SECRET,
             "--region", "us-east-1", "--event-webhook-url", webhook, "posix", str(data)],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    s3 = Minio(f"127.0.0.1:{port}", access_key=ACCESS, secret_key=SECRET, secure=False, region="us-east-1")
    deadline = time.monotonic() + 30
    while True:
        try:
            s3.make_bucket(BUCKET)
            return proc
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"versitygw did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.1)


@pytest.fixture
def notifying_s3(settings, tmp_path) -> Iterator[tuple[Minio, object]]:
    """The API (no tokens) on an S3 store whose server notifies it; yields (S3 client, settings)."""
    binary = _binary()
    port = free_port()
    api_settings = settings.model_copy(
        update={
            "object_store_url": f"s3://{BUCKET}/in",
            "s3_endpoint": f"127.0.0.1:{port}",
            "s3_access_key": ACCESS,
            "s3_secret_key": SECRET,
            "api_tokens": [],
        }
    )
    # the API first: versitygw posts a test event at start-up and exits if it fails
    with serve(api_settings) as server:
        proc = _start_s3(binary, tmp_path / "s3", port, f"{server.url}/v1/events/s3", tmp_path / "s3.log")
        try:
            yield Minio(f"127.0.0.1:{port}", ACCESS, SECRET, secure=False, region="us-east-1"), api_settings
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def _jobs(store: JobStore, want: int, timeout: float = 30) -> list:
    deadline = time.monotonic() + timeout
    while True:
        page = await store.list("queued", limit=100)
        if len(page.jobs) >= want or time.monotonic() > deadline:
            return page.jobs
        await asyncio.sleep(0.05)


def _put(s3: Minio, key: str, data: bytes) -> None:
    s3.put_object(BUCKET, key, io.BytesIO(data), len(data), content_type="text/plain")


async def test_uploads_to_the_bucket_start_one_job_each(notifying_s3, client) -> None:
    s3, settings = notifying_s3
    store = JobStore(client, settings)
    # a space and a plus: versitygw sends keys unencoded, AWS and MinIO URL-encoded
    keys = ["in/report one.txt", "in/a+b.txt", "in/sub/c.md"]
    for i, key in enumerate(keys):
        await asyncio.to_thread(_put, s3, key, f"document {i}\n".encode())
    jobs = await _jobs(store, len(keys))
    assert sorted(j.metadata["name"] for j in jobs) == ["a+b.txt", "c.md", "report one.txt"]
    assert {j.metadata["source"] for j in jobs} == {"s3:s3:ObjectCreated:Put"}
    stream = store.keys.part(0).stream("extract", "normal")
    uris = {json.loads(f[b"payload"])["document"]["uri"] for _, f in await client.xrange(stream)}
    assert uris == {f"s3://{BUCKET}/{k}" for k in keys}

    # the same bytes again (same eTag: the same job), a delete (ignored), then a
    # new object as a barrier: the notifications arrive in order
    await asyncio.to_thread(_put, s3, keys[0], b"document 0\n")
    await asyncio.to_thread(s3.remove_object, BUCKET, keys[2])
    await asyncio.to_thread(_put, s3, "in/last.txt", b"the barrier\n")
    await _jobs(store, len(keys) + 1)
    await asyncio.sleep(0.3)  # room for a wrong extra job to show up
    jobs = (await store.list("queued", limit=100)).jobs
    assert sorted(j.metadata["name"] for j in jobs) == ["a+b.txt", "c.md", "last.txt", "report one.txt"]
