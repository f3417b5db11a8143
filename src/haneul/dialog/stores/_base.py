"""The memory-store contract: four reads and two writes, the same for every place memory is kept.

Keep Me Updated rewrites a person's memory after every session (§3); a store keeps every rewrite
as a numbered *version*. The reads are :meth:`~BaseMemoryStore.latest`, ``get``, ``history`` and
``people``. The two writes are what a caller asks for, not how a row is written:
:meth:`~BaseMemoryStore.update` runs a memory operator on the latest version and the session's
summary sentences and stores the result as the next version, and :meth:`~BaseMemoryStore.revert`
stores an old version's sentences as the next version. The SQL store runs the operator itself; the
HTTP store asks a haneul server to run it. Both writes carry the version the caller last saw, and
a store that has moved on since answers :class:`~haneul.errors.Conflict`.

The suite in :mod:`haneul.dialog.testing` checks that a store keeps this contract.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from haneul.dialog.operators import Operator, PairOp, UpdateResult, get_operator
from haneul.dialog.text import MAX_SENTENCE_CHARS
from haneul.errors import Conflict, InvalidInput

MAX_PERSON_CHARS = 200


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


@dataclass(frozen=True)
class OperatorSpec:
    """Which operator an update runs: an :class:`~haneul.dialog.operators.Operator`, or a name that
    :func:`~haneul.dialog.operators.get_operator` resolves with these options."""

    operator: Operator | str = "auto"
    model: str | Path = "default"  # a classifier's name or folder
    endpoint: str | None = None  # the lm operator's OpenAI-compatible base URL
    lm_model: str | None = None
    timeout: float = 30.0

    @classmethod
    def of(cls, operator: OperatorSpec | Operator | str) -> OperatorSpec:
        return operator if isinstance(operator, OperatorSpec) else cls(operator)

    def resolve(self, *, home: Path | None = None) -> Operator:
        """The operator object; a classifier named by ``model`` is looked up under ``home``."""
        if isinstance(self.operator, str):
            return get_operator(self.operator, model=self.model, endpoint=self.endpoint, lm_model=self.lm_model,
                                timeout=self.timeout, home=home)
        return self.operator


def check_person(person: str) -> str:
    """The person id without surrounding blanks; InvalidInput when it is empty or too long."""
    if not isinstance(person, str) or not person.strip() or len(person) > MAX_PERSON_CHARS:
        raise InvalidInput(
            f"person id {person!r} must be non-empty text of at most {MAX_PERSON_CHARS} characters"
        )
    return person.strip()


def check_summary(summary: Sequence[str]) -> list[str]:
    if isinstance(summary, str):
        raise InvalidInput("summary_sentences must be a list of sentences, not one string; wrap it in a list")
    return list(summary)


def moved(person: str, expected: int, current: int) -> Conflict:
    return Conflict(
        f"memory of {person!r} moved from version {expected} to {current} meanwhile; "
        "reload it with Memory.load and update again"
    )


class BaseMemoryStore(abc.ABC):
    """Versioned sentence lists per person. A person with no memory has no versions (version 0)."""

    @abc.abstractmethod
    def latest(self, person: str) -> MemoryVersion | None:
        """The newest version of ``person`` (its sentences; ``ops`` may be left out), None if none yet."""

    @abc.abstractmethod
    def get(self, person: str, version: int) -> MemoryVersion:
        """One version with its operations; NotFound when ``person`` has no such version."""

    @abc.abstractmethod
    def history(self, person: str) -> list[MemoryVersion]:
        """Every version of ``person``, oldest first, with its operations; [] for an unknown person."""

    @abc.abstractmethod
    def people(self) -> list[str]:
        """Every person with at least one version, sorted."""

    @abc.abstractmethod
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
        """Run ``operator`` on the latest sentences and ``summary`` and store the result as the next
        version (``result.version``). ``expected_version`` is the version the caller last saw (None:
        whatever is latest); another one is a Conflict and nothing is written. Input problems are
        returned in ``result.warnings`` and raised as DialogWarning."""

    @abc.abstractmethod
    def revert(self, person: str, version: int, *, expected_version: int | None = None) -> MemoryVersion:
        """Store ``version``'s sentences (0: the empty memory) as the next version and return it;
        NotFound for a version that does not exist, Conflict as in :meth:`update`."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the store is not used afterwards."""
