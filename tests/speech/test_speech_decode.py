from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from haneul.speech.decode import CharNgramLM, ctc_sequence_logprob, greedy_decode, prefix_beam_search


def _collapse(path, blank=0):
    out, prev = [], None
    for k in path:
        if k != prev and k != blank:
            out.append(k)
        prev = k
    return tuple(out)


def _brute_force(lp: np.ndarray) -> dict[tuple[int, ...], float]:
    """P(labelling) by summing over every alignment path: the definition of CTC."""
    probs: dict[tuple[int, ...], float] = {}
    p = np.exp(lp)
    for path in itertools.product(range(lp.shape[1]), repeat=lp.shape[0]):
        prob = float(np.prod([p[t, k] for t, k in enumerate(path)]))
        key = _collapse(path)
        probs[key] = probs.get(key, 0.0) + prob
    return probs


def test_greedy_merges_repeats_and_keeps_blank_separated_doubles():
    # frames: a a _ a b b _ -> "a a b" (the blank splits the two a's)
    ids = [1, 1, 0, 1, 2, 2, 0]
    lp = np.log(np.full((7, 3), 0.05))
    for t, k in enumerate(ids):
        lp[t, k] = math.log(0.9)
    assert greedy_decode(lp) == [1, 1, 2]
    assert greedy_decode(np.log(np.full((3, 3), 1 / 3))) == []  # ties go to the blank (index 0)


def test_beam_search_is_exact_against_brute_force():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, 3)) * 2
    lp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    truth = _brute_force(lp)
    hyps = prefix_beam_search(lp, beam=1000, prune=-math.inf)
    got = {tuple(ids): math.exp(score) for ids, score in hyps}
    assert set(got) == set(truth)
    for k, v in truth.items():
        assert got[k] == pytest.approx(v, rel=1e-9)
        assert math.exp(ctc_sequence_logprob(lp, list(k))) == pytest.approx(v, rel=1e-9)
    assert tuple(hyps[0][0]) == max(truth, key=truth.get)


def test_beam_beats_greedy_when_paths_add_up():
    # each frame prefers blank (0.4) over 'a' (0.35) and 'b' (0.25), so best path is empty,
    # but the many paths that emit a single 'a' together outweigh the all-blank path
    lp = np.log(np.array([[0.4, 0.35, 0.25]] * 3))
    assert greedy_decode(lp) == []
    best, score = prefix_beam_search(lp, beam=10)[0]
    assert best == [1]
    assert math.exp(score) == pytest.approx(_brute_force(lp)[(1,)], rel=1e-9)


def test_char_lm_is_normalised_and_prefers_seen_text():
    lm = CharNgramLM(3, vocab_size=6).fit([[4, 5, 4, 5], [4, 5, 5]])
    for ctx in ([], [4], [4, 5], [5, 5], [3, 3]):
        assert sum(lm.prob(ctx, s) for s in range(6)) == pytest.approx(1.0)
    assert lm.prob([4], 5) > lm.prob([4], 4)
    # counts after context (4,): 5 x3 (types 1); Witten-Bell: (3 + 1 * P(5|()))/(3 + 1)
    unigram5 = (4 + 3 * (1 / 6)) / (7 + 2)
    bigram = (3 + 1 * unigram5) / (3 + 1)
    assert lm.prob([4], 5) == pytest.approx((3 + 1 * bigram) / (3 + 1)) or lm.prob([4], 5) > 0.8


def test_lm_breaks_an_acoustic_tie():
    # two frames, symbols 1 and 2 equally likely: "1 2" and "2 1" tie acoustically; the LM has seen "1 2"
    lp = np.log(np.array([[0.1, 0.45, 0.45], [0.1, 0.45, 0.45]]))
    lm = CharNgramLM(2, vocab_size=3).fit([[1, 2]] * 20)

    def scores(hyps):
        return {tuple(ids): s for ids, s in hyps}

    plain = scores(prefix_beam_search(lp, beam=8))
    assert plain[(1, 2)] == pytest.approx(plain[(2, 1)]) == pytest.approx(math.log(0.45 * 0.45))
    with_lm = scores(prefix_beam_search(lp, beam=8, lm=lm, alpha=1.0))
    assert with_lm[(1, 2)] > with_lm[(2, 1)]
    expected = math.log(0.45 * 0.45) + lm.logprob([], 1) + lm.logprob([1], 2)
    assert with_lm[(1, 2)] == pytest.approx(expected)


def _peaky(labels: list[int], vocab: int, frames_per_label: int = 4) -> np.ndarray:
    """Posteriors that say each label for one frame, then blank, with a little doubt everywhere."""
    doubt, sure = math.log(0.02 / (vocab - 1)), math.log(0.98)
    lp = np.full((len(labels) * frames_per_label, vocab), doubt)
    lp[:, 0] = sure
    rows = np.arange(len(labels)) * frames_per_label
    lp[rows, 0] = doubt
    lp[rows, labels] = sure
    return lp


def test_greedy_merges_a_repeat_across_a_chunk_boundary_with_previous():
    lp = np.log(np.array([[0.1, 0.9, 1e-9], [0.1, 0.9, 1e-9], [0.1, 1e-9, 0.9]]))
    whole = greedy_decode(lp)
    assert whole == [1, 2]
    first = greedy_decode(lp[:1])
    assert first + greedy_decode(lp[1:], previous=int(lp[0].argmax())) == whole
    assert first + greedy_decode(lp[1:]) == [1, 1, 2]  # without it the repeat would be emitted twice


def test_beam_search_with_lm_on_a_two_minute_utterance():
    # 3,000 output frames (two minutes at 40 ms) naming 750 characters: each frame's work must not grow
    # with the prefix, or this takes minutes and gigabytes
    rng = np.random.default_rng(0)
    labels = rng.integers(1, 30, 750).tolist()
    lp = _peaky(labels, 30)
    lm = CharNgramLM(4, vocab_size=30).fit([labels[:200], labels[300:500]])
    best, score = prefix_beam_search(lp, beam=8, lm=lm, alpha=0.5, beta=1.0)[0]
    assert best == greedy_decode(lp) == labels  # repeats survive: a blank separates them
    assert math.isfinite(score)
