"""A worker reads only inside its configured store: events naming anything else
are dead-lettered with the reason, unread, and the worker keeps going.

Real redis-server, the built-in extract stage, a file:// store and the real S3 server."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from docgraph.core.envelope import DocumentRef
from docgraph.core.runtime.dlq import DeadLetters
from docgraph.core.runtime.jobs import JobStore
from docgraph.core.settings import Settings
from docgraph.core.store import open_store
from tests.conftest import S3_ENV, s3_store
from tests.runtime.helpers import running_worker, wait_for_states

EXTRACT_ONLY = {"plugins": [], "topology": {"extract": []}}


async def _run_extract(settings: Settings, client, docs: list[DocumentRef]) -> dict[str, str]:
    store = JobStore(client, settings)
    ids = [(await store.submit(doc))[0] for doc in docs]
    async with running_worker(settings, client, with_services=True):
        return await wait_for_states(store, ids, {"completed", "dead", "failed"}, timeout=60)


async def test_file_store_workers_read_nothing_outside_the_root(settings: Settings, client, tmp_path: Path):
    root = tmp_path / "objects"
    settings = settings.model_copy(update={**EXTRACT_ONLY, "object_store_url": root.as_uri()})
    objects = open_store(settings)
    good = objects.put_document(io.BytesIO(b"CVE-2021-44228 in the store"), name="ok.txt", content_type=None)
    # a FIFO with no writer: opening it to read would block the stage until the
    # test times out, so a prompt dead letter proves nothing was read
    secret = tmp_path / "secret.fifo"
    os.mkfifo(secret)
    (root / "documents" / "link.txt").symlink_to(secret)
    hostile = [
        "file:///etc/passwd",
        f"{root.as_uri()}/documents/../../secret.fifo",
        (root / "documents" / "link.txt").as_uri(),
    ]
    states = await _run_extract(settings, client, [*(DocumentRef(uri=u) for u in hostile), good])
    assert list(states.values()) == ["failed", "failed", "failed", "completed"]  # permanent: no retries
    letters = await DeadLetters(client, settings).list("extract")
    reasons = sorted(letter.fields["error"] for letter in letters)
    assert len(reasons) == 3
    for uri in hostile:
        assert any(
            repr(uri) in r and "was not read" in r and "DOCGRAPH_OBJECT_STORE_URL" in r for r in reasons
        )


@pytest.mark.service
@pytest.mark.skipif(any(not os.environ.get(v) for v in S3_ENV), reason="needs the local S3 server")
async def test_s3_workers_read_only_their_bucket_prefix_and_allowed_buckets(settings: Settings, client):
    base = s3_store("confine")
    settings = settings.model_copy(update={**EXTRACT_ONLY, **base})
    objects = open_store(settings)
    good = objects.put_document(io.BytesIO(b"APT28 uses Mimikatz"), name="ok.txt", content_type=None)
    bucket = base["object_store_url"].split("/")[2]
    other = f"s3://{bucket}/another-tenant/report.txt"
    states = await _run_extract(
        settings, client, [DocumentRef(uri="s3://someone-elses-bucket/x.pdf"), DocumentRef(uri=other), good]
    )
    assert list(states.values()) == ["failed", "failed", "completed"]
    reasons = [letter.fields["error"] for letter in await DeadLetters(client, settings).list("extract")]
    assert all("DOCGRAPH_S3_ALLOWED_BUCKETS" in r and "was not read" in r for r in reasons), reasons
    allowed = settings.model_copy(update={"s3_allowed_buckets": ["someone-elses-bucket"]})
    assert open_store(allowed)._split("s3://someone-elses-bucket/x.pdf") == ("someone-elses-bucket", "x.pdf")


def test_allowed_buckets_setting_accepts_a_list_or_commas(monkeypatch):
    monkeypatch.setenv("DOCGRAPH_S3_ALLOWED_BUCKETS", "a, b")
    assert Settings().s3_allowed_buckets == ["a", "b"]
    monkeypatch.setenv("DOCGRAPH_S3_ALLOWED_BUCKETS", '["c"]')
    assert Settings().s3_allowed_buckets == ["c"]
