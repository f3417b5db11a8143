"""Optuna's journal storage kept in the platform's own database.

Optuna's :class:`~optuna.storages.JournalStorage` keeps a study as an append-only log of operations
and replays it into memory; this backend keeps that log in the ``tune_journal`` table, so the search
state lives in the same database as the sessions (SQLite or PostgreSQL, through SQLAlchemy) and is
created by the optimiser's own migrations, with no second database or schema to manage. Log numbers
are the table's ids (starting at 1 for log 0), assigned under one lock by the one server process
that writes; a snapshot of the replayed state is saved now and then so that a restart does not replay
every log of a long history.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from typing import Any

from optuna.storages.journal import BaseJournalBackend
from optuna.storages.journal._base import BaseJournalSnapshot
from sqlalchemy import Engine, delete, func, insert, select

from haneul.tune.db import journal, snapshots

__all__ = ["SQLJournalBackend", "open_storage"]


class SQLJournalBackend(BaseJournalBackend, BaseJournalSnapshot):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()

    def read_logs(self, log_number_from: int) -> Iterable[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(journal.c.log).where(journal.c.id > log_number_from)
                                .order_by(journal.c.id)).scalars().all()
        return [json.loads(raw) for raw in rows]

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        if not logs:
            return
        with self._lock, self.engine.begin() as conn:
            last = conn.execute(select(func.max(journal.c.id))).scalar() or 0
            conn.execute(insert(journal), [{"id": last + 1 + i, "log": json.dumps(log, separators=(",", ":")).encode()}
                                           for i, log in enumerate(logs)])

    def save_snapshot(self, snapshot: bytes) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(snapshots))
            conn.execute(insert(snapshots).values(id=1, data=snapshot, created_at=time.time()))

    def load_snapshot(self) -> bytes | None:
        with self.engine.connect() as conn:
            return conn.execute(select(snapshots.c.data).where(snapshots.c.id == 1)).scalar_one_or_none()


def open_storage(engine: Engine) -> Any:
    """An Optuna storage over the platform database (the tables must be migrated)."""
    import warnings

    from optuna.storages import JournalStorage

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # JournalStorage is stable in Optuna 4+; older ones warn
        return JournalStorage(SQLJournalBackend(engine))
