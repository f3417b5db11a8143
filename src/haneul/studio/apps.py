"""Test apps and preset API keys (HyperCLOVA §5: a prompt built in the Studio is tried by people who
never see the prompt, and served to programs through an API), with the team safety filter of
:mod:`haneul.studio.filters` applied to every run.

A **test app** turns a preset (a chosen version, or its newest) into a page with a title, a description,
one input box and the streamed answer, reached at ``/studio/apps/{token}`` by a share link whose token is
the only credential: a logged-out browser with the link may use that app and nothing else. Revoking it
makes the link a 404. A **preset key** (``hnk-...``) lets any OpenAI client call
``/v1/presets/{name}/chat/completions`` without a haneul login; only its sha256 is stored and it is shown
once. Apps and keys each have a requests-per-minute limit kept as an in-memory token bucket (per server
process: a restart refills every bucket), answered with 429 and ``Retry-After`` when spent.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time
from collections.abc import Collection
from typing import Annotated, Any

from annotated_types import Ge, Le
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, insert, select, update

from haneul.errors import Forbidden, NotFound, TooManyRequests, Unauthorized
from haneul.platform.plugins import CurrentPrincipal, Principal, ServerContext, errors
from haneul.studio.db import apps, keys
from haneul.studio.filters import FilterSettings, TeamFilters, available
from haneul.studio.models import Catalog
from haneul.studio.server import TeamId, _sse, execute, prepare
from haneul.studio.service import Studio

__all__ = ["Apps", "PresetKeys", "RateLimiter", "create_apps_router", "key_principal", "KEY_PREFIX"]

#: what a preset key starts with; the server's login check passes such a bearer token to the preset
#: endpoint unresolved (an account token never starts so)
KEY_PREFIX = "hnk-"
DEFAULT_APP_RATE = 30
DEFAULT_KEY_RATE = 60
Rate = Annotated[int, Ge(1), Le(10_000)]
Id = Annotated[int, Ge(1), Le(2**31 - 1)]


class RateLimiter:
    """Token buckets: each name holds up to ``per_minute`` requests and refills ``per_minute / 60`` a
    second, so a burst up to the limit passes and a steady caller gets the limit's rate."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, when)
        self._lock = threading.Lock()

    def take(self, name: str, per_minute: int, now: float | None = None) -> float | None:
        """Take one request; ``None`` when allowed, else the seconds until one is."""
        now = time.monotonic() if now is None else now
        rate = per_minute / 60.0
        with self._lock:
            tokens, when = self._buckets.get(name, (float(per_minute), now))
            tokens = min(float(per_minute), tokens + (now - when) * rate)
            if tokens >= 1.0:
                self._buckets[name] = (tokens - 1.0, now)
                return None
            self._buckets[name] = (tokens, now)
            return (1.0 - tokens) / rate


#: one per process: names are derived from the app's share token or the key's hash, unique across servers
LIMITER = RateLimiter()


def _limited(what: str, retry: float) -> JSONResponse:
    seconds = max(1, math.ceil(retry))
    err = TooManyRequests(f"{what} allows no more requests right now; try again in {seconds} s", retry_after=seconds)
    return JSONResponse({"error": err.to_dict()}, 429, headers={"Retry-After": str(seconds)})


def _hash(key: str) -> str:
    # a key is 32 random bytes, so a plain sha256 is enough: there is nothing to guess a dictionary for
    return hashlib.sha256(key.encode()).hexdigest()


def _team_principal(name: str, team_id: int | None) -> Principal:
    """Who runs an app's or a key's prompt: a reader of the preset's team (a server without teams keeps
    everything in no team, which only its admin reads)."""
    if team_id is None:
        return Principal(name=name)
    return Principal(name=name, admin=False, roles={team_id: "viewer"}, team_id=team_id)


