"""Projects (sessions grouped by their ``project``) and saved views of the sessions list."""

from __future__ import annotations

from typing import Annotated, Any

from annotated_types import Ge, Le
from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from haneul.platform.plugins import CurrentPrincipal
from haneul.platform.server.deps import INT64_MAX, PlatformDep, errors

router = APIRouter(prefix="/api/v1", tags=["projects"])

ViewId = Annotated[int, Ge(0), Le(INT64_MAX), Path(description="saved view id")]


class ViewCreate(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    filter: str = Field(default="", max_length=4000, description="a search expression, as in GET /api/v1/sessions")
    columns: list[str] = Field(default_factory=list, description="params.KEY / metrics.KEY / tags.KEY columns")
    sort: str = "id"
    desc: bool = True
    team: str | None = Field(default=None, max_length=64, description="the team whose view it is "
                             "(default: the caller's default team)")


@router.get("/projects")
def list_projects(platform: PlatformDep, principal: CurrentPrincipal) -> list[dict[str, Any]]:
    """Every project of the caller's teams with its number of sessions, active and archived ones, and
    latest activity."""
    return platform.list_projects(teams=principal.readable_teams())


@router.get("/views")
def list_views(platform: PlatformDep, principal: CurrentPrincipal) -> list[dict[str, Any]]:
    """The saved views of the caller's teams."""
    return platform.list_views(teams=principal.readable_teams())


@router.post("/views", status_code=201, responses=errors(400, 403, 404, 409))
def save_view(body: ViewCreate, request: Request, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Save a view of the sessions list for a team; its view of the same name is replaced."""
    fields = body.model_dump()
    name = fields.pop("team")
    team = principal.writable_team(request.app.state.accounts.team_role(principal, name)[0] if name else None)
    return platform.save_view(**fields, team_id=team)


@router.delete("/views/{vid}", status_code=204, responses=errors(400, 403, 404))
def delete_view(vid: ViewId, platform: PlatformDep, principal: CurrentPrincipal) -> None:
    principal.check_write(platform.view_team(vid), f"saved view {vid}")
    platform.delete_view(vid)
