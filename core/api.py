"""The HTTP API: submit documents, follow jobs, page through them, replay dead letters.

``create_app(settings)`` builds the FastAPI app; ``docgraph serve`` runs it
under uvicorn.  One Redis client per app (opened in the lifespan), the same
JobStore / DeadLetters the CLI uses, bearer-token auth from
``DOCGRAPH_API_TOKENS``, errors as ``application/problem+json``.
See docs/api.md for every endpoint with curl examples.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path as FsPath
from typing import Annotated, Any, Literal, get_args
from urllib.parse import quote, unquote, unquote_plus, urlparse

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request, Response
from fastapi.responses import PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile

from docgraph.core import telemetry
from docgraph.core.api_errors import BodyLimit, Problem, document_problems, install_problem_handlers
from docgraph.core.dlq import DeadLetters
from docgraph.core.envelope import DocumentRef
from docgraph.core.errors import PermanentError
from docgraph.core.jobs import JobStore, epoch_ms
from docgraph.core.keys import JOB_STATES, Lane
from docgraph.core.objects import FileStore, ObjectStore, S3Store, open_store
from docgraph.core.redisio import connect
from docgraph.core.settings import Settings

log = logging.getLogger("docgraph.api")

JobState = Literal["queued", "running", "retrying", "completed", "failed", "dead", "cancelled"]
assert set(get_args(JobState)) == set(JOB_STATES), "JobState is out of date with keys.JOB_STATES"

JOB_ID = r"^[^/\x00-\x20\x7f]{1,200}$"  # ids of adopted events are free-form; no "/" or blanks
LETTER_REF = re.compile(r"^(\d{1,4})/(\d{1,20}-\d{1,20})$")
TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
API_REDIS_CONNECTIONS = 256


# -- models (the OpenAPI schema) ------------------------------------------------


class DocumentIn(BaseModel):
    """An object already in the store (``file://`` under its folder or ``s3://<its bucket>/…``)."""

    model_config = ConfigDict(extra="forbid")

    uri: str = Field(min_length=1, max_length=2000, examples=["s3://docs/reports/a.pdf"])
    content_type: str | None = Field(None, max_length=200)
    name: str | None = Field(None, max_length=500)


class SubmitJSON(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document: DocumentIn
    priority: Lane = Lane.normal
    metadata: dict[str, Any] = Field(default_factory=dict)


class Submitted(BaseModel):
    id: str
    state: str
    created: bool = Field(description="false when the Idempotency-Key already named this job")
    status_url: str


class StageOut(BaseModel):
    name: str
    status: str
    attempts: int
    runs: int
    completions: int
    progress: float
    message: str
    error: str | None
    started: int | None = Field(description="ms since the epoch")
    finished: int | None
    due: int | None = Field(description="when a scheduled retry is due (ms)")
    output: dict[str, Any] | None


class JobOut(BaseModel):
    id: str
    state: str
    priority: str
    created: int
    updated: int
    finished: int | None
    progress: float
    error: str | None
    metadata: dict[str, Any]
    trace_id: str | None
    trace_link: str | None
    stages: list[StageOut]


class JobPage(BaseModel):
    jobs: list[JobOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last")
    next: str | None = Field(description="URL of the next page")


class DeadLetterPage(BaseModel):
    stage: str
    count: int = Field(description="dead letters of the stage in total")
    letters: list[dict[str, Any]]
    next_after: str | None = Field(description="pass as ?after= for the next page")


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    ids: list[str] | None = Field(None, max_length=10_000, description="letter refs (`<partition>/<id>`)")
    all_: bool = Field(False, alias="all", description="replay every letter of the stage")


class Replayed(BaseModel):
    replayed: int


class Purged(BaseModel):
    purged: int


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return walk(defs[node["$ref"].rsplit("/", 1)[-1]])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return dict(walk(schema))


SUBMIT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "priority": {"type": "string", "enum": [lane.value for lane in Lane]},
                        "metadata": {"type": "string", "description": "a JSON object"},
                    },
                }
            },
            "application/json": {"schema": _inline_refs(SubmitJSON.model_json_schema())},
        },
    }
}


