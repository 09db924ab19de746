"""Documents a request names or uploads, checked against this deployment's object store."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile

from docgraph.core.api.deps import ApiState
from docgraph.core.api.models import DocumentIn
from docgraph.core.api.problems import Problem
from docgraph.core.envelope import DocumentRef
from docgraph.core.errors import PermanentError
from docgraph.core.runtime.keys import Lane
from docgraph.core.store import ObjectMissing, ObjectStore, ObjectTooLarge, OutsideStore

log = logging.getLogger("docgraph.api")


def locate_document(store: ObjectStore, doc: DocumentIn, max_bytes: int) -> DocumentRef:
    """The store's description of ``doc.uri`` (any ObjectStore, third-party ones too),
    with the request's name and content type; refusals become 4xx problems."""
    try:
        ref = store.locate(doc.uri, max_bytes)
    except OutsideStore:
        raise Problem(
            422,
            f"document.uri {doc.uri!r} is not in this API's object store ({store.location}); upload the "
            "file with multipart/form-data instead, or name an object under that location",
        ) from None
    except ObjectMissing as exc:
        raise Problem(422, str(exc)) from None
    except ObjectTooLarge as exc:
        raise Problem(413, str(exc)) from None
    return ref.model_copy(
        update={"name": doc.name or ref.name, "content_type": doc.content_type or ref.content_type}
    )


async def locate(api: ApiState, doc: DocumentIn) -> DocumentRef:
    """:func:`locate_document` off the event loop; a store error becomes a 503."""
    try:
        return await asyncio.to_thread(locate_document, api.objects, doc, api.settings.max_document_bytes)
    except Problem:
        raise
    except Exception as exc:
        raise store_unavailable(api, exc) from exc


def store_unavailable(api: ApiState, exc: Exception) -> Problem:
    log.warning("object store error: %r", exc)
    where = api.settings.object_store_url or "the default folder (<data_dir>/objects)"
    return Problem(
        503,
        f"the object store {where} failed ({type(exc).__name__}: {exc}); check that it is reachable "
        "and writable (DOCGRAPH_OBJECT_STORE_URL, DOCGRAPH_S3_*), then retry",
        headers={"Retry-After": "5"},
    )


def metadata_field(value: Any) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if not isinstance(value, str):
        raise Problem(422, "form field 'metadata' must be a JSON object string, not a file")
    try:
        data = json.loads(value)
    except ValueError as exc:
        raise Problem(
            422, f"form field 'metadata' is not valid JSON ({exc}); send e.g. '{{\"k\": 1}}'"
        ) from None
    if not isinstance(data, dict):
        raise Problem(422, f"form field 'metadata' must be a JSON object, got {type(data).__name__}")
    return data


def priority_field(value: Any) -> Lane:
    if value is None or value == "":
        return Lane.normal
    try:
        return Lane(str(value))
    except ValueError:
        raise Problem(
            422, f"priority {value!r} is not one of {', '.join(lane.value for lane in Lane)}"
        ) from None


async def from_upload(request: Request, api: ApiState) -> tuple[DocumentRef, Lane, dict[str, Any]]:
    form = await request.form(max_files=1, max_fields=10)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Problem(
                422,
                "multipart body has no file part named 'file'; send e.g. curl -F file=@report.pdf",
            )
        priority = priority_field(form.get("priority"))
        metadata = metadata_field(form.get("metadata"))
        if upload.filename:
            metadata.setdefault("name", upload.filename)
        upload.file.seek(0)
        try:
            # the parser spooled the part to a temporary file (in memory only up
            # to 1 MiB); the store streams it on, hashing as it goes
            ref = await asyncio.to_thread(
                api.objects.put_document,
                upload.file,
                name=upload.filename,
                content_type=upload.content_type,
            )
        except PermanentError as exc:
            raise Problem(413, str(exc)) from None
        except Exception as exc:  # disk full, S3 down, credentials ...
            raise store_unavailable(api, exc) from exc
        return ref, priority, metadata
    finally:
        await form.close()
