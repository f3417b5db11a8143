"""Per-person long-term memory, versioned per session, in any SQLAlchemy database.

Keep Me Updated keeps a person's memory as a short list of sentences and rewrites it after every
session (§3). Here every update is a new *version*: the full sentence list plus the pair operations
and the summary that produced it, so the history is auditable and any version can be restored
(:meth:`Memory.revert` writes a new version equal to the old one; nothing is ever overwritten).

Where memory lives (:func:`open_store`): an explicit SQLAlchemy URL always wins (``sqlite:///...``,
``postgresql+psycopg://...``); otherwise, when a haneul server is configured (``HANEUL_SERVER``, also
set inside platform sessions), the server's ``/api/v1/dialog`` routes keep it in the platform database
(:class:`~haneul.dialog.remote.HttpMemoryStore`); otherwise a local SQLite file
``HANEUL_HOME/dialog/memory.db``. One update is one transaction that inserts the version row and its
operation rows together: a crash mid-update leaves the previous version as the latest, and two writers
racing for the same version number get :class:`~haneul.errors.Conflict`.
"""

from __future__ import annotations

import json
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    select,
)
from sqlalchemy.exc import IntegrityError as SAIntegrityError
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from haneul.dialog.operators import Op, Operator, PairOp, UpdateResult, get_operator
from haneul.dialog.text import MAX_SENTENCE_CHARS, DialogWarning
from haneul.errors import Conflict, InvalidInput, NotFound, StorageError


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


@dataclass
class MemoryVersion:
    """One stored version: the sentences and how they came to be."""

    person: str
    version: int
    sentences: list[str]
    created_at: float
    summary: list[str] = field(default_factory=list)
    operator: str = ""
    fallback: str | None = None
    session: str | None = None
    reverted_from: int | None = None
    notes: list[str] = field(default_factory=list)
    ops: list[PairOp] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "person": self.person, "version": self.version, "sentences": self.sentences,
            "created_at": self.created_at, "summary": self.summary, "operator": self.operator,
            "fallback": self.fallback, "session": self.session, "reverted_from": self.reverted_from,
            "notes": self.notes, "ops": [p.to_dict() for p in self.ops],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MemoryVersion:
        return cls(
            person=d["person"], version=int(d["version"]), sentences=list(d["sentences"]),
            created_at=float(d.get("created_at") or 0.0), summary=list(d.get("summary") or []),
            operator=d.get("operator") or "", fallback=d.get("fallback"), session=d.get("session"),
            reverted_from=d.get("reverted_from"), notes=list(d.get("notes") or []),
            ops=[PairOp.from_dict(p) for p in d.get("ops") or []],
        )


def default_url() -> str:
    """The local SQLite file used when no server is configured."""
    from haneul.settings import get_settings

    path = get_settings().home / "dialog" / "memory.db"
    return f"sqlite:///{path}"


def open_store(url: str | None = None) -> Any:
    """The store ``Memory.load`` uses: ``url`` when given, else the configured haneul server's routes
    (the platform database), else the local SQLite file :func:`default_url`."""
    if url:
        return MemoryStore(url)
    from haneul.settings import get_settings

    if get_settings().server is not None:
        from haneul.dialog.remote import HttpMemoryStore

        return HttpMemoryStore()
    return MemoryStore(default_url())


_ENGINES: dict[str, Any] = {}
_ENGINES_LOCK = threading.Lock()


def _engine(url: str):
    with _ENGINES_LOCK:
        eng = _ENGINES.get(url)
        if eng is not None:
            return eng
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        eng = create_engine(url, future=True)
        if url.startswith("sqlite"):
            @event.listens_for(eng, "connect")
            def _pragmas(dbapi_conn, _record):  # WAL: readers never block the writer
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA busy_timeout=30000")  # the platform database is shared with metric writers
                cur.execute("PRAGMA foreign_keys=ON")
                cur.close()
        try:
            Base.metadata.create_all(eng)
        except OperationalError as exc:
            raise StorageError(f"cannot open the memory database {url} ({exc.orig}); check the path or URL") from None
        _ENGINES[url] = eng
        return eng


