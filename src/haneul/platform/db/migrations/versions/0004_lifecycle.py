"""pause, resume, fork and preemption: session lineage and run counts

``parent_id``/``parent_checkpoint`` record which session (and checkpoint) a fork started from,
``preemptible`` marks sessions a higher-priority one may pause, and ``runs`` counts the processes
started for a session (a resumed session runs again under the same id).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("parent_checkpoint", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("preemptible", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("runs", sa.Integer(), nullable=False, server_default="1"))
        batch_op.create_index(batch_op.f("ix_sessions_parent_id"), ["parent_id"], unique=False)
        batch_op.create_foreign_key("fk_sessions_parent_id", "sessions", ["parent_id"], ["id"], ondelete="SET NULL")


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_constraint("fk_sessions_parent_id", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_sessions_parent_id"))
        batch_op.drop_column("runs")
        batch_op.drop_column("preemptible")
        batch_op.drop_column("parent_checkpoint")
        batch_op.drop_column("parent_id")
