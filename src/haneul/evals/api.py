"""REST routes under ``/api/v1/evals/results`` and the ``/evals`` web page: published evaluation runs.

``create_router()`` returns a FastAPI router for the haneul server to mount. ``POST`` takes the
``results.json`` document that ``haneul eval run`` writes (``?session=ID`` records the platform
session it came from), ``GET`` lists or returns runs, ``DELETE`` removes one. Runs are stored as
files under ``HANEUL_HOME/evals/results`` (see :mod:`haneul.evals.store` for why files and not a
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

#: a results document holds aggregated scores only (no per-item records): a few hundred KiB at most
MAX_BODY = 32 * 1024 * 1024
TEMPLATES = Path(__file__).resolve().parents[1] / "platform" / "server" / "web" / "templates"


def _home(request: Request) -> Path:
    platform = getattr(request.app.state, "platform", None)
    settings = getattr(platform, "settings", None)
    if settings is None:
        from haneul.settings import get_settings

        settings = get_settings()
    return Path(settings.home)


def _store(request: Request) -> ResultStore:
    return ResultStore(_home(request) / "evals" / "results")


def _templates() -> Any:
    """The platform pages' Jinja environment (same filters, same base.html), or our own on that folder."""
    try:
        from haneul.platform.server.web import templates
    except ImportError:
        from fastapi.templating import Jinja2Templates

        from haneul.platform.format import age

        templates = Jinja2Templates(directory=str(TEMPLATES))
        templates.env.filters["age"] = age
        templates.env.filters["num"] = lambda v: "-" if v is None else f"{v:.4g}"
    return templates


def create_router() -> APIRouter:
    router = APIRouter()
    templates = _templates()

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
        record, created = await run_in_threadpool(_store(request).add, doc, session)
        return {**summary(record), "created": created}

    @router.get("/api/v1/evals/results", tags=["evals"])
    def list_results(request: Request, model: str | None = None) -> dict[str, Any]:
        """Published runs, newest first: id, model, tasks, shots, seeds, created_at, session."""
        items = [summary(r) for r in _store(request).records(model=model)]
        return {"items": items, "total": len(items)}

    @router.get("/api/v1/evals/results/{rid}", tags=["evals"])
    def get_result(rid: str, request: Request) -> dict[str, Any]:
        """One run: ``{id, created_at, session, results}`` where ``results`` is the posted document."""
        return _store(request).get(rid)

    @router.delete("/api/v1/evals/results/{rid}", tags=["evals"])
    def delete_result(rid: str, request: Request) -> dict[str, Any]:
        _store(request).delete(rid)
        return {"id": rid, "deleted": True}

    @router.get("/evals", response_class=HTMLResponse, include_in_schema=False)
    def evals_page(request: Request, shots: str = "all", model: str | None = None) -> Any:
        records = _store(request).records()
        selected = int(shots) if shots.isdigit() else None
        board = leaderboard(records, shots=selected)
        if selected is not None and selected not in board["shots"]:
            selected, board = None, leaderboard(records)
        runs = [summary(r) for r in records if model is None or r["results"]["model"] == model]
        return templates.TemplateResponse(request, "evals.html", {
            "board": board, "selected": selected, "model": model or "", "runs": runs,
        })

    return router
