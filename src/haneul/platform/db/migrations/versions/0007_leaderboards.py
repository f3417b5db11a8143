"""leaderboards: submissions of sessions' checkpoints scored on a dataset's hidden test part

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("user", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("checkpoint", sa.String(length=255), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("dataset", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=128), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("counts", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("inputs", sa.Integer(), nullable=True),
        sa.Column("infer_s", sa.Float(), nullable=True),
        sa.Column("eval_s", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_submissions_team_id", "submissions", ["team_id"], unique=False)
    op.create_index("ix_submissions_session_id", "submissions", ["session_id"], unique=False)
    op.create_index("ix_submissions_dataset_team_time", "submissions", ["dataset_id", "team_id", "created_at"],
                    unique=False)


def downgrade() -> None:
    for index in ("ix_submissions_dataset_team_time", "ix_submissions_session_id", "ix_submissions_team_id"):
        op.drop_index(index, table_name="submissions")
    op.drop_table("submissions")
