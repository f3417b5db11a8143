"""tune: studies, trials and Optuna's journal

Revision ID: tune_0001
Revises: (none; the first of the tune tables' own chain, tracked in alembic_version_tune)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "tune_0001"
down_revision = None
branch_labels = ("tune",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tune_studies",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("teams.id"), nullable=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("optuna_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.Column("elapsed", sa.Float(), nullable=False, server_default="0"),
        sa.Column("resumed_at", sa.Float(), nullable=True),
        sa.UniqueConstraint("team_id", "name", name="uq_tune_studies_team_name"),
    )
    op.create_index("ix_tune_studies_team_id", "tune_studies", ["team_id"])
    op.create_table(
        "tune_trials",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("study_id", sa.Integer(), sa.ForeignKey("tune_studies.id", ondelete="CASCADE"), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("optuna_trial_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), sa.ForeignKey("sessions.id", ondelete="SET NULL"), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("last_step", sa.Integer(), nullable=True),
        sa.Column("steps", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("parent_trial", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.Column("compute_s", sa.Float(), nullable=True),
        sa.UniqueConstraint("study_id", "number", name="uq_tune_trials_study_number"),
    )
    op.create_index("ix_tune_trials_study_id", "tune_trials", ["study_id"])
    op.create_index("ix_tune_trials_session_id", "tune_trials", ["session_id"])
    op.create_table(
        "tune_journal",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("log", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "tune_journal_snapshot",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    for table in ("tune_journal_snapshot", "tune_journal", "tune_trials", "tune_studies"):
        op.drop_table(table)
