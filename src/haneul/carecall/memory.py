"""Memory-grounded calls: what each person said is remembered between calls and recalled in the next.

The CareCall successor (Keep Me Updated, Bae et al., 2022) opens a check-in call with what the person
said last time ("지난번에 기침하신다고 하셨는데 좀 나아지셨어요?") and keeps that memory up to date as
answers change. Here each person has one :mod:`haneul.dialog` memory (person key
``carecall-person-<id>``, in the dialogue memory tables of the database the server gives the plugin).
After every answered call the facts of its summary (one per answered question: ``기침 있음``,
``체온 37.8도``, ``잠을 설치심``) are applied as a dialogue-memory update with :class:`SlotOperator`,
which knows the scenario's questions: a new answer to the same question REPLACEs the old one, a
repeated one is a PASS, anything else is APPENDed. The next call's ``memory_prompt`` is built from the
remembered facts that have something worth asking about (:func:`~haneul.carecall.agent.memory_context`).

Staff read and correct a person's memory: a correction stores the sentences they typed as a new
version noting who made it, and a revert stores an old version's sentences as a new one, so every
version stays in the history with who and when.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Engine, Table, and_, func, insert, select
from sqlalchemy.exc import IntegrityError

from haneul.carecall.agent import REMEMBERED, CallRecord, answer_phrase, memory_context
from haneul.carecall.db import new_id
from haneul.carecall.scenario import Scenario, resolve, shipped
from haneul.carecall.simulate import FEVER
from haneul.dialog.operators import Op, Operator, PairOp, UpdateResult
from haneul.dialog.stores import MemoryStore, MemoryVersion
from haneul.dialog.stores.sql import MemoryOpRow, MemoryVersionRow
from haneul.errors import InvalidInput

__all__ = ["CallMemory", "SlotOperator", "call_facts", "memory_key", "recall_clauses"]

MAX_SENTENCES = 50
#: answers that are not facts about the person, so they never overwrite one
_NOT_FACTS = ("모름", "응답 없음")


def memory_key(person_id: int) -> str:
    """The dialogue-memory person id of a CareCall person."""
    return f"carecall-person-{person_id}"


@dataclass(frozen=True)
class _Catalogue:
    """What the scenarios' summary phrases mean: phrase -> (slot, intent), label -> slot, and the labels
    of temperature questions."""

    phrases: dict[str, tuple[str, str]]
    labels: list[tuple[str, str]]  # (label, slot), longest label first
    temperatures: frozenset[str]


@functools.cache
def _shipped() -> tuple[tuple[str, ...], _Catalogue]:
    scenarios = [resolve(path) for path in shipped().values()]
    return tuple(s.id for s in scenarios), _build(scenarios)


def _build(scenarios: Iterable[Scenario]) -> _Catalogue:
    phrases: dict[str, tuple[str, str]] = {}
    labels: dict[str, str] = {}
    temperatures = set()
    for scenario in scenarios:
        for node in scenario.nodes.values():
            if not node.asks or node.type in ("identity", "recall"):
                continue
            slot = node.slot or node.id
            label = node.label or slot
            labels[label] = slot
            if node.expect == "temperature":
                temperatures.add(label)
            for intent in ("yes", "no"):
                phrases.setdefault(node.summary.get(intent) or f"{label} {'있음' if intent == 'yes' else '없음'}",
                                   (slot, intent))
    ordered = sorted(labels.items(), key=lambda kv: -len(kv[0]))
    return _Catalogue(phrases, ordered, frozenset(temperatures))


def _catalogue(scenario: Scenario | None = None) -> _Catalogue:
    """The shipped scenarios' phrases, plus ``scenario``'s when it is one of the user's own."""
    ids, catalogue = _shipped()
    if scenario is None or scenario.id in ids:
        return catalogue
    return _build([resolve(path) for path in shipped().values()] + [scenario])


def topic(sentence: str, cat: _Catalogue | None = None) -> str | None:
    """The question (slot) a remembered sentence answers, None for one typed by staff about anything else."""
    cat = cat or _catalogue()
    if sentence in cat.phrases:
        return cat.phrases[sentence][0]
    for label, slot in cat.labels:
        if sentence.startswith((label + " ", label + ":")):
            return slot
    return None


