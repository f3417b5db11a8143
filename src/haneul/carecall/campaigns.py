"""Campaigns: a scenario phoned to a list of people on a schedule, with retries and quiet hours.

CareCall (Lee et al., 2020) called each person under monitoring at fixed times every day (twice a
day for active monitoring) and called again when nobody answered. A :class:`CampaignSpec` says the
same: the scenario, the daily times (``09:00``, ``18:00``) from a start date for a number of days in
a time zone (Asia/Seoul by default), a :class:`RetryPolicy` (no answer or busy: up to N more tries
every M minutes) and :class:`QuietHours` in which no call is placed: a planned call or a retry that
would fall inside them moves to their end. The functions here are pure — :func:`expand` turns a
schedule into the call slots a person gets and :func:`retry_due` says when the next try is — so the
scheduler (:mod:`haneul.carecall.scheduler`) only stores and claims what they compute.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from haneul.carecall.people import parse_times
from haneul.errors import InvalidInput

__all__ = ["UNANSWERED", "CampaignSpec", "QuietHours", "RetryPolicy", "Schedule", "Slot", "attempt_key", "expand",
           "retry_due"]

#: outcomes a retry policy may retry (the callee never got to answer)
UNANSWERED = ("no_answer", "busy", "failed")
MAX_DAYS = 366
MAX_RETRIES = 10


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {name!r}; use an IANA name such as Asia/Seoul") from None


def _clock(text: str) -> dt.time:
    (hhmm,) = parse_times([text])
    return dt.time(int(hhmm[:2]), int(hhmm[3:]))


@dataclass(frozen=True)
class RetryPolicy:
    """Try again after ``every_minutes`` when a call ends in one of ``on``, at most ``max_retries`` times."""

    max_retries: int = 2
    every_minutes: int = 30
    on: tuple[str, ...] = ("no_answer", "busy")

    def __post_init__(self) -> None:
        if not 0 <= self.max_retries <= MAX_RETRIES:
            raise InvalidInput(f"retry.max_retries must be 0..{MAX_RETRIES}, got {self.max_retries}")
        if not 1 <= self.every_minutes <= 24 * 60:
            raise InvalidInput(f"retry.every_minutes must be 1..1440, got {self.every_minutes}")
        bad = [o for o in self.on if o not in UNANSWERED + ("callback_requested", "hung_up")]
        if bad:
            raise InvalidInput(f"retry.on names {bad[0]!r}; use no_answer, busy, failed, callback_requested "
                               "or hung_up")


@dataclass(frozen=True)
class QuietHours:
    """Local times in which no call is placed; ``start`` > ``end`` wraps midnight (21:00-08:00)."""

    start: str = "21:00"
    end: str = "08:00"

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", parse_times([self.start])[0])
        object.__setattr__(self, "end", parse_times([self.end])[0])

    def contains(self, when: dt.datetime) -> bool:
        t = when.strftime("%H:%M")
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def shift(self, when: dt.datetime) -> dt.datetime:
        """``when`` itself outside quiet hours, else the end of the quiet hours it falls in (same zone)."""
        if not self.contains(when):
            return when
        end = _clock(self.end)
        day = when.date()
        if self.start > self.end and when.strftime("%H:%M") >= self.start:
            day += dt.timedelta(days=1)  # 22:00 in 21:00-08:00 waits for tomorrow morning
        return dt.datetime.combine(day, end, tzinfo=when.tzinfo)


@dataclass(frozen=True)
class Schedule:
    """Daily call ``times`` for ``days`` days from ``start_date`` (YYYY-MM-DD) in ``timezone``."""

    start_date: str
    times: tuple[str, ...] = ("09:00", "18:00")
    days: int = 3
    timezone: str = "Asia/Seoul"

    def __post_init__(self) -> None:
        try:
            dt.date.fromisoformat(self.start_date)
        except (TypeError, ValueError):
            raise InvalidInput(f"schedule.start_date {self.start_date!r} is not a date; write YYYY-MM-DD") from None
        times = tuple(parse_times(list(self.times)))
        if not times:
            raise InvalidInput("schedule.times is empty; give at least one time of day, e.g. 09:00")
        object.__setattr__(self, "times", times)
        if not 1 <= self.days <= MAX_DAYS:
            raise InvalidInput(f"schedule.days must be 1..{MAX_DAYS}, got {self.days}")
        _zone(self.timezone)

    @property
    def zone(self) -> ZoneInfo:
        return _zone(self.timezone)

    @property
    def first_day(self) -> dt.date:
        return dt.date.fromisoformat(self.start_date)


@dataclass(frozen=True)
class CampaignSpec:
    """What a campaign is: a scenario (a shipped name or id), a schedule, retries and quiet hours."""

    name: str
    scenario: str
    schedule: Schedule
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    quiet: QuietHours | None = field(default_factory=QuietHours)

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > 100:
            raise InvalidInput("a campaign needs a name of 1 to 100 characters")
        from haneul.carecall.scenario import resolve

        resolve(self.scenario)  # an unknown scenario fails here, not at the first call

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CampaignSpec:
        """From the JSON a client sends (``schedule``, ``retry``, ``quiet``: mappings; ``quiet: null`` = none)."""
        try:
            schedule = dict(data["schedule"])
            if "times" in schedule:
                schedule["times"] = tuple(schedule["times"])
            retry = dict(data.get("retry") or {})
            if "on" in retry:
                retry["on"] = tuple(retry["on"])
            quiet = data["quiet"] if "quiet" in data else {}
            return cls(name=str(data["name"]), scenario=str(data["scenario"]), schedule=Schedule(**schedule),
                       retry=RetryPolicy(**retry), quiet=None if quiet is None else QuietHours(**quiet))
        except KeyError as exc:
            raise InvalidInput(f"a campaign needs {exc.args[0]!r}; give name, scenario and schedule") from None
        except TypeError as exc:
            raise InvalidInput(f"campaign fields: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        s, r, q = self.schedule, self.retry, self.quiet
        return {"name": self.name, "scenario": self.scenario,
                "schedule": {"start_date": s.start_date, "times": list(s.times), "days": s.days,
                             "timezone": s.timezone},
                "retry": {"max_retries": r.max_retries, "every_minutes": r.every_minutes, "on": list(r.on)},
                "quiet": None if q is None else {"start": q.start, "end": q.end}}


@dataclass(frozen=True)
class Slot:
    """One planned call: ``at`` (aware, after quiet hours), the ``planned`` time it came from, the day
    number since the start date and which of the day's calls it is."""

    at: dt.datetime
    planned: str
    day: int
    index: int

    @property
    def timestamp(self) -> float:
        return self.at.timestamp()


