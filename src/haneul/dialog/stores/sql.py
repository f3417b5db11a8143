"""Dialogue memory in any SQLAlchemy database: a local SQLite file, PostgreSQL, or the platform's own.

Two tables, made by the Alembic migrations in ``haneul/dialog/migrations``:
``dialog_memory_versions`` (one row per version: the sentences and the summary, operator and notes
that produced them) and ``dialog_memory_ops`` (one row per labelled pair). The single write
primitive is :meth:`MemoryStore.append_version`: one transaction inserts the version row and its
operation rows together, so a crash mid-update leaves the previous version as the latest, and two
writers racing for the same version number get :class:`~haneul.errors.Conflict`. ``update`` and
``revert`` run here, in the caller's process: the operator is resolved and applied locally.

Opened by URL, the store migrates the database once per process, recording the revision in the
version table ``alembic_version_dialog`` as the haneul server does for its plugins (this adopts a
database whose tables an older haneul made without Alembic). Given an ``Engine`` (the haneul server
passes its own), it uses the tables as they are: whoever made the engine has migrated it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Engine, Float, ForeignKey, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.exc import IntegrityError as SAIntegrityError
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from haneul.dialog.defaults import default_url
from haneul.dialog.operators import Op, Operator, PairOp, UpdateResult
from haneul.dialog.stores._base import (
    BaseMemoryStore,
    MemoryVersion,
    OperatorSpec,
    check_person,
    check_summary,
    moved,
)
from haneul.dialog.text import MAX_SENTENCE_CHARS
from haneul.errors import Conflict, NotFound, StorageError

#: the Alembic version scripts of the dialog tables, a chain of their own
DIALOG_MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
#: the server plugin's name, which also names the tables' Alembic version table (as the server does)
PLUGIN_NAME = "dialog"


class Base(DeclarativeBase):
    pass


class MemoryVersionRow(Base):
    __tablename__ = "dialog_memory_versions"
    __table_args__ = (UniqueConstraint("person", "version", name="uq_dialog_memory_person_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[float] = mapped_column(Float)
    sentences: Mapped[str] = mapped_column(Text)  # JSON list
    summary: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    operator: Mapped[str] = mapped_column(String(64), default="")
    fallback: Mapped[str | None] = mapped_column(Text, nullable=True)
    session: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reverted_from: Mapped[int | None] = mapped_column(Integer, nullable=True)
    notes: Mapped[str] = mapped_column(Text, default="[]")  # JSON list


class MemoryOpRow(Base):
    __tablename__ = "dialog_memory_ops"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("dialog_memory_versions.id"), index=True)
    memory_index: Mapped[int] = mapped_column(Integer)
    summary_index: Mapped[int] = mapped_column(Integer)
    memory: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text)
    op: Mapped[str] = mapped_column(String(16))
    score: Mapped[float | None] = mapped_column(Float, nullable=True)


_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _engine(url: str, attempts: int = 5) -> Engine:
    """One migrated engine per URL and process."""
    from alembic.util import CommandError

    from haneul.platform.db import make_engine, migrate, version_table

    with _ENGINES_LOCK:
        eng = _ENGINES.get(url)
        if eng is not None:
            return eng
        eng = make_engine(url)
        for attempt in range(1, attempts + 1):
            try:
                migrate(eng, DIALOG_MIGRATIONS, version_table=version_table(PLUGIN_NAME))
                break
            except (OperationalError, SAIntegrityError) as exc:
                # processes opening a new file together race to create the tables and record the
                # revision; the loser's next attempt finds both done
                if attempt < attempts:
                    time.sleep(0.05 * attempt)
                    continue
                eng.dispose()
                raise StorageError(
                    f"cannot open the memory database {url} ({exc.orig}); check the path or URL"
                ) from None
            except CommandError as exc:  # e.g. a revision written by a newer haneul
                eng.dispose()
                detail = str(exc).splitlines()[0]
                raise StorageError(f"cannot migrate the memory database {url} ({detail}); upgrade haneul") from None
        _ENGINES[url] = eng
        return eng


class MemoryStore(BaseMemoryStore):
    """Versioned memory in one SQLAlchemy database: ``MemoryStore("sqlite:///memory.db")``, or over an
    engine whose database is already migrated. ``home`` is where a classifier named in an update is
    looked up, and where the default database file lives (both default to ``HANEUL_HOME``)."""

    def __init__(self, url: str | Engine | None = None, *, home: Path | None = None):
        if isinstance(url, Engine):
            self.engine = url
            self.url = url.url.render_as_string(hide_password=True)
        else:
            self.url = url or default_url(home)
            self.engine = _engine(self.url)
        self.home = home

    def __repr__(self) -> str:
        return f"MemoryStore({self.url!r})"

    # -- reads
    def latest(self, person: str) -> MemoryVersion | None:
        person = check_person(person)
        with Session(self.engine) as db:
            row = db.scalars(
                select(MemoryVersionRow).where(MemoryVersionRow.person == person)
                .order_by(MemoryVersionRow.version.desc()).limit(1)
            ).first()
            return self._to_version(db, row, with_ops=False) if row else None

    def get(self, person: str, version: int) -> MemoryVersion:
        person = check_person(person)
        with Session(self.engine) as db:
            row = db.scalars(
                select(MemoryVersionRow).where(MemoryVersionRow.person == person, MemoryVersionRow.version == version)
            ).first()
            if row is None:
                raise NotFound(f"{person!r} has no memory version {version}; "
                               f"list them with `haneul dialog memory history {person}`")
            return self._to_version(db, row, with_ops=True)

    def history(self, person: str) -> list[MemoryVersion]:
        person = check_person(person)
        with Session(self.engine) as db:
            rows = db.scalars(
                select(MemoryVersionRow).where(MemoryVersionRow.person == person).order_by(MemoryVersionRow.version)
            ).all()
            return [self._to_version(db, r, with_ops=True) for r in rows]

    def people(self) -> list[str]:
        with Session(self.engine) as db:
            return sorted(set(db.scalars(select(MemoryVersionRow.person)).all()))

    # -- writes
    def update(
        self,
        person: str,
        summary: Sequence[str],
        *,
        operator: OperatorSpec | Operator | str = "auto",
        expected_version: int | None = None,
        session: str | None = None,
        max_chars: int = MAX_SENTENCE_CHARS,
    ) -> UpdateResult:
        person, summary = check_person(person), check_summary(summary)
        current = self._current(person, expected_version)
        op = OperatorSpec.of(operator).resolve(home=self.home)
        result = op.update(current.sentences if current else [], summary, max_chars=max_chars)
        previous = current.version if current else 0
        v = MemoryVersion(
            person=person, version=previous + 1, sentences=result.new_memory, created_at=time.time(),
            summary=result.summary, operator=result.operator, fallback=result.fallback, session=session,
            notes=result.notes + result.warnings, ops=result.ops,
        )
        self.append_version(v, expected_previous=previous)
        result.version = v.version
        return result

    def revert(self, person: str, version: int, *, expected_version: int | None = None) -> MemoryVersion:
        person = check_person(person)
        current = self._current(person, expected_version)
        sentences = [] if version == 0 else self.get(person, version).sentences
        previous = current.version if current else 0
        v = MemoryVersion(
            person=person, version=previous + 1, sentences=list(sentences), created_at=time.time(),
            operator="revert", reverted_from=version, notes=[f"reverted to version {version}"],
        )
        return self.append_version(v, expected_previous=previous)

    def append_version(self, v: MemoryVersion, *, expected_previous: int) -> MemoryVersion:
        """Insert version ``v`` and its ops in one transaction; ``expected_previous`` guards races."""
        try:
            with Session(self.engine) as db, db.begin():
                current = db.scalars(
                    select(MemoryVersionRow.version).where(MemoryVersionRow.person == v.person)
                    .order_by(MemoryVersionRow.version.desc()).limit(1)
                ).first() or 0
                if current != expected_previous:
                    raise moved(v.person, expected_previous, current)
                row = MemoryVersionRow(
                    person=v.person, version=v.version, created_at=v.created_at,
                    sentences=json.dumps(v.sentences, ensure_ascii=False),
                    summary=json.dumps(v.summary, ensure_ascii=False), operator=v.operator, fallback=v.fallback,
                    session=v.session, reverted_from=v.reverted_from, notes=json.dumps(v.notes, ensure_ascii=False),
                )
                db.add(row)
                db.flush()
                self._write_ops(db, row.id, v.ops)
        except SAIntegrityError:
            raise Conflict(
                f"memory of {v.person!r} version {v.version} was written by someone else; reload and update again"
            ) from None
        return v

    def _current(self, person: str, expected_version: int | None) -> MemoryVersion | None:
        current = self.latest(person)
        version = current.version if current else 0
        if expected_version is not None and expected_version != version:
            raise moved(person, expected_version, version)
        return current

    def _write_ops(self, db: Session, version_id: int, ops: Sequence[PairOp]) -> None:
        db.add_all(
            MemoryOpRow(version_id=version_id, memory_index=p.memory_index, summary_index=p.summary_index,
                        memory=p.memory, summary=p.summary, op=p.op.value, score=p.score)
            for p in ops
        )

    @staticmethod
    def _to_version(db: Session, row: MemoryVersionRow, with_ops: bool) -> MemoryVersion:
        ops: list[PairOp] = []
        if with_ops:
            for o in db.scalars(select(MemoryOpRow).where(MemoryOpRow.version_id == row.id).order_by(MemoryOpRow.id)):
                ops.append(PairOp(o.memory_index, o.summary_index, o.memory, o.summary, Op(o.op), o.score))
        return MemoryVersion(
            person=row.person, version=row.version, sentences=json.loads(row.sentences), created_at=row.created_at,
            summary=json.loads(row.summary or "[]"), operator=row.operator, fallback=row.fallback,
            session=row.session, reverted_from=row.reverted_from, notes=json.loads(row.notes or "[]"), ops=ops,
        )
