"""Memory operators: decide PASS / APPEND / REPLACE / DELETE for every (memory, summary) sentence pair.

This is the memory-update step of Keep Me Updated (§3.2). For memory sentences ``m_i`` and the new
session summary sentences ``s_j`` an operator labels every pair in one batch:

* ``PASS``    — ``s_j`` says nothing new about ``m_i``'s topic (``m_i`` already covers it): keep ``m_i``,
  do not add ``s_j``;
* ``APPEND``  — unrelated or compatible facts: keep ``m_i`` and add ``s_j``;
* ``REPLACE`` — ``s_j`` supersedes ``m_i`` ("이가 아픔" → "이가 아팠으나 다 나음"): drop ``m_i``, add ``s_j``;
* ``DELETE``  — ``s_j`` ends ``m_i`` and is not worth keeping itself ("치과 예약 있음" / "치과 예약 취소됨"):
  drop both.

:func:`resolve` turns the pair labels into the next memory deterministically: a memory sentence goes
when any of its pairs says REPLACE or DELETE; a summary sentence comes in when any of its pairs says
REPLACE, or when none says PASS or DELETE; the result keeps the surviving memory in order, then the
new sentences in order, and drops (near-)duplicates, keeping the earlier one. A sentence replaced by
two summaries therefore gives way to both.

Operators: the NLI-transfer classifier (:class:`ClassifierOperator`, model in
:mod:`haneul.dialog.model`), an LM-prompting operator over any OpenAI-compatible endpoint
(:class:`LMOperator`, falls back to the classifier when the endpoint fails), a lexical baseline
(:class:`LexicalOperator`) and the two naive policies (:class:`AppendOnly`, :class:`LatestOnly`).
The pair labels and lexical features they share with the classifier are defined in
:mod:`haneul.dialog.pairs` and re-exported here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from haneul.dialog.defaults import classifier_dir, resolve_classifier_path
from haneul.dialog.pairs import (
    N_PAIR_FEATURES,
    OPS,
    PASS_THRESHOLD,
    REPLACE_THRESHOLD,
    TOPIC_THRESHOLD,
    Op,
    PairOp,
    SentenceInfo,
    pair_features,
    pair_features_info,
)
from haneul.dialog.text import MAX_SENTENCE_CHARS, bigrams, clean_sentences, compact, jaccard
from haneul.errors import InvalidInput, NotFound

DUPLICATE_THRESHOLD = 0.8


@dataclass
class UpdateResult:
    """What one memory update did: the pair operations, the new memory and how it was decided."""

    ops: list[PairOp]
    new_memory: list[str]
    previous_memory: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    operator: str = ""
    fallback: str | None = None  # why another operator decided (e.g. the LM endpoint timed out)
    notes: list[str] = field(default_factory=list)  # conflicts resolved, duplicates dropped
    warnings: list[str] = field(default_factory=list)  # input problems (truncated sentences, blanks)
    version: int | None = None  # the stored version, when the update went through a Memory

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "operator": self.operator,
            "fallback": self.fallback,
            "previous_memory": self.previous_memory,
            "summary": self.summary,
            "new_memory": self.new_memory,
            "removed": self.removed,
            "added": self.added,
            "ops": [p.to_dict() for p in self.ops],
            "notes": self.notes,
            "warnings": self.warnings,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UpdateResult:
        lists = ("previous_memory", "summary", "removed", "added", "notes", "warnings")
        return cls(
            ops=[PairOp.from_dict(p) for p in d.get("ops") or []], new_memory=list(d["new_memory"]),
            operator=d.get("operator") or "", fallback=d.get("fallback"), version=d.get("version"),
            **{k: list(d.get(k) or []) for k in lists},
        )


def resolve(memory: Sequence[str], summary: Sequence[str], ops: Sequence[PairOp]) -> tuple[list[str], list[str], list[str], list[str]]:
    """Apply pair operations; returns ``(new_memory, removed, added, notes)`` (see the module doc)."""
    removers: dict[int, list[int]] = {i: [] for i in range(len(memory))}
    s_replace = [False] * len(summary)
    s_blocked = [False] * len(summary)
    for p in ops:
        if p.op in (Op.REPLACE, Op.DELETE):
            removers[p.memory_index].append(p.summary_index)
        if p.op is Op.REPLACE:
            s_replace[p.summary_index] = True
        elif p.op in (Op.PASS, Op.DELETE):
            s_blocked[p.summary_index] = True
    notes: list[str] = []
    kept = [m for i, m in enumerate(memory) if not removers[i]]
    removed = [m for i, m in enumerate(memory) if removers[i]]
    for i, by in removers.items():
        replacing = sorted({j for j in by if s_replace[j]})
        if len(replacing) > 1:
            notes.append(f"memory[{i}] {memory[i]!r} is replaced by {len(replacing)} summary sentences "
                         f"{replacing}; all of them are kept")
    added_idx = [j for j in range(len(summary)) if s_replace[j] or not s_blocked[j]]
    for j in range(len(summary)):
        if s_replace[j] and s_blocked[j]:
            notes.append(f"summary[{j}] {summary[j]!r} has both REPLACE and PASS/DELETE pairs; REPLACE wins")
    out: list[str] = []
    keys: list[frozenset[str]] = []
    seen: set[str] = set()
    added: list[str] = []
    for origin, text in [("memory", m) for m in kept] + [("summary", summary[j]) for j in added_idx]:
        key = compact(text)
        grams = bigrams(text)
        dup = key in seen or any(jaccard(grams, k) >= DUPLICATE_THRESHOLD for k in keys)
        if dup:
            notes.append(f"{origin} sentence {text!r} duplicates one already in memory; dropped")
            if origin == "memory":
                removed.append(text)
            continue
        seen.add(key)
        keys.append(grams)
        out.append(text)
        if origin == "summary":
            added.append(text)
    return out, removed, added, notes


class Operator:
    """Base class: subclasses implement :meth:`classify`; :meth:`update` cleans input and resolves."""

    name = "operator"

    def classify(self, memory: Sequence[str], summary: Sequence[str]) -> list[PairOp]:
        raise NotImplementedError

    def decide(self, memory: Sequence[str], summary: Sequence[str]) -> tuple[list[PairOp], str, str | None]:
        """Label all pairs; returns ``(ops, operator_name, fallback_reason)``."""
        return self.classify(memory, summary), self.name, None

    def update(
        self, memory: Sequence[str], summary: Sequence[str], *, max_chars: int = MAX_SENTENCE_CHARS
    ) -> UpdateResult:
        summary_clean, w1 = clean_sentences(summary, where="summary", max_chars=max_chars)
        memory_clean, w2 = clean_sentences(memory, where="memory", max_chars=max_chars)
        if not summary_clean:
            raise InvalidInput(
                "the summary has no sentences; pass at least one non-blank sentence of new information, "
                "or skip the memory update for this session"
            )
        ops, used, fallback = self.decide(memory_clean, summary_clean)
        new, removed, added, notes = resolve(memory_clean, summary_clean, ops)
        return UpdateResult(
            ops=ops, new_memory=new, previous_memory=memory_clean, summary=summary_clean, removed=removed,
            added=added, operator=used, fallback=fallback, notes=notes, warnings=w2 + w1,
        )


def _all_pairs(memory: Sequence[str], summary: Sequence[str], op: Op) -> list[PairOp]:
    return [PairOp(i, j, m, s, op) for i, m in enumerate(memory) for j, s in enumerate(summary)]


class AppendOnly(Operator):
    """Naive baseline: memory only grows (every pair APPEND)."""

    name = "append-only"

    def classify(self, memory, summary):
        return _all_pairs(memory, summary, Op.APPEND)


class LatestOnly(Operator):
    """Naive baseline: the newest summary replaces the whole memory (every pair REPLACE)."""

    name = "latest-only"

    def classify(self, memory, summary):
        return _all_pairs(memory, summary, Op.REPLACE)


class LexicalOperator(Operator):
    """Baseline: character-bigram overlap plus change / cancellation cue words.

    One sentence contained in the other (bigram overlap coefficient ≥ ``pass_threshold``) without a new
    change cue → PASS; same topic (content-bigram overlap ≥ ``topic_threshold``) with a cancellation
    cue → DELETE; same topic with a change cue (negation, recovery, "…았으나") or a Jaccard similarity ≥
    ``replace_threshold`` → REPLACE; anything else → APPEND.
    """

    name = "lexical"

    def __init__(self, pass_threshold: float = PASS_THRESHOLD, topic_threshold: float = TOPIC_THRESHOLD,
                 replace_threshold: float = REPLACE_THRESHOLD):
        self.pass_threshold = pass_threshold
        self.topic_threshold = topic_threshold
        self.replace_threshold = replace_threshold

    def pair(self, m: str, s: str) -> Op:
        return self.pair_info(SentenceInfo.of(m), SentenceInfo.of(s))

    def pair_info(self, m: SentenceInfo, s: SentenceInfo) -> Op:
        sim, contain, overlap, _, _, s_change, m_change, s_cancel, same = pair_features_info(m, s)
        if same or (contain >= self.pass_threshold and s_change <= m_change):
            return Op.PASS
        if overlap >= self.topic_threshold:
            if s_cancel:
                return Op.DELETE
            if s_change and not m_change:
                return Op.REPLACE
            if sim >= self.replace_threshold:
                return Op.REPLACE
        return Op.APPEND

    def classify(self, memory, summary):
        mi = [SentenceInfo.of(m) for m in memory]
        si = [SentenceInfo.of(s) for s in summary]
        return [
            PairOp(i, j, m, s, self.pair_info(mi[i], si[j]))
            for i, m in enumerate(memory)
            for j, s in enumerate(summary)
        ]


class ClassifierOperator(Operator):
    """The NLI-transfer pair classifier; all pairs of one update go through the model in one batch."""

    name = "classifier"

    def __init__(self, model: Any, cache_size: int = 4096):
        self.model = model
        # sentence vectors by text: a person's memory sentences recur in every update
        self.cache: dict[str, Any] = {}
        self.cache_size = cache_size

    @classmethod
    def load(cls, name_or_path: str | Path = "default", *, home: Path | None = None) -> ClassifierOperator:
        """A classifier from a model folder, or by name from ``home`` (default ``HANEUL_HOME``)."""
        from haneul.dialog.model import load_classifier

        return cls(load_classifier(name_or_path, home=home))

    def classify(self, memory, summary):
        if not memory:
            return []
        if len(self.cache) > self.cache_size:
            self.cache.clear()
        ops, scores = self.model.predict_ops(list(memory), list(summary), cache=self.cache if self.cache_size else None)
        return [
            PairOp(i, j, m, s, ops[i][j], scores[i][j])
            for i, m in enumerate(memory)
            for j, s in enumerate(summary)
        ]


LM_SYSTEM = (
    "You maintain a long-term memory of short Korean sentences about one person. For every pair of a "
    "memory sentence M and a new summary sentence S answer one operation: PASS (S adds nothing to M), "
    "APPEND (unrelated or both stay true), REPLACE (S updates M, M is no longer true), DELETE (S ends M "
    "and S itself need not be remembered)."
)


LM_FORMAT = "M<number> S<number> OPERATION"


def lm_prompt(memory: Sequence[str], summary: Sequence[str]) -> str:
    """The user message of one LM update: numbered memory (M…) and summary (S…) sentences.

    The answer format is shown with placeholders only: a concrete example line ("M2 S1 REPLACE")
    would itself parse as an operation when a model merely repeats the prompt.
    """
    lines = ["Memory:"]
    lines += [f"M{i + 1}. {m}" for i, m in enumerate(memory)]
    lines.append("New summary:")
    lines += [f"S{j + 1}. {s}" for j, s in enumerate(summary)]
    lines.append(f"List only the pairs that are not APPEND, one per line as '{LM_FORMAT}'. "
                 "Write NONE when every pair is APPEND.")
    return "\n".join(lines)


_LINE = re.compile(r"M\s*(\d+)\s*[,/ ]\s*S\s*(\d+)\s*[:\-= ]*\s*(PASS|APPEND|REPLACE|DELETE)\b", re.IGNORECASE)
_NONE = re.compile(r"^\W*(NONE|없음)\W*$", re.IGNORECASE)


def _line_key(line: str) -> str:
    return " ".join(line.split()).strip(" '\"`*-").lower()


def parse_lm_ops(text: str, memory: Sequence[str], summary: Sequence[str], prompt: str | None = None) -> list[PairOp]:
    """Read 'M<i> S<j> OP' lines; pairs not mentioned are APPEND. Raises InvalidInput on nonsense.

    Lines that repeat a line of ``prompt`` (default: :func:`lm_prompt` of the same sentences) or of
    the system message are not part of the answer: a model that echoes the prompt has not answered,
    and NONE counts only as a line of its own, not inside the echoed instruction.
    """
    echoed = {_line_key(x) for x in (prompt or lm_prompt(memory, summary)).splitlines() + LM_SYSTEM.splitlines()}
    echoed.discard("")
    table = {(i, j): Op.APPEND for i in range(len(memory)) for j in range(len(summary))}
    found = none = False
    answer_lines = [line for line in text.splitlines() if line.strip() and _line_key(line) not in echoed]
    for line in answer_lines:
        none = none or bool(_NONE.match(line))
        for mi, sj, op in _LINE.findall(line):
            i, j = int(mi) - 1, int(sj) - 1
            if (i, j) in table:
                table[(i, j)] = Op.parse(op)
                found = True
    if not found and not none:
        what = "only repeats the prompt" if text.strip() and not answer_lines else f"has no '{LM_FORMAT}' lines"
        raise InvalidInput(f"the LM answer {what}: {text[:80]!r}")
    return [PairOp(i, j, memory[i], summary[j], table[(i, j)]) for i in range(len(memory)) for j in range(len(summary))]


class LMOperator(Operator):
    """Prompt an OpenAI-compatible chat model for the non-APPEND pairs of one update.

    When the endpoint times out, is unreachable or answers nonsense, the ``fallback`` operator (the
    classifier when one is trained, else the lexical baseline) decides and the result says why.
    """

    name = "lm"

    def __init__(self, client: Any, fallback: Operator | None = None):
        self.client = client
        self.fallback = fallback

    def classify(self, memory, summary):
        prompt = lm_prompt(memory, summary)
        text = self.client.chat([{"role": "system", "content": LM_SYSTEM}, {"role": "user", "content": prompt}])
        return parse_lm_ops(text, memory, summary, prompt)

    def decide(self, memory, summary):
        if not memory:
            return [], self.name, None
        from haneul.dialog.lm import LMUnavailable

        try:
            return self.classify(memory, summary), self.name, None
        except (LMUnavailable, InvalidInput) as exc:
            fb = self.fallback or default_fallback()
            ops, used, _ = fb.decide(memory, summary)
            return ops, used, f"LM operator failed ({exc.message}); decided by the {used} operator instead"


def default_fallback(home: Path | None = None) -> Operator:
    """The default classifier (the user's under ``home``, else the shipped one), else the lexical baseline."""
    try:
        resolve_classifier_path("default", home)
    except NotFound:
        return LexicalOperator()
    return ClassifierOperator.load("default", home=home)


OPERATORS = ("classifier", "lm", "lexical", "append-only", "latest-only", "auto")


def get_operator(
    name: str = "auto",
    *,
    model: str | Path = "default",
    endpoint: str | None = None,
    lm_model: str | None = None,
    timeout: float = 30.0,
    api_key: str | None = None,
    home: Path | None = None,
) -> Operator:
    """Resolve an operator by name: classifier, lm, lexical, append-only, latest-only or auto.

    ``auto`` is the trained classifier ``model`` when it exists, else the lexical baseline. A
    classifier ``model`` given by name is looked up under ``home`` (default ``HANEUL_HOME``);
    ``"default"`` falls back to the classifier shipped in the package.
    """
    key = name.strip().lower().replace("_", "-")
    if key == "lexical":
        return LexicalOperator()
    if key == "append-only":
        return AppendOnly()
    if key == "latest-only":
        return LatestOnly()
    if key == "classifier":
        return ClassifierOperator.load(model, home=home)
    if key == "auto":
        try:
            resolve_classifier_path(model, home)
        except NotFound:
            return LexicalOperator()
        return ClassifierOperator.load(model, home=home)
    if key == "lm":
        if not endpoint:
            raise InvalidInput("the lm operator needs an endpoint; pass --endpoint http://HOST:PORT/v1")
        from haneul.dialog.lm import ChatClient

        fallback: Operator
        try:
            fallback = ClassifierOperator.load(model, home=home)
        except Exception:
            fallback = LexicalOperator()
        return LMOperator(ChatClient(endpoint, model=lm_model, timeout=timeout, api_key=api_key), fallback=fallback)
    raise InvalidInput(f"unknown operator {name!r}; use one of {', '.join(OPERATORS)}")


__all__ = [
    "DUPLICATE_THRESHOLD", "LM_FORMAT", "LM_SYSTEM", "N_PAIR_FEATURES", "OPERATORS", "OPS", "AppendOnly", "ClassifierOperator",
    "LMOperator", "LatestOnly", "LexicalOperator", "Op", "Operator", "PairOp", "SentenceInfo", "UpdateResult",
    "classifier_dir", "default_fallback", "get_operator", "lm_prompt", "pair_features", "pair_features_info",
    "parse_lm_ops", "resolve", "resolve_classifier_path",
]
