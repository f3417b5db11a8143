"""Projects (sessions grouped by their ``project``) and saved views of the sessions list."""

from __future__ import annotations

from typing import Annotated, Any

from annotated_types import Ge, Le
from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from haneul.platform.server.deps import INT64_MAX, PlatformDep, errors

router = APIRouter(prefix="/api/v1", tags=["projects"])

ViewId = Annotated[int, Ge(0), Le(INT64_MAX), Path(description="saved view id")]


class ViewCreate(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    filter: str = Field(default="", max_length=4000, description="a search expression, as in GET /api/v1/sessions")
    columns: list[str] = Field(default_factory=list, description="params.KEY / metrics.KEY / tags.KEY columns")
    sort: str = "id"
    desc: bool = True


@router.get("/projects")
def list_projects(platform: PlatformDep) -> list[dict[str, Any]]:
    """Every project with its number of sessions, active and archived ones, and latest activity."""
    return platform.list_projects()


@router.get("/views")
def list_views(platform: PlatformDep) -> list[dict[str, Any]]:
    return platform.list_views()


@router.post("/views", status_code=201, responses=errors(400))
def save_view(body: ViewCreate, platform: PlatformDep) -> dict[str, Any]:
    """Save a view of the sessions list; a view of the same name is replaced."""
    return platform.save_view(**body.model_dump())


@router.delete("/views/{vid}", status_code=204, responses=errors(400, 404))
def delete_view(vid: ViewId, platform: PlatformDep) -> None:
    platform.delete_view(vid)
