"""The ``carecall`` server plugin: people, campaigns, calls, alerts and memories over REST, and pages.

Routes live under ``/api/v1/carecall/``: import and read people, create / start / pause campaigns,
list a campaign's or a person's calls with their outcomes (and export them as CSV), move alerts
through acknowledged / assigned / resolved, and read, correct or revert a person's memory. Everything
belongs to a team and is checked like the platform's resources: another team's person, campaign or
alert answers 404 (its existence is not leaked), a viewer changing one 403. The scheduler's worker
thread (:mod:`haneul.carecall.scheduler`) starts with the server and places due calls only when a
dialer is configured (``HANEUL_CARECALL_DIALER``: ``simulated`` over the text channel or
``simulated-audio`` over the audio channel, both phoning simulated people, for demos); with ``off``,
the default, planned calls wait.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Annotated, Any

from annotated_types import Ge, Le
from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, Field

from haneul.carecall.alerts import alert_history, change_alert, get_alert, list_alerts
from haneul.carecall.campaigns import CampaignSpec
from haneul.carecall.db import ALERT_STATES, MIGRATIONS
from haneul.carecall.people import Person, get_person, import_csv, list_people
from haneul.carecall.scheduler import Dialer, Scheduler, SimulatedAudioDialer, SimulatedDialer
from haneul.errors import InvalidInput
from haneul.platform.plugins import CurrentPrincipal, NavEntry, Plugin, Principal, ServerContext, errors

__all__ = ["create_router", "plugin"]

HERE = Path(__file__).resolve().parent
Id = Annotated[int, Ge(1), Le(2**31 - 1)]
MAX_CSV_CHARS = 5_000_000


class ImportIn(BaseModel):
    csv: str = Field(max_length=MAX_CSV_CHARS, description="the file's text: name,phone,consent,consent_date,"
                                                            "call_times,notes (see docs/carecall.md)")
    filename: str = Field("people.csv", max_length=200, description="named in each problem line")
    team: int | None = Field(None, ge=0, le=2**31 - 1, description="the team the people belong to (default: yours)")


class CampaignIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    scenario: str = Field(min_length=1, max_length=200, description="a shipped scenario: covid or elderly")
    schedule: dict[str, Any] = Field(description="start_date, times, days, timezone")
    retry: dict[str, Any] | None = Field(None, description="max_retries, every_minutes, on")
    quiet: dict[str, Any] | None = Field(default_factory=lambda: {"start": "21:00", "end": "08:00"},
                                         description="start, end (local); null for none")
    people: list[Annotated[int, Ge(1), Le(2**31 - 1)]] = Field(max_length=100_000)
    team: int | None = Field(None, ge=0, le=2**31 - 1)


class MemoryIn(BaseModel):
    sentences: list[Annotated[str, Field(max_length=200)]] = Field(max_length=50)
    expected_version: int | None = Field(None, ge=0, le=2**31 - 1, description="the version you corrected")
    note: str = Field("", max_length=500)


class RevertIn(BaseModel):
    version: int = Field(ge=0, le=2**31 - 1)
    expected_version: int | None = Field(None, ge=0, le=2**31 - 1)


class AssignIn(BaseModel):
    assignee: str = Field(min_length=1, max_length=64, description="the user who takes it")
    note: str | None = Field(None, max_length=2000)


class NoteIn(BaseModel):
    note: str | None = Field(None, max_length=2000)


DIALERS = ("off", "simulated", "simulated-audio")


def make_dialer(name: str, settings: Any = None) -> Dialer | None:
    """The dialer ``HANEUL_CARECALL_DIALER`` names (None for ``off``). ``simulated-audio`` recognises the
    simulated callers with the speech checkpoint in ``HANEUL_CARECALL_ASR_CHECKPOINT`` when one is set,
    else with the reference recogniser (it returns what the caller said: the audio path is tested,
    recognition is not)."""
    if name not in DIALERS:
        raise InvalidInput(f"HANEUL_CARECALL_DIALER={name!r} is unknown; choose one of {', '.join(DIALERS)}")
    if name == "off":
        return None
    if name == "simulated":
        return SimulatedDialer()
    checkpoint = getattr(settings, "carecall_asr_checkpoint", None)
    # a real recogniser's text is not word for word what the simulated caller said: read it, no oracle
    return SimulatedAudioDialer(checkpoint=checkpoint or None, oracle=not checkpoint)


def plugin(ctx: ServerContext) -> Plugin:
    dialer_name = ctx.settings.carecall_dialer
    dialer = make_dialer(dialer_name, ctx.settings)
    scheduler = Scheduler(ctx.engine, dialer)

    def on_start() -> None:
        # the memories live in the dialogue-memory tables; their own migrations make them when the
        # dialog plugin is disabled (a no-op when it is loaded and has migrated them already)
        from haneul.dialog.stores import DIALOG_MIGRATIONS
        from haneul.platform.db import migrate, version_table

        migrate(ctx.engine, DIALOG_MIGRATIONS, version_table=version_table("dialog"))
        # nobody is phoned by a simulator unless the operator asked for one: with no dialer the
        # planned calls wait, visible on the pages, until a channel is configured
        if dialer is not None:
            scheduler.start_worker()

    from haneul.carecall.stats_routes import stats_router  # imported here: it imports Access from this module

    router = create_router(scheduler, ctx)
    router.include_router(stats_router(scheduler, ctx))
    return Plugin(router=router, templates=HERE / "templates", static=HERE / "static",
                  nav=[NavEntry("CareCall", "/carecall", order=60)], migrations=MIGRATIONS,
                  on_start=on_start, on_close=scheduler.stop_worker)


class Access:
    """Finds a resource and checks the principal may read (404) or write (403) it."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self.engine = scheduler.engine

    def person(self, pid: int, principal: Principal, *, write: bool = False) -> Person:
        person = get_person(self.engine, pid)
        (principal.check_write if write else principal.check_read)(person.team_id, f"person {pid}")
        return person

    def campaign(self, cid: int, principal: Principal, *, write: bool = False) -> int:
        team = self.scheduler.team_of(cid)
        (principal.check_write if write else principal.check_read)(team, f"campaign {cid}")
        return cid

    def alert(self, aid: int, principal: Principal, *, write: bool = False) -> dict[str, Any]:
        alert = get_alert(self.engine, aid)
        (principal.check_write if write else principal.check_read)(alert["team_id"], f"alert {aid}")
        return alert