def expand(schedule: Schedule, quiet: QuietHours | None = None, times: Sequence[str] = ()) -> list[Slot]:
    """Every call slot of the schedule in time order; ``times`` (a person's preferred times) replace
    the schedule's own when given. A slot inside quiet hours moves to their end; two slots that move
    to the same time are one call."""
    zone = schedule.zone
    daily = parse_times(list(times)) if times else list(schedule.times)
    out: list[Slot] = []
    seen: set[dt.datetime] = set()
    for day in range(schedule.days):
        date = schedule.first_day + dt.timedelta(days=day)
        for index, hhmm in enumerate(daily):
            planned = dt.datetime.combine(date, _clock(hhmm), tzinfo=zone)
            at = quiet.shift(planned) if quiet else planned
            if at in seen:
                continue
            seen.add(at)
            out.append(Slot(at=at, planned=planned.isoformat(timespec="minutes"), day=day, index=index))
    return sorted(out, key=lambda s: s.at)


def retry_due(ended_at: float, outcome: str, try_number: int, spec: CampaignSpec) -> float | None:
    """When try ``try_number + 1`` is due after a call that ended at ``ended_at`` with ``outcome``; None
    when the policy does not retry it (answered, or the tries are spent)."""
    policy = spec.retry
    if outcome not in policy.on or try_number >= policy.max_retries:
        return None
    zone = spec.schedule.zone
    when = dt.datetime.fromtimestamp(ended_at, zone) + dt.timedelta(minutes=policy.every_minutes)
    if spec.quiet is not None:
        when = spec.quiet.shift(when)
    return when.timestamp()


def attempt_key(campaign_id: int, person_id: int, slot: str, try_number: int) -> str:
    """The idempotency key of one try of one call: the same call is never stored or placed twice."""
    return f"c{campaign_id}:p{person_id}:{slot}:t{try_number}"
