"""The contract by which packages add routes, pages and tables to the haneul server.

The server is the platform's; every other package that serves something (language-model serving,
evaluation results, dialogue memory, recommendations, and any third-party package) is a *plugin*. A
plugin is a callable registered in the ``haneul.plugins`` entry-point group::

    [project.entry-points."haneul.plugins"]
    myapp = "myapp.server:plugin"

The server calls it once at start-up with a :class:`ServerContext` (the settings, the database, the
artifact folder and a page renderer that shares the server's layout) and mounts the
:class:`Plugin` it returns: its router, its templates folder (as ``<name>/...``), its static files
(under ``/static/<name>/``), its nav entries and its Alembic migrations. A plugin never imports the
server and never reads global settings: everything it needs comes through the context.

A plugin that fails to load stops the server start with one line naming it;
``HANEUL_DISABLE_PLUGINS=name,...`` starts the server without the named ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from haneul.errors import Forbidden, InvalidInput, NotFound, PluginError

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from haneul.platform.service import Platform
    from haneul.settings import Settings

__all__ = [
    "GROUP", "NavEntry", "Plugin", "ServerContext", "Principal", "CurrentPrincipal", "PluginFactory", "WRITE_ROLES",
    "discover", "load_plugins", "ErrorBody", "errors",
]

#: the entry-point group the server reads plugins from
GROUP = "haneul.plugins"
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: dict[str, Any] | None = None


class ErrorBody(BaseModel):
    """What every 4xx and 5xx answer of the API carries (see :mod:`haneul.errors`)."""

    error: ErrorDetail


ERROR_DESCRIPTIONS = {
    400: "invalid input: a malformed parameter or body",
    401: "a valid token (or a web login) is required",
    403: "the caller's role may only read this resource",
    404: "no such resource (another team's resources answer 404 too)",
    409: "the request clashes with the session's state",
    413: "the request body or batch is too large",
    429: "a quota is spent (e.g. the team's daily submissions)",
    500: "the server failed, or a stored file no longer matches its checksum",
    502: "an upstream server (a model endpoint the request named) failed",
    503: "a server the request depends on cannot be reached",
    507: "the server could not store the file (e.g. its disk is full)",
}


def errors(*codes: int, described: Mapping[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error answers a route can give, all in the :class:`ErrorBody` shape;
    ``described`` words a code for this route (``{404: "no such person"}``). A plugin's routes pass it
    as ``responses=errors(404, 409)`` so the server's spec documents what they answer."""
    words = {**ERROR_DESCRIPTIONS, **(described or {})}
    return {code: {"model": ErrorBody, "description": words[code]} for code in codes}


@dataclass(frozen=True)
class NavEntry:
    """A link in the header of every page; lower ``order`` comes first (the platform's own are 10-20)."""

    label: str
    href: str
    order: int = 100


#: a team role that may read and write its team's resources; "viewer" may only read
WRITE_ROLES = frozenset({"owner", "member"})


@dataclass(frozen=True)
class Principal:
    """Who is making a request, and what they may touch.

    Resources (sessions, datasets, leaderboards, deployments, ...) belong to a team. A principal
    reads a team's resources when it has any role there and writes them as ``owner`` or ``member``;
    an ``admin`` reads and writes every team's. A session's own token (``session_id`` set) reads what
    its team may read and writes only its own session's metrics, params, checkpoints and artifacts.

    Routes check with :meth:`check_read` (another team's resource is a 404, so its existence is not
    leaked) and :meth:`check_write` (a viewer writing is a 403). ``Principal()`` is the local admin.
    """

    name: str = "local"
    admin: bool = True
    user_id: int | None = None
    roles: Mapping[int, str] = field(default_factory=dict)  # team id -> "owner" | "member" | "viewer"
    team_id: int | None = None  # where this principal's new resources go (its default team)
    session_id: int | None = None  # set when the request carries a session's own token

    def can_read(self, team_id: int | None) -> bool:
        return self.admin or (team_id is not None and team_id in self.roles)

    def can_write(self, team_id: int | None) -> bool:
        if self.session_id is not None:
            return False  # a session writes only its own session (see can_write_session)
        return self.admin or (team_id is not None and self.roles.get(team_id) in WRITE_ROLES)

    def can_write_session(self, session_id: int, team_id: int | None) -> bool:
        """May write a session's metrics, params, checkpoints and artifacts: its own token, or a
        writer of its team."""
        return self.session_id == session_id if self.session_id is not None else self.can_write(team_id)

    def readable_teams(self) -> set[int] | None:
        """The teams whose resources this principal lists; ``None`` means every team (an admin)."""
        return None if self.admin else set(self.roles)

    def check_read(self, team_id: int | None, what: str) -> None:
        """Raise the 404 a missing resource gives when this principal may not read ``what``."""
        if not self.can_read(team_id):
            raise NotFound(f"{what} not found")

    def check_write(self, team_id: int | None, what: str) -> None:
        """404 when the resource is not readable, 403 when the principal's role may only read it."""
        self.check_read(team_id, what)
        if not self.can_write(team_id):
            role = "a session token" if self.session_id is not None else \
                f"role {self.roles.get(team_id, 'none')!r}" if team_id is not None else "no team"
            raise Forbidden(f"{self.name} may not change {what}: {role} may only read it; "
                            "ask a team owner for the member role")

    def writable_team(self, team: int | None = None) -> int:
        """The team a new resource goes to: ``team`` if given (and writable), else the default team."""
        target = team if team is not None else self.team_id
        if target is None:
            raise InvalidInput(f"{self.name} belongs to no team; ask an admin to add you to one "
                               "(haneul team add-member TEAM USER)")
        self.check_write(target, f"team {target}")
        return target


