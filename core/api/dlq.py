"""``/v1/dlq``: dead letters per stage: list, show, replay, purge."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from docgraph.core.api.auth import require_token
from docgraph.core.api.deps import AUTH_ERRORS, Api, check_ref, check_stage
from docgraph.core.api.models import DeadLetterPage, Purged, Replayed, ReplayIn
from docgraph.core.api.problems import Problem

router = APIRouter(prefix="/v1", dependencies=[Depends(require_token)])


@router.get(
    "/dlq/{stage}",
    tags=["dead letters"],
    response_model=DeadLetterPage,
    summary="Dead letters of a stage, oldest first",
    responses={404: {"description": "no such stage"}, 400: {"description": "bad `after`"}, **AUTH_ERRORS},
)
async def list_dead_letters(
    stage: str,
    api: Api,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    after: Annotated[str | None, Query(max_length=64, description="next_after of the previous page")] = None,
) -> dict[str, Any]:
    check_stage(api, stage)
    if after:
        check_ref(api, after, "after")
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
    responses={
        404: {"description": "no such stage or letter"},
        400: {"description": "bad `ref`"},
        **AUTH_ERRORS,
    },
)
async def get_dead_letter(stage: str, ref: str, api: Api) -> dict[str, Any]:
    check_stage(api, stage)
    check_ref(api, ref, "ref")
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
        **AUTH_ERRORS,
    },
)
async def replay_dead_letters(stage: str, body: ReplayIn, api: Api) -> Replayed:
    check_stage(api, stage)
    if body.all_ == bool(body.ids):
        raise Problem(
            400,
            'name the letters to replay ({"ids": ["0/1732790000000-0"]}) or replay every '
            'letter of the stage ({"all": true}), not both',
        )
    if body.ids:
        for ref in body.ids:
            check_ref(api, ref, "id")
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
        **AUTH_ERRORS,
    },
)
async def purge_dead_letters(
    stage: str, api: Api, confirm: Annotated[bool, Query(description="must be true")] = False
) -> Purged:
    check_stage(api, stage)
    if not confirm:
        raise Problem(
            400,
            f"purging deletes every dead letter of {stage!r} for good; repeat the request with ?confirm=true",
        )
    return Purged(purged=await api.dlq.purge(stage))
