"""The staff statistics on the server: a campaign's daily figures and its inspection ranking, as REST
routes and as a page with charts (CareCall, Lee et al. 2020: the statistics behind proactive inspection).

``GET /api/v1/carecall/campaigns/{cid}/stats`` gives :func:`haneul.carecall.stats.campaign_stats`,
``GET …/ranking[?top=&day=&method=]`` :func:`haneul.carecall.stats.campaign_ranking`, and
``/carecall/campaigns/{cid}/stats`` draws both (plotly.js, served by the platform). Team checks are the
carecall routes' own (:class:`haneul.carecall.server.Access`): another team's campaign is a 404.
"""

from __future__ import annotations

from typing import Annotated, Any

from annotated_types import Ge, Le
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from haneul.carecall.scheduler import Scheduler
from haneul.carecall.server import Access, Id
from haneul.carecall.stats import SERVED_METHODS, STAT_SYMPTOMS, campaign_ranking, campaign_stats
from haneul.platform.plugins import CurrentPrincipal, ServerContext, errors

__all__ = ["stats_router"]

Top = Annotated[int, Ge(1), Le(1000)]
Day = Annotated[int, Ge(0), Le(10_000)]
Method = Annotated[str, Query(pattern="^(" + "|".join(SERVED_METHODS) + ")$")]


def stats_router(scheduler: Scheduler, ctx: ServerContext | None = None) -> APIRouter:
    """The statistics routes for ``scheduler``'s campaigns (and the page, given a server context)."""
    router = APIRouter(tags=["carecall"])
    access = Access(scheduler)

    @router.get("/api/v1/carecall/campaigns/{cid}/stats", responses=errors(400, 404))
    def campaign_stats_get(cid: Id, principal: CurrentPrincipal) -> dict[str, Any]:
        """Per day: calls, answer rate, outcomes, symptom rates among answered calls, alerts by code."""
        return campaign_stats(scheduler, access.campaign(cid, principal)).to_dict()

    @router.get("/api/v1/carecall/campaigns/{cid}/ranking", responses=errors(400, 404))
    def campaign_ranking_get(cid: Id, principal: CurrentPrincipal, top: Top = 20, day: Day | None = None,
                             method: Method = "rule") -> dict[str, Any]:
        """Whom to test first: the top people by risk from their answers, with score and reasons."""
        return campaign_ranking(scheduler, access.campaign(cid, principal), top=top, day=day, method=method)

    if ctx is not None:
        @router.get("/carecall/campaigns/{cid}/stats", response_class=HTMLResponse, include_in_schema=False)
        def campaign_stats_page(request: Request, cid: Id, principal: CurrentPrincipal, top: Top = 20) -> Any:
            access.campaign(cid, principal)
            stats = campaign_stats(scheduler, cid).to_dict()
            ranking = campaign_ranking(scheduler, cid, top=top)
            return ctx.render(request, "stats.html", {"stats": stats, "ranking": ranking,
                                                      "symptoms": STAT_SYMPTOMS})

    return router
