"""The web dashboard at ``/ui``: server-rendered pages (Jinja2) with a little htmx.

Everything reads without JavaScript; htmx only refreshes the live parts and
asks before destructive actions.  Same tokens as the API: a browser cannot send
a bearer header, so ``/ui/login`` trades the token for an HttpOnly, SameSite=Strict
cookie holding an HMAC of it (never the token itself).  Every state-changing
form is a POST carrying a CSRF token derived from the same session, and a
"confirm" box the server checks.  Reads go through the same JobStore,
DeadLetters, snapshot and StageControl as the API.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from docgraph.core.api.deps import Api, ApiState
from docgraph.core.runtime.control import StageControl
from docgraph.core.runtime.keys import JOB_STATES
from docgraph.core.runtime.snapshot import snapshot

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
SHOWN = 100  # entities and relations listed on a job page; the rest are counted
COOKIE = "docgraph_ui"
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix="/ui", include_in_schema=False)
static = StaticFiles(directory=HERE / "static")


def _mac(key: bytes, purpose: bytes) -> str:
    return hmac.new(key, b"docgraph-ui:" + purpose, hashlib.sha256).hexdigest()


class LoginRequired(Exception):
    """No valid session: GETs go to the login page, POSTs are refused."""


def session_key(request: Request) -> bytes:
    """The API token this request's session was made from (b"" when auth is off)."""
    tokens: list[bytes] = request.app.state.tokens
    if not tokens:
        return b""
    cookie = request.cookies.get(COOKIE, "")
    header = request.headers.get("authorization", "")
    bearer = header[7:].strip().encode() if header[:7].lower() == "bearer " else None
    match = None
    for token in tokens:  # every token compared: no early exit to time
        if hmac.compare_digest(cookie, _mac(token, b"session")) or (
            bearer is not None and hmac.compare_digest(bearer, token)
        ):
            match = token
    if match is None:
        raise LoginRequired
    return match


Session = Annotated[bytes, Depends(session_key)]


def csrf_token(key: bytes) -> str:
    return _mac(key, b"csrf")


def check_post(key: bytes, csrf: str, confirm: str | None, *, needs_confirm: bool = True) -> str | None:
    """Why a state-changing form is refused, or None."""
    if not hmac.compare_digest(csrf, csrf_token(key)):
        return "the form expired or did not come from this dashboard (CSRF token); reload the page"
    if needs_confirm and confirm != "yes":
        return "tick the confirmation box to do this"
    return None


def when(ms: int | None) -> str:
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def duration(start: int | None, end: int | None) -> str:
    if not start:
        return ""
    seconds = ((end or int(time.time() * 1000)) - start) / 1000
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


templates.env.filters["when"] = when
templates.env.globals["duration"] = duration


def page(request: Request, name: str, key: bytes, status_code: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        name,
        {"csrf": csrf_token(key), "auth": bool(request.app.state.tokens), **context},
        status_code=status_code,
    )


async def _throughput(api: ApiState) -> int:
    """Jobs completed in the last minute, every partition."""
    since = int(time.time() * 1000) - 60_000
    pipe = api.client.pipeline(transaction=False)
    for part in api.jobs.keys.all():
        pipe.zcount(part.state_index("completed"), since, "+inf")
    return sum(int(n) for n in await pipe.execute())


@router.get("", response_class=HTMLResponse)
async def overview(request: Request, api: Api, key: Session) -> HTMLResponse:
    snap = await snapshot(api.jobs, active=10, failures=10)
    return page(
        request,
        "overview.html",
        key,
        snap=snap,
        per_minute=await _throughput(api),
        states=JOB_STATES,
        live=request.headers.get("hx-request") == "true",
    )


@router.get("/jobs", response_class=HTMLResponse)
async def jobs(
    request: Request,
    api: Api,
    key: Session,
    state: Annotated[str, Query()] = "completed",
    stage: Annotated[str, Query()] = "",
    q: Annotated[str, Query(max_length=200)] = "",
    cursor: Annotated[str, Query()] = "",
    since: Annotated[str, Query(description="entered the state at or after (UTC, YYYY-MM-DDTHH:MM)")] = "",
    until: Annotated[str, Query(description="entered the state at or before (UTC)")] = "",
) -> HTMLResponse:
    error, next_cursor, found = "", None, []
    try:
        if q.strip():
            found = await api.jobs.search(q, limit=100)
        else:
            listed = await api.jobs.list(
                state,
                limit=50,
                cursor=cursor or None,
                stage=stage or None,
                since=_epoch_ms(since),
                until=_epoch_ms(until),
            )
            found, next_cursor = listed.jobs, listed.next_cursor
    except ValueError as exc:
        error = str(exc)
    return page(
        request,
        "jobs.html",
        key,
        jobs=found,
        state=state,
        stage=stage,
        q=q,
        states=JOB_STATES,
        stages=api.jobs.topology.stages,
        next_cursor=next_cursor,
        since=since,
        until=until,
        error=error,
    )


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
async def job(request: Request, api: Api, key: Session, job_id: str) -> HTMLResponse:
    found = await api.jobs.get(job_id)
    if found is None:
        return page(
            request, "message.html", key, title="No such job", message=f"no job {job_id}", status_code=404
        )
    template = api.settings.trace_link_template
    trace = template.format(trace_id=found.trace_id) if template and found.trace_id else ""
    graph = next((s.output for s in reversed(found.stages) if s.output and "entities" in s.output), None)
    written = await document_graph(api, graph)
    return page(request, "job.html", key, job=found, trace=trace, graph=graph, written=written)