class Apps:
    """Published test apps."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, *, preset_id: int, team_id: int | None, version: int | None, title: str, description: str,
               rate_per_minute: int, created_by: str) -> dict[str, Any]:
        token = secrets.token_urlsafe(24)
        with self.engine.begin() as conn:
            aid = conn.execute(insert(apps).values(
                token=token, team_id=team_id, preset_id=preset_id, version=version, title=title,
                description=description, rate_per_minute=rate_per_minute, created_by=created_by,
                created_at=time.time())).inserted_primary_key[0]  # type: ignore[index]
        return self.get(int(aid))

    def get(self, app_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(apps).where(apps.c.id == app_id)).first()
        if row is None:
            raise NotFound(f"app {app_id} not found; list apps with GET /api/v1/studio/apps")
        return dict(row._mapping)

    def by_token(self, token: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(apps).where(apps.c.token == token)).first()
        if row is None:
            raise NotFound("there is no app at this link; check the link you were given")
        if row.revoked_at is not None:
            raise NotFound("this app was switched off by its owner; ask them for a new link")
        return dict(row._mapping)

    def list(self, *, teams: Collection[int] | None, preset_id: int | None = None) -> list[dict[str, Any]]:
        query = select(apps).order_by(apps.c.id.desc())
        if teams is not None:
            query = query.where(apps.c.team_id.in_(list(teams)))
        if preset_id is not None:
            query = query.where(apps.c.preset_id == preset_id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def revoke(self, app_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(apps).where(apps.c.id == app_id, apps.c.revoked_at.is_(None))
                         .values(revoked_at=time.time()))


class PresetKeys:
    """API keys for a preset's endpoint."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, *, preset_id: int, team_id: int | None, name: str, rate_per_minute: int,
               created_by: str) -> dict[str, Any]:
        """The new key's record with the key itself under ``key``: the only time it is shown."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            kid = conn.execute(insert(keys).values(
                key_hash=_hash(key), prefix=key[:12], team_id=team_id, preset_id=preset_id, name=name,
                rate_per_minute=rate_per_minute, created_by=created_by,
                created_at=time.time())).inserted_primary_key[0]  # type: ignore[index]
        return {**self.get(int(kid)), "key": key}

    def get(self, key_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(keys).where(keys.c.id == key_id)).first()
        if row is None:
            raise NotFound(f"key {key_id} not found")
        return _public_key(row)

    def list(self, preset_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [_public_key(r) for r in conn.execute(select(keys).where(keys.c.preset_id == preset_id)
                                                         .order_by(keys.c.id.desc()))]

    def revoke(self, key_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(keys).where(keys.c.id == key_id, keys.c.revoked_at.is_(None))
                         .values(revoked_at=time.time()))

    def verify(self, key: str) -> dict[str, Any]:
        """The live key's record (with ``key_hash``), or :class:`Unauthorized`."""
        digest = _hash(key)
        with self.engine.begin() as conn:
            row = conn.execute(select(keys).where(keys.c.key_hash == digest)).first()
            if row is None or row.revoked_at is not None:
                raise Unauthorized("the API key is unknown or was revoked; create a key on the Studio page")
            conn.execute(update(keys).where(keys.c.id == row.id).values(last_used_at=time.time()))
        return dict(row._mapping)


def _public_key(row: Any) -> dict[str, Any]:
    out = dict(row._mapping)
    del out["key_hash"]
    return out


def key_principal(studio: Studio, key: str, name: str) -> Principal:
    """Who calls preset ``name``'s endpoint with ``key``: refused unless the key is live, was made for
    that preset, and its rate limit has room (429 with ``retry_after`` in the error's details)."""
    row = PresetKeys(studio.engine).verify(key)
    try:
        pid = studio.find(name, teams=None if row["team_id"] is None else {row["team_id"]})
    except NotFound:
        pid = None
    if pid != row["preset_id"]:
        raise Unauthorized(f"this API key is not for preset {name!r}; use the key made for it")
    retry = LIMITER.take("key:" + row["key_hash"], row["rate_per_minute"])
    if retry is not None:
        seconds = max(1, math.ceil(retry))
        raise TooManyRequests(f"the key's limit of {row['rate_per_minute']} requests a minute is reached; "
                              f"try again in {seconds} s", retry_after=seconds)
    return _team_principal(f"key {row['prefix']}", row["team_id"])


