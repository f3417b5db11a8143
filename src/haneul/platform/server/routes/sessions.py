"""Sessions: create, list (filters, search expressions, sort, pagination), get, stop, params, notes and
tags, archive, restore and delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import AfterValidator, BaseModel, Field

from haneul.platform.server.deps import Int64, NonNegInt64, PlatformDep, SessionId, TokenDep, errors
from haneul.platform.service import SESSION_KEYS

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
    project: str | None = Field(default=None, max_length=128,
                                description="the session's project (default: the name of the cwd folder)")
    tags: dict[str, str] = Field(default_factory=dict, description="free key/value labels, searchable as tags.KEY")
    params: dict[str, Any] = Field(default_factory=dict, description="hyper-parameters (nested dicts are "
                                   "flattened with dots); the command line's --name value pairs are added")


class SessionPatch(BaseModel):
    notes: str | None = Field(default=None, max_length=1_000_000, description="Markdown text; replaces the notes")
    tags: dict[str, str | None] | None = Field(default=None, description="tags to set; a null value removes one")


class ParamsBody(BaseModel):
    params: dict[str, Any] = Field(description="hyper-parameters; nested dicts are flattened with dots")


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
    project: str | None = None,
    filter: Annotated[str | None, Query(description='search expression, e.g. params.lr < 1e-3 and '
                                        'metrics.val_acc > 0.8 and tags.model = "bert"')] = None,
    archived: Annotated[str, Query(description="0: active sessions, 1: archived ones, all: both")] = "0",
    columns: Annotated[str | None, Query(description="comma-separated params.KEY / metrics.KEY / tags.KEY: "
                                         "each item then carries their values in 'columns'")] = None,
    sort: Annotated[str, Query(description="a column, params.KEY or metrics.KEY")] = "id",
    desc: bool = True,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[NonNegInt64, Query()] = 0,
) -> SessionList:
    """Each item's ``metrics`` holds the latest values of its first few keys; ``metric_count`` counts them all."""
    items, total = platform.list_sessions(
        status=status, owner=owner, q=q, project=project, filter=filter, archived=archived, sort=sort,
        desc=desc, limit=limit, offset=offset, columns=[c for c in (columns or "").split(",") if c] or None,
    )
    return SessionList(items=items, total=total, limit=limit, offset=offset)


class SessionKeys(BaseModel):
    params: list[str]
    metrics: list[str]
    tags: list[str]


# declared before /{sid}, which would otherwise take "keys" for a session id
@router.get("/keys", responses=errors(400))
def session_keys(
    platform: PlatformDep,
    status: Annotated[list[str] | None, Query(description="repeat to match several")] = None,
    owner: str | None = None,
    q: Annotated[str | None, Query(description="substring of the name")] = None,
    project: str | None = None,
    filter: Annotated[str | None, Query(description="search expression, as for the list")] = None,
    archived: Annotated[str, Query(description="0: active sessions, 1: archived ones, all: both")] = "0",
    limit: Annotated[int, Query(ge=1, le=SESSION_KEYS, description="keys of each kind")] = SESSION_KEYS,
) -> SessionKeys:
    """The distinct param, metric and tag keys of the sessions the same filters list, each sorted and cut
    at ``limit``: the columns the sessions page offers."""
    keys = platform.session_keys(status=status, owner=owner, q=q, project=project, filter=filter,
                                 archived=archived, limit=limit)
    return SessionKeys(**keys)


@router.get("/{sid}", responses=errors(400, 404))
def get_session(sid: SessionId, platform: PlatformDep) -> dict[str, Any]:
    return platform.get_session(sid)


@router.post("/{sid}/stop", responses=errors(400, 404, 409))
def stop_session(sid: SessionId, platform: PlatformDep) -> dict[str, Any]:
    return platform.stop_session(sid)


@router.patch("/{sid}", responses=errors(400, 404))
def patch_session(sid: SessionId, body: SessionPatch, platform: PlatformDep) -> dict[str, Any]:
    """Edit what people own on a session: its notes and tags."""
    return platform.update_session(sid, notes=body.notes, tags=body.tags)


@router.post("/{sid}/params", responses=errors(400, 401, 404))
def set_params(sid: SessionId, body: ParamsBody, platform: PlatformDep, token: TokenDep) -> dict[str, Any]:
    """Record hyper-parameters from inside the session (``haneul.config``); a key given again is replaced."""
    platform.authenticate(sid, token)
    return platform.set_params(sid, body.params)


@router.post("/{sid}/archive", responses=errors(400, 404))
def archive_session(sid: SessionId, platform: PlatformDep) -> dict[str, Any]:
    return platform.archive_session(sid, archived=True)


@router.post("/{sid}/restore", responses=errors(400, 404))
def restore_session(sid: SessionId, platform: PlatformDep) -> dict[str, Any]:
    return platform.archive_session(sid, archived=False)


@router.delete("/{sid}", responses=errors(400, 404, 409))
def delete_session(sid: SessionId, platform: PlatformDep) -> dict[str, Any]:
    """Remove the session, its metrics, checkpoints and working folder; a queued or running one is refused."""
    return platform.delete_session(sid)
