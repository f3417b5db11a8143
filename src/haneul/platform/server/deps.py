"""Dependency aliases, parameter types and documented error answers shared by the route modules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from annotated_types import Ge, Le
from fastapi import Depends, Path, Request
from fastapi.templating import Jinja2Templates

# the error shapes live with the plugin contract, so plugins document their errors the same way
from haneul.errors import Forbidden
from haneul.platform.plugins import ERROR_DESCRIPTIONS as ERROR_DESCRIPTIONS
from haneul.platform.plugins import CurrentPrincipal
from haneul.platform.plugins import ErrorBody as ErrorBody
from haneul.platform.plugins import ErrorDetail as ErrorDetail
from haneul.platform.plugins import errors as errors
from haneul.platform.service import INT64_MAX, INT64_MIN, Platform

# The database stores integers as signed 64-bit: a wider one must be a 400 naming the parameter, not
# an overflow deep in the driver. Plain constraints (not Path()/Query()) so that a route can still
# add its own Query(description=...).
Int64 = Annotated[int, Ge(INT64_MIN), Le(INT64_MAX)]
NonNegInt64 = Annotated[int, Ge(0), Le(INT64_MAX)]
SessionId = Annotated[int, Ge(INT64_MIN), Le(INT64_MAX), Path(description="session id")]


def get_platform(request: Request) -> Platform:
    return request.app.state.platform


def get_templates(request: Request) -> Jinja2Templates:
    return request.app.state.templates


PlatformDep = Annotated[Platform, Depends(get_platform)]


# A session belongs to a team: these path parameters check the caller's access before the route runs.
# Another team's session is a 404, as if it did not exist; a viewer writing is a 403.
def _readable_session(sid: SessionId, request: Request, principal: CurrentPrincipal) -> int:
    principal.check_read(get_platform(request).session_team(sid), f"session {sid}")
    return sid


def _writable_session(sid: SessionId, request: Request, principal: CurrentPrincipal) -> int:
    principal.check_write(get_platform(request).session_team(sid), f"session {sid}")
    return sid


def _reporting_session(sid: SessionId, request: Request, principal: CurrentPrincipal) -> int:
    team = get_platform(request).session_team(sid)
    if not principal.can_write_session(sid, team):
        principal.check_read(team, f"session {sid}")
        raise Forbidden(f"{principal.name} may not write to session {sid}: only its own token (HANEUL_TOKEN) "
                        "or a member of its team may")
    return sid


#: a session the caller may read (its team's viewers, members and owners; admins)
ReadSession = Annotated[int, Depends(_readable_session)]
#: a session the caller may change (stop, edit, archive, delete, pause, resume, fork)
WriteSession = Annotated[int, Depends(_writable_session)]
#: a session the caller may report to (metrics, params, checkpoints, artifacts): its own token or a writer
ReportSession = Annotated[int, Depends(_reporting_session)]
TemplatesDep = Annotated[Jinja2Templates, Depends(get_templates)]


#: where the app's body limit keeps its state in the request scope (see ``server.app``)
BODY_LIMIT_KEY = "haneul.body_limit"
#: the OpenAPI extension that marks an operation whose body is streamed (no 413 from the body limit)
STREAMED_BODY_EXTENSION = "x-haneul-streamed-body"


@dataclass
class BodyLimit:
    max_bytes: int | None  # None: this request's body is not limited
    received: int = 0


def _streamed_body(request: Request) -> None:
    limit = request.scope.get(BODY_LIMIT_KEY)
    if isinstance(limit, BodyLimit):
        limit.max_bytes = None


#: for ``dependencies=[...]`` of a route that streams its body to disk (checkpoint uploads): the
#: request body limit guards routes that read the whole body into memory, not this one
StreamedBody = Depends(_streamed_body)
