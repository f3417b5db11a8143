"""Sessions: create, list (filters, search expressions, sort, pagination), get, stop, params, notes and
tags, archive, restore and delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import AfterValidator, BaseModel, Field

from haneul.platform.plugins import CurrentPrincipal
from haneul.platform.server.deps import (
    Int64,
    NonNegInt64,
    PlatformDep,
    ReadSession,
    ReportSession,
    SessionId,
    WriteSession,
    errors,
)
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
    owner: str | None = Field(default=None, max_length=64, description="ignored: the owner is the caller")
    team: str | None = Field(default=None, max_length=64, description="the team the session belongs to "
                             "(default: the caller's default team)")
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
    preemptible: bool = Field(default=False, description="may be paused (and resumed later) to make room "
                              "for a queued session of higher priority")
    dataset: str | None = Field(default=None, max_length=80, description="NAME or NAME:VERSION of a dataset: its "
                                "train part is mounted read-only at HANEUL_DATASET_PATH (tag dataset=NAME:VERSION)")


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


@router.post("", status_code=201, responses=errors(400, 403, 404))
async def create_session(body: SessionCreate, request: Request, platform: PlatformDep,
                         principal: CurrentPrincipal) -> dict[str, Any]:
    """Queue a session for a team (default: the caller's default team); its owner is the caller."""
    fields = body.model_dump()
    team = fields.pop("team")
    team_id = request.app.state.accounts.team_role(principal, team)[0] if team is not None else None
    fields.update(owner=principal.name, team_id=principal.writable_team(team_id))
    return await run_in_threadpool(lambda: platform.create_session(**fields))


@router.get("", responses=errors(400))
def list_sessions(
    platform: PlatformDep,
    principal: CurrentPrincipal,
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
        teams=principal.readable_teams(),
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
    principal: CurrentPrincipal,
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
                                 archived=archived, limit=limit, teams=principal.readable_teams())
    return SessionKeys(**keys)


@router.get("/{sid}", responses=errors(400, 404))
def get_session(sid: ReadSession, platform: PlatformDep) -> dict[str, Any]:
    return platform.get_session(sid)


@router.post("/{sid}/stop", responses=errors(400, 403, 404, 409))
def stop_session(sid: WriteSession, platform: PlatformDep) -> dict[str, Any]:
    return platform.stop_session(sid)


class PauseBody(BaseModel):
    grace: float | None = Field(default=None, ge=0, le=86_400, allow_inf_nan=False,
                                description="seconds the code has to save and exit before it is stopped "
                                "(default: the server's pause_grace_s)")


class ForkBody(BaseModel):
    checkpoint: str | None = Field(default=None, max_length=128,
                                   description="the parent's checkpoint to start from (default: its latest)")
    env: dict[Annotated[str, AfterValidator(_env_name)], Text] = Field(
        default_factory=dict, description="added to the parent's environment")
    args: list[Text] = Field(default_factory=list, description="appended to the parent's command, e.g. "
                             '["--lr", "0.01"] to override an argparse option')
    name: str | None = Field(default=None, max_length=128, description="default: the parent's name")
    priority: Int64 | None = Field(default=None, description="default: the parent's")
    preemptible: bool | None = Field(default=None, description="default: the parent's")


def _check_write(platform: Any, principal: Any, sid: int) -> None:
    session = platform.get_session(sid)
    principal.check_write(session.get("team_id"), f"session {sid}")


@router.post("/{sid}/pause", responses=errors(400, 403, 404, 409))
def pause_session(sid: SessionId, platform: PlatformDep, principal: CurrentPrincipal,
                  body: PauseBody | None = None) -> dict[str, Any]:
    """Ask the session's code to save and exit (``haneul.paused()`` turns true); it is ``paused`` once its
    process has exited, or stopped after the grace period. A queued session is paused at once."""
    _check_write(platform, principal, sid)
    return platform.pause_session(sid, grace=body.grace if body is not None else None)


@router.post("/{sid}/resume", responses=errors(400, 403, 404, 409))
def resume_session(sid: SessionId, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Queue a paused session again: a new process under the same id (``haneul.load()`` returns its latest
    checkpoint)."""
    _check_write(platform, principal, sid)
    return platform.resume_session(sid)


@router.post("/{sid}/fork", status_code=201, responses=errors(400, 403, 404))
async def fork_session(sid: SessionId, platform: PlatformDep, principal: CurrentPrincipal,
                       body: ForkBody | None = None) -> dict[str, Any]:
    """Start a new session from this one: its command (plus ``args``), project, tags, resources, team and
    code snapshot, starting from ``checkpoint`` (default: its latest)."""
    fork = body or ForkBody()
    _check_write(platform, principal, sid)
    return await run_in_threadpool(lambda: platform.fork_session(sid, **fork.model_dump()))


@router.patch("/{sid}", responses=errors(400, 403, 404))
def patch_session(sid: WriteSession, body: SessionPatch, platform: PlatformDep) -> dict[str, Any]:
    """Edit what people own on a session: its notes and tags."""
    return platform.update_session(sid, notes=body.notes, tags=body.tags)


@router.post("/{sid}/params", responses=errors(400, 401, 403, 404))
def set_params(sid: ReportSession, body: ParamsBody, platform: PlatformDep) -> dict[str, Any]:
    """Record hyper-parameters from inside the session (``haneul.config``); a key given again is replaced."""
    return platform.set_params(sid, body.params)


@router.post("/{sid}/archive", responses=errors(400, 403, 404))
def archive_session(sid: WriteSession, platform: PlatformDep) -> dict[str, Any]:
    return platform.archive_session(sid, archived=True)


@router.post("/{sid}/restore", responses=errors(400, 403, 404))
def restore_session(sid: WriteSession, platform: PlatformDep) -> dict[str, Any]:
    return platform.archive_session(sid, archived=False)


@router.delete("/{sid}", responses=errors(400, 403, 404, 409))
def delete_session(sid: WriteSession, platform: PlatformDep) -> dict[str, Any]:
    """Remove the session, its metrics, checkpoints and working folder; a queued or running one is refused."""
    return platform.delete_session(sid)