# -- state and dependencies -----------------------------------------------------


@dataclass
class ApiState:
    settings: Settings
    jobs: JobStore
    dlq: DeadLetters
    objects: ObjectStore
    client: Any


async def get_api(request: Request) -> ApiState:
    # async: a plain def dependency would cost a thread-pool hop per request
    api: ApiState = request.app.state.api
    return api


Api = Annotated[ApiState, Depends(get_api)]
JobId = Annotated[str, Path(pattern=JOB_ID, description="job id")]
bearer = HTTPBearer(
    auto_error=False,
    description="one of DOCGRAPH_API_TOKENS: `Authorization: Bearer <token>`",
)


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    tokens: list[bytes] = request.app.state.tokens
    if not tokens:
        return
    given = credentials.credentials.encode() if credentials is not None else _webhook_password(request)
    if given is None:
        raise Problem(
            401,
            "this endpoint needs a bearer token: send `Authorization: Bearer <token>` "
            "with one of the tokens in DOCGRAPH_API_TOKENS",
            headers={"WWW-Authenticate": 'Bearer realm="docgraph"'},
        )
    ok = False
    for token in tokens:  # compare against all of them: no early exit to time
        ok |= hmac.compare_digest(given, token)
    if not ok:
        raise Problem(
            403,
            "the token is not one of DOCGRAPH_API_TOKENS; check the token you were given",
            headers={"WWW-Authenticate": 'Bearer realm="docgraph", error="invalid_token"'},
        )


def _webhook_password(request: Request) -> bytes | None:
    """For the bucket-notification webhook only: a token sent as the password of
    HTTP Basic auth, for S3 servers that cannot send a bearer header but take a
    ``http://docgraph:<token>@host/v1/events/s3`` URL (versitygw)."""
    header = request.headers.get("authorization", "")
    if not request.url.path.endswith("/v1/events/s3") or header[:6].lower() != "basic ":
        return None
    try:
        _, _, password = base64.b64decode(header[6:].strip(), validate=True).partition(b":")
    except (binascii.Error, ValueError):
        return b""  # malformed: a wrong token (403), not a missing one
    return password


def _check_stage(api: ApiState, stage: str) -> None:
    if stage not in api.jobs.topology.stages:
        raise Problem(404, f"no stage {stage!r}; the stages are {', '.join(api.jobs.topology.stages)}")


def _check_ref(api: ApiState, ref: str, what: str) -> None:
    match = LETTER_REF.match(ref)
    if not match or int(match.group(1)) >= api.settings.partitions:
        raise Problem(
            400,
            f"{what} {ref!r} is not a dead-letter ref; refs look like '0/1732790000000-0' "
            "(the 'id' field of GET /v1/dlq/{stage})",
        )


# -- cursors ----------------------------------------------------------------------


def encode_cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    bad = Problem(
        400,
        f"cursor {cursor!r} is not one this API issued; pass the next_cursor of the previous page "
        "unchanged, or omit it for the first page",
    )
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise bad from None
    score, sep, job_id = raw.partition(":")
    if not sep or not score.isdigit() or not re.fullmatch(JOB_ID, job_id):
        raise bad
    return raw


# -- documents --------------------------------------------------------------------


def _not_in_store(uri: str, store: ObjectStore) -> Problem:
    where = store.root.as_uri() if isinstance(store, FileStore) else f"s3://{getattr(store, 'bucket', '?')}"
    return Problem(
        422,
        f"document.uri {uri!r} is not in this API's object store ({where}); upload the file with "
        "multipart/form-data instead, or name an object under that location",
    )


