"""studio: batch tests of preset versions over a dataset column

Revision ID: studio_0003
Revises: studio_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "studio_0003"
down_revision = "studio_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "studio_batch_tests",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("teams.id"), nullable=True),
        sa.Column("preset_version_id", sa.Integer(),
                  sa.ForeignKey("studio_preset_versions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("dataset", sa.String(600), nullable=False),
        sa.Column("input_column", sa.String(200), nullable=False),
        sa.Column("expected_column", sa.String(200), nullable=False),
        sa.Column("label_map", sa.JSON(), nullable=True),
        sa.Column("n_rows", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(32), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("rows_done", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_studio_batch_tests_team_id", "studio_batch_tests", ["team_id"])
    op.create_index("ix_studio_batch_tests_preset_version_id", "studio_batch_tests", ["preset_version_id"])


def downgrade() -> None:
    op.drop_table("studio_batch_tests")
