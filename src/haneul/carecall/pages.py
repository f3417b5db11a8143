"""CareCall's pages: the campaigns, a campaign's day (its calls, outcomes and open alerts) and a
person's timeline (every call with its transcript and answers, and what is remembered).

Server-rendered, kept to what staff need to act on a day's calls; the same data is on the REST routes.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any

from annotated_types import Ge, Le
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from haneul.carecall.alerts import list_alerts
from haneul.carecall.people import list_people
from haneul.carecall.scheduler import Scheduler
from haneul.platform.plugins import CurrentPrincipal, ServerContext

if TYPE_CHECKING:
    from haneul.carecall.server import Access

__all__ = ["add_pages", "local_time"]

Id = Annotated[int, Ge(1), Le(2**31 - 1)]
_LIVE = ("open", "acknowledged", "assigned")


def local_time(ts: float | None, zone: Any) -> str:
    """A timestamp as ``MM-DD HH:MM`` in the campaign's zone (``-`` for none)."""
    return "-" if ts is None else dt.datetime.fromtimestamp(ts, zone).strftime("%m-%d %H:%M")


def add_pages(router: APIRouter, scheduler: Scheduler, ctx: ServerContext, access: Access) -> None:
    engine = scheduler.engine

    @router.get("/carecall", response_class=HTMLResponse, include_in_schema=False)
    def campaigns_page(request: Request, principal: CurrentPrincipal) -> Any:
        teams = principal.readable_teams()
        live = list_alerts(engine, teams=teams, states=_LIVE)
        open_by_campaign: dict[int, int] = {}
        for a in live:
            open_by_campaign[a["campaign_id"]] = open_by_campaign.get(a["campaign_id"], 0) + 1
        return ctx.render(request, "campaigns.html", {
            "campaigns": scheduler.list_campaigns(teams=teams), "open_alerts": open_by_campaign,
            "people": len(list_people(engine, teams=teams))})

    @router.get("/carecall/campaigns/{cid}", response_class=HTMLResponse, include_in_schema=False)
    def campaign_page(request: Request, cid: Id, principal: CurrentPrincipal,
                      date: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")] = None) -> Any:
        access.campaign(cid, principal)
        campaign = scheduler.get_campaign(cid)
        spec = scheduler.spec(cid)
        zone = spec.schedule.zone
        day = date or dt.datetime.now(zone).date().isoformat()
        members = set(campaign["people"])
        names = {p.id: p.name for p in list_people(engine) if p.id in members}
        calls = [c for c in scheduler.calls(campaign_id=cid) if c["slot"].startswith(day)]
        for c in calls:
            c["name"] = names.get(c["person_id"], "?")
            c["when"] = local_time(c["ended_at"] or c["due_at"], zone)
        alerts = list_alerts(engine, campaign_id=cid, states=_LIVE)
        for a in alerts:
            a["name"] = names.get(a["person_id"], "?")
            a["when"] = local_time(a["created_at"], zone)
        days = [(spec.schedule.first_day + dt.timedelta(days=i)).isoformat() for i in range(spec.schedule.days)]
        return ctx.render(request, "campaign.html", {"campaign": campaign, "spec": spec, "day": day, "days": days,
                                                     "calls": calls, "alerts": alerts})

    @router.get("/carecall/people/{pid}", response_class=HTMLResponse, include_in_schema=False)
    def person_page(request: Request, pid: Id, principal: CurrentPrincipal) -> Any:
        person = access.person(pid, principal)
        calls = [c for c in scheduler.calls(person_id=pid, with_record=True) if c["state"] == "done"]
        zones: dict[int, Any] = {}
        for c in calls:
            if c["campaign_id"] not in zones:
                zones[c["campaign_id"]] = scheduler.spec(c["campaign_id"]).schedule.zone
            c["when"] = local_time(c["ended_at"], zones[c["campaign_id"]])
        return ctx.render(request, "person.html", {
            "person": person, "calls": list(reversed(calls)), "memory": scheduler.memory.get(pid),
            "alerts": list_alerts(engine, person_id=pid)})
