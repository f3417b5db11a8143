"""Error rates as ClovaCall reports them, and the real-time factor.

ClovaCall (Ha et al., 2020, section 4.2) scores character error rate with spaces removed:
CER = edit distance between the hypothesis and the reference with all whitespace deleted, divided
by the length of the space-less reference, summed over the test set (a corpus-level ratio, not a
mean of per-utterance rates). WER is computed with jiwer over whitespace-separated words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from haneul.errors import InvalidInput
from haneul.speech.vocab import normalize_text


def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance (unit costs) with a two-row table."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def _nospace(text: str) -> str:
    return "".join(normalize_text(text).split())


def cer_counts(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edits, reference length) with spaces removed from both."""
    ref, hyp = _nospace(reference), _nospace(hypothesis)
    return edit_distance(ref, hyp), len(ref)


def cer(references: str | Sequence[str], hypotheses: str | Sequence[str]) -> float:
    """Corpus CER without spaces (ClovaCall's definition)."""
    refs, hyps = _pair(references, hypotheses)
    edits = total = 0
    for r, h in zip(refs, hyps, strict=True):
        e, n = cer_counts(r, h)
        edits += e
        total += n
    if total == 0:
        raise InvalidInput("CER is undefined: every reference is empty after removing spaces")
    return edits / total


def wer(references: str | Sequence[str], hypotheses: str | Sequence[str]) -> float:
    """Corpus WER over whitespace-separated words (jiwer)."""
    import jiwer

    refs, hyps = _pair(references, hypotheses)
    refs = [normalize_text(r) for r in refs]
    hyps = [normalize_text(h) for h in hyps]
    if not any(refs):
        raise InvalidInput("WER is undefined: every reference is empty")
    keep = [i for i, r in enumerate(refs) if r]  # jiwer rejects empty references
    return float(jiwer.wer([refs[i] for i in keep], [hyps[i] for i in keep]))


def _pair(references, hypotheses) -> tuple[list[str], list[str]]:
    refs = [references] if isinstance(references, str) else list(references)
    hyps = [hypotheses] if isinstance(hypotheses, str) else list(hypotheses)
    if len(refs) != len(hyps):
        raise InvalidInput(
            f"{len(refs)} references but {len(hyps)} hypotheses; pass one hypothesis per reference"
        )
    return refs, hyps


@dataclass
class EvalResult:
    """Scores over a test set. ``utterances`` counts those scored; ``unreadable`` counts the missing
    or corrupt audio files, which are scored as deletions of their whole reference unless
    ``skip_unreadable`` (then they are left out of ``utterances`` and the rates)."""

    cer: float
    wer: float
    utterances: int
    audio_s: float
    decode_s: float
    unreadable: int = 0
    skip_unreadable: bool = False

    @property
    def rtf(self) -> float:
        """Real-time factor: processing seconds per second of audio (below 1 is faster than real time)."""
        return self.decode_s / self.audio_s if self.audio_s else float("nan")

    @property
    def unreadable_policy(self) -> str:
        """How unreadable files entered the scores, in words (for tables)."""
        return "skipped" if self.skip_unreadable else "counted as errors"

    def to_dict(self) -> dict:
        return {"cer": self.cer, "wer": self.wer, "rtf": self.rtf, "utterances": self.utterances,
                "audio_s": self.audio_s, "decode_s": self.decode_s, "unreadable": self.unreadable,
                "skip_unreadable": self.skip_unreadable}  # fmt: skip