def create_router(scheduler: Scheduler, ctx: ServerContext | None = None) -> APIRouter:
    router = APIRouter(tags=["carecall"])
    engine = scheduler.engine
    access = Access(scheduler)
    memory = scheduler.memory

    # -- people
    @router.get("/api/v1/carecall/people", responses=errors())
    def people_list(principal: CurrentPrincipal) -> list[dict[str, Any]]:
        return [p.to_dict() for p in list_people(engine, teams=principal.readable_teams())]

    @router.post("/api/v1/carecall/people/import", status_code=201, responses=errors(400, 403, 404))
    def people_import(body: ImportIn, principal: CurrentPrincipal) -> list[dict[str, Any]]:
        """Import people from CSV text; any bad row fails the whole file (one line per problem)."""
        team = principal.writable_team(body.team)
        return [p.to_dict() for p in import_csv(engine, body.csv, team_id=team, source=body.filename)]

    @router.get("/api/v1/carecall/people/{pid}", responses=errors(400, 404))
    def person_get(pid: Id, principal: CurrentPrincipal) -> dict[str, Any]:
        return dict(access.person(pid, principal).to_dict())

    @router.get("/api/v1/carecall/people/{pid}/calls", responses=errors(400, 404))
    def person_calls(pid: Id, principal: CurrentPrincipal, record: bool = False) -> list[dict[str, Any]]:
        access.person(pid, principal)
        return scheduler.calls(person_id=pid, with_record=record)

    @router.get("/api/v1/carecall/people/{pid}/memory", responses=errors(400, 404))
    def memory_get(pid: Id, principal: CurrentPrincipal) -> dict[str, Any]:
        access.person(pid, principal)
        return memory.get(pid)

    @router.put("/api/v1/carecall/people/{pid}/memory", responses=errors(400, 403, 404, 409))
    def memory_correct(pid: Id, body: MemoryIn, principal: CurrentPrincipal) -> dict[str, Any]:
        """Replace what is remembered with the sentences given (a new version, by you)."""
        access.person(pid, principal, write=True)
        return memory.correct(pid, body.sentences, by=principal.name, expected_version=body.expected_version,
                              note=body.note)

    @router.post("/api/v1/carecall/people/{pid}/memory/revert", responses=errors(400, 403, 404, 409))
    def memory_revert(pid: Id, body: RevertIn, principal: CurrentPrincipal) -> dict[str, Any]:
        access.person(pid, principal, write=True)
        return memory.revert(pid, body.version, by=principal.name, expected_version=body.expected_version)

    # -- campaigns
    @router.get("/api/v1/carecall/campaigns", responses=errors())
    def campaigns_list(principal: CurrentPrincipal) -> list[dict[str, Any]]:
        return scheduler.list_campaigns(teams=principal.readable_teams())

    @router.post("/api/v1/carecall/campaigns", status_code=201, responses=errors(400, 403, 404))
    def campaign_create(body: CampaignIn, principal: CurrentPrincipal) -> dict[str, Any]:
        team = principal.writable_team(body.team)
        spec = CampaignSpec.from_dict(body.model_dump(exclude={"people", "team"}, exclude_none=False))
        return scheduler.create_campaign(spec, body.people, team_id=team, owner=principal.name)

    @router.get("/api/v1/carecall/campaigns/{cid}", responses=errors(400, 404))
    def campaign_get(cid: Id, principal: CurrentPrincipal) -> dict[str, Any]:
        return scheduler.get_campaign(access.campaign(cid, principal))

    @router.post("/api/v1/carecall/campaigns/{cid}/start", responses=errors(400, 403, 404, 409))
    def campaign_start(cid: Id, principal: CurrentPrincipal) -> dict[str, Any]:
        """Plan the campaign's calls (again after a pause: nothing planned twice) and let the worker place them."""
        return scheduler.start(access.campaign(cid, principal, write=True))

    @router.post("/api/v1/carecall/campaigns/{cid}/pause", responses=errors(400, 403, 404, 409))
    def campaign_pause(cid: Id, principal: CurrentPrincipal) -> dict[str, Any]:
        return scheduler.pause(access.campaign(cid, principal, write=True))

    @router.get("/api/v1/carecall/campaigns/{cid}/calls", responses=errors(400, 404))
    def campaign_calls(cid: Id, principal: CurrentPrincipal, record: bool = False,
                       state: Annotated[str | None, Query(pattern="^(planned|claimed|done|skipped)$")] = None,
                       ) -> list[dict[str, Any]]:
        access.campaign(cid, principal)
        return scheduler.calls(campaign_id=cid, with_record=record, states=[state] if state else [])

    @router.get("/api/v1/carecall/campaigns/{cid}/calls.csv", responses=errors(400, 404))
    def campaign_calls_csv(cid: Id, principal: CurrentPrincipal) -> Response:
        """Every call of the campaign as CSV: who, when, which try, the outcome, the summary and alerts."""
        access.campaign(cid, principal)
        return PlainTextResponse(calls_csv(scheduler, cid), media_type="text/csv",
                                 headers={"Content-Disposition": f'attachment; filename="campaign-{cid}-calls.csv"'})

    # -- alerts
    @router.get("/api/v1/carecall/alerts", responses=errors(400, 404))
    def alerts_list(principal: CurrentPrincipal, campaign: Id | None = None, person: Id | None = None,
                    state: Annotated[str | None, Query(pattern="^(" + "|".join(ALERT_STATES) + ")$")] = None,
                    ) -> list[dict[str, Any]]:
        if campaign is not None:
            access.campaign(campaign, principal)
        if person is not None:
            access.person(person, principal)
        return list_alerts(engine, teams=principal.readable_teams(), campaign_id=campaign, person_id=person,
                           states=[state] if state else [])

    @router.get("/api/v1/carecall/alerts/{aid}", responses=errors(400, 404))
    def alert_get(aid: Id, principal: CurrentPrincipal) -> dict[str, Any]:
        return {**access.alert(aid, principal), "history": alert_history(engine, aid)}

    @router.post("/api/v1/carecall/alerts/{aid}/ack", responses=errors(400, 403, 404, 409))
    def alert_ack(aid: Id, principal: CurrentPrincipal, body: NoteIn | None = None) -> dict[str, Any]:
        access.alert(aid, principal, write=True)
        return change_alert(engine, aid, "acknowledge", actor=principal.name, note=body.note if body else None)

    @router.post("/api/v1/carecall/alerts/{aid}/assign", responses=errors(400, 403, 404, 409))
    def alert_assign(aid: Id, body: AssignIn, principal: CurrentPrincipal) -> dict[str, Any]:
        access.alert(aid, principal, write=True)
        return change_alert(engine, aid, "assign", actor=principal.name, assignee=body.assignee, note=body.note)

    @router.post("/api/v1/carecall/alerts/{aid}/resolve", responses=errors(400, 403, 404, 409))
    def alert_resolve(aid: Id, principal: CurrentPrincipal, body: NoteIn | None = None) -> dict[str, Any]:
        access.alert(aid, principal, write=True)
        return change_alert(engine, aid, "resolve", actor=principal.name, note=body.note if body else None)

    if ctx is not None:
        from haneul.carecall.pages import add_pages

        add_pages(router, scheduler, ctx, access)
    return router


#: the columns of the calls export
CSV_COLUMNS = ("id", "key", "person_id", "name", "phone", "slot", "day", "try_number", "state", "outcome",
               "alerts", "summary", "started_at", "ended_at")


def calls_csv(scheduler: Scheduler, campaign_id: int) -> str:
    members = set(scheduler.get_campaign(campaign_id)["people"])
    people = {p.id: p for p in list_people(scheduler.engine) if p.id in members}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for call in scheduler.calls(campaign_id=campaign_id, with_record=True):
        person = people.get(call["person_id"])
        codes = ";".join(a["code"] for a in (call["record"] or {}).get("alerts", []))
        writer.writerow([call["id"], call["key"], call["person_id"], person.name if person else "",
                         person.phone if person else "", call["slot"], call["day"], call["try_number"],
                         call["state"], call["outcome"] or "", codes, call["summary"] or "",
                         call["started_at"] or "", call["ended_at"] or ""])
    return out.getvalue()
