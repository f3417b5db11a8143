from __future__ import annotations

import math

import numpy as np
import pytest

from haneul.evals import metrics as M


def test_korquad_normalisation_drops_quotes_brackets_and_punctuation():
    assert M.normalize_answer("《훈민정음》 (1446년)") == "훈민정음 1446년"
    assert M.normalize_answer("  'Hangul'   Day! ") == "hangul day"


def test_korquad_exact_match_worked_examples():
    assert M.exact_match("(1443년)", "1443년") == 1.0
    assert M.exact_match("세종 대왕", "세종대왕") == 0.0  # spacing differs, EM is strict


@pytest.mark.parametrize(
    ("pred", "truth", "f1"),
    [
        ("세종 대왕", "세종대왕", 1.0),  # same characters once spaces go
        ("세종대왕의", "세종대왕", 8 / 9),  # P = 4/5, R = 1
        ("조선 4대 왕 세종", "세종", 4 / 9),  # P = 2/7, R = 1
        ("이순신", "세종대왕", 0.0),
    ],
)
def test_korquad_char_f1_worked_examples(pred, truth, f1):
    assert M.char_f1(pred, truth) == pytest.approx(f1)


def test_korquad_scores_take_the_best_reference_and_report_percent():
    scores = M.korquad_scores(["세종대왕의", "1443년"], [["세종", "세종대왕"], ["1446년", "1443년"]])
    assert scores["exact_match"] == pytest.approx(50.0)
    # item 1: best of F1 vs 세종 (P 2/5, R 1 -> 4/7) and vs 세종대왕 (8/9); item 2: exact
    assert scores["f1"] == pytest.approx(100 * (8 / 9 + 1.0) / 2)


def test_bleu_and_chrf_match_sacrebleu():
    sacrebleu = pytest.importorskip("sacrebleu")
    hyps = ["the cat sat on the mat", "a dog runs fast in the park", "hello world"]
    refs = ["the cat is on the mat", "the dog runs quickly in the park", "hello there world"]
    ours = M.corpus_bleu(hyps, [[r] for r in refs])
    theirs = sacrebleu.corpus_bleu(hyps, [refs], tokenize="none").score
    assert ours == pytest.approx(theirs, abs=1e-6)
    ko_h = ["나는 학교에 간다", "오늘 날씨가 좋다"]
    ko_r = ["나는 학교에 갑니다", "오늘은 날씨가 좋네요"]
    assert M.corpus_chrf(ko_h, ko_r) == pytest.approx(sacrebleu.corpus_chrf(ko_h, [ko_r]).score, abs=1e-6)


def test_bleu_hand_computed_brevity_penalty():
    # hypothesis is a 4-token prefix of a 6-token reference: every precision is 1, BP = exp(1 - 6/4)
    assert M.corpus_bleu(["a b c d"], [["a b c d e f"]]) == pytest.approx(100 * math.exp(1 - 1.5))


def test_correlations_match_scipy():
    from scipy.stats import pearsonr, spearmanr

    x = [0.1, 2.0, 3.5, 1.0, 4.9, 4.9]
    y = [0.0, 2.5, 3.0, 1.5, 5.0, 4.0]
    assert M.pearson(x, y) == pytest.approx(pearsonr(x, y)[0])
    assert M.spearman(x, y) == pytest.approx(spearmanr(x, y)[0])


def test_bootstrap_stderr_is_close_to_the_binomial_formula():
    items = [{"correct": i % 4 != 0} for i in range(400)]  # accuracy 75 %
    se = M.bootstrap_stderr("acc", items, n_resamples=2000, seed=1)["acc"]
    expected = 100 * math.sqrt(0.75 * 0.25 / 400)
    assert se == pytest.approx(expected, rel=0.1)
    assert M.bootstrap_stderr("acc", items, n_resamples=500, seed=3) == M.bootstrap_stderr(
        "acc", items, n_resamples=500, seed=3
    )


def test_aggregate_correlation_is_scaled_to_percent():
    items = [{"prediction": p, "gold": g} for p, g in [(1, 1), (2, 2), (3, 3.5)]]
    out = M.aggregate("pearson_spearman", items)
    assert out["spearman"] == pytest.approx(100.0)
    assert out["pearson"] == pytest.approx(100 * np.corrcoef([1, 2, 3], [1, 2, 3.5])[0, 1])
