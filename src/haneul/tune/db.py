"""The optimiser's tables: studies, their trials (each one a platform session) and Optuna's journal.

The tables are created by the migrations beside this module (tracked in ``alembic_version_tune``);
the search state itself (parameters, distributions, intermediate values, trial states) is Optuna's,
kept as an append-only journal in ``tune_journal`` (:mod:`haneul.tune.journal`), so a study survives
a restart of the server on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import JSON, BigInteger, Column, Float, Integer, LargeBinary, MetaData, String, Table, Text

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

metadata = MetaData()

#: running -> stopped (by request; resumable) | done (budget spent) | failed (too many failures, wall time)
STUDY_STATUSES = ("running", "stopped", "done", "failed")

studies = Table(
    "tune_studies", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("team_id", Integer, nullable=True, index=True),
    Column("owner", String(64), nullable=False),
    Column("spec", JSON, nullable=False),  # StudySpec.to_dict(), edited in place
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=True),
    Column("optuna_id", Integer, nullable=False),  # the study's id in Optuna's storage
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("ended_at", Float, nullable=True),
    Column("elapsed", Float, nullable=False, default=0.0),  # seconds spent running before the last resume
    Column("resumed_at", Float, nullable=True),
)

#: queued -> running -> complete | pruned | failed | stopped | replaced (PBT exploit)
TRIAL_STATES = ("running", "complete", "pruned", "failed", "stopped", "replaced")

trials = Table(
    "tune_trials", metadata,
    Column("id", Integer, primary_key=True),
    Column("study_id", Integer, nullable=False, index=True),
    Column("number", Integer, nullable=False),  # Optuna's trial number
    Column("optuna_trial_id", Integer, nullable=False),
    Column("session_id", BigInteger, nullable=True, index=True),
    Column("state", String(16), nullable=False),
    Column("params", JSON, nullable=False),
    Column("value", Float, nullable=True),
    Column("last_step", BigInteger, nullable=True),
    Column("steps", Integer, nullable=False, default=0),  # intermediate values received
    Column("parent_trial", Integer, nullable=True),  # PBT: the trial whose checkpoint this one starts from
    Column("reason", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("ended_at", Float, nullable=True),
    Column("compute_s", Float, nullable=True),  # seconds its session ran
)

journal = Table(
    "tune_journal", metadata,
    Column("id", Integer, primary_key=True),  # the log number + 1
    Column("log", LargeBinary, nullable=False),  # one JSON-encoded Optuna journal operation
)

snapshots = Table(
    "tune_journal_snapshot", metadata,
    Column("id", Integer, primary_key=True),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", Float, nullable=False),
)