def _check_person(person: str) -> str:
    if not isinstance(person, str) or not person.strip() or len(person) > 200:
        raise InvalidInput(f"person id {person!r} must be non-empty text of at most 200 characters")
    return person.strip()


class MemoryStore:
    """Versioned sentence lists per person in one SQLAlchemy database (the single write primitive is
    :meth:`append_version`)."""

    def __init__(self, url: str | None = None):
        self.url = url or default_url()
        self.engine = _engine(self.url)

    def latest(self, person: str) -> MemoryVersion | None:
        with Session(self.engine) as db:
            row = db.scalars(
                select(MemoryVersionRow).where(MemoryVersionRow.person == person).order_by(MemoryVersionRow.version.desc()).limit(1)
            ).first()
            return self._to_version(db, row, with_ops=False) if row else None

    def get(self, person: str, version: int) -> MemoryVersion:
        with Session(self.engine) as db:
            row = db.scalars(
                select(MemoryVersionRow).where(MemoryVersionRow.person == person, MemoryVersionRow.version == version)
            ).first()
            if row is None:
                raise NotFound(f"{person!r} has no memory version {version}; list them with `haneul dialog memory history {person}`")
            return self._to_version(db, row, with_ops=True)

    def history(self, person: str) -> list[MemoryVersion]:
        with Session(self.engine) as db:
            rows = db.scalars(
                select(MemoryVersionRow).where(MemoryVersionRow.person == person).order_by(MemoryVersionRow.version)
            ).all()
            return [self._to_version(db, r, with_ops=True) for r in rows]

    def people(self) -> list[str]:
        with Session(self.engine) as db:
            return sorted(set(db.scalars(select(MemoryVersionRow.person)).all()))

    def append_version(self, v: MemoryVersion, *, expected_previous: int) -> MemoryVersion:
        """Insert version ``v`` and its ops in one transaction; ``expected_previous`` guards races."""
        try:
            with Session(self.engine) as db, db.begin():
                current = db.scalars(
                    select(MemoryVersionRow.version).where(MemoryVersionRow.person == v.person)
                    .order_by(MemoryVersionRow.version.desc()).limit(1)
                ).first() or 0
                if current != expected_previous:
                    raise Conflict(
                        f"memory of {v.person!r} moved from version {expected_previous} to {current} meanwhile; "
                        "reload it with Memory.load and update again"
                    )
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


