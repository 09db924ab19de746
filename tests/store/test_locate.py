"""ObjectStore.locate: what the API accepts as a document URI, decided by the store itself."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from docgraph.core.api.documents import locate_document
from docgraph.core.api.models import DocumentIn
from docgraph.core.api.problems import Problem
from docgraph.core.store import FileStore, ObjectMissing, ObjectTooLarge, OutsideStore


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "objects", 1_000_000)


def test_file_store_locates_its_documents_and_nothing_else(store: FileStore, tmp_path: Path) -> None:
    ref = store.put_document(io.BytesIO(b"hello"), name="a.txt", content_type="text/plain")
    found = store.locate(ref.uri, 100)
    assert (found.sha256, found.size, found.uri) == (ref.sha256, 5, ref.uri)
    outside = tmp_path / "secret.txt"
    outside.write_text("no")
    (store.root / "link").symlink_to(outside)
    escape = f"{store.root.as_uri()}/documents/../../secret.txt"
    for uri in (outside.as_uri(), escape, (store.root / "link").as_uri(), "file:///etc/passwd", "s3://b/k"):
        with pytest.raises(OutsideStore):
            store.locate(uri, 100)
    with pytest.raises(ObjectMissing):
        store.locate((store.root / "nope").as_uri(), 100)
    with pytest.raises(ObjectTooLarge):
        store.locate(ref.uri, 4)


class ForeignStore:
    """A third-party store: no docgraph class, only the protocol (by delegation)."""

    def __init__(self, inner: FileStore) -> None:
        self.inner = inner
        self.location = "foreign://bucket"

    def locate(self, uri: str, max_bytes: int):
        return self.inner.locate(uri, max_bytes)


def test_the_api_maps_any_stores_refusals_to_problems(store: FileStore) -> None:
    ref = store.put_document(io.BytesIO(b"hello"), name="a.txt", content_type=None)
    foreign = ForeignStore(store)
    found = locate_document(foreign, DocumentIn(uri=ref.uri, name="named.txt"), 100)  # type: ignore[arg-type]
    assert (found.name, found.sha256) == ("named.txt", ref.sha256)
    for uri, status in (("file:///etc/passwd", 422), (ref.uri + "x", 422)):
        with pytest.raises(Problem) as caught:
            locate_document(foreign, DocumentIn(uri=uri), 100)  # type: ignore[arg-type]
        assert caught.value.status == status
    with pytest.raises(Problem) as caught:
        locate_document(foreign, DocumentIn(uri=ref.uri), 2)  # type: ignore[arg-type]
    assert caught.value.status == 413 and "DOCGRAPH_MAX_DOCUMENT_BYTES" in str(caught.value)