def locate_document(store: ObjectStore, doc: DocumentIn, max_bytes: int) -> DocumentRef:
    """Check that ``doc.uri`` names an existing object of *this* store (a worker
    must never be sent to read an arbitrary path) and describe it."""
    parsed = urlparse(doc.uri)
    sha: str | None = None
    content_type = doc.content_type
    if isinstance(store, FileStore):
        if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
            raise _not_in_store(doc.uri, store)
        path = FsPath(unquote(parsed.path)).resolve()
        if not path.is_relative_to(store.root):
            raise _not_in_store(doc.uri, store)
        if not path.is_file():
            raise Problem(422, f"document {doc.uri} does not exist; upload it first")
        size = path.stat().st_size
        uri = path.as_uri()
        name = path.name
        if path.parent.parent == store.root / "documents" and SHA256.match(name):
            sha = name
    elif isinstance(store, S3Store):
        from minio.error import S3Error

        key = parsed.path.lstrip("/")
        if parsed.scheme != "s3" or parsed.netloc != store.bucket or not key:
            raise _not_in_store(doc.uri, store)
        if store.prefix and not key.startswith(store.prefix + "/"):
            raise _not_in_store(doc.uri, store)
        try:
            stat = store.client.stat_object(store.bucket, key)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject"):
                raise Problem(422, f"document {doc.uri} does not exist; upload it first") from None
            raise
        size = stat.size or 0
        content_type = content_type or stat.content_type
        uri = f"s3://{store.bucket}/{key}"
        name = key.rsplit("/", 1)[-1]
        if key.split("/")[-3:-2] == ["documents"] and SHA256.match(name):
            sha = name
    else:  # pragma: no cover - a third-party store
        raise Problem(422, "this object store cannot check URIs; upload the file instead")
    if size > max_bytes:
        raise Problem(
            413,
            f"document is {size:,} bytes, over the {max_bytes:,}-byte limit "
            "(DOCGRAPH_MAX_DOCUMENT_BYTES); split it or raise the limit",
        )
    return DocumentRef(uri=uri, sha256=sha, size=size, content_type=content_type, name=doc.name or name)


def _own_object(objects: Any, bucket: str, key: str) -> bool:
    """An object docgraph wrote itself in its store: a stage artifact (``jobs/``)
    or an uploaded document (``documents/``, its job already exists)."""
    if getattr(objects, "bucket", None) != bucket:
        return False
    prefix = getattr(objects, "prefix", "")
    if prefix:
        if not key.startswith(prefix + "/"):
            return False
        key = key[len(prefix) + 1 :]
    return key.startswith(("jobs/", "documents/"))


async def _locate(api: ApiState, doc: DocumentIn) -> DocumentRef:
    """:func:`locate_document` off the event loop; a store error becomes a 503."""
    try:
        return await asyncio.to_thread(locate_document, api.objects, doc, api.settings.max_document_bytes)
    except Problem:
        raise
    except Exception as exc:
        raise _store_unavailable(api, exc) from exc


def _store_unavailable(api: ApiState, exc: Exception) -> Problem:
    log.warning("object store error: %r", exc)
    where = api.settings.object_store_url or "the default folder (<data_dir>/objects)"
    return Problem(
        503,
        f"the object store {where} failed ({type(exc).__name__}: {exc}); check that it is reachable "
        "and writable (DOCGRAPH_OBJECT_STORE_URL, DOCGRAPH_S3_*), then retry",
        headers={"Retry-After": "5"},
    )


def _metadata_field(value: Any) -> dict[str, Any]:
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


def _priority(value: Any) -> Lane:
    if value is None or value == "":
        return Lane.normal
    try:
        return Lane(str(value))
    except ValueError:
        raise Problem(
            422, f"priority {value!r} is not one of {', '.join(lane.value for lane in Lane)}"
        ) from None


async def _from_upload(request: Request, api: ApiState) -> tuple[DocumentRef, Lane, dict[str, Any]]:
    form = await request.form(max_files=1, max_fields=10)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Problem(
                422,
                "multipart body has no file part named 'file'; send e.g. curl -F file=@report.pdf",
            )
        priority = _priority(form.get("priority"))
        metadata = _metadata_field(form.get("metadata"))
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
            raise _store_unavailable(api, exc) from exc
        return ref, priority, metadata
    finally:
        await form.close()


