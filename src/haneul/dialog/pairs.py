"""Pair operations and the lexical pair features: what the operators and the classifier share.

A memory update labels every (memory sentence, summary sentence) pair with one of four operations
(Keep Me Updated §3.2). The labels (:class:`Op`, :class:`PairOp`), the per-sentence lexical facts
(:class:`SentenceInfo`), the hand-made pair features and the lexical rule's thresholds live here so
that :mod:`haneul.dialog.operators` (which runs the rule and the classifier) and
:mod:`haneul.dialog.model` (whose classifier takes the features and the rule's decision as inputs)
both import them and neither imports the other.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from typing import Any

from haneul.dialog.text import CANCEL_CUES, CHANGE_CUES, bigrams, compact, has_cue, jaccard
from haneul.errors import InvalidInput

# the lexical rule (LexicalOperator and the classifier's rule feature): one sentence contained in the
# other, same topic, similar enough to supersede
PASS_THRESHOLD = 0.8
TOPIC_THRESHOLD = 0.25
REPLACE_THRESHOLD = 0.4


class Op(enum.StrEnum):
    PASS = "PASS"
    APPEND = "APPEND"
    REPLACE = "REPLACE"
    DELETE = "DELETE"

    @classmethod
    def parse(cls, value: str) -> Op:
        try:
            return cls(str(value).strip().upper())
        except ValueError:
            raise InvalidInput(
                f"unknown memory operation {value!r}; use one of PASS, APPEND, REPLACE, DELETE"
            ) from None


OPS: tuple[Op, ...] = (Op.PASS, Op.APPEND, Op.REPLACE, Op.DELETE)


@dataclass(frozen=True)
class PairOp:
    """The operation chosen for memory sentence ``memory_index`` and summary sentence ``summary_index``."""

    memory_index: int
    summary_index: int
    memory: str
    summary: str
    op: Op
    score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "memory_index": self.memory_index,
            "summary_index": self.summary_index,
            "memory": self.memory,
            "summary": self.summary,
            "op": self.op.value,
            "score": self.score,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PairOp:
        return cls(int(d["memory_index"]), int(d["summary_index"]), d["memory"], d["summary"], Op.parse(d["op"]), d.get("score"))


def _topic(key: str) -> frozenset[str]:
    """Content bigrams: the sentence's last bigram is its (honorific) ending, shared by unrelated facts."""
    if len(key) <= 3:
        return frozenset(key[i : i + 2] for i in range(max(1, len(key) - 1))) if key else frozenset()
    return frozenset(key[i : i + 2] for i in range(len(key) - 2))


@dataclass(frozen=True)
class SentenceInfo:
    """Per-sentence lexical facts, computed once per sentence rather than once per pair."""

    key: str
    grams: frozenset[str]
    topic: frozenset[str]
    change: bool
    cancel: bool

    @classmethod
    def of(cls, text: str) -> SentenceInfo:
        return _sentence_info(text)


@functools.lru_cache(maxsize=8192)
def _sentence_info(text: str) -> SentenceInfo:
    # memory sentences recur in every update of a person; computing their facts once is the point
    key = compact(text)
    return SentenceInfo(key, bigrams(text), _topic(key), has_cue(text, CHANGE_CUES), has_cue(text, CANCEL_CUES))


def pair_features_info(m: SentenceInfo, s: SentenceInfo) -> list[float]:
    """Hand-made pair features shared by the lexical baseline and the classifier's head."""
    inter = len(m.topic & s.topic)
    return [
        jaccard(m.grams, s.grams),
        len(m.grams & s.grams) / max(1, min(len(m.grams), len(s.grams))),
        inter / max(1, min(len(m.topic), len(s.topic))),
        inter / max(1, len(m.topic)),
        inter / max(1, len(s.topic)),
        float(s.change),
        float(m.change),
        float(s.cancel),
        float(m.key == s.key),
    ]


def pair_features(m: str, s: str) -> list[float]:
    return pair_features_info(SentenceInfo.of(m), SentenceInfo.of(s))


N_PAIR_FEATURES = 9
