"""Sessions: create, list (filters, sort, pagination), get, stop."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import AfterValidator, BaseModel, Field

from haneul.platform.server.deps import Int64, NonNegInt64, PlatformDep, SessionId, errors

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions"])


def _no_nul(text: str) -> str:
    # the operating system cannot pass a NUL byte in an argument, a path or the environment
    if "\x00" in text:
        raise ValueError("must not contain a NUL character")
    return text


Text = Annotated[str, AfterValidator(_no_nul)]


def _env_name(name: str) -> str:
    if not name or "=" in name or "\x00" in name:
        raise ValueError(f"environment variable name {name[:40]!r} must be non-empty, without '=' or NUL")
    return name


class SessionCreate(BaseModel):
    command: list[Text] = Field(min_length=1, description="program and arguments")
    name: str | None = Field(default=None, max_length=128)
    owner: str = Field(default="anonymous", max_length=64)
    cpus: float = Field(default=1.0, ge=0, allow_inf_nan=False)
    gpus: NonNegInt64 = 0
    memory: str | None = Field(default=None, description="e.g. 4G; omit to not reserve memory")
    priority: Int64 = 0
    env: dict[Annotated[str, AfterValidator(_env_name)], Text] = Field(
        default_factory=dict,
        description="added to the session's environment; values of names that look secret (KEY, TOKEN, "
        "SECRET, PASSWORD, ...) are masked in every answer",
    )
    cwd: Text | None = Field(default=None, description="working directory on the server's machine")
    snapshot: bool = Field(default=True, description="copy cwd into the session folder and run there")


class SessionList(BaseModel):
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


@router.post("", status_code=201, responses=errors(400))
async def create_session(body: SessionCreate, platform: PlatformDep) -> dict[str, Any]:
    return await run_in_threadpool(lambda: platform.create_session(**body.model_dump()))


@router.get("", responses=errors(400))
def list_sessions(
    platform: PlatformDep,
    status: Annotated[list[str] | None, Query(description="repeat to match several")] = None,
    owner: str | None = None,
    q: Annotated[str | None, Query(description="substring of the name")] = None,
    sort: str = "id",
    desc: bool = True,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[NonNegInt64, Query()] = 0,
) -> SessionList:
    """Each item's ``metrics`` holds the latest values of its first few keys; ``metric_count`` counts them all."""
    items, total = platform.list_sessions(
        status=status, owner=owner, q=q, sort=sort, desc=desc, limit=limit, offset=offset
    )
    return SessionList(items=items, total=total, limit=limit, offset=offset)


@router.get("/{sid}", responses=errors(400, 404))
def get_session(sid: SessionId, platform: PlatformDep) -> dict[str, Any]:
    return platform.get_session(sid)


@router.post("/{sid}/stop", responses=errors(400, 404, 409))
def stop_session(sid: SessionId, platform: PlatformDep) -> dict[str, Any]:
    return platform.stop_session(sid)