async def document_graph(api: Api, output: dict[str, Any] | None) -> dict[str, Any] | None:
    """The entities and relations ingest recorded for the job (its ``graph.json``
    artifact), with relation ends named; None when there is none to read."""
    uri = (output or {}).get("artifact")
    if not uri:
        return None
    try:
        found = await asyncio.to_thread(api.objects.get_json, uri)
    except Exception as exc:  # deleted with its document, or the store is down: the page still renders
        log.warning("cannot read the job's graph artifact %s: %s", uri, exc)
        return {"missing": f"the recorded graph ({uri}) cannot be read: {exc}"}
    entities, relations = found.get("entities", []), found.get("relations", [])
    names = {e["key"]: e for e in entities}
    for r in relations[:SHOWN]:
        r["source_entity"], r["target_entity"] = names.get(r["source"]), names.get(r["target"])
    return {
        "entities": entities[:SHOWN],
        "relations": relations[:SHOWN],
        "more_entities": max(0, len(entities) - SHOWN),
        "more_relations": max(0, len(relations) - SHOWN),
    }


@router.post("/jobs/{job_id}/cancel", response_class=HTMLResponse)
async def cancel(
    request: Request,
    api: Api,
    key: Session,
    job_id: str,
    csrf: Annotated[str, Form()] = "",
    confirm: Annotated[str | None, Form()] = None,
) -> Response:
    refused = check_post(key, csrf, confirm)
    if refused:
        return page(request, "message.html", key, title="Not cancelled", message=refused, status_code=403)
    await api.jobs.cancel(job_id)
    return RedirectResponse(f"/ui/jobs/{quote(job_id)}", status_code=303)


@router.get("/dlq/{stage}", response_class=HTMLResponse)
async def dead_letters(
    request: Request, api: Api, key: Session, stage: str, after: Annotated[str, Query()] = ""
) -> HTMLResponse:
    try:
        letters = await api.dlq.list(stage, limit=50, after=after or None)
        count = await api.dlq.count(stage)
    except ValueError as exc:
        return page(request, "message.html", key, title="No such stage", message=str(exc), status_code=404)
    return page(request, "dlq.html", key, stage=stage, letters=letters, count=count, stages=api.dlq.stages)


@router.get("/dlq/{stage}/{ref:path}", response_class=HTMLResponse)
async def dead_letter(request: Request, api: Api, key: Session, stage: str, ref: str) -> HTMLResponse:
    try:
        letter = await api.dlq.get(stage, ref)
    except (ValueError, IndexError):
        letter = None
    if letter is None:
        return page(request, "message.html", key, title="No such letter", message=ref, status_code=404)
    return page(request, "letter.html", key, stage=stage, letter=letter)


@router.post("/dlq/{stage}/{action}", response_class=HTMLResponse)
async def dead_letter_action(
    request: Request,
    api: Api,
    key: Session,
    stage: str,
    action: str,
    csrf: Annotated[str, Form()] = "",
    confirm: Annotated[str | None, Form()] = None,
    ref: Annotated[str, Form()] = "",
) -> Response:
    refused = check_post(key, csrf, confirm)
    if refused or action not in ("replay", "purge"):
        message = refused or f"unknown action {action!r}"
        return page(request, "message.html", key, title="Nothing done", message=message, status_code=403)
    if action == "replay":
        done = await api.dlq.replay(stage, [ref] if ref else None)
        note = f"replayed {done}"
    else:
        note = f"purged {await api.dlq.purge(stage)}"
    return RedirectResponse(f"/ui/dlq/{quote(stage)}?done={quote(note)}", status_code=303)


@router.post("/stages/{stage}/{action}", response_class=HTMLResponse)
async def stage_action(
    request: Request,
    api: Api,
    key: Session,
    stage: str,
    action: str,
    csrf: Annotated[str, Form()] = "",
    confirm: Annotated[str | None, Form()] = None,
) -> Response:
    refused = check_post(key, csrf, confirm, needs_confirm=action == "pause")
    control = StageControl(api.client, api.settings)
    if refused or action not in ("pause", "resume") or stage not in control.stages:
        message = refused or f"no stage {stage!r} or action {action!r}"
        return page(request, "message.html", key, title="Nothing done", message=message, status_code=403)
    await (control.pause(stage) if action == "pause" else control.resume(stage))
    return RedirectResponse("/ui", status_code=303)


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "/ui") -> HTMLResponse:
    return templates.TemplateResponse(request, "login.html", {"next": _local(next), "error": ""})


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request, token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/ui"
) -> Response:
    tokens: list[bytes] = request.app.state.tokens
    given = token.strip().encode()
    match = None
    for t in tokens:
        if hmac.compare_digest(given, t):
            match = t
    if tokens and match is None:
        return templates.TemplateResponse(
            request,
            "login.html",
            {"next": _local(next), "error": "that is not one of DOCGRAPH_API_TOKENS"},
            status_code=403,
        )
    response = RedirectResponse(_local(next), status_code=303)
    response.set_cookie(
        COOKIE,
        _mac(match or b"", b"session"),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/ui",
    )
    return response


@router.post("/logout")
async def logout() -> Response:
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response


def _epoch_ms(text: str) -> int | None:
    """A datetime-local form value (UTC) as epoch ms; ValueError names the format."""
    if not text:
        return None
    try:
        return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)
    except ValueError:
        raise ValueError(f"{text!r} is not a date-time like 2026-12-03T01:00 (UTC)") from None


def _local(target: str) -> str:
    """Only paths of this dashboard (no open redirect)."""
    return target if target.startswith("/ui") and "//" not in target and "\\" not in target else "/ui"


def install(app: Any) -> None:
    """Mount the dashboard on the API app."""
    app.mount("/ui/static", static, name="ui-static")
    app.include_router(router)

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> Response:
        if request.method == "GET":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/ui/login?next={quote(target)}", status_code=303)
        return HTMLResponse("log in at /ui/login first", status_code=401)


__all__ = ["install", "router"]