def call_facts(record: CallRecord, scenario: Scenario) -> list[str]:
    """The facts of one call to remember: the summary phrase of each answered question (not the
    identity check, the recall question, or an answer of 모름)."""
    facts = []
    for answer in record.answers.values():
        node = scenario.nodes.get(answer.node)
        if node is None or node.type in ("identity", "recall") or answer.status != "answered":
            continue
        phrase = answer_phrase(node, answer)
        if phrase and not phrase.endswith(_NOT_FACTS):
            facts.append(phrase)
    return facts


def recall_clauses(sentences: Iterable[str], scenario: Scenario | None = None) -> list[str]:
    """The remembered facts worth asking about next time, as the clauses ``memory_context`` says
    (``잠을 설치심`` -> ``잠을 잘 못 주무신다고``, ``체온 38.1도`` -> ``열이 있으시다고``)."""
    cat = _catalogue(scenario)
    out: list[str] = []
    for sentence in sentences:
        clause = None
        if sentence in cat.phrases:
            clause = REMEMBERED.get(cat.phrases[sentence])
        else:
            for label in cat.temperatures:
                m = re.fullmatch(re.escape(label) + r" (\d+(?:\.\d+)?)도", sentence)
                if m and float(m.group(1)) >= FEVER:
                    clause = REMEMBERED[("fever", "yes")]
        if clause and clause not in out:
            out.append(clause)
    return out


class SlotOperator(Operator):
    """A memory operator for call facts: a fact about the same question REPLACEs the old one, the same
    fact is a PASS, anything else (a staff note) an APPEND. Only the non-APPEND pairs are returned
    (a pair left out is an APPEND), which keeps the stored operations small."""

    name = "carecall-slots"

    def __init__(self, scenario: Scenario | None = None) -> None:
        self.catalogue = _catalogue(scenario)

    def classify(self, memory: Sequence[str], summary: Sequence[str]) -> list[PairOp]:
        topics = [topic(s, self.catalogue) for s in summary]
        ops = []
        for i, m in enumerate(memory):
            mt = topic(m, self.catalogue)
            for j, s in enumerate(summary):
                if m == s:
                    ops.append(PairOp(i, j, m, s, Op.PASS))
                elif mt is not None and mt == topics[j]:
                    ops.append(PairOp(i, j, m, s, Op.REPLACE))
        return ops