def snippets(base_url: str, preset: str, key: str) -> dict[str, str]:
    """Ready-to-run calls of a preset's endpoint with the official ``openai`` client and with curl."""
    base = f"{base_url.rstrip('/')}/v1/presets/{preset}"
    python = (
        "from openai import OpenAI\n\n"
        f'client = OpenAI(base_url="{base}", api_key="{key}")\n'
        f'answer = client.chat.completions.create(model="{preset}", messages=[{{"role": "user", "content": "안녕하세요"}}])\n'
        "print(answer.choices[0].message.content)\n"
    )
    curl = (
        f"curl {base}/chat/completions \\\n"
        f'  -H "Authorization: Bearer {key}" -H "Content-Type: application/json" \\\n'
        """  -d '{"messages": [{"role": "user", "content": "안녕하세요"}]}'\n"""
    )
    return {"python": python, "curl": curl}


# --------------------------------------------------------------------------------------------------
# the routes


class AppIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    preset: str = Field(min_length=1, max_length=100)
    version: int | None = Field(None, ge=1, le=2**31 - 1, description="the version it runs (default: the newest)")
    title: str = Field("", max_length=200, description="default: the preset's name")
    description: str = Field("", max_length=2000)
    rate_per_minute: Rate = DEFAULT_APP_RATE


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("key", min_length=1, max_length=100)
    rate_per_minute: Rate = DEFAULT_KEY_RATE


class AppRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: str = Field(max_length=20_000)


class FiltersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    team: TeamId = None
    words: list[str] | str = Field(default_factory=list, description="a list, or one word or phrase a line")
    classifier: str | None = Field(None, max_length=100, description="a name from GET /api/v1/studio/filters/classifiers")
    on_input: bool = True
    on_output: bool = True


