"""REST routes under ``/api/v1/evals/results`` and the ``/evals`` web page: published evaluation runs.

:func:`plugin` registers them with the haneul server (entry point ``evals`` in the
``haneul.plugins`` group), with the page's nav entry and template. ``POST`` takes the
``results.json`` document that ``haneul eval run`` writes (``?session=ID`` records the platform
session it came from), ``GET`` lists or returns runs, ``DELETE`` removes one. Runs are stored as
files under ``<home>/evals/results`` of the serving server (see :mod:`haneul.evals.store` for why files and not a
table). The page ``/evals`` shows a models × tasks table grouped by shot count, the best score of
each column in bold; clicking a cell shows its per-seed spread and the run's settings.

Importing this module imports neither torch nor the scoring backends.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from haneul.errors import InvalidInput, PayloadTooLarge
from haneul.evals.store import ResultStore, leaderboard, summary
from haneul.platform.plugins import NavEntry, Plugin, ServerContext, errors

#: a results document holds aggregated scores only (no per-item records): a few hundred KiB at most
MAX_BODY = 32 * 1024 * 1024
TEMPLATES = Path(__file__).with_name("templates")
NO_RUN = {404: "no published evaluation run with this id"}


def plugin(ctx: ServerContext) -> Plugin:
    return Plugin(router=create_router(ctx), templates=TEMPLATES, nav=[NavEntry("Evals", "/evals", 30)])


def create_router(ctx: ServerContext) -> APIRouter:
    """The results API and the ``/evals`` page over ``ctx.home / "evals" / "results"``."""
    router = APIRouter()
    store = ResultStore(ctx.home / "evals" / "results")

    @router.post("/api/v1/evals/results", status_code=201, tags=["evals"], openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"},
                        "example": {"model": "smollm2", "config": {"shots": [0], "seeds": 1}, "tasks": {
                            "nsmc": {"metric": "acc", "n": 100, "shots": {"0": {"mean": {"acc": 61.0},
                                     "se": {"acc": 4.9}}}}}}}}}})
    async def publish(
        request: Request,
        session: Annotated[str | None, Query(description="the platform session the run came from")] = None,
    ) -> dict[str, Any]:
        """Store a run (the results.json document of `haneul eval run`). Publishing the same run again
        returns the stored copy with ``created: false``."""
        body = await request.body()
        if len(body) > MAX_BODY:
            raise PayloadTooLarge(f"results document is {len(body)} bytes, over {MAX_BODY}; "
                                  "post the results.json of one run")
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"results document is not valid JSON ({exc}); post the results.json that "
                               "`haneul eval run` writes") from None
        record, created = await run_in_threadpool(store.add, doc, session)
        return {**summary(record), "created": created}

    @router.get("/api/v1/evals/results", tags=["evals"])
    def list_results(request: Request, model: str | None = None) -> dict[str, Any]:
        """Published runs, newest first: id, model, tasks, shots, seeds, created_at, session."""
        items = [summary(r) for r in store.records(model=model)]
        return {"items": items, "total": len(items)}

    @router.get("/api/v1/evals/results/{rid}", tags=["evals"], responses=errors(404, described=NO_RUN))
    def get_result(rid: str, request: Request) -> dict[str, Any]:
        """One run: ``{id, created_at, session, results}`` where ``results`` is the posted document."""
        return store.get(rid)

    @router.delete("/api/v1/evals/results/{rid}", tags=["evals"], responses=errors(404, described=NO_RUN))
    def delete_result(rid: str, request: Request) -> dict[str, Any]:
        store.delete(rid)
        return {"id": rid, "deleted": True}

    @router.get("/evals", response_class=HTMLResponse, include_in_schema=False)
    def evals_page(request: Request, shots: str = "all", model: str | None = None) -> Any:
        records = store.records()
        selected = int(shots) if shots.isdigit() else None
        board = leaderboard(records, shots=selected)
        if selected is not None and selected not in board["shots"]:
            selected, board = None, leaderboard(records)
        runs = [summary(r) for r in records if model is None or r["results"]["model"] == model]
        return ctx.render(request, "evals.html", {
            "board": board, "selected": selected, "model": model or "", "runs": runs,
        })

    return router
