"""The optimiser's pages: the studies list and a study's analysis page (the paper's iterative loop:
look at the trials, narrow or widen the space, change the budget, enqueue a trial, stop or resume).

The pages render only a header server-side and draw the rest in the browser from JSON, so a study
with 10,000 trials answers as fast as one with ten: ``GET /api/v1/tune/studies/{study}/table`` gives
every trial in one compact shape (a list per trial, parameters in a fixed column order) and, with
``after``, only the trials that can still change, which is what the page polls while the study runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import orjson
from annotated_types import Ge, Le
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import Text, select, type_coerce

from haneul.platform.plugins import CurrentPrincipal, Principal, ServerContext, errors
from haneul.tune.controller import Tuner
from haneul.tune.db import trials

__all__ = ["add_pages", "TABLE_COLUMNS", "trial_table"]

StudyRef = Annotated[str, Field(min_length=1, max_length=100)]
#: the fixed columns of a row of the trial table; the study's parameters follow in ``params`` order
TABLE_COLUMNS = ("number", "state", "value", "last_step", "steps", "compute_s", "session_id", "parent_trial",
                 "created_at", "ended_at", "reason")


class TrialTable(BaseModel):
    study: dict[str, Any] = Field(description="the study, as GET /api/v1/tune/studies/{study} gives it")
    columns: list[str] = Field(description="the names of a row's first fields; the parameters follow")
    params: list[str] = Field(description="the parameter names, in the order of a row's last fields")
    rows: list[list[Any]] = Field(description="one list per trial, by number")


def trial_table(tuner: Tuner, study_id: int, *, after: int = -1) -> dict[str, Any]:
    """The study and its trials numbered above ``after`` in the compact shape of :class:`TrialTable`."""
    study = tuner.get(study_id)
    cols = [getattr(trials.c, name) for name in TABLE_COLUMNS]
    with tuner.engine.connect() as conn:
        # the parameters' JSON text, parsed here with orjson: the column type's json.loads was the
        # largest part of this route's time at 10,000 trials
        found = [(*r[:-1], _json(r[-1])) for r in conn.execute(
            select(*cols, type_coerce(trials.c.params, Text)).where(trials.c.study_id == study_id,
                                                                      trials.c.number > after)
            .order_by(trials.c.number))]
    names = list(study["spec"]["space"])
    known = set(names)
    for r in found:  # a parameter a trial holds that the space no longer names (removed by an edit)
        for key in r[-1] or ():
            if key not in known:
                names.append(key)
                known.add(key)
    rows = []
    for r in found:
        params = r[-1] or {}
        rows.append([*r[:-1], *[params.get(n) for n in names]])
    return {"study": study, "columns": list(TABLE_COLUMNS), "params": names, "rows": rows}


def _json(raw: Any) -> Any:
    # SQLite hands back the text; PostgreSQL's driver may have parsed a json column already
    return orjson.loads(raw) if isinstance(raw, str | bytes) else raw


def add_pages(router: APIRouter, tuner: Tuner, ctx: ServerContext,
              readable: Callable[[str, Principal], int]) -> None:
    @router.get("/tune", response_class=HTMLResponse, include_in_schema=False)
    def studies_page(request: Request, principal: CurrentPrincipal) -> Any:
        return ctx.render(request, "studies.html", {"studies": tuner.list_studies(teams=principal.readable_teams())})

    @router.get("/tune/{study}", response_class=HTMLResponse, include_in_schema=False)
    def study_page(request: Request, study: str, principal: CurrentPrincipal) -> Any:
        s = tuner.get(readable(study, principal))
        best = tuner.best(s["id"])["params"] if s["best_trial"] is not None else None
        return ctx.render(request, "study.html", {"study": s, "space": s["spec"]["space"], "best_params": best})

    @router.get("/api/v1/tune/studies/{study}/table", response_model=TrialTable, responses=errors(400, 404))
    def table(study: StudyRef, principal: CurrentPrincipal,
              after: Annotated[int, Ge(-1), Le(2**62), Query(
                  description="only trials numbered above this (-1: every trial)")] = -1) -> Response:
        """Every trial of a study in one compact shape, for the study page's table and plots."""
        # serialised here in one pass: FastAPI's own response validation of 10,000 rows costs more
        # than the query
        data = trial_table(tuner, readable(study, principal), after=after)
        return Response(orjson.dumps(data), media_type="application/json")
