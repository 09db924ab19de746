"""A local folder as the object store (``file://``), the embedded default."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlparse

from docgraph.core.envelope import DocumentRef
from docgraph.core.errors import ConfigError, PermanentError
from docgraph.core.store.base import SHA256_NAME, ObjectMissing, OutsideStore, _hash_to_temp, _too_large


class FileStore:
    """A folder: ``documents/<sha[:2]>/<sha>`` and ``jobs/<job>/<name>.json``."""

    def __init__(self, root: Path, max_document_bytes: int) -> None:
        self.root = root.resolve()
        self.max_document_bytes = max_document_bytes
        (self.root / "documents").mkdir(parents=True, exist_ok=True)

    @property
    def location(self) -> str:
        return self.root.as_uri()

    def is_internal(self, uri: str) -> bool:
        parsed = urlparse(uri)
        if parsed.scheme != "file":
            return False
        path = Path(unquote(parsed.path)).resolve()
        return path.is_relative_to(self.root / "jobs") or path.is_relative_to(self.root / "documents")

    def locate(self, uri: str, max_bytes: int) -> DocumentRef:
        path = self._path(uri)  # OutsideStore for anything not under the root
        if not path.is_file():
            raise ObjectMissing(f"document {uri} does not exist; upload it first")
        size = path.stat().st_size
        if size > max_bytes:
            raise _too_large(size, max_bytes)
        documents = path.parent.parent == self.root / "documents" and SHA256_NAME.match(path.name)
        return DocumentRef(
            uri=path.as_uri(), sha256=path.name if documents else None, size=size, name=path.name
        )

    def _path(self, uri: str) -> Path:
        """The file ``uri`` names, only inside the store (after resolving ``..`` and symlinks):
        whoever can write a stream must not make a worker read /etc/passwd."""
        parsed = urlparse(uri)
        if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
            raise OutsideStore(
                f"{uri!r} is not a file:// URI of this worker's store ({self.location}); it was not read "
                "(workers read only under DOCGRAPH_OBJECT_STORE_URL)"
            )
        path = Path(unquote(parsed.path)).resolve()
        if not path.is_relative_to(self.root):
            raise OutsideStore(
                f"{uri!r} is outside this worker's store ({self.location}); it was not read "
                "(workers read only under DOCGRAPH_OBJECT_STORE_URL)"
            )
        return path

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
