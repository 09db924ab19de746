"""The object store contract: what the runtime, the stages and the API need from a store."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from typing import IO, Any, Protocol

from docgraph.core.envelope import DocumentRef
from docgraph.core.errors import PermanentError

CHUNK = 1024 * 1024
SHA256_NAME = re.compile(r"^[0-9a-f]{64}$")


class OutsideStore(PermanentError):
    """A URI that does not name an object of this store: never read."""


class ObjectMissing(PermanentError):
    """A URI of this store naming an object that does not exist."""


class ObjectTooLarge(PermanentError):
    """An object over the size limit it is read or submitted under."""


class ObjectStore(Protocol):
    """Documents (content-addressed) and artifacts; what every backend provides."""

    @property
    def location(self) -> str:
        """The store's root as a URI (``file:///…``, ``s3://bucket/prefix``), for messages."""
        ...

    def put_document(
        self, stream: IO[bytes], *, name: str | None, content_type: str | None
    ) -> DocumentRef: ...

    def is_internal(self, uri: str) -> bool:
        """True for an object docgraph wrote itself: a stage artifact (``jobs/``) or a
        stored document (``documents/``, whose job exists already).  A bucket
        notification for one must not start a job, or every artifact would loop back."""
        ...

    def locate(self, uri: str, max_bytes: int) -> DocumentRef:
        """Describe an existing object of *this* store named by ``uri`` (size, name, the
        sha256 when it is a content-addressed document); raise :class:`OutsideStore`,
        :class:`ObjectMissing` or :class:`ObjectTooLarge`.  The API calls it before it
        accepts a URI, so a worker is never sent to read an arbitrary path."""
        ...

    def read(self, uri: str, max_bytes: int) -> bytes: ...

    def put_json(self, key: str, value: Any) -> str: ...

    def get_json(self, uri: str) -> Any: ...

    def ping(self) -> None: ...


def _too_large(size: int, limit: int) -> ObjectTooLarge:
    return ObjectTooLarge(
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
