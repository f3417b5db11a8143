"""studio: test apps with share links, preset API keys and team safety filters

Revision ID: studio_0002
Revises: studio_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "studio_0002"
down_revision = "studio_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "studio_apps",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("teams.id"), nullable=True),
        sa.Column("preset_id", sa.Integer(), sa.ForeignKey("studio_presets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("rate_per_minute", sa.Integer(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("token", name="uq_studio_apps_token"),
    )
    op.create_index("ix_studio_apps_team_id", "studio_apps", ["team_id"])
    op.create_index("ix_studio_apps_preset_id", "studio_apps", ["preset_id"])
    op.create_table(
        "studio_keys",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("teams.id"), nullable=True),
        sa.Column("preset_id", sa.Integer(), sa.ForeignKey("studio_presets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("rate_per_minute", sa.Integer(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.Column("last_used_at", sa.Float(), nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("key_hash", name="uq_studio_keys_key_hash"),
    )
    op.create_index("ix_studio_keys_team_id", "studio_keys", ["team_id"])
    op.create_index("ix_studio_keys_preset_id", "studio_keys", ["preset_id"])
    op.create_table(
        "studio_filters",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("teams.id"), nullable=True),
        sa.Column("words", sa.JSON(), nullable=False),
        sa.Column("classifier", sa.String(100), nullable=True),
        sa.Column("on_input", sa.Boolean(), nullable=False),
        sa.Column("on_output", sa.Boolean(), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("team_id", name="uq_studio_filters_team_id"),
    )


def downgrade() -> None:
    for table in ("studio_filters", "studio_keys", "studio_apps"):
        op.drop_table(table)
