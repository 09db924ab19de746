"""``/v1/jobs``: submit (upload or object URI), status, paged listing, cancel, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import ValidationError

from docgraph.core.api.auth import require_token
from docgraph.core.api.deps import AUTH_ERRORS, Api, JobId, decode_cursor, encode_cursor, job_url
from docgraph.core.api.documents import from_upload, locate
from docgraph.core.api.models import (
    SUBMIT_BODY,
    TRACEPARENT,
    IsoDateTime,
    JobOut,
    JobPage,
    JobState,
    SubmitJSON,
    Submitted,
)
from docgraph.core.api.problems import Problem
from docgraph.core.runtime.jobs import epoch_ms

router = APIRouter(prefix="/v1", dependencies=[Depends(require_token)])


@router.post(
    "/jobs",
    tags=["jobs"],
    status_code=202,
    response_model=Submitted,
    summary="Submit a document (multipart upload, or JSON naming an object in the store)",
    openapi_extra=SUBMIT_BODY,
    responses={
        202: {"headers": {"Location": {"description": "the job's status URL", "schema": {"type": "string"}}}},
        200: {
            "model": Submitted,
            "description": "the Idempotency-Key already named this job",
            "headers": {"Location": {"description": "the job's status URL", "schema": {"type": "string"}}},
        },
        413: {"description": "document or body too large"},
        415: {"description": "neither multipart/form-data nor application/json"},
        **AUTH_ERRORS,
    },
)
async def submit_job(
    request: Request,
    response: Response,
    api: Api,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=255,
            description="same key, same job: a retried request returns the first job (200)",
        ),
    ] = None,
    traceparent: Annotated[str | None, Header(description="W3C trace context to continue (optional)")] = None,
    not_before: Annotated[
        IsoDateTime | None,
        Query(
            description="ISO 8601: hold the job's first stage until then (delayed submission; naive = UTC)"
        ),
    ] = None,
    callback_url: Annotated[
        str | None,
        Query(
            max_length=2048,
            description="http(s) URL the notify worker POSTs this job's lifecycle events to, signed "
            "(Standard Webhooks; types: DOCGRAPH_NOTIFY__CALLBACK_TYPES); needs "
            "DOCGRAPH_NOTIFY__CALLBACK_SECRET",
        ),
    ] = None,
    latest_wins: Annotated[
        bool | None,
        Query(
            description="cancel an older job of the same document (name, else URI) that has not started "
            "yet; default: DOCGRAPH_LATEST_WINS"
        ),
    ] = None,
) -> Submitted:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        ref, priority, metadata = await from_upload(request, api)
    elif ctype == "application/json" or ctype.endswith("+json"):
        try:
            body = SubmitJSON.model_validate_json(await request.body())
        except ValidationError as exc:
            detail = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
            )
            raise Problem(
                422,
                f"invalid JSON body: {detail}; send "
                '{"document": {"uri": "..."}, "priority": "normal", "metadata": {}}',
            ) from None
        ref = await locate(api, body.document)
        priority, metadata = body.priority, body.metadata
    else:
        raise Problem(
            415,
            f"Content-Type {ctype or '(none)'!r} is not accepted: upload the file as "
            "multipart/form-data (curl -F file=@doc.pdf) or send application/json "
            'naming an object already in the store ({"document": {"uri": "..."}})',
        )
    if traceparent is not None and not TRACEPARENT.match(traceparent):
        traceparent = None  # W3C: ignore an invalid traceparent, start a new trace
    try:
        job_id, created = await api.jobs.submit(
            ref,
            priority=priority,
            metadata=metadata,
            idempotency_key=idempotency_key or None,
            traceparent=traceparent,
            not_before=not_before,
            callback_url=callback_url or None,
            latest_wins=latest_wins,
        )
    except ValueError as exc:  # a callback_url that is not http(s), or no secret to sign with
        raise Problem(422, str(exc)) from None
    state = "queued"  # a new job always starts queued; only a replayed key needs a read
    if not created:
        job = await api.jobs.get(job_id)
        state = job.state if job else "unknown"
    url = job_url(request, job_id)
    response.headers["Location"] = url
    if not created:
        response.status_code = 200
    return Submitted(id=job_id, state=state, created=created, status_url=url)


@router.get(
    "/jobs",
    tags=["jobs"],
    response_model=JobPage,
    summary="Jobs in a state, newest first, paged by an opaque cursor",
    description=(
        "Filters: `stage` keeps jobs whose stage of that name is itself in `state` "
        "(e.g. `state=dead&stage=ner`: jobs dead-lettered at ner; queued, running, retrying, "
        "failed and dead only); `since`/`until` (ISO 8601, inclusive) bound when the job "
        "entered the state. With `stage`, a page may hold fewer than `limit` jobs while "
        "`next_cursor` is set: follow it until it is null."
    ),
    responses={400: {"description": "bad cursor or filter"}, **AUTH_ERRORS},
)
async def list_jobs(
    request: Request,
    api: Api,
    state: Annotated[JobState, Query(description="job state to list")],
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[
        str | None,
        Query(max_length=400, pattern=r"^[A-Za-z0-9_-]+$", description="next_cursor of the previous page"),
    ] = None,
    stage: Annotated[
        str | None, Query(max_length=100, description="only jobs in `state` at this stage")
    ] = None,
    since: Annotated[
        IsoDateTime | None, Query(description="entered the state at or after (ISO 8601)")
    ] = None,
    until: Annotated[
        IsoDateTime | None, Query(description="entered the state at or before (ISO 8601)")
    ] = None,
) -> dict[str, Any]:
    raw = decode_cursor(cursor) if cursor else None
    try:
        page = await api.jobs.list(
            state, limit=limit, cursor=raw, stage=stage, since=epoch_ms(since), until=epoch_ms(until)
        )
    except ValueError as exc:
        raise Problem(400, str(exc)) from None
    template = api.settings.trace_link_template
    next_cursor = encode_cursor(page.next_cursor) if page.next_cursor else None
    next_url = str(request.url.include_query_params(cursor=next_cursor)) if next_cursor else None
    return {
        "jobs": [j.to_dict(template) for j in page.jobs],
        "next_cursor": next_cursor,
        "next": next_url,
    }


@router.get(
    "/jobs/{job_id}",
    tags=["jobs"],
    response_model=JobOut,
    summary="One job: state, per-stage status, progress, attempts, errors, timings, outputs, trace",
    responses={404: {"description": "no such job (never submitted, deleted or expired)"}, **AUTH_ERRORS},
)
async def get_job(job_id: JobId, api: Api) -> dict[str, Any]:
    job = await api.jobs.get(job_id)
    if job is None:
        raise Problem(
            404,
            f"no job {job_id!r}: it was never submitted, was deleted, or expired "
            "(DOCGRAPH_COMPLETED_MAX_AGE / DOCGRAPH_FAILED_MAX_AGE)",
        )
    return job.to_dict(api.settings.trace_link_template)


@router.delete(
    "/jobs/{job_id}",
    tags=["jobs"],
    status_code=204,
    response_class=Response,
    summary="Cancel a job and delete its record (a running stage finishes; nothing after it runs)",
    responses={404: {"description": "no such job"}, **AUTH_ERRORS},
)
async def delete_job(job_id: JobId, api: Api) -> Response:
    if await api.jobs.cancel(job_id, remove=True) is None:
        raise Problem(404, f"no job {job_id!r} (already deleted or expired?)")
    return Response(status_code=204)


@router.post(
    "/jobs/{job_id}/cancel",
    tags=["jobs"],
    response_model=JobOut,
    summary="Cancel a job but keep its record",
    responses={404: {"description": "no such job"}, **AUTH_ERRORS},
)
async def cancel_job(job_id: JobId, api: Api) -> dict[str, Any]:
    if await api.jobs.cancel(job_id) is None:
        raise Problem(404, f"no job {job_id!r}")
    job = await api.jobs.get(job_id)
    if job is None:
        raise Problem(404, f"no job {job_id!r}")
    return job.to_dict(api.settings.trace_link_template)
