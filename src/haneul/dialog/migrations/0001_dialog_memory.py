"""dialog memory: versions and their pair operations

Revision ID: dialog_0001
Revises: (none; the first of the dialog tables' own chain, tracked in alembic_version_dialog)

Earlier haneul versions made these tables with ``create_all`` outside Alembic, in a local memory
file or beside the platform's tables. A table that already exists is adopted as it is (the schema
is the same), so upgrading such a database only records the revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "dialog_0001"
down_revision = None
branch_labels = ("dialog",)
depends_on = None


def _exists(table: str) -> bool:
    return sa.inspect(op.get_bind()).has_table(table)


def upgrade() -> None:
    if not _exists("dialog_memory_versions"):
        op.create_table(
            "dialog_memory_versions",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("person", sa.String(length=200), nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("created_at", sa.Float(), nullable=False),
            sa.Column("sentences", sa.Text(), nullable=False),  # JSON list
            sa.Column("summary", sa.Text(), nullable=False),  # JSON list
            sa.Column("operator", sa.String(length=64), nullable=False),
            sa.Column("fallback", sa.Text(), nullable=True),
            sa.Column("session", sa.String(length=200), nullable=True),
            sa.Column("reverted_from", sa.Integer(), nullable=True),
            sa.Column("notes", sa.Text(), nullable=False),  # JSON list
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("person", "version", name="uq_dialog_memory_person_version"),
        )
        op.create_index("ix_dialog_memory_versions_person", "dialog_memory_versions", ["person"])
    if not _exists("dialog_memory_ops"):
        op.create_table(
            "dialog_memory_ops",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("version_id", sa.Integer(), nullable=False),
            sa.Column("memory_index", sa.Integer(), nullable=False),
            sa.Column("summary_index", sa.Integer(), nullable=False),
            sa.Column("memory", sa.Text(), nullable=False),
            sa.Column("summary", sa.Text(), nullable=False),
            sa.Column("op", sa.String(length=16), nullable=False),
            sa.Column("score", sa.Float(), nullable=True),
            sa.ForeignKeyConstraint(["version_id"], ["dialog_memory_versions.id"]),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index("ix_dialog_memory_ops_version_id", "dialog_memory_ops", ["version_id"])


def downgrade() -> None:
    op.drop_index("ix_dialog_memory_ops_version_id", table_name="dialog_memory_ops")
    op.drop_table("dialog_memory_ops")
    op.drop_index("ix_dialog_memory_versions_person", table_name="dialog_memory_versions")
    op.drop_table("dialog_memory_versions")
