"""Object store: documents (content-addressed) and stage artifacts.

One interface, two backends: ``file://`` (a local folder, the embedded
default) and ``s3://bucket/prefix`` (MinIO or any S3, via the minio client).
Documents are stored once per sha256, streamed (never held in memory twice);
artifacts live under ``jobs/<job id>/`` and are referenced from events by URI
(claim check), so events stay small.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from docgraph.core.envelope import DocumentRef
from docgraph.core.errors import ConfigError
from docgraph.core.settings import Settings
from docgraph.core.store.base import ObjectMissing, ObjectStore, ObjectTooLarge, OutsideStore
from docgraph.core.store.file import FileStore
from docgraph.core.store.s3 import S3Store

__all__ = [
    "FileStore",
    "ObjectMissing",
    "ObjectStore",
    "ObjectTooLarge",
    "OutsideStore",
    "S3Store",
    "copy_local",
    "open_store",
]


def open_store(settings: Settings) -> ObjectStore:
    url = settings.object_store_url or (settings.data_dir / "objects").resolve().as_uri()
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return FileStore(Path(unquote(parsed.path)), settings.max_document_bytes)
    if parsed.scheme == "s3":
        return S3Store(settings, parsed.netloc, parsed.path)
    raise ConfigError(f"DOCGRAPH_OBJECT_STORE_URL={url!r}: use file:///path or s3://bucket/prefix")


def copy_local(path: Path, store: ObjectStore, content_type: str | None = None) -> DocumentRef:
    """Store a local file (streamed) and return its reference."""
    with path.open("rb") as f:
        return store.put_document(f, name=path.name, content_type=content_type)