class CallMemory:
    """The people's memories in ``engine``'s dialogue-memory tables (migrated by whoever made the engine)."""

    def __init__(self, engine: Engine) -> None:
        self.store = MemoryStore(engine)

    def remember(self, person_id: int, record: CallRecord, scenario: Scenario, *,
                 session: str | None = None) -> UpdateResult | None:
        """Apply an answered call's facts to the person's memory; None when the call told nothing."""
        facts = call_facts(record, scenario)
        if not facts:
            return None
        return self.store.update(memory_key(person_id), facts, operator=SlotOperator(scenario), session=session)

    def remember_many(self, calls: Sequence[tuple[int, CallRecord, Scenario, str | None]]) -> int:
        """:meth:`remember` for a batch of ``(person_id, record, scenario, session)`` in one transaction;
        returns how many versions were stored.

        The versions are the ones :meth:`remember` would store one by one (the same operator, the same
        rows as the dialogue store's ``append_version``); written together because a commit per call
        was most of a simulated campaign's time. If anyone else wrote one of these memories meanwhile
        the batch is rolled back and applied one call at a time through the store.
        """
        state = self.latest_many([c[0] for c in calls])
        rows: list[tuple[dict[str, Any], list[PairOp]]] = []
        now = time.time()
        for person_id, record, scenario, session in calls:
            facts = call_facts(record, scenario)
            if not facts:
                continue
            version, sentences = state.get(person_id, (0, []))
            result = _operator(scenario).update(sentences, facts)
            state[person_id] = (version + 1, list(result.new_memory))
            rows.append(({"person": memory_key(person_id), "version": version + 1, "created_at": now,
                          "sentences": _json(result.new_memory), "summary": _json(result.summary),
                          "operator": result.operator, "fallback": None, "session": session,
                          "reverted_from": None, "notes": _json(result.notes + result.warnings)}, result.ops))
        if not rows:
            return 0
        versions, ops = cast(Table, MemoryVersionRow.__table__), cast(Table, MemoryOpRow.__table__)
        try:
            with self.store.engine.begin() as conn:
                for values, pairs in rows:
                    vid = new_id(conn.execute(insert(versions).values(**values)))
                    if pairs:
                        conn.execute(insert(ops), [
                            {"version_id": vid, "memory_index": p.memory_index, "summary_index": p.summary_index,
                             "memory": p.memory, "summary": p.summary, "op": p.op.value, "score": p.score}
                            for p in pairs])
        except IntegrityError:
            for person_id, record, scenario, session in calls:
                self.remember(person_id, record, scenario, session=session)
        return len(rows)

    def latest_many(self, person_ids: Iterable[int]) -> dict[int, tuple[int, list[str]]]:
        """Each person's latest ``(version, sentences)`` in one query (people with no memory left out)."""
        keys = {memory_key(p): p for p in person_ids}
        if not keys:
            return {}
        table = MemoryVersionRow.__table__
        newest = (select(table.c.person, func.max(table.c.version).label("version"))
                  .where(table.c.person.in_(list(keys))).group_by(table.c.person).subquery())
        query = select(table.c.person, table.c.version, table.c.sentences).join(
            newest, and_(table.c.person == newest.c.person, table.c.version == newest.c.version))
        with self.store.engine.connect() as conn:
            return {keys[r.person]: (r.version, json.loads(r.sentences)) for r in conn.execute(query)}

    def contexts(self, person_ids: Iterable[int], scenario: Scenario | None = None) -> dict[int, dict[str, str]]:
        """:meth:`context` for many people in one query."""
        ids = list(person_ids)
        found = self.latest_many(ids)
        return {p: memory_context(remembered=recall_clauses(found[p][1], scenario)) if p in found else {}
                for p in ids}

    def sentences(self, person_id: int) -> list[str]:
        latest = self.store.latest(memory_key(person_id))
        return list(latest.sentences) if latest else []

    def context(self, person_id: int, scenario: Scenario | None = None) -> dict[str, str]:
        """``{"memory_prompt": ...}`` for the person's next call, or ``{}`` with nothing to recall."""
        return memory_context(remembered=recall_clauses(self.sentences(person_id), scenario))

    def get(self, person_id: int) -> dict[str, Any]:
        """The current sentences, the version and every version (who changed it and when)."""
        history = self.store.history(memory_key(person_id))
        return {"person_id": person_id, "version": history[-1].version if history else 0,
                "sentences": list(history[-1].sentences) if history else [],
                "history": [_version(v) for v in history]}

    def correct(self, person_id: int, sentences: Sequence[str], *, by: str,
                expected_version: int | None = None, note: str = "") -> dict[str, Any]:
        """Store what staff typed as the person's memory (a new version by ``by``)."""
        cleaned = [s.strip() for s in sentences if s and s.strip()]
        if len(cleaned) > MAX_SENTENCES or any(len(s) > 200 for s in cleaned):
            raise InvalidInput(f"a memory holds at most {MAX_SENTENCES} sentences of at most 200 characters")
        return self._write(person_id, cleaned, by=by, expected_version=expected_version, operator="correction",
                           notes=[f"corrected by {by}"] + ([note] if note else []))

    def revert(self, person_id: int, version: int, *, by: str, expected_version: int | None = None) -> dict[str, Any]:
        """Store version ``version``'s sentences (0: empty) as a new version by ``by``."""
        sentences = [] if version == 0 else self.store.get(memory_key(person_id), version).sentences
        return self._write(person_id, list(sentences), by=by, expected_version=expected_version, operator="revert",
                           notes=[f"reverted to version {version} by {by}"], reverted_from=version)

    def _write(self, person_id: int, sentences: list[str], *, by: str, expected_version: int | None,
               operator: str, notes: list[str], reverted_from: int | None = None) -> dict[str, Any]:
        key = memory_key(person_id)
        latest = self.store.latest(key)
        current = latest.version if latest else 0
        previous = current if expected_version is None else expected_version
        v = MemoryVersion(person=key, version=previous + 1, sentences=sentences, created_at=time.time(),
                          operator=operator, session=f"staff:{by}", reverted_from=reverted_from, notes=notes)
        return _version(self.store.append_version(v, expected_previous=previous))


def _json(items: Sequence[str]) -> str:
    return json.dumps(list(items), ensure_ascii=False)


def _operator(scenario: Scenario) -> SlotOperator:
    return SlotOperator(scenario)


def _version(v: MemoryVersion) -> dict[str, Any]:
    by = v.session[len("staff:"):] if v.session and v.session.startswith("staff:") else None
    return {"version": v.version, "sentences": list(v.sentences), "at": v.created_at,
            "by": by or "call", "operator": v.operator, "session": v.session, "reverted_from": v.reverted_from,
            "notes": list(v.notes), "summary": list(v.summary)}
