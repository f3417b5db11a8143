"""studio: soft prompts learned from a preset on a labelled table

Revision ID: studio_0004
Revises: studio_0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "studio_0004"
down_revision = "studio_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "studio_ptune_jobs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("teams.id"), nullable=True),
        sa.Column("preset_version_id", sa.Integer(),
                  sa.ForeignKey("studio_preset_versions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("base_model", sa.String(200), nullable=False),
        sa.Column("dataset", sa.String(600), nullable=False),
        sa.Column("n_train", sa.Integer(), nullable=False),
        sa.Column("n_test", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("accuracy", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_studio_ptune_jobs_team_id", "studio_ptune_jobs", ["team_id"])
    op.create_index("ix_studio_ptune_jobs_preset_version_id", "studio_ptune_jobs", ["preset_version_id"])


def downgrade() -> None:
    op.drop_table("studio_ptune_jobs")
