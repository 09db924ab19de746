"""``/v1/events/s3``: the S3 / MinIO bucket-notification webhook, one job per created object."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_plus

from fastapi import APIRouter, Depends, Request

from docgraph.core.api.auth import require_token
from docgraph.core.api.deps import AUTH_ERRORS, Api, as_dict, job_url
from docgraph.core.api.documents import locate
from docgraph.core.api.models import DocumentIn
from docgraph.core.api.problems import Problem

router = APIRouter(prefix="/v1", dependencies=[Depends(require_token)])


@router.post(
    "/events/s3",
    tags=["events"],
    status_code=202,
    summary="S3 / MinIO bucket notification webhook: one job per created object",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["Records"],
                        "properties": {"Records": {"type": "array", "items": {"type": "object"}}},
                    }
                }
            },
        }
    },
    responses={
        422: {"description": "not an S3 event, or an object outside this deployment's store"},
        503: {"description": "the object store is unreachable"},
        **AUTH_ERRORS,
    },
)
async def s3_event(request: Request, api: Api) -> dict[str, Any]:
    """Point a bucket notification (MinIO ``notify_webhook``, or any S3
    ``ObjectCreated`` event in the AWS record format) here: uploading to the
    bucket starts the pipeline.  A redelivered notification of the same object
    version maps to the same job (idempotency key from bucket, key and eTag)."""
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise Problem(422, 'the notification body is not JSON (expected {"Records": [...]})') from None
    if isinstance(body, dict) and body.get("Event") == "s3:TestEvent":
        return {"jobs": [], "ignored": 0}  # sent when a webhook target is set up
    records = body.get("Records") if isinstance(body, dict) else None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise Problem(422, 'expected an S3 event {"Records": [{"eventName": ..., "s3": {...}}]}')
    jobs, ignored = [], 0
    for record in records:
        event = str(record.get("eventName", ""))
        s3: dict[str, Any] = as_dict(record.get("s3"))
        bucket_info = as_dict(s3.get("bucket"))
        bucket = str(bucket_info.get("name", ""))
        obj: dict[str, Any] = as_dict(s3.get("object"))
        raw_key = str(obj.get("key", ""))
        # AWS and MinIO URL-encode keys; versitygw sends them as they are, and
        # its bucket ARN ends with the object's path: then the key is exact
        exact = str(bucket_info.get("arn", "")).endswith(f"{bucket}/{raw_key}")
        key = raw_key if exact else unquote_plus(raw_key)
        if (
            "ObjectCreated" not in event
            or not bucket
            or not key
            or api.objects.is_internal(f"s3://{bucket}/{key}")
        ):
            ignored += 1  # docgraph's own writes (artifacts, uploads) would loop back as jobs
            continue
        doc = DocumentIn(uri=f"s3://{bucket}/{key}", content_type=obj.get("contentType"))
        try:
            ref = await locate(api, doc)
        except Problem as problem:
            if raw_key == key or problem.status != 422:
                raise
            # another sender of unencoded keys
            key, doc = raw_key, DocumentIn(uri=f"s3://{bucket}/{raw_key}", content_type=doc.content_type)
            ref = await locate(api, doc)
        version = obj.get("eTag") or obj.get("versionId") or obj.get("sequencer") or ""
        job_id, created = await api.jobs.submit(
            ref,
            metadata={"name": key.rsplit("/", 1)[-1], "source": f"s3:{event}"},
            idempotency_key=f"s3:{bucket}/{key}@{version}",
        )
        jobs.append(
            {"id": job_id, "created": created, "uri": doc.uri, "status_url": job_url(request, job_id)}
        )
    return {"jobs": jobs, "ignored": ignored}