def create_apps_router(studio: Studio, catalog: Catalog, ctx: ServerContext) -> APIRouter:
    router = APIRouter(tags=["studio"])
    store, key_store, team_filters = Apps(studio.engine), PresetKeys(studio.engine), TeamFilters(studio.engine)

    def writable(ref: str, principal: Principal) -> int:
        if principal.session_id is not None:
            raise Forbidden("a session's token may not publish presets; use your own login")
        pid = studio.find(ref, teams=principal.readable_teams(), prefer_team=principal.team_id)
        principal.check_write(studio.team_of(pid), f"preset {ref!r}")
        return pid

    # -- apps
    @router.post("/api/v1/studio/apps", status_code=201, responses=errors(400, 403, 404))
    def publish(body: AppIn, request: Request, principal: CurrentPrincipal) -> dict[str, Any]:
        pid = writable(body.preset, principal)
        if body.version is not None:
            studio.version(pid, body.version)  # a missing version is a 404 now, not at the first run
        made = store.create(preset_id=pid, team_id=studio.team_of(pid), version=body.version,
                            title=body.title or studio.get(pid)["name"], description=body.description,
                            rate_per_minute=body.rate_per_minute, created_by=principal.name)
        return {**made, "url": f"{str(request.base_url).rstrip('/')}/studio/apps/{made['token']}"}

    @router.get("/api/v1/studio/apps", responses=errors(400, 404))
    def list_apps(principal: CurrentPrincipal, preset: str | None = None) -> list[dict[str, Any]]:
        pid = None
        if preset is not None:
            pid = studio.find(preset, teams=principal.readable_teams(), prefer_team=principal.team_id)
        return store.list(teams=principal.readable_teams(), preset_id=pid)

    @router.delete("/api/v1/studio/apps/{app_id}", status_code=204, responses=errors(403, 404))
    def revoke_app(app_id: Id, principal: CurrentPrincipal) -> None:
        found = store.get(app_id)
        principal.check_write(found["team_id"], f"app {app_id}")
        store.revoke(app_id)

    # -- the app itself: the share token is the credential
    @router.get("/studio/apps/{token}", response_class=HTMLResponse, include_in_schema=False)
    def app_page(token: str, request: Request) -> Any:
        try:
            app = store.by_token(token)
        except NotFound as exc:
            return ctx.render(request, "app_gone.html", {"message": exc.message}, status_code=404)
        return ctx.render(request, "app.html", {"app": {"title": app["title"], "description": app["description"],
                                                        "token": app["token"]}})

    @router.post("/studio/apps/{token}/run", response_class=StreamingResponse, include_in_schema=False)
    def app_run(token: str, body: AppRunIn) -> Any:
        """Server-Sent Events as the playground's run route: ``token``, then ``done``, ``filtered`` or
        ``error``."""
        app = store.by_token(token)
        retry = LIMITER.take("app:" + app["token"], app["rate_per_minute"])
        if retry is not None:
            return _limited(f"this app ({app['rate_per_minute']} requests a minute)", retry)
        principal = _team_principal(f"app:{app['id']}", app["team_id"])
        vid, content = studio.content(app["preset_id"], app["version"])
        screen = team_filters.screen(app["team_id"])
        if screen is not None:
            screen.input(body.input)
        prep = prepare(catalog, principal, content=content, text=body.input, team_id=app["team_id"], version_id=vid)
        events = (_sse(kind, {"text": data} if kind == "token" else data)
                  for kind, data in execute(studio, prep, source="app", created_by=principal.name, screen=screen))
        return StreamingResponse(events, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    # -- preset keys
    @router.post("/api/v1/studio/presets/{preset}/keys", status_code=201, responses=errors(400, 403, 404))
    def create_key(preset: str, body: KeyIn, request: Request, principal: CurrentPrincipal) -> dict[str, Any]:
        pid = writable(preset, principal)
        made = key_store.create(preset_id=pid, team_id=studio.team_of(pid), name=body.name,
                                rate_per_minute=body.rate_per_minute, created_by=principal.name)
        return {**made, "snippets": snippets(str(request.base_url), studio.get(pid)["name"], made["key"])}

    @router.get("/api/v1/studio/presets/{preset}/keys", responses=errors(400, 404))
    def list_keys(preset: str, principal: CurrentPrincipal) -> list[dict[str, Any]]:
        pid = studio.find(preset, teams=principal.readable_teams(), prefer_team=principal.team_id)
        return key_store.list(pid)

    @router.delete("/api/v1/studio/keys/{key_id}", status_code=204, responses=errors(403, 404))
    def revoke_key(key_id: Id, principal: CurrentPrincipal) -> None:
        found = key_store.get(key_id)
        principal.check_write(found["team_id"], f"key {key_id}")
        key_store.revoke(key_id)

    # -- the team's safety filter
    def filter_team(principal: Principal, team: int | None) -> int | None:
        if team is None and principal.team_id is None and principal.admin:
            return None  # the local admin of a server without teams
        return team if team is not None else principal.team_id

    @router.get("/api/v1/studio/filters", responses=errors(400, 404))
    def get_filters(principal: CurrentPrincipal, team: int | None = None) -> dict[str, Any]:
        team_id = filter_team(principal, team)
        principal.check_read(team_id, f"team {team_id}")
        row = team_filters.get(team_id)
        return {"team_id": team_id, "configured": row is not None,
                **(FilterSettings().to_dict() if row is None else FilterSettings(
                    tuple(row["words"]), row["classifier"], row["on_input"], row["on_output"]).to_dict())}

    @router.put("/api/v1/studio/filters", responses=errors(400, 403, 404))
    def put_filters(body: FiltersIn, principal: CurrentPrincipal) -> dict[str, Any]:
        team_id = filter_team(principal, body.team)
        principal.check_write(team_id, f"team {team_id}")
        if principal.session_id is not None:
            raise Forbidden("a session's token may not change the safety filter; use your own login")
        settings = FilterSettings.from_dict(body.model_dump(exclude={"team"}))
        row = team_filters.put(team_id, settings, updated_by=principal.name)
        return {"team_id": team_id, "configured": True, **settings.to_dict(), "updated_at": row["updated_at"]}

    @router.get("/api/v1/studio/filters/classifiers", responses=errors())
    def classifiers(principal: CurrentPrincipal) -> list[str]:
        return available()

    return router