class Memory:
    """The current memory of one person; ``Memory.load("kim")`` then ``memory.update([...])``.

    A person with no memory yet loads as version 0 with no sentences.
    """

    def __init__(self, person: str, sentences: list[str], version: int, store: MemoryStore):
        self.person = person
        self.sentences = sentences
        self.version = version
        self.store = store

    @classmethod
    def load(cls, person: str, *, url: str | None = None, store: Any = None) -> Memory:
        """The latest version of ``person``'s memory from ``store``, or from :func:`open_store` (``url``,
        else the configured server, else the local file)."""
        person = _check_person(person)
        store = store or open_store(url)
        latest = store.latest(person)
        if latest is None:
            return cls(person, [], 0, store)
        return cls(person, latest.sentences, latest.version, store)

    def __len__(self) -> int:
        return len(self.sentences)

    def __iter__(self):
        return iter(self.sentences)

    def __repr__(self) -> str:
        return f"Memory({self.person!r}, version={self.version}, sentences={self.sentences!r})"

    def update(
        self,
        summary_sentences: Sequence[str],
        *,
        operator: Operator | str = "auto",
        session: str | None = None,
        max_chars: int = MAX_SENTENCE_CHARS,
        model: str | Path = "default",
        endpoint: str | None = None,
        lm_model: str | None = None,
        timeout: float = 30.0,
    ) -> UpdateResult:
        """Apply one session's summary sentences and store the result as the next version.

        ``operator`` is an :class:`Operator` or a name resolved by
        :func:`~haneul.dialog.operators.get_operator` with ``model``, ``endpoint``, ``lm_model`` and
        ``timeout``. When the memory lives on a haneul server, the summary sentences and the operator's
        name (and options) are sent to the server's update route and *the server* runs the operator
        (a classifier ``model`` name refers to the server's HANEUL_HOME); an operator object that
        cannot be named that way (a ``ClassifierOperator`` holding its own weights) is refused.
        """
        if isinstance(summary_sentences, str):
            raise InvalidInput("summary_sentences must be a list of sentences, not one string; wrap it in a list")
        if getattr(self.store, "remote", False):
            result = self.store.update(
                self.person, list(summary_sentences), expected_version=self.version, session=session,
                max_chars=max_chars, **operator_request(operator, model=model, endpoint=endpoint,
                                                        lm_model=lm_model, timeout=timeout),
            )
            for note in result.warnings:  # the server saw them; the caller should too
                warnings.warn(note, DialogWarning, stacklevel=2)
            self.sentences, self.version = list(result.new_memory), int(result.version or self.version + 1)
            return result
        op = (get_operator(operator, model=model, endpoint=endpoint, lm_model=lm_model, timeout=timeout)
              if isinstance(operator, str) else operator)
        result = op.update(self.sentences, summary_sentences, max_chars=max_chars)
        v = MemoryVersion(
            person=self.person, version=self.version + 1, sentences=result.new_memory, created_at=time.time(),
            summary=result.summary, operator=result.operator, fallback=result.fallback, session=session,
            notes=result.notes + result.warnings, ops=result.ops,
        )
        self.store.append_version(v, expected_previous=self.version)
        self.sentences, self.version = list(result.new_memory), v.version
        result.version = v.version
        return result

    def history(self) -> list[MemoryVersion]:
        """Every stored version of this person, oldest first, with the operations that produced it."""
        return self.store.history(self.person)

    def revert(self, version: int) -> MemoryVersion:
        """Make ``version``'s sentences current again, as a new version (the history is kept)."""
        if getattr(self.store, "remote", False):
            v = self.store.revert(self.person, version, expected_version=self.version)
            self.sentences, self.version = list(v.sentences), v.version
            return v
        if version == 0:
            target = MemoryVersion(self.person, 0, [], 0.0)
        else:
            target = self.store.get(self.person, version)
        v = MemoryVersion(
            person=self.person, version=self.version + 1, sentences=list(target.sentences), created_at=time.time(),
            operator="revert", reverted_from=version, notes=[f"reverted to version {version}"],
        )
        self.store.append_version(v, expected_previous=self.version)
        self.sentences, self.version = list(v.sentences), v.version
        return v


def operator_request(
    operator: Operator | str, *, model: str | Path = "default", endpoint: str | None = None,
    lm_model: str | None = None, timeout: float = 30.0,
) -> dict[str, Any]:
    """How an update names its operator to the server's update route."""
    from haneul.dialog.operators import LexicalOperator, LMOperator

    body: dict[str, Any] = {"model": str(model), "endpoint": endpoint, "lm_model": lm_model, "timeout": timeout}
    if isinstance(operator, str):
        return {"operator": operator, **body}
    if isinstance(operator, LMOperator) and hasattr(operator.client, "base_url"):
        client = operator.client
        return {**body, "operator": "lm", "endpoint": client.base_url, "lm_model": client.model, "timeout": client.timeout}
    default_lexical = LexicalOperator()
    if operator.name in ("append-only", "latest-only") or (
        isinstance(operator, LexicalOperator) and vars(operator) == vars(default_lexical)
    ):
        return {"operator": operator.name, **body}
    raise InvalidInput(
        f"a {type(operator).__name__} object cannot run on the haneul server; name the operator instead "
        "(operator='classifier', model='NAME'), or pass url= to update a database directly"
    )
