"""S3Store.locate on the real local S3 server: inside its bucket and prefix only."""

from __future__ import annotations

import io

import pytest

from docgraph.core.settings import Settings
from docgraph.core.store import ObjectMissing, ObjectTooLarge, OutsideStore, open_store
from tests.conftest import S3_ENV, requires_env, s3_store

pytestmark = requires_env(S3_ENV, "needs the local S3 server (deploy/local/services.sh up s3)")


def test_s3_store_locates_inside_its_bucket_and_prefix_only() -> None:
    s3 = open_store(Settings(**s3_store("locate")))
    ref = s3.put_document(io.BytesIO(b"hello s3"), name="b.txt", content_type="text/plain")
    found = s3.locate(ref.uri, 100)
    assert (found.sha256, found.size, found.content_type) == (ref.sha256, 8, "text/plain")
    bucket = ref.uri.split("/")[2]
    for uri in ("s3://another-bucket/x", f"s3://{bucket}/outside-the-prefix/x", "file:///etc/passwd"):
        with pytest.raises(OutsideStore):
            s3.locate(uri, 100)
    with pytest.raises(ObjectMissing):
        s3.locate(ref.uri + "-missing", 100)
    with pytest.raises(ObjectTooLarge):
        s3.locate(ref.uri, 3)
