"""Accounts: who am I, log in for a token, users (admins), teams and members (owners), API tokens."""

from __future__ import annotations

import socket
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from haneul.errors import Forbidden, NotFound
from haneul.platform.accounts import Accounts
from haneul.platform.plugins import CurrentPrincipal, Principal, errors

router = APIRouter(prefix="/api/v1", tags=["accounts"])

Name = Annotated[str, Path(max_length=64, description="a user or team name")]


def _accounts(request: Request) -> Accounts:
    return request.app.state.accounts


def _admin(principal: Principal) -> None:
    if not principal.admin:
        raise Forbidden(f"{principal.name} is not an admin; only admins manage users")


def _self_or_admin(principal: Principal, user: str) -> None:
    if principal.admin or (principal.user_id is not None and principal.name == user):
        return
    if principal.session_id is not None:
        raise Forbidden("a session's token cannot manage accounts")
    raise NotFound(f"user {user!r} not found")  # other users' accounts are not listed to non-admins


def _team_owner(request: Request, principal: Principal, team: str) -> None:
    tid, role = _accounts(request).team_role(principal, team)
    if principal.admin or role == "owner":
        return
    if role is None:
        raise NotFound(f"team {team!r} not found")
    raise Forbidden(f"{principal.name} is a {role} of team {team!r}; only its owners manage members")


class Whoami(BaseModel):
    name: str
    admin: bool
    teams: dict[str, str] = Field(description="team name -> role")
    default_team: str | None
    session: int | None = Field(description="the session whose own token made the request, if any")


@router.get("/whoami", responses=errors(401))
def whoami(request: Request, principal: CurrentPrincipal) -> Whoami:
    names = _accounts(request).team_names(set(principal.roles) | ({principal.team_id} if principal.team_id else set()))
    return Whoami(name=principal.name, admin=principal.admin,
                  teams={names[t]: r for t, r in principal.roles.items() if t in names},
                  default_team=names.get(principal.team_id) if principal.team_id else None,
                  session=principal.session_id)


class LoginBody(BaseModel):
    name: str = Field(max_length=64)
    password: str = Field(max_length=1024)
    token_name: str | None = Field(default=None, max_length=128, description="a label for the new token")


@router.post("/login", responses=errors(400, 401))
async def login(request: Request, body: LoginBody) -> dict[str, Any]:
    """Trade a user name and password for a new API token (what `haneul login --user` does)."""
    accounts = _accounts(request)
    await run_in_threadpool(accounts.login_check, body.name, body.password)
    label = body.token_name or f"haneul login from {socket.gethostname()}"
    return await run_in_threadpool(lambda: accounts.create_token(body.name, label))


# ------------------------------------------------------------------ users


class UserCreate(BaseModel):
    name: str = Field(max_length=64)
    password: str | None = Field(default=None, max_length=1024, description="omit for a token-only account")
    admin: bool = False
    team: str | None = Field(default=None, max_length=64, description="a team to join (its default team)")
    role: str = Field(default="member", description="owner, member or viewer in that team")


class UserPatch(BaseModel):
    password: str | None = Field(default=None, max_length=1024)
    admin: bool | None = None
    disabled: bool | None = None
    default_team: str | None = Field(default=None, max_length=64)


@router.get("/users", responses=errors(401, 403))
def list_users(request: Request, principal: CurrentPrincipal) -> list[dict[str, Any]]:
    _admin(principal)
    return _accounts(request).list_users()


@router.post("/users", status_code=201, responses=errors(400, 401, 403, 404, 409))
async def create_user(request: Request, body: UserCreate, principal: CurrentPrincipal) -> dict[str, Any]:
    _admin(principal)
    return await run_in_threadpool(lambda: _accounts(request).create_user(**body.model_dump()))


@router.get("/users/{name}", responses=errors(401, 404))
def get_user(request: Request, name: Name, principal: CurrentPrincipal) -> dict[str, Any]:
    _self_or_admin(principal, name)
    return _accounts(request).get_user(name)


