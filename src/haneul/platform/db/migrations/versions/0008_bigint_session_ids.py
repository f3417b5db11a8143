"""64-bit session, view and submission ids on PostgreSQL

The API takes these ids as signed 64-bit integers; PostgreSQL's INTEGER is 32-bit, so a larger id in
a URL overflowed in the driver (a 500) instead of being a 404. SQLite's INTEGER is already 64-bit:
nothing changes there.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# (table, column, its id sequence or None): the ids the API names, and every column that refers to one
WIDENED = (
    ("sessions", "id", "sessions_id_seq"),
    ("sessions", "parent_id", None),
    ("session_params", "session_id", None),
    ("session_tags", "session_id", None),
    ("metric_keys", "session_id", None),
    ("checkpoints", "session_id", None),
    ("deployments", "session_id", None),
    ("model_versions", "session_id", None),
    ("submissions", "id", "submissions_id_seq"),
    ("submissions", "session_id", None),
    ("saved_views", "id", "saved_views_id_seq"),
)


def _alter(type_: str, integer: type[sa.types.TypeEngine]) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column, sequence in WIDENED:
        op.alter_column(table, column, type_=integer())
        if sequence:
            op.execute(f"ALTER SEQUENCE {sequence} AS {type_}")


def upgrade() -> None:
    _alter("bigint", sa.BigInteger)


def downgrade() -> None:
    _alter("integer", sa.Integer)
