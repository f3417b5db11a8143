"""accounts: users with roles in teams, hashed API tokens and web logins, team ownership

Every existing session and saved view joins the team "local", which the server's first start gives
to its local admin (a home from before accounts keeps everything, owned by that admin's team).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

LOCAL_TEAM = "local"


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("password_hash", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("admin", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()))

    op.create_table(
        "memberships",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "team_id"),
    )
    op.create_index("ix_memberships_user_id", "memberships", ["user_id"], unique=False)
    op.create_index("ix_memberships_team_id", "memberships", ["team_id"], unique=False)

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=True),
        sa.Column("last_used_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"], unique=False)

    for table in ("sessions", "saved_views"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("team_id", sa.Integer(), nullable=True))
            batch_op.create_index(batch_op.f(f"ix_{table}_team_id"), ["team_id"], unique=False)
            batch_op.create_foreign_key(f"fk_{table}_team_id", "teams", ["team_id"], ["id"])

    with op.batch_alter_table("sessions", schema=None) as batch_op:
        # a session's own token finds its session without a scan
        batch_op.create_index("ix_sessions_token_hash", ["token_hash"], unique=False)

    conn = op.get_bind()
    teams = sa.table("teams", sa.column("id", sa.Integer), sa.column("name", sa.String),
                     sa.column("created_at", sa.Float))
    team_id = conn.execute(sa.select(teams.c.id).where(teams.c.name == LOCAL_TEAM)).scalar()
    if team_id is None:
        conn.execute(teams.insert().values(name=LOCAL_TEAM, created_at=time.time()))
        team_id = conn.execute(sa.select(teams.c.id).where(teams.c.name == LOCAL_TEAM)).scalar_one()
    for table in ("sessions", "saved_views"):
        rows = sa.table(table, sa.column("team_id", sa.Integer))
        conn.execute(rows.update().where(rows.c.team_id.is_(None)).values(team_id=team_id))


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_sessions_token_hash")
    for table in ("saved_views", "sessions"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f"fk_{table}_team_id", type_="foreignkey")
            batch_op.drop_index(batch_op.f(f"ix_{table}_team_id"))
            batch_op.drop_column("team_id")
    op.drop_index("ix_api_tokens_user_id", table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_index("ix_memberships_team_id", table_name="memberships")
    op.drop_index("ix_memberships_user_id", table_name="memberships")
    op.drop_table("memberships")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("disabled")
        batch_op.drop_column("admin")
        batch_op.drop_column("password_hash")