@router.patch("/users/{name}", responses=errors(400, 401, 403, 404, 409))
async def update_user(request: Request, name: Name, body: UserPatch, principal: CurrentPrincipal) -> dict[str, Any]:
    _self_or_admin(principal, name)
    if not principal.admin and (body.admin is not None or body.disabled is not None):
        raise Forbidden("only admins change admin or disabled")
    return await run_in_threadpool(lambda: _accounts(request).update_user(name, **body.model_dump()))


@router.delete("/users/{name}", status_code=204, responses=errors(401, 403, 404, 409))
def delete_user(request: Request, name: Name, principal: CurrentPrincipal) -> None:
    _admin(principal)
    _accounts(request).delete_user(name)


class TokenCreate(BaseModel):
    name: str = Field(default="", max_length=128, description="a label, e.g. the machine it is for")
    expires_in: float | None = Field(default=None, gt=0, le=10 * 365 * 86400, allow_inf_nan=False,
                                     description="seconds until it stops working; omit for no expiry")


@router.post("/users/{name}/tokens", status_code=201, responses=errors(400, 401, 403, 404))
async def create_token(request: Request, name: Name, body: TokenCreate, principal: CurrentPrincipal) -> dict[str, Any]:
    """A new API token; the answer is the only time the token is shown."""
    _self_or_admin(principal, name)
    return await run_in_threadpool(lambda: _accounts(request).create_token(name, body.name,
                                                                           expires_in=body.expires_in))


@router.get("/users/{name}/tokens", responses=errors(401, 403, 404))
def list_tokens(request: Request, name: Name, principal: CurrentPrincipal) -> list[dict[str, Any]]:
    _self_or_admin(principal, name)
    return _accounts(request).list_tokens(name)


@router.delete("/users/{name}/tokens/{key}", status_code=204, responses=errors(401, 403, 404))
def revoke_token(request: Request, name: Name, key: Annotated[str, Path(max_length=32)],
                 principal: CurrentPrincipal) -> None:
    _self_or_admin(principal, name)
    _accounts(request).revoke_token(name, key)


# ------------------------------------------------------------------ teams


class TeamCreate(BaseModel):
    name: str = Field(max_length=64)
    owner: str | None = Field(default=None, max_length=64, description="a user to make its first owner")


class MemberBody(BaseModel):
    role: str = Field(default="member", description="owner, member or viewer")


@router.get("/teams", responses=errors(401))
def list_teams(request: Request, principal: CurrentPrincipal) -> list[dict[str, Any]]:
    return _accounts(request).list_teams(principal)


@router.post("/teams", status_code=201, responses=errors(400, 401, 403, 404, 409))
def create_team(request: Request, body: TeamCreate, principal: CurrentPrincipal) -> dict[str, Any]:
    _admin(principal)
    return _accounts(request).create_team(body.name, owner=body.owner)


@router.get("/teams/{name}", responses=errors(401, 404))
def get_team(request: Request, name: Name, principal: CurrentPrincipal) -> dict[str, Any]:
    tid, role = _accounts(request).team_role(principal, name)
    if not principal.can_read(tid):
        raise NotFound(f"team {name!r} not found")
    return _accounts(request).get_team(name)


@router.put("/teams/{name}/members/{user}", responses=errors(400, 401, 403, 404, 409))
def set_member(request: Request, name: Name, user: Name, body: MemberBody, principal: CurrentPrincipal) -> dict[str, Any]:
    _team_owner(request, principal, name)
    return _accounts(request).set_member(name, user, body.role)


@router.delete("/teams/{name}/members/{user}", responses=errors(401, 403, 404, 409))
def remove_member(request: Request, name: Name, user: Name, principal: CurrentPrincipal) -> dict[str, Any]:
    _team_owner(request, principal, name)
    return _accounts(request).remove_member(name, user)
