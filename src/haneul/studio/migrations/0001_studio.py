"""studio: presets, preset versions, runs and team endpoints

Revision ID: studio_0001
Revises: (none; the first of the studio tables' own chain, tracked in alembic_version_studio)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "studio_0001"
down_revision = None
branch_labels = ("studio",)
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "studio_presets",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("teams.id"), nullable=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("team_id", "name", name="uq_studio_presets_team_name"),
    )
    op.create_index("ix_studio_presets_team_id", "studio_presets", ["team_id"])
    op.create_table(
        "studio_preset_versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("preset_id", sa.Integer(), sa.ForeignKey("studio_presets.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("instruction", sa.Text(), nullable=False),
        sa.Column("examples", sa.JSON(), nullable=False),
        sa.Column("input_template", sa.Text(), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False, server_default=""),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("preset_id", "number", name="uq_studio_versions_preset_number"),
    )
    op.create_index("ix_studio_preset_versions_preset_id", "studio_preset_versions", ["preset_id"])
    op.create_table(
        "studio_runs",
        sa.Column("id", _BIG_ID, primary_key=True),
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("teams.id"), nullable=True),
        sa.Column("preset_version_id", sa.Integer(),
                  sa.ForeignKey("studio_preset_versions.id", ondelete="SET NULL"), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("prompt", sa.JSON(), nullable=False),
        sa.Column("input", sa.Text(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("output", sa.Text(), nullable=False, server_default=""),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_studio_runs_team_id", "studio_runs", ["team_id"])
    op.create_index("ix_studio_runs_preset_version_id", "studio_runs", ["preset_version_id"])
    op.create_table(
        "studio_endpoints",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("teams.id"), nullable=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("url", sa.String(500), nullable=False),
        sa.Column("remote_model", sa.String(200), nullable=False),
        sa.Column("context_window", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("team_id", "name", name="uq_studio_endpoints_team_name"),
    )
    op.create_index("ix_studio_endpoints_team_id", "studio_endpoints", ["team_id"])


def downgrade() -> None:
    for table in ("studio_endpoints", "studio_runs", "studio_preset_versions", "studio_presets"):
        op.drop_table(table)
