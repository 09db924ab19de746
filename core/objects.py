"""Object store: documents (content-addressed) and stage artifacts.

One interface, two backends: ``file://`` (a local folder, the embedded
default) and ``s3://bucket/prefix`` (MinIO or any S3, via the minio client).
Documents are stored once per sha256, streamed (never held in memory twice);
artifacts live under ``jobs/<job id>/`` and are referenced from events by URI
(claim check), so events stay small.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import unquote, urlparse

from docgraph.core.envelope import DocumentRef
from docgraph.core.errors import ConfigError, PermanentError
from docgraph.core.settings import Settings

CHUNK = 1024 * 1024


class ObjectStore(Protocol):
    def put_document(
        self, stream: IO[bytes], *, name: str | None, content_type: str | None
    ) -> DocumentRef: ...

    def read(self, uri: str, max_bytes: int) -> bytes: ...

    def put_json(self, key: str, value: Any) -> str: ...

    def get_json(self, uri: str) -> Any: ...

    def ping(self) -> None: ...


def _too_large(size: int, limit: int) -> PermanentError:
    return PermanentError(
        f"document is {size:,} bytes, over the {limit:,}-byte limit "
        "(DOCGRAPH_MAX_DOCUMENT_BYTES); split it or raise the limit"
    )


def _hash_to_temp(stream: IO[bytes], limit: int, directory: str | None = None) -> tuple[str, int, str]:
    """Copy a stream to a temp file while hashing it; refuses oversize input early."""
    digest = hashlib.sha256()
    size = 0
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            while block := stream.read(CHUNK):
                size += len(block)
                if size > limit:
                    raise _too_large(size, limit)
                digest.update(block)
                out.write(block)
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp, size, digest.hexdigest()


class FileStore:
    """A folder: ``documents/<sha[:2]>/<sha>`` and ``jobs/<job>/<name>.json``."""

    def __init__(self, root: Path, max_document_bytes: int) -> None:
        self.root = root.resolve()
        self.max_document_bytes = max_document_bytes
        (self.root / "documents").mkdir(parents=True, exist_ok=True)

    def _path(self, uri: str) -> Path:
        parsed = urlparse(uri)
        if parsed.scheme != "file":
            raise PermanentError(f"{uri!r} is not a file:// URI; this worker's store is {self.root}")
        return Path(unquote(parsed.path))

    def put_document(self, stream: IO[bytes], *, name: str | None, content_type: str | None) -> DocumentRef:
        tmp, size, sha = _hash_to_temp(stream, self.max_document_bytes, str(self.root / "documents"))
        target = self.root / "documents" / sha[:2] / sha
        target.parent.mkdir(exist_ok=True)
        if target.exists():
            os.unlink(tmp)  # same bytes already stored
        else:
            os.replace(tmp, target)
        return DocumentRef(uri=target.as_uri(), sha256=sha, size=size, content_type=content_type, name=name)

    def read(self, uri: str, max_bytes: int) -> bytes:
        path = self._path(uri)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise PermanentError(f"document {uri} does not exist; submit it again") from None
        if size > max_bytes:
            raise _too_large(size, max_bytes)
        return path.read_bytes()

    def put_json(self, key: str, value: Any) -> str:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(value, ensure_ascii=False))
        os.replace(tmp, path)  # atomic: a retried stage overwrites, never half-writes
        return path.as_uri()

    def get_json(self, uri: str) -> Any:
        return json.loads(self._path(uri).read_text())

    def ping(self) -> None:
        if not self.root.is_dir():
            raise ConfigError(f"object store folder {self.root} is missing")


class S3Store:
    """MinIO or any S3 through the minio client; ``s3://bucket/prefix``."""

    def __init__(self, settings: Settings, bucket: str, prefix: str) -> None:
        from minio import Minio

        if not settings.s3_endpoint:
            raise ConfigError("DOCGRAPH_OBJECT_STORE_URL is s3:// but DOCGRAPH_S3_ENDPOINT is not set")
        self.client = Minio(
            settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            secure=settings.s3_secure,
        )
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.max_document_bytes = settings.max_document_bytes

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _split(self, uri: str) -> tuple[str, str]:
        parsed = urlparse(uri)
        if parsed.scheme != "s3":
            raise PermanentError(f"{uri!r} is not an s3:// URI; this worker's store is s3://{self.bucket}")
        return parsed.netloc, parsed.path.lstrip("/")

    def put_document(self, stream: IO[bytes], *, name: str | None, content_type: str | None) -> DocumentRef:
        from minio.error import S3Error

        tmp, size, sha = _hash_to_temp(stream, self.max_document_bytes)
        key = self._key(f"documents/{sha[:2]}/{sha}")
        try:
            try:
                self.client.stat_object(self.bucket, key)  # same bytes already stored
            except S3Error as exc:
                if exc.code not in ("NoSuchKey", "NoSuchObject"):
                    raise
                metadata: dict[str, Any] = {"original-name": name or "", "sha256": sha}
                self.client.fput_object(
                    self.bucket,
                    key,
                    tmp,
                    content_type=content_type or "application/octet-stream",
                    metadata=metadata,
                )
        finally:
            os.unlink(tmp)
        return DocumentRef(
            uri=f"s3://{self.bucket}/{key}", sha256=sha, size=size, content_type=content_type, name=name
        )

    def read(self, uri: str, max_bytes: int) -> bytes:
        from minio.error import S3Error

        bucket, key = self._split(uri)
        try:
            size = self.client.stat_object(bucket, key).size or 0
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "NoSuchBucket"):
                raise PermanentError(f"document {uri} does not exist; submit it again") from None
            raise
        if size > max_bytes:
            raise _too_large(size, max_bytes)
        response = self.client.get_object(bucket, key)
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def put_json(self, key: str, value: Any) -> str:
        import io

        data = json.dumps(value, ensure_ascii=False).encode()
        full = self._key(key)
        self.client.put_object(
            self.bucket, full, io.BytesIO(data), len(data), content_type="application/json"
        )
        return f"s3://{self.bucket}/{full}"

    def get_json(self, uri: str) -> Any:
        bucket, key = self._split(uri)
        response = self.client.get_object(bucket, key)
        try:
            return json.loads(response.read())
        finally:
            response.close()
            response.release_conn()

    def ping(self) -> None:
        if not self.client.bucket_exists(self.bucket):
            raise ConfigError(f"bucket {self.bucket!r} does not exist at {self.client._base_url.host}")


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


__all__ = ["FileStore", "ObjectStore", "S3Store", "copy_local", "open_store"]
