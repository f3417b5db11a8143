"""The submissions table: a session's checkpoint scored on a dataset version's hidden test part.

A leaderboard is not a table of its own: it is the best ``done`` submission of each team for one
dataset version, computed from these rows (:mod:`haneul.platform.leaderboard`). ``counts`` says
whether a submission uses up one of its team's daily submissions: true from the start (a queued
one holds its place) and set false when the server, not the submission, failed.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy import true as sa_true
from sqlalchemy.orm import Mapped, mapped_column

from haneul.platform.db.models import Base, BigId

#: queued -> running -> done | failed (the submission's fault: counts) | error (the server's: does not)
STATUSES = ("queued", "running", "done", "failed", "error")


class Submission(Base):
    __tablename__ = "submissions"
    __table_args__ = (Index("ix_submissions_dataset_team_time", "dataset_id", "team_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"), index=True)
    user: Mapped[str] = mapped_column(String(64))
    session_id: Mapped[int | None] = mapped_column(ForeignKey("sessions.id", ondelete="SET NULL"), nullable=True,
                                                   index=True)
    checkpoint: Mapped[str] = mapped_column(String(255))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    dataset: Mapped[str] = mapped_column(String(64))  # the name, for messages and lists
    version: Mapped[int] = mapped_column(Integer)
    metric: Mapped[str] = mapped_column(String(128))
    direction: Mapped[str] = mapped_column(String(8))  # "max" or "min"
    status: Mapped[str] = mapped_column(String(16))
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    counts: Mapped[bool] = mapped_column(Boolean, default=True, server_default=sa_true())
    inputs: Mapped[int | None] = mapped_column(Integer, nullable=True)  # test inputs predicted
    infer_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    eval_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)


__all__ = ["STATUSES", "Submission"]
