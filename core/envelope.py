"""The event contract: a small versioned JSON payload plus ``traceparent``.

On the wire a stage event is a Redis stream entry with plain fields::

    payload      JSON of :class:`Envelope`
    traceparent  W3C trace context (optional)
    links        space-separated traceparents the span links to (optional;
                 a join's other branches)

so any Redis client can publish one, e.g.::

    redis-cli XADD '{docgraph:p0}:stream:extract:normal' '*' \
      payload '{"v":1,"job_id":"j1","stage":"extract","document":{"uri":"file:///tmp/a.pdf"}}'

Events stay small: large stage outputs live in the object store and are
referenced by URI (claim check).
"""

from __future__ import annotations

import json
import os
import time
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from docgraph.core.errors import PermanentError

SCHEMA_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})


class Lane(str, Enum):
    """Priority lanes; a worker always drains a higher lane first."""

    high = "high"
    normal = "normal"
    low = "low"


LANES: tuple[Lane, ...] = (Lane.high, Lane.normal, Lane.low)


class DocumentRef(BaseModel):
    """Where the document's bytes are, and what they are."""

    model_config = ConfigDict(extra="allow")

    uri: str
    sha256: str | None = None
    size: int | None = None
    content_type: str | None = None
    name: str | None = None


class Envelope(BaseModel):
    """One job at one stage."""

    model_config = ConfigDict(extra="ignore")

    v: int = Field(SCHEMA_VERSION, description="schema version")
    job_id: str = Field(min_length=1, max_length=200)
    stage: str
    attempt: int = Field(1, ge=1)
    priority: Lane = Lane.normal
    submitted_at: float = Field(default_factory=time.time)
    document: DocumentRef | None = None
    tenant: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, Any] = Field(default_factory=dict, description="earlier stages' outputs")

    @property
    def label(self) -> str:
        """What a person recognises the job by: ``report.pdf (job 30971fc8…)``."""
        doc = self.document
        name = display_name(doc.name, doc.uri) if doc else self.metadata.get("name")
        short = self.job_id if len(self.job_id) <= 12 else self.job_id[:8] + "…"
        return f"{name} (job {short})" if name else f"job {self.job_id}"


def display_name(name: str | None, uri: str | None) -> str | None:
    """A document as a person names it: its name, else the last part of its URI."""
    return name or (uri.rsplit("/", 1)[-1] or uri if uri else None)


def new_job_id() -> str:
    """A random UUID4 as 32 hex digits (``uuid.uuid4().hex``, without building a UUID: a submit's hot path)."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
    return b.hex()


def new_traceparent() -> str:
    """A fresh W3C traceparent (sampled) for a job submitted with no active trace."""
    h = os.urandom(24).hex()
    return f"00-{h[:32]}-{h[32:]}-01"


def trace_id_of(traceparent: str | None) -> str | None:
    if not traceparent:
        return None
    parts = traceparent.split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None


def decode_fields(fields: dict[bytes, bytes] | dict[str, str], max_bytes: int) -> Envelope:
    """Parse a stream entry, or raise PermanentError saying exactly what is wrong."""
    raw: dict[str, Any] = {(k.decode() if isinstance(k, bytes) else k): v for k, v in fields.items()}
    size = sum(len(v) for v in raw.values() if isinstance(v, bytes | str))
    if size > max_bytes:
        raise PermanentError(
            f"event is {size:,} bytes, over the {max_bytes:,}-byte limit "
            "(DOCGRAPH_MAX_EVENT_BYTES): put large data in the object store and "
            "reference it by URI"
        )
    payload = raw.get("payload")
    if payload is None:
        raise PermanentError(
            f"event has no 'payload' field (fields: {sorted(raw)}); publish "
            "XADD <stream> * payload '<json>' [traceparent <w3c>]"
        )
    try:  # fast path: one pass through pydantic-core
        envelope = Envelope.model_validate_json(payload)
        if envelope.v in SUPPORTED_VERSIONS:
            return envelope
    except ValidationError:
        pass
    return _explain(payload)


def _explain(payload: str | bytes) -> Envelope:
    """Slow path for a bad event: say exactly what is wrong."""
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PermanentError(f"event payload is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PermanentError(f"event payload must be a JSON object, got {type(data).__name__}")
    version = data.get("v", SCHEMA_VERSION)
    if version not in SUPPORTED_VERSIONS:
        raise PermanentError(
            f"event schema version {version!r} is not supported by this worker "
            f"(supported: {sorted(SUPPORTED_VERSIONS)}); upgrade the worker or the publisher"
        )
    try:
        return Envelope.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'payload'}: {err['msg']}" for err in exc.errors()
        )
        raise PermanentError(f"event payload is invalid: {problems}") from None
