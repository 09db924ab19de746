"""What every route depends on: the app's state (JobStore, DeadLetters, object store), path checks, cursors."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Path, Request

from docgraph.core.api.models import JOB_ID, LETTER_REF
from docgraph.core.api.problems import Problem
from docgraph.core.runtime.dlq import DeadLetters
from docgraph.core.runtime.jobs import JobStore
from docgraph.core.settings import Settings
from docgraph.core.store import ObjectStore


@dataclass
class ApiState:
    settings: Settings
    jobs: JobStore
    dlq: DeadLetters
    objects: ObjectStore
    client: Any
    graph: Any = None  # core.api.graph.GraphReader: the sink, opened on the first graph read


async def get_api(request: Request) -> ApiState:
    # async: a plain def dependency would cost a thread-pool hop per request
    api: ApiState = request.app.state.api
    return api


Api = Annotated[ApiState, Depends(get_api)]
JobId = Annotated[str, Path(pattern=JOB_ID, description="job id")]


def check_stage(api: ApiState, stage: str) -> None:
    if stage not in api.jobs.topology.stages:
        raise Problem(404, f"no stage {stage!r}; the stages are {', '.join(api.jobs.topology.stages)}")


def check_ref(api: ApiState, ref: str, what: str) -> None:
    match = LETTER_REF.match(ref)
    if not match or int(match.group(1)) >= api.settings.partitions:
        raise Problem(
            400,
            f"{what} {ref!r} is not a dead-letter ref; refs look like '0/1732790000000-0' "
            "(the 'id' field of GET /v1/dlq/{stage})",
        )


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


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def job_url(request: Request, job_id: str) -> str:
    # what url_for("get_job") gives, without its route search (~9% of a submit's CPU)
    return f"{request.base_url}v1/jobs/{quote(job_id, safe='')}"


AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no bearer token"},
    403: {"description": "wrong bearer token"},
}