def current_principal(request: Request) -> Principal:
    """The principal the server's authentication found for this request (the local admin when the app
    runs without it, as in a plugin's own tests)."""
    found = getattr(request.state, "principal", None)
    return found if isinstance(found, Principal) else Principal()


#: a route's parameter of this type receives the principal making the request
CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


@dataclass(frozen=True)
class ServerContext:
    """What the server hands to a plugin: everything it may use, nothing global."""

    name: str
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    artifacts: Path
    #: the platform's sessions (create, pause, resume, fork, stop, metrics, checkpoints): for a plugin
    #: whose work runs as sessions, such as the hyper-parameter optimiser; ``None`` in a bare context
    platform: Platform | None = None

    @property
    def home(self) -> Path:
        """The server's home folder (``HANEUL_HOME``); a plugin keeps its files under ``home / name``."""
        return Path(self.settings.home)

    def render(self, request: Request, template: str, context: Mapping[str, Any] | None = None,
               status_code: int = 200) -> HTMLResponse:
        """Render ``template`` from this plugin's templates folder; it may ``{% extends "base.html" %}``."""
        templates = request.app.state.templates
        return templates.TemplateResponse(request, f"{self.name}/{template}", dict(context or {}),
                                          status_code=status_code)


@dataclass(frozen=True)
class Plugin:
    """What a plugin gives the server. Every field is optional."""

    router: APIRouter | None = None
    templates: Path | None = None  # a folder of Jinja templates, rendered as "<name>/<file>"
    static: Path | None = None  # a folder served at /static/<name>/
    nav: Sequence[NavEntry] = ()
    migrations: Path | None = None  # a folder of Alembic version scripts, tracked in a version table of its own
    on_start: Callable[[], None] | None = None  # called once the database is migrated and sessions recovered
    on_close: Callable[[], None] | None = None  # called once when the server stops
    #: paths (regular expressions, matched whole) served without a login: the route checks a
    #: credential of its own, such as a share token in the path
    public_paths: Sequence[str] = ()
    #: (token prefix, path pattern): a bearer token with that prefix on a matching path is the route's
    #: own key, not an account's; it reaches the route unchecked as ``request.state.route_key``
    route_keys: Sequence[tuple[str, str]] = ()


PluginFactory = Callable[[ServerContext], Plugin]


@dataclass(frozen=True)
class LoadedPlugin:
    name: str
    source: str  # "module:attr", for messages
    plugin: Plugin = field(repr=False)


def discover() -> dict[str, EntryPoint]:
    """Installed plugins by name. Two distributions registering one name with different targets is an
    error; the same registration seen twice (an editable install beside a built one) is not."""
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=GROUP):
        if ep.name in found and found[ep.name].value != ep.value:
            raise PluginError(
                f"plugin name {ep.name!r} is registered twice ({found[ep.name].value} and {ep.value}); "
                "uninstall one of the two packages"
            )
        found.setdefault(ep.name, ep)
    return dict(sorted(found.items()))


def parse_disabled(value: str | Iterable[str]) -> set[str]:
    items = value.split(",") if isinstance(value, str) else list(value)
    return {item.strip() for item in items if item.strip()}


def load_plugins(make_context: Callable[[str], ServerContext], *, disabled: Iterable[str] = (),
                 available: Mapping[str, EntryPoint] | None = None) -> list[LoadedPlugin]:
    """Load every installed plugin not in ``disabled``; the first failure raises :class:`PluginError`."""
    available = discover() if available is None else available
    disabled = set(disabled)
    unknown = sorted(disabled - set(available))
    if unknown:
        names = ", ".join(available) or "none"
        raise InvalidInput(
            f"HANEUL_DISABLE_PLUGINS names {', '.join(map(repr, unknown))}, which is not an installed "
            f"plugin; installed plugins: {names}"
        )
    loaded = []
    for name, ep in available.items():
        if name in disabled:
            continue
        if not _NAME.match(name):
            raise PluginError(f"plugin name {name!r} ({ep.value}) is not valid; use lower-case letters, "
                              "digits, '-' and '_' (at most 40), starting with a letter")
        hint = f"fix or uninstall it, or set HANEUL_DISABLE_PLUGINS={name} to start without it"
        try:
            factory = ep.load()
            plugin = factory(make_context(name))
        except Exception as exc:
            detail = f"{exc.__class__.__name__}: {exc}".splitlines()[0][:300]
            raise PluginError(f"plugin {name!r} ({ep.value}) failed to load: {detail}; {hint}") from exc
        if not isinstance(plugin, Plugin):
            raise PluginError(f"plugin {name!r} ({ep.value}) returned {type(plugin).__name__}, not a "
                              f"haneul.platform.plugins.Plugin; {hint}")
        for folder, what in ((plugin.templates, "templates"), (plugin.static, "static"),
                             (plugin.migrations, "migrations")):
            if folder is not None and not Path(folder).is_dir():
                raise PluginError(f"plugin {name!r} ({ep.value}) names a {what} folder that does not exist: "
                                  f"{folder}; {hint}")
        loaded.append(LoadedPlugin(name, ep.value, plugin))
    return loaded
