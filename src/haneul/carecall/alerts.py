"""Alerts for public-health staff: what a call raised (fever, breathing, a request for a person) and
people who stopped answering, each moved through open -> acknowledged -> assigned -> resolved.

CareCall (Lee et al., 2020) sends staff the answers that need a human look. An alert here comes from a
:class:`~haneul.carecall.agent.CallRecord`'s alerts, or from :data:`UNANSWERED_IN_A_ROW` calls in a row
that nobody answered (code ``unreachable``). Every change of state is a row in
``carecall_alert_events`` with who made it and when, so the history of an alert can be audited.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from haneul.carecall.campaigns import UNANSWERED
from haneul.carecall.db import alert_events, alerts, attempts, new_id
from haneul.errors import Conflict, InvalidInput, NotFound

__all__ = ["ACTIONS", "UNANSWERED_IN_A_ROW", "alert_history", "change_alert", "get_alert", "list_alerts",
           "open_alert", "unanswered_streak"]

#: how many unanswered calls in a row make an ``unreachable`` alert
UNANSWERED_IN_A_ROW = 3
#: action -> (the states it may start from, the state it leads to)
ACTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "acknowledge": (("open",), "acknowledged"),
    "assign": (("open", "acknowledged", "assigned"), "assigned"),
    "resolve": (("open", "acknowledged", "assigned"), "resolved"),
}
_LIVE = ("open", "acknowledged", "assigned")


def open_alert(conn: Connection, *, team_id: int | None, campaign_id: int | None, person_id: int,
               attempt_id: int | None, code: str, reason: str, now: float, actor: str = "carecall") -> int:
    """Insert an open alert and its ``opened`` event inside the caller's transaction; returns its id."""
    aid = new_id(conn.execute(insert(alerts).values(
        team_id=team_id, campaign_id=campaign_id, person_id=person_id, attempt_id=attempt_id, code=code,
        reason=reason, state="open", assignee=None, created_at=now, updated_at=now)))
    conn.execute(insert(alert_events).values(alert_id=aid, at=now, actor=actor, action="opened", from_state=None,
                                             to_state="open", assignee=None, note=reason))
    return aid


def has_live_alert(conn: Connection, person_id: int, code: str, campaign_id: int | None) -> bool:
    """Whether ``person_id`` already has a ``code`` alert staff have not resolved."""
    query = select(alerts.c.id).where(alerts.c.person_id == person_id, alerts.c.code == code,
                                      alerts.c.state.in_(_LIVE), alerts.c.campaign_id == campaign_id)
    return conn.execute(query.limit(1)).first() is not None


def unanswered_streak(conn: Connection, campaign_id: int, person_id: int, n: int = UNANSWERED_IN_A_ROW) -> bool:
    """Whether the person's last ``n`` finished calls of the campaign all went unanswered."""
    last = conn.execute(
        select(attempts.c.outcome).where(attempts.c.campaign_id == campaign_id, attempts.c.person_id == person_id,
                                         attempts.c.state == "done")
        .order_by(attempts.c.ended_at.desc(), attempts.c.id.desc()).limit(n)).scalars().all()
    return len(last) == n and all(o in UNANSWERED for o in last)


def _dict(row: Any) -> dict[str, Any]:
    return dict(row._mapping)


def get_alert(engine: Engine, alert_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).first()
    if row is None:
        raise NotFound(f"alert {alert_id} not found")
    return _dict(row)


def list_alerts(engine: Engine, *, teams: set[int] | None = None, campaign_id: int | None = None,
                person_id: int | None = None, states: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Alerts, newest first, filtered by team (None: every team), campaign, person and state."""
    query = select(alerts).order_by(alerts.c.created_at.desc(), alerts.c.id.desc())
    if teams is not None:
        query = query.where(alerts.c.team_id.in_(teams))
    if campaign_id is not None:
        query = query.where(alerts.c.campaign_id == campaign_id)
    if person_id is not None:
        query = query.where(alerts.c.person_id == person_id)
    if states:
        query = query.where(alerts.c.state.in_(list(states)))
    with engine.connect() as conn:
        return [_dict(r) for r in conn.execute(query)]


def alert_history(engine: Engine, alert_id: int) -> list[dict[str, Any]]:
    """Every change of the alert, oldest first: who, when, from and to which state."""
    with engine.connect() as conn:
        return [_dict(r) for r in conn.execute(
            select(alert_events).where(alert_events.c.alert_id == alert_id).order_by(alert_events.c.id))]


def change_alert(engine: Engine, alert_id: int, action: str, *, actor: str, assignee: str | None = None,
                 note: str | None = None, now: float | None = None) -> dict[str, Any]:
    """Acknowledge, assign (to ``assignee``) or resolve an alert, auditing the change."""
    if action not in ACTIONS:
        raise InvalidInput(f"unknown alert action {action!r}; use {', '.join(ACTIONS)}")
    if action == "assign" and not assignee:
        raise InvalidInput("assign needs an assignee (a user name)")
    sources, target = ACTIONS[action]
    now = time.time() if now is None else now
    with engine.begin() as conn:
        row = conn.execute(select(alerts.c.state).where(alerts.c.id == alert_id)).first()
        if row is None:
            raise NotFound(f"alert {alert_id} not found")
        if row.state not in sources:
            raise Conflict(f"alert {alert_id} is {row.state}; {action} applies to an alert that is "
                           f"{' or '.join(sources)}")
        # the state in the WHERE makes two staff acting at once a Conflict for the second, not a lost update
        done = conn.execute(update(alerts).where(alerts.c.id == alert_id, alerts.c.state == row.state).values(
            state=target, updated_at=now,
            **({"assignee": assignee} if action == "assign" else {}))).rowcount
        if done != 1:
            raise Conflict(f"alert {alert_id} changed meanwhile; reload it and try again")
        conn.execute(insert(alert_events).values(alert_id=alert_id, at=now, actor=actor, action=ACTIONS_PAST[action],
                                                 from_state=row.state, to_state=target, assignee=assignee, note=note))
    return get_alert(engine, alert_id)


ACTIONS_PAST = {"acknowledge": "acknowledged", "assign": "assigned", "resolve": "resolved"}
