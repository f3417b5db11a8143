"""carecall: people, campaigns, call attempts, alerts and their audit trail

Revision ID: carecall_0001
Revises: (none; the first of the carecall tables' own chain, tracked in alembic_version_carecall)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "carecall_0001"
down_revision = None
branch_labels = ("carecall",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "carecall_people",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("teams.id"), nullable=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("phone", sa.String(200), nullable=False),
        sa.Column("consent", sa.Boolean(), nullable=False),
        sa.Column("consent_date", sa.String(10), nullable=True),
        sa.Column("call_times", sa.JSON(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False, server_default=""),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("team_id", "phone", name="uq_carecall_people_team_phone"),
    )
    op.create_index("ix_carecall_people_team_id", "carecall_people", ["team_id"])
    op.create_table(
        "carecall_campaigns",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("teams.id"), nullable=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_carecall_campaigns_team_id", "carecall_campaigns", ["team_id"])
    op.create_table(
        "carecall_campaign_people",
        sa.Column("campaign_id", sa.Integer(), sa.ForeignKey("carecall_campaigns.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("person_id", sa.Integer(), sa.ForeignKey("carecall_people.id", ondelete="CASCADE"),
                  primary_key=True),
    )
    op.create_table(
        "carecall_attempts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("campaign_id", sa.Integer(), sa.ForeignKey("carecall_campaigns.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("person_id", sa.Integer(), sa.ForeignKey("carecall_people.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("slot", sa.String(40), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("slot_index", sa.Integer(), nullable=False),
        sa.Column("try_number", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.Float(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("lease_token", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("claims", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("record", sa.JSON(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("key", name="uq_carecall_attempts_key"),
    )
    for column in ("team_id", "campaign_id", "person_id", "due_at", "state", "lease_token"):
        op.create_index(f"ix_carecall_attempts_{column}", "carecall_attempts", [column])
    op.create_table(
        "carecall_alerts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("campaign_id", sa.Integer(), sa.ForeignKey("carecall_campaigns.id", ondelete="CASCADE"),
                  nullable=True),
        sa.Column("person_id", sa.Integer(), sa.ForeignKey("carecall_people.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("attempt_id", sa.Integer(), nullable=True),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("assignee", sa.String(64), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    for column in ("team_id", "campaign_id", "person_id", "state"):
        op.create_index(f"ix_carecall_alerts_{column}", "carecall_alerts", [column])
    op.create_table(
        "carecall_alert_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("alert_id", sa.Integer(), sa.ForeignKey("carecall_alerts.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("from_state", sa.String(16), nullable=True),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("assignee", sa.String(64), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
    )
    op.create_index("ix_carecall_alert_events_alert_id", "carecall_alert_events", ["alert_id"])


def downgrade() -> None:
    for table in ("carecall_alert_events", "carecall_alerts", "carecall_attempts", "carecall_campaign_people",
                  "carecall_campaigns", "carecall_people"):
        op.drop_table(table)
