"""Competitions: API routes to submit a session's checkpoint, read submissions and leaderboards, and
the /leaderboards page (each dataset's own board is on its page)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from haneul.platform.leaderboard import LIST_MAX, Leaderboards
from haneul.platform.plugins import CurrentPrincipal
from haneul.platform.server.deps import NonNegInt64, TemplatesDep, errors

router = APIRouter(tags=["leaderboards"])

Name = Annotated[str, PathParam(description="dataset name, e.g. nsmc", max_length=64)]
Version = Annotated[int | None, Query(ge=1, lt=1 << 31, description="a version (default: the latest scored one)")]


def _boards(request: Request) -> Leaderboards:
    return request.app.state.leaderboards


def _ref(name: str, version: int | None) -> str:
    return f"{name}:{version}" if version is not None else name


class SubmitBody(BaseModel):
    session: NonNegInt64 = Field(description="the session whose checkpoint to submit")
    checkpoint: str | None = Field(default=None, max_length=255, description="default: the session's latest")
    dataset: str | None = Field(default=None, max_length=80,
                                description="NAME[:VERSION]; default: the dataset the session ran with")


@router.post("/api/v1/submissions", status_code=201, responses=errors(400, 403, 404, 429))
async def submit(body: SubmitBody, request: Request, principal: CurrentPrincipal) -> dict[str, Any]:
    """Queue an evaluation of the checkpoint on the dataset's hidden test part; answers at once with the
    submission (status ``queued``; poll it until ``done``, ``failed`` or ``error``)."""
    boards = _boards(request)
    return await run_in_threadpool(lambda: boards.submit(
        principal=principal, session_id=body.session, checkpoint=body.checkpoint, dataset=body.dataset))


@router.get("/api/v1/submissions", responses=errors(400, 404))
def list_submissions(request: Request, principal: CurrentPrincipal,
                     dataset: Annotated[str | None, Query(max_length=80, description="NAME[:VERSION]")] = None,
                     limit: Annotated[int, Query(ge=1, le=LIST_MAX)] = 100) -> list[dict[str, Any]]:
    """Your teams' submissions, newest first."""
    return _boards(request).list_mine(principal=principal, dataset=dataset, limit=limit)


@router.get("/api/v1/submissions/{sid}", responses=errors(400, 404))
def get_submission(sid: NonNegInt64, request: Request, principal: CurrentPrincipal) -> dict[str, Any]:
    """One of your teams' submissions with its error and the tail of its log (another team's is a 404)."""
    return _boards(request).get(sid, principal=principal)


@router.get("/api/v1/datasets/{name}/leaderboard", responses=errors(400, 404))
def leaderboard(name: Name, request: Request, principal: CurrentPrincipal, version: Version = None) -> dict[str, Any]:
    """The best scored submission of each team, ranked (ties: the earlier one first)."""
    return _boards(request).leaderboard(principal=principal, ref=_ref(name, version))


@router.get("/api/v1/datasets/{name}/submissions", responses=errors(400, 404))
def dataset_submissions(name: Name, request: Request, principal: CurrentPrincipal,
                        version: Version = None) -> dict[str, Any]:
    """Every submission to the version, oldest first: your teams' in full, other teams' scored ones
    as team, score and time only."""
    return _boards(request).history(principal=principal, ref=_ref(name, version))


@router.get("/api/v1/leaderboards", responses=errors(400))
def list_boards(request: Request, principal: CurrentPrincipal) -> list[dict[str, Any]]:
    """The competitions you may read (datasets with an eval script) and who leads each."""
    return _boards(request).boards(principal=principal)


@router.get("/leaderboards", response_class=HTMLResponse, include_in_schema=False)
def leaderboards_page(request: Request, templates: TemplatesDep, principal: CurrentPrincipal) -> Any:
    return templates.TemplateResponse(request, "leaderboards.html",
                                      {"boards": _boards(request).boards(principal=principal)})
