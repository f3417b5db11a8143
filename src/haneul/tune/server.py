"""The ``tune`` server plugin: the optimiser's REST routes and pages.

``/api/v1/tune/studies`` creates, lists, edits, stops, resumes and deletes studies; a trial's own
session calls ``/api/v1/tune/suggest`` for ``haneul.param``. Every study belongs to a team and is
checked like the platform's resources (another team's study is a 404, a viewer changing one a 403).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from annotated_types import Ge, Le
from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from haneul.errors import Forbidden, InvalidInput
from haneul.platform.plugins import CurrentPrincipal, NavEntry, Plugin, Principal, ServerContext, errors
from haneul.tune.controller import Tuner
from haneul.tune.db import MIGRATIONS
from haneul.tune.spec import StudySpec

__all__ = ["plugin", "create_router"]

HERE = Path(__file__).resolve().parent
StudyRef = Annotated[str, Field(min_length=1, max_length=100)]
Limit = Annotated[int, Ge(1), Le(100_000)]
Offset = Annotated[int, Ge(0), Le(2**62)]


class StudyIn(BaseModel):
    spec: dict[str, Any] = Field(description="the study file's content (see docs/tune.md)")
    team: int | None = Field(None, ge=0, le=2**62, description="the team the study belongs to (default: yours)")


class StudyEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    space: dict[str, Any] | None = Field(None, description="parameters to replace or add; null removes one")
    budget: dict[str, Any] | None = Field(None, description="budget fields to change: trials, concurrent, ...")
    description: str | None = None
    priority: int | None = Field(None, ge=-1000, le=1000)


class TrialIn(BaseModel):
    params: dict[str, Any] = Field(description="a value for every parameter of the space")


class SuggestIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    distribution: dict[str, Any] = Field(description="type, low, high, log, step or choices, as in a study file")


def plugin(ctx: ServerContext) -> Plugin:
    if ctx.platform is None:
        raise RuntimeError("the tune plugin runs trials as platform sessions and needs the platform")
    tuner = Tuner(ctx.engine, ctx.platform)
    return Plugin(router=create_router(tuner, ctx), templates=HERE / "templates", static=HERE / "static",
                  nav=[NavEntry("Tune", "/tune", order=30)], migrations=MIGRATIONS,
                  on_start=tuner.start, on_close=tuner.close)


def create_router(tuner: Tuner, ctx: ServerContext | None = None) -> APIRouter:
    router = APIRouter(tags=["tune"])

    def readable(ref: str, principal: Principal) -> int:
        sid = tuner.find(ref, teams=principal.readable_teams())
        principal.check_read(tuner.team_of(sid), f"study {ref!r}")
        return sid

    def writable(ref: str, principal: Principal) -> int:
        sid = readable(ref, principal)
        principal.check_write(tuner.team_of(sid), f"study {ref!r}")
        return sid

    @router.get("/api/v1/tune/studies", responses=errors())
    def list_studies(principal: CurrentPrincipal) -> list[dict[str, Any]]:
        return tuner.list_studies(teams=principal.readable_teams())

    @router.post("/api/v1/tune/studies", status_code=201, responses=errors(400, 403, 404, 409))
    def create_study(body: StudyIn, principal: CurrentPrincipal) -> dict[str, Any]:
        if principal.session_id is not None:
            raise Forbidden("a session's token may not start studies; use your own login")
        return tuner.create(StudySpec.from_dict(body.spec), principal=principal, team=body.team)

    @router.get("/api/v1/tune/studies/{study}", responses=errors(400, 404))
    def get_study(study: StudyRef, principal: CurrentPrincipal) -> dict[str, Any]:
        return tuner.get(readable(study, principal))

    @router.patch("/api/v1/tune/studies/{study}", responses=errors(400, 403, 404))
    def edit_study(study: StudyRef, body: StudyEdit, principal: CurrentPrincipal) -> dict[str, Any]:
        changes = body.model_dump(exclude_none=True)
        if not changes:
            raise InvalidInput("nothing to change; give space, budget, description or priority")
        return tuner.edit(writable(study, principal), changes)

    @router.delete("/api/v1/tune/studies/{study}", status_code=204, responses=errors(400, 403, 404))
    def delete_study(study: StudyRef, principal: CurrentPrincipal) -> Response:
        tuner.delete(writable(study, principal))
        return Response(status_code=204)

    @router.post("/api/v1/tune/studies/{study}/stop", responses=errors(400, 403, 404, 409))
    def stop_study(study: StudyRef, principal: CurrentPrincipal) -> dict[str, Any]:
        return tuner.stop(writable(study, principal))

    @router.post("/api/v1/tune/studies/{study}/resume", responses=errors(400, 403, 404, 409))
    def resume_study(study: StudyRef, principal: CurrentPrincipal) -> dict[str, Any]:
        return tuner.resume(writable(study, principal))

    @router.get("/api/v1/tune/studies/{study}/trials", responses=errors(400, 404))
    def list_trials(study: StudyRef, principal: CurrentPrincipal, sort: str = "number",
                    limit: Limit | None = None, offset: Offset = 0) -> list[dict[str, Any]]:
        return tuner.trials(readable(study, principal), sort=sort, limit=limit, offset=offset)

    @router.post("/api/v1/tune/studies/{study}/trials", status_code=201, responses=errors(400, 403, 404))
    def enqueue_trial(study: StudyRef, body: TrialIn, principal: CurrentPrincipal) -> dict[str, Any]:
        return tuner.enqueue(writable(study, principal), body.params)

    @router.get("/api/v1/tune/studies/{study}/best", responses=errors(400, 404))
    def best_trial(study: StudyRef, principal: CurrentPrincipal) -> dict[str, Any]:
        return tuner.best(readable(study, principal))

    @router.get("/api/v1/tune/studies/{study}/intermediate", responses=errors(400, 404))
    def intermediate(study: StudyRef, principal: CurrentPrincipal,
                     limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> list[dict[str, Any]]:
        return tuner.intermediate(readable(study, principal), limit=limit)

    @router.get("/api/v1/tune/studies/{study}/importances", responses=errors(400, 404))
    def importances(study: StudyRef, principal: CurrentPrincipal,
                    evaluator: Annotated[str, Query(pattern="^(ped-anova|fanova)$")] = "ped-anova") -> dict[str, float]:
        return tuner.importances(readable(study, principal), evaluator=evaluator)

    @router.get("/api/v1/tune/studies/{study}/export", responses=errors(400, 404))
    def export(study: StudyRef, principal: CurrentPrincipal,
               format: Annotated[str, Query(pattern="^(csv|json)$")] = "csv") -> Response:
        text = tuner.export(readable(study, principal), format)
        media = "text/csv" if format == "csv" else "application/json"
        return PlainTextResponse(text, media_type=media)

    @router.post("/api/v1/tune/suggest", responses=errors(400, 403, 404))
    def suggest(body: SuggestIn, principal: CurrentPrincipal) -> dict[str, Any]:
        if principal.session_id is None:
            raise Forbidden("only a trial's own session may ask for its parameters (haneul.param inside a trial)")
        return {"name": body.name, "value": tuner.suggest(principal.session_id, body.name, body.distribution)}

    if ctx is not None:
        from haneul.tune.pages import add_pages

        add_pages(router, tuner, ctx, readable)
    return router
