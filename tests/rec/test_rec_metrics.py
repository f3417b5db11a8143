from __future__ import annotations

import math

import numpy as np
import pytest

from haneul.rec.metrics import (
    all_positive_f1,
    auc,
    best_threshold,
    f1_at,
    pairs_matrix,
    platt_fit,
    ranking_metrics,
)


def test_auc_worked_example_with_a_tie():
    # positives 0.9, 0.4; negatives 0.4, 0.1: pairs (0.9>0.4, 0.9>0.1, 0.4=0.4 -> 1/2, 0.4>0.1) = 3.5 / 4
    assert auc([1, 1, 0, 0], [0.9, 0.4, 0.4, 0.1]) == pytest.approx(0.875)
    assert math.isnan(auc([1, 1], [0.2, 0.3]))


def test_auc_matches_scikit_learn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500)
    scores = np.round(rng.random(500) + 0.3 * labels, 2)  # rounding makes ties
    assert auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))


def test_f1_and_threshold_worked_example():
    labels = [1, 1, 0, 1, 0]
    scores = [0.9, 0.8, 0.7, 0.6, 0.1]
    # threshold 0.6: predict 4 positives, 3 right: P = 3/4, R = 1 -> F1 = 6/7
    assert f1_at(labels, scores, 0.6) == pytest.approx(6 / 7)
    # threshold 0.8: P = 1, R = 2/3 -> F1 = 4/5
    assert f1_at(labels, scores, 0.8) == pytest.approx(0.8)
    # the best cut is between 0.6 and 0.1, placed midway so near-by test scores fall on the same side
    thr, best = best_threshold(labels, scores)
    assert thr == pytest.approx(0.35) and best == pytest.approx(6 / 7)
    # ties: a threshold cannot split equal scores; here calling everything positive is best -> -inf
    thr, best = best_threshold([1, 0, 1], [0.5, 0.5, 0.2])
    assert (thr, best) == (float("-inf"), pytest.approx(0.8))
    assert f1_at([1, 0, 1], [0.5, 0.5, 0.2], thr) == pytest.approx(all_positive_f1([1, 0, 1]))


def test_all_positive_f1_is_the_floor_a_useless_classifier_reaches():
    # one negative per positive: P = 1/2, R = 1 -> F1 = 2/3 whatever the scores
    labels = np.r_[np.ones(50), np.zeros(50)]
    assert all_positive_f1(labels) == pytest.approx(2 / 3)
    noise = np.random.default_rng(0).random(100)
    thr, _ = best_threshold(labels, noise)
    assert f1_at(labels, noise, thr) >= all_positive_f1(labels) - 1e-12


def test_platt_scaling_recovers_a_known_logistic_link():
    rng = np.random.default_rng(0)
    scores = rng.normal(0, 3, 20000)
    labels = rng.random(20000) < 1 / (1 + np.exp(-(0.5 * scores - 1.0)))
    a, b = platt_fit(labels, scores)
    assert a == pytest.approx(0.5, abs=0.03) and b == pytest.approx(-1.0, abs=0.06)
    # separable data still gives finite parameters with a positive slope
    a, b = platt_fit([0, 0, 1, 1], [-1000.0, -900.0, 900.0, 1000.0])
    assert np.isfinite([a, b]).all() and a > 0


def test_recall_and_ndcg_worked_example_with_excluded_items():
    # 2 users, 5 items. user 0 scores items 4 > 3 > 2 > 1 > 0 but item 4 is a training item.
    user_emb = np.array([[1.0], [-1.0]])
    item_emb = np.array([[0.0], [1.0], [2.0], [3.0], [4.0]])
    exclude = pairs_matrix(np.array([0]), np.array([4]), 2, 5)
    # user 0's test items 2 and 0: ranking (excluding 4) is 3, 2, 1, 0 -> with K=2 one hit at rank 2
    # user 1 ranks 0 > 1 > ...: test item 0 is a hit at rank 1
    test = pairs_matrix(np.array([0, 0, 1]), np.array([2, 0, 0]), 2, 5)
    m = ranking_metrics(user_emb, item_emb, test, exclude, ks=(2,))
    recall0, recall1 = 1 / 2, 1.0
    ndcg0 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    ndcg1 = 1.0
    assert m["recall@2"] == pytest.approx((recall0 + recall1) / 2)
    assert m["ndcg@2"] == pytest.approx((ndcg0 + ndcg1) / 2)


def test_ranking_handles_k_larger_than_the_catalogue():
    m = ranking_metrics(np.ones((1, 1)), np.ones((3, 1)), pairs_matrix(np.array([0]), np.array([1]), 1, 3),
                        pairs_matrix(np.array([0]), np.array([0]), 1, 3), ks=(10,))
    assert m["recall@10"] == 1.0
