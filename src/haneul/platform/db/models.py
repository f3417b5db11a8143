"""Metadata tables: users, teams, memberships, API tokens, sessions (with their params, tags and notes), metric keys and points,
checkpoints, saved views of the sessions list.

Written against SQLAlchemy's portable types so the same schema runs on SQLite (the embedded
default) and PostgreSQL. Metrics are the hot path: each shipped batch of a metric is one
``metric_chunks`` row of packed arrays, keyed by ``key_id`` (one row in ``metric_keys`` per session and
metric name, which also caches the latest value so list pages never read points).

Params and tags are key/value rows indexed by (key, value) rather than JSON on the session, so a
search such as ``params.lr < 1e-3`` over 10,000 sessions is an index range scan, not a table scan.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import false as sa_false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only gives an auto-incrementing rowid to a column declared exactly INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[float] = mapped_column(Float)


class User(Base):
    """A person or a service account. ``admin`` users manage users and teams and see every team."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), nullable=True)  # the default team
    created_at: Mapped[float] = mapped_column(Float)
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)  # argon2id; None: tokens only
    admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())


class Membership(Base):
    """A user's role in a team: ``owner`` (manages members), ``member`` (reads and writes) or ``viewer``."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "team_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))


class ApiToken(Base):
    """A bearer credential of a user: an API token (``kind="api"``) or a browser login (``"web"``).

    The secret is shown once and stored only as an argon2id hash; ``key`` is the public part of the
    token that finds the row without a scan. A web login also carries its CSRF token.
    """

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(128), default="")
    kind: Mapped[str] = mapped_column(String(8), default="api")
    csrf: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_used_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class Session(Base):
    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    owner: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    command: Mapped[list[str]] = mapped_column(JSON)
    env: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    cwd: Mapped[str | None] = mapped_column(Text, nullable=True)
    cpus: Mapped[float] = mapped_column(Float, default=1.0)
    gpus: Mapped[int] = mapped_column(Integer, default=0)
    memory: Mapped[int] = mapped_column(BigInteger, default=0)  # bytes, 0 = unspecified
    priority: Mapped[int] = mapped_column(Integer, default=0)
    executor: Mapped[str] = mapped_column(String(32), default="local")
    token_hash: Mapped[str] = mapped_column(String(64), index=True)
    workdir: Mapped[str | None] = mapped_column(Text, nullable=True)
    log_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pid_start: Mapped[str | None] = mapped_column(String(32), nullable=True)  # guards against pid reuse
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Float, index=True)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    project: Mapped[str] = mapped_column(String(128), index=True, default="default", server_default="default")
    notes: Mapped[str] = mapped_column(Text, default="", server_default="")
    archived: Mapped[bool] = mapped_column(Boolean, index=True, default=False, server_default=sa_false())
    git: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)  # commit, branch, dirty
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True, nullable=True)
    # lineage of a fork, preemption and the processes started under this id (pause/resume, 0004)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("sessions.id", ondelete="SET NULL", name="fk_sessions_parent_id"), index=True, nullable=True)
    parent_checkpoint: Mapped[str | None] = mapped_column(String(128), nullable=True)
    preemptible: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    runs: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class SessionParam(Base):
    """One hyper-parameter of a session. ``value`` keeps it as given (a JSON number, string or bool);
    ``num`` holds numbers and ``text`` everything else, each indexed with the key for searches."""

    __tablename__ = "session_params"
    __table_args__ = (
        UniqueConstraint("session_id", "key"),
        Index("ix_session_params_key_num", "key", "num"),
        Index("ix_session_params_key_text", "key", "text"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(256))
    value: Mapped[object] = mapped_column(JSON, nullable=True)
    num: Mapped[float | None] = mapped_column(Float, nullable=True)
    text: Mapped[str | None] = mapped_column(String(1024), nullable=True)


class SessionTag(Base):
    __tablename__ = "session_tags"
    __table_args__ = (UniqueConstraint("session_id", "key"), Index("ix_session_tags_key_value", "key", "value"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(256))
    value: Mapped[str] = mapped_column(String(1024))


class SavedView(Base):
    """A named sessions list: filter expression, chosen columns and sort, shared within its team."""

    __tablename__ = "saved_views"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True, nullable=True)
    filter: Mapped[str] = mapped_column(Text, default="")
    columns: Mapped[list[str]] = mapped_column(JSON, default=list)
    sort: Mapped[str] = mapped_column(String(300), default="id")
    desc: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[float] = mapped_column(Float)


class MetricKey(Base):
    __tablename__ = "metric_keys"
    # (key, last_value) serves searches such as metrics.val_acc > 0.8 over every session
    __table_args__ = (UniqueConstraint("session_id", "key"), Index("ix_metric_keys_key_value", "key", "last_value"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(256))
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    updated_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class MetricChunk(Base):
    """One shipped batch of one metric: steps, values and times as packed little-endian arrays.

    Storing a batch as a chunk instead of a row per point makes ingest cost per batch, not per
    point, and reading a 100,000-point history a handful of row reads; ``step_min``/``step_max``
    let range queries skip chunks. Chunk ids grow with arrival, which live streams use as a cursor.
    """

    __tablename__ = "metric_chunks"
    __table_args__ = (Index("ix_metric_chunks_key_id", "key_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("metric_keys.id", ondelete="CASCADE"))
    n: Mapped[int] = mapped_column(Integer)
    step_min: Mapped[int] = mapped_column(BigInteger)
    step_max: Mapped[int] = mapped_column(BigInteger)
    steps: Mapped[bytes] = mapped_column(LargeBinary)  # int64
    values: Mapped[bytes] = mapped_column(LargeBinary)  # float64
    times: Mapped[bytes] = mapped_column(LargeBinary)  # float64, unix seconds


class Checkpoint(Base):
    __tablename__ = "checkpoints"
    __table_args__ = (UniqueConstraint("session_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)


__all__ = ["ApiToken", "Base", "Checkpoint", "Membership", "MetricChunk", "MetricKey", "SavedView", "Session", "SessionParam", "SessionTag",
           "Team", "User"]