# -- the app ----------------------------------------------------------------------


def create_app(settings: Settings) -> FastAPI:
    """The docgraph HTTP API for these settings (Redis client opened in the lifespan).

    Raises ConfigError for an unusable object store URL before anything serves."""
    objects = open_store(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # past the pool size a request gets 503 + Retry-After (see api_errors)
        client = connect(settings.redis_url, max_connections=API_REDIS_CONNECTIONS)
        app.state.api = ApiState(
            settings=settings,
            jobs=JobStore(client, settings),
            dlq=DeadLetters(client, settings),
            objects=objects,
            client=client,
        )
        try:
            yield
        finally:
            await client.aclose()

    app = FastAPI(
        title="docgraph",
        version=_version(),
        description=(
            "Submit documents to the docgraph pipeline, follow their jobs stage by stage, "
            "page through jobs by state and manage dead letters. Errors are "
            "application/problem+json (RFC 9457)."
        ),
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry (HTTP server spans, parents of the submit's
        # send span) when docgraph's is configured; otherwise off, as its per-request
        # provider lookups cost 2-4% of the CPU of a status query
        telemetry=None if telemetry.enabled() else {"tracing": False, "metrics": False, "logs": False},
    )
    app.state.tokens = [t.encode() for t in settings.api_tokens if t]
    if not app.state.tokens:
        log.warning(
            "DOCGRAPH_API_TOKENS is empty: the HTTP API accepts requests without authentication; "
            "set DOCGRAPH_API_TOKENS='[\"<secret>\"]' unless it only listens on a trusted interface"
        )
    app.add_middleware(
        BodyLimit, upload_limit=settings.api_upload_limit, json_limit=settings.api_max_json_bytes
    )
    install_problem_handlers(app, settings.redis_url)
    document_problems(app)

    @app.get("/healthz", tags=["health"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["health"],
        summary="Redis answers PING and the object store is reachable",
        responses={503: {"description": "a dependency is down (problem+json with `checks`)"}},
    )
    async def readyz(api: Api) -> dict[str, Any]:
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(api.client.ping(), 3)
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {exc or type(exc).__name__}"
        try:
            await asyncio.wait_for(asyncio.to_thread(api.objects.ping), 5)
            checks["objects"] = "ok"
        except Exception as exc:
            checks["objects"] = f"error: {exc or type(exc).__name__}"
        failing = [k for k, v in checks.items() if v != "ok"]
        if failing:
            raise Problem(
                503,
                f"not ready: {', '.join(f'{k} ({checks[k]})' for k in failing)}; check "
                "DOCGRAPH_REDIS_URL / DOCGRAPH_OBJECT_STORE_URL and that the services run",
                checks=checks,
            )
        return {"status": "ready", "checks": checks}

    @app.get(
        "/metrics",
        tags=["health"],
        summary="Pipeline gauges in the Prometheus text format (jobs by state, queues, dead letters)",
        response_class=PlainTextResponse,
    )
    async def metrics(api: Api) -> PlainTextResponse:
        from docgraph.core.monitor import prometheus_text, snapshot

        snap = await snapshot(api.jobs, active=0, failures=0)
        return PlainTextResponse(prometheus_text(snap), media_type="text/plain; version=0.0.4")

    app.include_router(_router())
    return app


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("docgraph")
    except PackageNotFoundError:  # pragma: no cover
        return "0"


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _job_url(request: Request, job_id: str) -> str:
    # what url_for("get_job") gives, without its route search (~9% of a submit's CPU)
    return f"{request.base_url}v1/jobs/{quote(job_id, safe='')}"


def _router() -> APIRouter:
    router = APIRouter(prefix="/v1", dependencies=[Depends(require_token)])
    auth_errors: dict[int | str, dict[str, Any]] = {
        401: {"description": "no bearer token"},
        403: {"description": "wrong bearer token"},
    }

    @router.post(
        "/jobs",
        tags=["jobs"],
        status_code=202,
        response_model=Submitted,
        summary="Submit a document (multipart upload, or JSON naming an object in the store)",
        openapi_extra=SUBMIT_BODY,
        responses={
            202: {
                "headers": {"Location": {"description": "the job's status URL", "schema": {"type": "string"}}}
            },
            200: {
                "model": Submitted,
                "description": "the Idempotency-Key already named this job",
                "headers": {
                    "Location": {"description": "the job's status URL", "schema": {"type": "string"}}
                },
            },
            413: {"description": "document or body too large"},
            415: {"description": "neither multipart/form-data nor application/json"},
            **auth_errors,
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
        traceparent: Annotated[
            str | None, Header(description="W3C trace context to continue (optional)")
        ] = None,
    ) -> Submitted:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "multipart/form-data":
            ref, priority, metadata = await _from_upload(request, api)
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
            ref = await _locate(api, body.document)
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
        job_id, created = await api.jobs.submit(
            ref,
            priority=priority,
            metadata=metadata,
            idempotency_key=idempotency_key or None,
            traceparent=traceparent,
        )
        state = "queued"  # a new job always starts queued; only a replayed key needs a read
        if not created:
            job = await api.jobs.get(job_id)
            state = job.state if job else "unknown"
        url = _job_url(request, job_id)
        response.headers["Location"] = url
        if not created:
            response.status_code = 200
        return Submitted(id=job_id, state=state, created=created, status_url=url)

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
            **auth_errors,
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
            s3: dict[str, Any] = _as_dict(record.get("s3"))
            bucket_info = _as_dict(s3.get("bucket"))
            bucket = str(bucket_info.get("name", ""))
            obj: dict[str, Any] = _as_dict(s3.get("object"))
            raw_key = str(obj.get("key", ""))
            # AWS and MinIO URL-encode keys; versitygw sends them as they are, and
            # its bucket ARN ends with the object's path: then the key is exact
            exact = str(bucket_info.get("arn", "")).endswith(f"{bucket}/{raw_key}")
            key = raw_key if exact else unquote_plus(raw_key)
            if "ObjectCreated" not in event or not bucket or not key or _own_object(api.objects, bucket, key):
                ignored += 1  # docgraph's own writes (artifacts, uploads) would loop back as jobs
                continue
            doc = DocumentIn(uri=f"s3://{bucket}/{key}", content_type=obj.get("contentType"))
            try:
                ref = await _locate(api, doc)
            except Problem as problem:
                if raw_key == key or problem.status != 422:
                    raise
                # another sender of unencoded keys
                key, doc = raw_key, DocumentIn(uri=f"s3://{bucket}/{raw_key}", content_type=doc.content_type)
                ref = await _locate(api, doc)
            version = obj.get("eTag") or obj.get("versionId") or obj.get("sequencer") or ""
            job_id, created = await api.jobs.submit(
                ref,
                metadata={"name": key.rsplit("/", 1)[-1], "source": f"s3:{event}"},
                idempotency_key=f"s3:{bucket}/{key}@{version}",
            )
            jobs.append(
                {"id": job_id, "created": created, "uri": doc.uri, "status_url": _job_url(request, job_id)}
            )
        return {"jobs": jobs, "ignored": ignored}

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
        responses={400: {"description": "bad cursor or filter"}, **auth_errors},
    )
    async def list_jobs(
        request: Request,
        api: Api,
        state: Annotated[JobState, Query(description="job state to list")],
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        cursor: Annotated[
            str | None,
            Query(
                max_length=400, pattern=r"^[A-Za-z0-9_-]+$", description="next_cursor of the previous page"
            ),
        ] = None,
        stage: Annotated[
            str | None, Query(max_length=100, description="only jobs in `state` at this stage")
        ] = None,
        since: Annotated[
            datetime | None, Query(description="entered the state at or after (ISO 8601)")
        ] = None,
        until: Annotated[
            datetime | None, Query(description="entered the state at or before (ISO 8601)")
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
        responses={404: {"description": "no such job (never submitted, deleted or expired)"}, **auth_errors},
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
        responses={404: {"description": "no such job"}, **auth_errors},
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
        responses={404: {"description": "no such job"}, **auth_errors},
    )
    async def cancel_job(job_id: JobId, api: Api) -> dict[str, Any]:
        if await api.jobs.cancel(job_id) is None:
            raise Problem(404, f"no job {job_id!r}")
        job = await api.jobs.get(job_id)
        if job is None:
            raise Problem(404, f"no job {job_id!r}")
        return job.to_dict(api.settings.trace_link_template)

    @router.get(
        "/dlq/{stage}",
        tags=["dead letters"],
        response_model=DeadLetterPage,
        summary="Dead letters of a stage, oldest first",
        responses={404: {"description": "no such stage"}, 400: {"description": "bad `after`"}, **auth_errors},
    )
    async def list_dead_letters(
        stage: str,
        api: Api,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        after: Annotated[
            str | None, Query(max_length=64, description="next_after of the previous page")
        ] = None,
    ) -> dict[str, Any]:
        _check_stage(api, stage)
        if after:
            _check_ref(api, after, "after")
        letters = await api.dlq.list(stage, limit=limit, after=after)
        return {
            "stage": stage,
            "count": await api.dlq.count(stage),
            "letters": [lt.to_dict() for lt in letters],
            "next_after": letters[-1].ref if len(letters) == limit else None,
        }

    @router.get(
        "/dlq/{stage}/{ref:path}",
        tags=["dead letters"],
        summary="One dead letter in full: event, error type, message, traceback, attempts, trace",
        responses={404: {"description": "no such stage or letter"}, **auth_errors},
    )
    async def get_dead_letter(stage: str, ref: str, api: Api) -> dict[str, Any]:
        _check_stage(api, stage)
        _check_ref(api, ref, "ref")
        letter = await api.dlq.get(stage, ref)
        if letter is None:
            raise Problem(404, f"no dead letter {ref!r} in {stage} (replayed or purged?)")
        return letter.to_dict()

    @router.post(
        "/dlq/{stage}/replay",
        tags=["dead letters"],
        response_model=Replayed,
        summary='Put dead letters back on their stage (same job id and trace): {"ids": [...]} or {"all": true}',
        responses={
            400: {"description": "neither or both of ids / all"},
            404: {"description": "no such stage"},
            **auth_errors,
        },
    )
    async def replay_dead_letters(stage: str, body: ReplayIn, api: Api) -> Replayed:
        _check_stage(api, stage)
        if body.all_ == bool(body.ids):
            raise Problem(
                400,
                'name the letters to replay ({"ids": ["0/1732790000000-0"]}) or replay every '
                'letter of the stage ({"all": true}), not both',
            )
        if body.ids:
            for ref in body.ids:
                _check_ref(api, ref, "id")
        n = await api.dlq.replay(stage, None if body.all_ else list(body.ids or []))
        return Replayed(replayed=n)

    @router.delete(
        "/dlq/{stage}",
        tags=["dead letters"],
        response_model=Purged,
        summary="Delete every dead letter of a stage (needs ?confirm=true)",
        responses={
            400: {"description": "confirm=true missing"},
            404: {"description": "no such stage"},
            **auth_errors,
        },
    )
    async def purge_dead_letters(
        stage: str, api: Api, confirm: Annotated[bool, Query(description="must be true")] = False
    ) -> Purged:
        _check_stage(api, stage)
        if not confirm:
            raise Problem(
                400,
                f"purging deletes every dead letter of {stage!r} for good; repeat the request "
                "with ?confirm=true",
            )
        return Purged(purged=await api.dlq.purge(stage))

    return router


__all__ = ["create_app"]
