"""Per-person long-term memory, versioned per session: ``Memory.load("kim").update([...])``.

Keep Me Updated keeps a person's memory as a short list of sentences and rewrites it after every
session (§3). Here every update is a new *version*: the full sentence list plus the pair operations
and the summary that produced it, so the history is auditable and any version can be restored
(:meth:`Memory.revert` writes a new version equal to the old one; nothing is ever overwritten).

:class:`Memory` is the current version of one person over a store
(:class:`~haneul.dialog.stores.BaseMemoryStore`); where the store keeps it is chosen by
:func:`~haneul.dialog.stores.open_store`: an explicit SQLAlchemy URL, else the configured haneul
server, else a local SQLite file. The stores and :class:`MemoryVersion` are re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from haneul.dialog.operators import Operator, UpdateResult
from haneul.dialog.stores import (
    BaseMemoryStore,
    MemoryStore,
    MemoryVersion,
    OperatorSpec,
    check_person,
    default_url,
    open_store,
    operator_request,
)
from haneul.dialog.text import MAX_SENTENCE_CHARS


class Memory:
    """The current memory of one person; ``Memory.load("kim")`` then ``memory.update([...])``.

    A person with no memory yet loads as version 0 with no sentences. Every write carries the version
    this object holds, so a stale object gets :class:`~haneul.errors.Conflict` instead of overwriting.
    """

    def __init__(self, person: str, sentences: list[str], version: int, store: BaseMemoryStore):
        self.person = person
        self.sentences = sentences
        self.version = version
        self.store = store

    @classmethod
    def load(cls, person: str, *, url: str | None = None, store: BaseMemoryStore | None = None) -> Memory:
        """The latest version of ``person``'s memory from ``store``, or from :func:`open_store` (``url``,
        else the configured server, else the local file)."""
        person = check_person(person)
        store = store or open_store(url)
        latest = store.latest(person)
        if latest is None:
            return cls(person, [], 0, store)
        return cls(person, list(latest.sentences), latest.version, store)

    def __len__(self) -> int:
        return len(self.sentences)

    def __iter__(self) -> Iterator[str]:
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
        ``timeout``. The store decides where it runs: here for a database, on the server when the
        memory is kept by a haneul server (which refuses an operator object it cannot name).
        """
        spec = OperatorSpec(operator, model=model, endpoint=endpoint, lm_model=lm_model, timeout=timeout)
        result = self.store.update(self.person, summary_sentences, operator=spec, expected_version=self.version,
                                   session=session, max_chars=max_chars)
        self.sentences, self.version = list(result.new_memory), int(result.version or self.version + 1)
        return result

    def history(self) -> list[MemoryVersion]:
        """Every stored version of this person, oldest first, with the operations that produced it."""
        return self.store.history(self.person)

    def revert(self, version: int) -> MemoryVersion:
        """Make ``version``'s sentences current again, as a new version (the history is kept)."""
        v = self.store.revert(self.person, version, expected_version=self.version)
        self.sentences, self.version = list(v.sentences), v.version
        return v


__all__ = ["Memory", "MemoryStore", "MemoryVersion", "default_url", "open_store", "operator_request"]
