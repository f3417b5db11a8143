"""Statistics for staff: a campaign's calls, answer rate, outcomes, symptom rates and alerts per day,
and the proactive-inspection ranking of its people.

CareCall (Lee et al., 2020) gave public-health staff the monitoring calls' statistics, so that they
could see how a ward was doing day by day and whom to look at first. :func:`day_stats` computes the
daily figures from calls and alerts as plain rows (so a hand-made campaign can be checked by hand);
:func:`campaign_stats` and :func:`campaign_ranking` read them from a :class:`~haneul.carecall.scheduler.Scheduler`'s
database, the ranking through :mod:`haneul.carecall.inspection`.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from haneul.carecall.campaigns import UNANSWERED
from haneul.carecall.inspection import observe, rank
from haneul.carecall.simulate import FEVER
from haneul.errors import InvalidInput

__all__ = ["STAT_SYMPTOMS", "CampaignStats", "DayStats", "campaign_ranking", "campaign_stats", "day_stats"]

#: the symptoms whose rates are shown; fever is a reported temperature of 37.5 °C or more (or a yes)
STAT_SYMPTOMS = ("fever", "cough", "sore_throat", "breathing", "taste_smell", "contact")
#: the rankings staff may ask the server for (the learned model needs a training cohort: see the docs)
SERVED_METHODS = ("rule", "fever_today")


@dataclass(frozen=True)
class DayStats:
    """One campaign day: ``calls`` placed (retries included), ``answered`` (someone picked up) and the
    ``answer_rate``, ``outcomes`` counts, ``symptom_rates`` (share of answered calls reporting each
    symptom), ``alerts`` by code, and ``planned`` calls not placed yet."""

    day: int
    date: str
    calls: int
    answered: int
    answer_rate: float | None
    outcomes: Mapping[str, int] = field(default_factory=dict)
    symptom_rates: Mapping[str, float | None] = field(default_factory=dict)
    alerts: Mapping[str, int] = field(default_factory=dict)
    planned: int = 0


@dataclass(frozen=True)
class CampaignStats:
    campaign_id: int
    name: str
    status: str
    people: int
    days: list[DayStats]

    @property
    def totals(self) -> dict[str, Any]:
        calls = sum(d.calls for d in self.days)
        answered = sum(d.answered for d in self.days)
        outcomes: Counter[str] = Counter()
        alerts: Counter[str] = Counter()
        for d in self.days:
            outcomes.update(d.outcomes)
            alerts.update(d.alerts)
        return {"calls": calls, "answered": answered, "answer_rate": answered / calls if calls else None,
                "outcomes": dict(sorted(outcomes.items())), "alerts": dict(sorted(alerts.items()))}

    def to_dict(self) -> dict[str, Any]:
        return {"campaign": self.campaign_id, "name": self.name, "status": self.status, "people": self.people,
                "days": [asdict(d) for d in self.days], "totals": self.totals}


def _reports(record: Mapping[str, Any] | None, symptom: str) -> bool:
    if record is None:
        return False
    said = (record.get("symptoms") or {}).get(symptom)
    if symptom == "fever":
        temp = record.get("temperature")
        return bool(said) or (temp is not None and temp >= FEVER)
    return bool(said)


def day_stats(calls: Sequence[Mapping[str, Any]], alerts: Sequence[Mapping[str, Any]], *, days: int,
              first_day: dt.date, zone: Any = dt.UTC) -> list[DayStats]:
    """Daily figures for ``days`` days from attempt rows (``day``, ``state``, ``outcome``, ``record``) and
    alert rows (``code``, ``attempt_id``, ``created_at``). An alert counts on its call's day; one
    without a call on the local date it was opened."""
    if days < 0:
        raise InvalidInput(f"days must be >= 0, got {days}")
    day_of = {c["id"]: c["day"] for c in calls if "id" in c}
    per_alerts: dict[int, Counter[str]] = {d: Counter() for d in range(days)}
    for a in alerts:
        d = day_of.get(a.get("attempt_id"))
        if d is None:
            d = (dt.datetime.fromtimestamp(a["created_at"], zone).date() - first_day).days
        if d in per_alerts:
            per_alerts[d][a["code"]] += 1
    out = []
    for d in range(days):
        todays = [c for c in calls if c["day"] == d]
        placed = [c for c in todays if c["state"] == "done"]
        picked = [c for c in placed if c["outcome"] not in UNANSWERED]
        rates = {s: (sum(_reports(c.get("record"), s) for c in picked) / len(picked) if picked else None)
                 for s in STAT_SYMPTOMS}
        out.append(DayStats(
            day=d, date=(first_day + dt.timedelta(days=d)).isoformat(), calls=len(placed), answered=len(picked),
            answer_rate=len(picked) / len(placed) if placed else None,
            outcomes=dict(sorted(Counter(c["outcome"] for c in placed).items())), symptom_rates=rates,
            alerts=dict(sorted(per_alerts[d].items())),
            planned=sum(1 for c in todays if c["state"] in ("planned", "claimed"))))
    return out


def campaign_stats(scheduler: Any, campaign_id: int) -> CampaignStats:
    """:func:`day_stats` of a stored campaign, over every day of its schedule."""
    from haneul.carecall.alerts import list_alerts

    campaign = scheduler.get_campaign(campaign_id)
    schedule = scheduler.spec(campaign_id).schedule
    calls = scheduler.calls(campaign_id=campaign_id, with_record=True)
    alerts = list_alerts(scheduler.engine, campaign_id=campaign_id)
    days = day_stats(calls, alerts, days=schedule.days, first_day=schedule.first_day, zone=schedule.zone)
    return CampaignStats(campaign_id, campaign["name"], campaign["status"], len(campaign["people"]), days)


def campaign_ranking(scheduler: Any, campaign_id: int, *, top: int = 20, day: int | None = None,
                     method: str = "rule") -> dict[str, Any]:
    """The campaign's people ranked for testing from their calls up to ``day`` (default: the last day
    with a finished call): the ``top`` first, each with score, reasons, features and name."""
    from haneul.carecall.people import list_people

    if method not in SERVED_METHODS:
        raise InvalidInput(f"unknown ranking method {method!r}; use one of {', '.join(SERVED_METHODS)}")
    done = scheduler.calls(campaign_id=campaign_id, with_record=True, states=["done"])
    observed = [observe(c["record"], person=str(c["person_id"]), day=c["day"]) for c in done]
    if day is None:
        day = max((c["day"] for c in done), default=0)
    called = {str(c["person_id"]) for c in scheduler.calls(campaign_id=campaign_id)}
    ranked = rank(observed, day=day, method=method, people=called, seed=campaign_id)
    members = set(scheduler.get_campaign(campaign_id)["people"])
    names = {str(p.id): p.name for p in list_people(scheduler.engine) if p.id in members}
    items = [{**r.to_dict(), "person": int(r.person), "name": names.get(r.person, "?"), "rank": i + 1}
             for i, r in enumerate(ranked[:top])]
    return {"campaign": campaign_id, "day": day, "method": method, "people": len(ranked), "items": items}
