"""CTC decoding: greedy best path and prefix beam search with an optional character n-gram LM.

Prefix beam search (Hannun et al., 2014, "First-pass large vocabulary continuous speech recognition
using bi-directional recurrent DNNs", section 3.1; also DeepSpeech2, Amodei et al., 2016, section 7)
keeps, for each output prefix, the probability of ending in a blank and in a non-blank, so that
repeated characters separated by a blank are kept apart. The LM adds ``alpha * log P_lm(c | prefix)``
and ``beta`` per emitted character. The character LM uses interpolated Witten-Bell smoothing, which
needs only counts and always yields a proper distribution over the vocabulary.

Prefixes are nodes of a prefix tree (each holds its parent and last symbol), so extending one costs
the same at the end of a two-minute call as at its start; copying whole prefixes would make the
search quadratic in the length of the audio, in time and in memory.
"""

from __future__ import annotations

import math
import weakref
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from haneul.errors import InvalidInput

NEG_INF = -math.inf


def _logsumexp(*xs: float) -> float:
    m = max(xs)
    if m == NEG_INF:
        return NEG_INF
    return m + math.log(sum(math.exp(x - m) for x in xs))


def greedy_decode(
    log_probs: np.ndarray | Sequence[Sequence[float]], blank: int = 0, *, previous: int = -1
) -> list[int]:
    """Best path: argmax per frame, merge repeats, drop blanks.  ``log_probs``: (T, V).

    ``previous`` is the best symbol of the frame just before these ones, so that a stream decoded
    chunk by chunk merges a repeat across a chunk boundary exactly as one pass over all frames would.
    """
    best = np.asarray(log_probs).argmax(axis=-1)
    out: list[int] = []
    prev = previous
    for k in best.tolist():
        if k != prev and k != blank:
            out.append(k)
        prev = k
    return out


class CharNgramLM:
    """Character n-gram language model with interpolated Witten-Bell smoothing.

    Symbols are vocabulary ids; ``bos`` pads the history at the start of a sentence.
    """

    def __init__(self, order: int, vocab_size: int, bos: int = -1) -> None:
        if order < 1:
            raise InvalidInput(f"n-gram order {order} must be at least 1")
        self.order = order
        self.vocab_size = vocab_size
        self.bos = bos
        self.counts: dict[tuple[int, ...], Counter[int]] = defaultdict(Counter)
        self._cache: dict[tuple[tuple[int, ...], int], float] = {}

    def fit(self, sequences: Iterable[Sequence[int]]) -> CharNgramLM:
        for seq in sequences:
            hist = [self.bos] * (self.order - 1) + list(seq)
            for i in range(self.order - 1, len(hist)):
                for n in range(self.order):  # every context length 0..order-1
                    ctx = tuple(hist[i - n : i])
                    self.counts[ctx][hist[i]] += 1
        self._cache.clear()
        return self

    def prob(self, context: Sequence[int], symbol: int) -> float:
        ctx = tuple(context)[-(self.order - 1) :] if self.order > 1 else ()
        if len(ctx) < self.order - 1:
            ctx = (self.bos,) * (self.order - 1 - len(ctx)) + ctx
        return self._prob(ctx, symbol)

    def _prob(self, ctx: tuple[int, ...], symbol: int) -> float:
        key = (ctx, symbol)
        if key in self._cache:
            return self._cache[key]
        lower = 1.0 / self.vocab_size if not ctx else self._prob(ctx[1:], symbol)
        seen = self.counts.get(ctx)
        if not seen:
            p = lower
        else:
            total = sum(seen.values())
            types = len(seen)
            p = (seen[symbol] + types * lower) / (total + types)
        self._cache[key] = p
        return p

    def logprob(self, context: Sequence[int], symbol: int) -> float:
        return math.log(self.prob(context, symbol))


@dataclass(eq=False)
class _Prefix:
    """A beam prefix as a node of the prefix tree; compared and hashed by identity."""

    parent: _Prefix | None
    symbol: int  # the last symbol (-1 at the root)
    lm_score: float  # sum of the LM terms of every symbol of the prefix
    context: tuple[int, ...]  # the last (order - 1) symbols: all the LM needs to score the next one

    def ids(self) -> list[int]:
        out = []
        node: _Prefix | None = self
        while node is not None and node.parent is not None:
            out.append(node.symbol)
            node = node.parent
        return out[::-1]


