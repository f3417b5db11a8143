"""Korean sentence utilities shared by the memory operators, the label derivation and the evaluation.

Memory sentences are short, unstructured Korean clauses ("노인정에 다니심"). Two of them are compared
with a character-bigram Jaccard similarity over the text with spaces and punctuation removed: it is
robust to Korean spacing variation and particle changes and needs no analyser. Two sentences *match*
when that similarity is at least :data:`MATCH_THRESHOLD` (0.5) — the threshold used by label
derivation and by the memory-update precision / recall / F1 of Keep Me Updated's evaluation (§4).
"""

from __future__ import annotations

import unicodedata
import warnings
from collections.abc import Sequence

from haneul.text.korean import normalize

MATCH_THRESHOLD = 0.5
MAX_SENTENCE_CHARS = 200

# Cues that a new sentence reverses or ends a remembered state ("아팠으나 다 나음", "이제 안 다니심").
CHANGE_CUES = (
    "나음", "나았", "나으셨", "괜찮아", "좋아지", "좋아졌", "그만", "끊으", "끊었", "끊음", "안 ", "않",
    "없어지", "없어졌", "더 이상", "더는", "이제는", "았으나", "었으나", "였으나", "했으나", "지만",
    "바뀌", "바꾸", "옮기", "옮겼", "이사", "퇴원", "졸업", "그쳤", "멈추", "멈췄",
)
# Cues that an event in memory was called off or is over without a lasting new fact.
CANCEL_CUES = ("취소", "미뤄", "미루", "연기", "없던 일")


class DialogWarning(UserWarning):
    """A recoverable input problem (a sentence truncated, a blank line skipped)."""




def compact(text: str) -> str:
    """The comparison key: letters and digits only (spacing and punctuation vary between writers)."""
    text = unicodedata.normalize("NFC", text)
    return "".join(ch for ch in text if ch.isalnum())


def bigrams(text: str) -> frozenset[str]:
    key = compact(text)
    if len(key) < 2:
        return frozenset([key]) if key else frozenset()
    return frozenset(key[i : i + 2] for i in range(len(key) - 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter) if inter else 0.0


def similarity(a: str, b: str) -> float:
    """Character-bigram Jaccard similarity in [0, 1] (1 for identical sentences)."""
    return jaccard(bigrams(a), bigrams(b))


def has_cue(text: str, cues: Sequence[str]) -> bool:
    spaced = f" {normalize(text)} "
    return any(cue in spaced for cue in cues)


def clean_sentences(
    sentences: Sequence[str], *, where: str = "sentences", max_chars: int = MAX_SENTENCE_CHARS
) -> tuple[list[str], list[str]]:
    """Normalise sentences, skip blanks and truncate very long ones; returns ``(kept, warnings)``.

    Every problem is also raised as a :class:`DialogWarning` so a caller that ignores the returned
    list still sees it.
    """
    from haneul.errors import InvalidInput

    kept: list[str] = []
    notes: list[str] = []
    for i, raw in enumerate(sentences):
        if not isinstance(raw, str):
            raise InvalidInput(f"{where}[{i}] is {type(raw).__name__}, not text; pass a list of strings")
        text = normalize(raw)
        if not text:
            notes.append(f"{where}[{i}] is blank and was skipped")
            continue
        if len(text) > max_chars:
            notes.append(f"{where}[{i}] has {len(text)} characters; truncated to {max_chars}")
            text = text[:max_chars].rstrip()
        kept.append(text)
    for note in notes:
        warnings.warn(note, DialogWarning, stacklevel=3)
    return kept, notes


def greedy_match(pred: Sequence[str], ref: Sequence[str], threshold: float = MATCH_THRESHOLD) -> list[tuple[int, int, float]]:
    """One-to-one matching of ``pred`` to ``ref`` sentences, best pairs first, ties by position.

    Returns ``(pred_index, ref_index, similarity)`` for every matched pair with similarity ≥ threshold.
    """
    pb = [bigrams(s) for s in pred]
    rb = [bigrams(s) for s in ref]
    cands = []
    for i, a in enumerate(pb):
        for j, b in enumerate(rb):
            sim = jaccard(a, b)
            if sim >= threshold:
                cands.append((-sim, i, j))
    cands.sort()
    used_p: set[int] = set()
    used_r: set[int] = set()
    out = []
    for neg, i, j in cands:
        if i in used_p or j in used_r:
            continue
        used_p.add(i)
        used_r.add(j)
        out.append((i, j, -neg))
    return sorted(out)
