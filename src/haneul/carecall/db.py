"""CareCall's tables: people, campaigns, planned call attempts, alerts and the alerts' audit trail.

The tables are created by the migrations beside this module (their own Alembic chain, tracked in
``alembic_version_carecall``). A person's long-term memory is not here: it lives in the dialogue
memory tables of :mod:`haneul.dialog` (one memory per person, see :mod:`haneul.carecall.memory`).
Everything belongs to a team through ``team_id``, which is how the routes keep teams apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Boolean, Column, Float, Integer, MetaData, String, Table, Text

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

metadata = MetaData()

people = Table(
    "carecall_people", metadata,
    Column("id", Integer, primary_key=True),
    Column("team_id", Integer, nullable=True, index=True),
    Column("name", String(100), nullable=False),
    Column("phone", String(200), nullable=False),  # E.164 (+82...) or a sip: URI
    Column("consent", Boolean, nullable=False),
    Column("consent_date", String(10), nullable=True),  # YYYY-MM-DD
    Column("call_times", JSON, nullable=False),  # ["09:00", ...]; [] = the campaign's times
    Column("notes", Text, nullable=False, default=""),
    Column("created_at", Float, nullable=False),
)

#: draft -> running <-> paused; running -> done once no attempt is left to place
CAMPAIGN_STATUSES = ("draft", "running", "paused", "done")

campaigns = Table(
    "carecall_campaigns", metadata,
    Column("id", Integer, primary_key=True),
    Column("team_id", Integer, nullable=True, index=True),
    Column("name", String(100), nullable=False),
    Column("owner", String(64), nullable=False),
    Column("spec", JSON, nullable=False),  # CampaignSpec.to_dict()
    Column("status", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

campaign_people = Table(
    "carecall_campaign_people", metadata,
    Column("campaign_id", Integer, primary_key=True),
    Column("person_id", Integer, primary_key=True),
)

#: planned -> claimed (leased by a worker) -> done; planned -> skipped (no consent, campaign gone)
ATTEMPT_STATES = ("planned", "claimed", "done", "skipped")

attempts = Table(
    "carecall_attempts", metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(200), nullable=False, unique=True),  # campaign:person:slot:try
    Column("team_id", Integer, nullable=True, index=True),
    Column("campaign_id", Integer, nullable=False, index=True),
    Column("person_id", Integer, nullable=False, index=True),
    Column("slot", String(40), nullable=False),  # the planned local time, ISO 8601 with offset
    Column("day", Integer, nullable=False),  # days since the campaign's start date
    Column("slot_index", Integer, nullable=False),  # which of the day's calls
    Column("try_number", Integer, nullable=False),  # 0 = the planned call, 1.. = retries
    Column("due_at", Float, nullable=False, index=True),
    Column("state", String(16), nullable=False, index=True),
    Column("lease_token", String(64), nullable=True, index=True),
    Column("lease_until", Float, nullable=True),
    Column("claims", Integer, nullable=False, default=0),  # how many times a worker took it
    Column("outcome", String(32), nullable=True),
    Column("record", JSON, nullable=True),  # CallRecord.to_dict()
    Column("summary", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("started_at", Float, nullable=True),
    Column("ended_at", Float, nullable=True),
    Column("created_at", Float, nullable=False),
)

#: open -> acknowledged -> assigned -> resolved (any step may be skipped; resolved is final)
ALERT_STATES = ("open", "acknowledged", "assigned", "resolved")

alerts = Table(
    "carecall_alerts", metadata,
    Column("id", Integer, primary_key=True),
    Column("team_id", Integer, nullable=True, index=True),
    Column("campaign_id", Integer, nullable=True, index=True),
    Column("person_id", Integer, nullable=False, index=True),
    Column("attempt_id", Integer, nullable=True),
    Column("code", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("state", String(16), nullable=False, index=True),
    Column("assignee", String(64), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

alert_events = Table(
    "carecall_alert_events", metadata,
    Column("id", Integer, primary_key=True),
    Column("alert_id", Integer, nullable=False, index=True),
    Column("at", Float, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(16), nullable=False),  # opened, acknowledged, assigned, resolved
    Column("from_state", String(16), nullable=True),
    Column("to_state", String(16), nullable=False),
    Column("assignee", String(64), nullable=True),
    Column("note", Text, nullable=True),
)

def new_id(result: Any) -> int:
    """The primary key an INSERT made."""
    key = result.inserted_primary_key
    if key is None:  # not an INSERT of one row: a mistake in the caller
        raise RuntimeError("no primary key: not a single-row INSERT")
    return int(key[0])


__all__ = ["ALERT_STATES", "ATTEMPT_STATES", "CAMPAIGN_STATUSES", "MIGRATIONS", "alert_events", "alerts",
           "attempts", "campaign_people", "campaigns", "metadata", "new_id", "people"]
