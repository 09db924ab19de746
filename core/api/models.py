"""Request and response models of the HTTP API (its OpenAPI schema) and the id formats it accepts."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from docgraph.core.runtime.keys import JOB_STATES, Lane

JobState = Literal["queued", "running", "retrying", "completed", "failed", "dead", "cancelled"]
assert set(get_args(JobState)) == set(JOB_STATES), "JobState is out of date with keys.JOB_STATES"

JOB_ID = r"^[^/\x00-\x20\x7f]{1,200}$"  # ids of adopted events are free-form; no "/" or blanks
LETTER_REF = re.compile(r"^(\d{1,4})/(\d{1,20}-\d{1,20})$")
TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
API_REDIS_CONNECTIONS = 256


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
    due: int | None = Field(
        description="when a scheduled retry, or a delayed submission (status scheduled), is due (ms)"
    )
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


class StageState(BaseModel):
    stage: str
    paused: bool
    paused_since: int | None = Field(None, description="ms since the epoch")


class StageChanged(BaseModel):
    stage: str
    paused: bool
    changed: bool = Field(description="false when the stage already was in that state")


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


def _iso_only(value: Any) -> Any:
    """Pydantic reads a bare number as a Unix time; the API documents ISO 8601 only."""
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?[0-9.eE+-]+\s*", value):
        raise ValueError("an ISO 8601 date-time, e.g. 2026-12-03T01:00:00Z, not a number")
    return value


#: A query parameter's date-time: ISO 8601 text only (naive = UTC)
IsoDateTime = Annotated[datetime, BeforeValidator(_iso_only)]
