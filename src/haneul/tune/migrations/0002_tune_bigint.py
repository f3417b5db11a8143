"""tune: a trial's session id and last step are 64-bit on PostgreSQL, as the platform's are

Revision ID: tune_0002
Revises: tune_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "tune_0002"
down_revision = "tune_0001"
branch_labels = None
depends_on = None


def _alter(integer: type[sa.types.TypeEngine]) -> None:
    if op.get_bind().dialect.name == "postgresql":  # SQLite's INTEGER is 64-bit already
        for column in ("session_id", "last_step"):
            op.alter_column("tune_trials", column, type_=integer())


def upgrade() -> None:
    _alter(sa.BigInteger)


def downgrade() -> None:
    _alter(sa.Integer)
