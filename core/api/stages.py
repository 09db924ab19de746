"""``/v1/stages``: list stages, pause and resume them (operator controls)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends

from docgraph.core.api.auth import require_token
from docgraph.core.api.deps import AUTH_ERRORS, Api, check_stage
from docgraph.core.api.models import StageChanged, StageState
from docgraph.core.runtime.control import StageControl

router = APIRouter(prefix="/v1", dependencies=[Depends(require_token)])


def _control(api: Api) -> StageControl:
    return StageControl(api.client, api.settings)


@router.get(
    "/stages",
    tags=["stages"],
    response_model=list[StageState],
    summary="Every stage of the topology and whether it is paused",
    responses={**AUTH_ERRORS},
)
async def list_stages(api: Api) -> list[dict[str, Any]]:
    control = _control(api)
    paused = await control.paused()
    return [{"stage": s, "paused": s in paused, "paused_since": paused.get(s)} for s in control.stages]


@router.post(
    "/stages/{stage}/{action}",
    tags=["stages"],
    response_model=StageChanged,
    summary="Pause a stage (its workers finish what they hold and take nothing new, within one poll) or resume it",
    responses={404: {"description": "no such stage"}, **AUTH_ERRORS},
)
async def pause_or_resume_stage(stage: str, action: Literal["pause", "resume"], api: Api) -> dict[str, Any]:
    check_stage(api, stage)
    control = _control(api)
    changed = await (control.pause(stage) if action == "pause" else control.resume(stage))
    return {"stage": stage, "paused": action == "pause", "changed": changed}
