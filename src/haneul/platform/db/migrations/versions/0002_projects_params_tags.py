"""projects, params, tags, notes, git, archive, saved views

Existing sessions join the project "default", with no params, tags or notes, and are not archived.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("project", sa.String(length=128), nullable=False, server_default="default"))
        batch_op.add_column(sa.Column("notes", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("archived", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("git", sa.JSON(), nullable=True))
        batch_op.create_index(batch_op.f("ix_sessions_project"), ["project"], unique=False)
        batch_op.create_index(batch_op.f("ix_sessions_archived"), ["archived"], unique=False)

    op.create_table(
        "session_params",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=256), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("num", sa.Float(), nullable=True),
        sa.Column("text", sa.String(length=1024), nullable=True),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("session_id", "key"),
    )
    op.create_index("ix_session_params_key_num", "session_params", ["key", "num"], unique=False)
    op.create_index("ix_session_params_key_text", "session_params", ["key", "text"], unique=False)

    op.create_table(
        "session_tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=256), nullable=False),
        sa.Column("value", sa.String(length=1024), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("session_id", "key"),
    )
    op.create_index("ix_session_tags_key_value", "session_tags", ["key", "value"], unique=False)

    op.create_table(
        "saved_views",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("filter", sa.Text(), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("sort", sa.String(length=300), nullable=False),
        sa.Column("desc", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_index("ix_metric_keys_key_value", "metric_keys", ["key", "last_value"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_metric_keys_key_value", table_name="metric_keys")
    op.drop_table("saved_views")
    op.drop_index("ix_session_tags_key_value", table_name="session_tags")
    op.drop_table("session_tags")
    op.drop_index("ix_session_params_key_text", table_name="session_params")
    op.drop_index("ix_session_params_key_num", table_name="session_params")
    op.drop_table("session_params")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sessions_archived"))
        batch_op.drop_index(batch_op.f("ix_sessions_project"))
        batch_op.drop_column("git")
        batch_op.drop_column("archived")
        batch_op.drop_column("notes")
        batch_op.drop_column("project")
