"""Sessions: create, list (filters, sort, pagination), get, stop."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from haneul.platform.server.deps import PlatformDep

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions"])


class SessionCreate(BaseModel):
    command: list[str] = Field(min_length=1, description="program and arguments")
    name: str | None = Field(default=None, max_length=128)
    owner: str = Field(default="anonymous", max_length=64)
    cpus: float = Field(default=1.0, ge=0)
    gpus: int = Field(default=0, ge=0)
    memory: str | None = Field(default=None, description="e.g. 4G; omit to not reserve memory")
    priority: int = 0
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = Field(default=None, description="working directory on the server's machine")
    snapshot: bool = Field(default=True, description="copy cwd into the session folder and run there")


class SessionList(BaseModel):
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


@router.post("", status_code=201)
async def create_session(body: SessionCreate, platform: PlatformDep) -> dict[str, Any]:
    return await run_in_threadpool(lambda: platform.create_session(**body.model_dump()))


@router.get("")
def list_sessions(
    platform: PlatformDep,
    status: Annotated[list[str] | None, Query(description="repeat to match several")] = None,
    owner: str | None = None,
    q: Annotated[str | None, Query(description="substring of the name")] = None,
    sort: str = "id",
    desc: bool = True,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> SessionList:
    items, total = platform.list_sessions(
        status=status, owner=owner, q=q, sort=sort, desc=desc, limit=limit, offset=offset
    )
    return SessionList(items=items, total=total, limit=limit, offset=offset)


@router.get("/{sid}")
def get_session(sid: int, platform: PlatformDep) -> dict[str, Any]:
    return platform.get_session(sid)


@router.post("/{sid}/stop")
def stop_session(sid: int, platform: PlatformDep) -> dict[str, Any]:
    return platform.stop_session(sid)
