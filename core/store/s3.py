"""MinIO or any S3 as the object store (``s3://bucket/prefix``), through the minio client."""

from __future__ import annotations

import json
import os
from typing import IO, Any
from urllib.parse import urlparse

from docgraph.core.envelope import DocumentRef
from docgraph.core.errors import ConfigError, PermanentError
from docgraph.core.settings import Settings
from docgraph.core.store.base import SHA256_NAME, ObjectMissing, OutsideStore, _hash_to_temp, _too_large


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
        self.endpoint = settings.s3_endpoint
        self.allowed_buckets = frozenset(settings.s3_allowed_buckets)
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.max_document_bytes = settings.max_document_bytes

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def is_internal(self, uri: str) -> bool:
        parsed = urlparse(uri)
        key = parsed.path.lstrip("/")
        if parsed.scheme != "s3" or parsed.netloc != self.bucket:
            return False
        if self.prefix:
            if not key.startswith(self.prefix + "/"):
                return False
            key = key[len(self.prefix) + 1 :]
        return key.startswith(("jobs/", "documents/"))

    def locate(self, uri: str, max_bytes: int) -> DocumentRef:
        from minio.error import S3Error

        bucket, key = self._split(uri)
        try:
            stat = self.client.stat_object(bucket, key)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject"):
                raise ObjectMissing(f"document {uri} does not exist; upload it first") from None
            raise
        size = stat.size or 0
        if size > max_bytes:
            raise _too_large(size, max_bytes)
        name = key.rsplit("/", 1)[-1]
        documents = key.split("/")[-3:-2] == ["documents"] and SHA256_NAME.match(name)
        return DocumentRef(
            uri=f"s3://{bucket}/{key}",
            sha256=name if documents else None,
            size=size,
            content_type=stat.content_type,
            name=name,
        )

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _split(self, uri: str) -> tuple[str, str]:
        """Bucket and key of ``uri``, only in the store's bucket and prefix or an allowed
        bucket: whoever can write a stream must not make a worker read another tenant's data."""
        parsed = urlparse(uri)
        bucket, key = parsed.netloc, parsed.path.lstrip("/")
        inside = bucket == self.bucket and (not self.prefix or key.startswith(self.prefix + "/"))
        if parsed.scheme != "s3" or not key or not (inside or bucket in self.allowed_buckets):
            raise OutsideStore(
                f"{uri!r} is outside this worker's store ({self.location}); it was not read (workers read "
                "only under DOCGRAPH_OBJECT_STORE_URL and in the buckets of DOCGRAPH_S3_ALLOWED_BUCKETS)"
            )
        return bucket, key

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
            raise ConfigError(f"bucket {self.bucket!r} does not exist at {self.endpoint}")