def prefix_beam_search(
    log_probs: np.ndarray | Sequence[Sequence[float]],
    beam: int = 8,
    blank: int = 0,
    lm: CharNgramLM | None = None,
    alpha: float = 0.5,
    beta: float = 0.0,
    prune: float = -12.0,
    top_k: int | None = None,
) -> list[tuple[list[int], float]]:
    """CTC prefix beam search over ``log_probs`` (T, V) of natural-log posteriors.

    Returns up to ``beam`` ``(ids, score)`` pairs, best first; ``score`` is the total log
    probability of the prefix (plus the LM terms when ``lm`` is given). Per frame only the
    ``top_k`` most likely symbols (default: ``max(beam, 16)``) whose log-probability is at least
    ``prune`` are expanded; the rest cannot win the beam in practice. Each frame costs
    O(beam * top_k) whatever the length of the prefixes.
    """
    lp = np.asarray(log_probs, dtype=np.float64)
    if lp.ndim != 2:
        raise InvalidInput(f"log_probs must be (frames, vocab), got shape {lp.shape}")
    keep = lm.order - 1 if lm is not None else 0

    def extend(prefix: _Prefix, c: int) -> _Prefix:
        if lm is None:
            return _Prefix(prefix, c, prefix.lm_score + beta, ())
        context = (prefix.context + (c,))[-keep:] if keep else ()
        return _Prefix(prefix, c, prefix.lm_score + alpha * lm.logprob(prefix.context, c) + beta, context)

    # prefix -> (log P ending in blank, log P ending in non-blank)
    beams: dict[_Prefix, tuple[float, float]] = {_Prefix(None, -1, 0.0, ()): (0.0, NEG_INF)}
    # every live prefix by (parent, symbol), so that each sequence is one node: "ab" reached again from
    # "a" + "b" merges with the "ab" already in the beam. Weak values: a prefix that leaves the beam
    # (and has no descendant in it) is freed, so memory stays bounded on long audio.
    nodes: weakref.WeakValueDictionary[tuple[int, int], _Prefix] = weakref.WeakValueDictionary()
    for t in range(lp.shape[0]):
        frame = lp[t]
        k = min(len(frame), top_k or max(beam, 16))
        top = np.argpartition(-frame, k - 1)[:k] if k < len(frame) else np.arange(len(frame))
        cands = top[frame[top] >= prune]
        if blank not in cands:
            cands = np.append(cands, blank)
        nxt: dict[_Prefix, list[float]] = defaultdict(lambda: [NEG_INF, NEG_INF])
        for prefix, (pb, pnb) in beams.items():
            total = _logsumexp(pb, pnb)
            for c in cands.tolist():
                p = frame[c]
                if c == blank:
                    e = nxt[prefix]
                    e[0] = _logsumexp(e[0], total + p)
                    continue
                ext = nodes.get((id(prefix), c))
                if ext is None:
                    ext = extend(prefix, c)
                    nodes[(id(prefix), c)] = ext
                e = nxt[ext]
                if prefix.parent is not None and prefix.symbol == c:
                    # a repeat only extends after a blank; without one it collapses into the prefix
                    e[1] = _logsumexp(e[1], pb + p)
                    same = nxt[prefix]
                    same[1] = _logsumexp(same[1], pnb + p)
                else:
                    e[1] = _logsumexp(e[1], total + p)
        live = [
            kv for kv in nxt.items() if _logsumexp(*kv[1]) > NEG_INF
        ]  # e.g. a repeat with no blank between
        ranked = sorted(live, key=lambda kv: _logsumexp(*kv[1]) + kv[0].lm_score, reverse=True)
        beams = {k: (v[0], v[1]) for k, v in ranked[:beam]}
    out = [(k.ids(), _logsumexp(*v) + k.lm_score) for k, v in beams.items()]
    out.sort(key=lambda kv: kv[1], reverse=True)
    return out


def ctc_sequence_logprob(log_probs: np.ndarray, target: Sequence[int], blank: int = 0) -> float:
    """Exact log P(target | log_probs) by the CTC forward algorithm (a reference for tests)."""
    lp = np.asarray(log_probs, dtype=np.float64)
    ext = [blank]
    for c in target:
        ext += [c, blank]
    s = len(ext)
    alpha = np.full(s, NEG_INF)
    alpha[0] = lp[0, blank]
    if s > 1:
        alpha[1] = lp[0, ext[1]]
    for t in range(1, lp.shape[0]):
        new = np.full(s, NEG_INF)
        for i in range(s):
            terms = [alpha[i]]
            if i >= 1:
                terms.append(alpha[i - 1])
            if i >= 2 and ext[i] != blank and ext[i] != ext[i - 2]:
                terms.append(alpha[i - 2])
            new[i] = _logsumexp(*terms) + lp[t, ext[i]]
        alpha = new
    return _logsumexp(alpha[-1], alpha[-2]) if s > 1 else alpha[-1]
