"""Evaluation metrics for social recommendation, in numpy (no torch needed to evaluate).

- AUC and F1 on held-out positives against sampled negatives, the HGP paper's metrics (Sec. 3);
  the F1 threshold is chosen on the validation split and then applied unchanged to test. With one
  negative per positive, calling everything positive already scores F1 = 2/3, so an F1 is only
  informative next to :func:`all_positive_f1`.
- Platt scaling (:func:`platt_fit`) turns raw dot-product scores into calibrated probabilities.
- Full-ranking Recall@K and NDCG@K with the RecBole protocol: every item is ranked for every test
  user, items the user already has in the earlier splits are excluded from the ranking, Recall is
  hits / |test items| and NDCG divides by the ideal DCG of min(|test items|, K) hits; both are
  averaged over users with at least one test item.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.special import expit


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve via the rank-sum (Mann-Whitney U) statistic; ties count half."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    # average rank (1-based) within each block of tied scores
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def f1_at(labels: np.ndarray, scores: np.ndarray, threshold: float) -> float:
    """F1 of predicting positive when ``score >= threshold``."""
    labels = np.asarray(labels).astype(bool)
    pred = np.asarray(scores) >= threshold
    tp = int((pred & labels).sum())
    if tp == 0:
        return 0.0
    precision = tp / int(pred.sum())
    recall = tp / int(labels.sum())
    return 2 * precision * recall / (precision + recall)


def best_threshold(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """The threshold that maximises F1 of ``score >= threshold``, and that F1; computed in one sort.

    Candidates are the gaps between consecutive distinct scores (a block of tied scores is never
    split), and the threshold sits midway in the chosen gap, so a score a little off the validation
    ones is still classified as its neighbours are. When predicting every pair positive is best,
    the threshold is ``-inf``: the caller can tell the classifier adds nothing (see
    :func:`all_positive_f1`).
    """
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos = int(labels.sum())
    if n_pos == 0:
        return float("inf"), 0.0
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    tp = np.cumsum(y)
    predicted = np.arange(1, len(s) + 1)
    # a threshold can only sit at the last position of a block of equal scores
    last = np.r_[s[1:] != s[:-1], True]
    f1 = np.where(last, 2 * tp / (predicted + n_pos), -1.0)
    best = int(np.argmax(f1))
    if best == len(s) - 1:
        return float("-inf"), float(f1[best])
    return float((s[best] + s[best + 1]) / 2.0), float(f1[best])


def all_positive_f1(labels: np.ndarray) -> float:
    """F1 of calling every pair positive: ``2P / (2P + N)``, 2/3 with one negative per positive.

    Any F1 at or below this is no better than a classifier that ignores the scores.
    """
    labels = np.asarray(labels).astype(bool)
    n_pos = int(labels.sum())
    return 2 * n_pos / (2 * n_pos + (len(labels) - n_pos)) if n_pos else 0.0


def platt_fit(labels: np.ndarray, scores: np.ndarray, iterations: int = 50) -> tuple[float, float]:
    """Platt scaling: ``(a, b)`` with ``P(positive | s) = sigmoid(a * s + b)`` by maximum likelihood.

    Newton's method on the two parameters of a one-feature logistic regression, with Platt's
    smoothed targets (``(P + 1) / (P + 2)`` and ``1 / (N + 2)``) so that perfectly separated scores
    still give finite parameters.
    """
    labels = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("Platt scaling needs both positive and negative examples")
    target = np.where(labels, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))
    # scale the scores so the Newton steps are well conditioned whatever the logit range
    scale = float(np.std(s)) or 1.0
    x = s / scale
    a, b = 1.0, 0.0
    for _ in range(iterations):
        p = expit(a * x + b)
        w = np.maximum(p * (1 - p), 1e-12)
        grad = np.array([((p - target) * x).sum(), (p - target).sum()])
        hess = np.array([[(w * x * x).sum(), (w * x).sum()], [(w * x).sum(), w.sum()]]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-10:
            break
    return float(a / scale), float(b)


def ranking_metrics(
    user_emb: np.ndarray,
    item_emb: np.ndarray,
    test: sp.csr_matrix,
    exclude: sp.csr_matrix,
    ks: tuple[int, ...] = (10, 20),
    batch: int = 1024,
) -> dict[str, float]:
    """Full-ranking Recall@K / NDCG@K for scores ``user_emb @ item_emb.T``.

    ``test`` and ``exclude`` are (n_users, n_items) 0/1 matrices: the held-out positives, and the
    items to drop from each user's ranking (the user's training, and for test also validation,
    items). Returns ``{"recall@K": ..., "ndcg@K": ...}``.
    """
    test = test.tocsr()
    exclude = exclude.tocsr()
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    kmax = max(ks)
    discounts = 1.0 / np.log2(np.arange(2, kmax + 2))
    sums = {f"{m}@{k}": 0.0 for k in ks for m in ("recall", "ndcg")}
    for start in range(0, len(users), batch):
        ub = users[start : start + batch]
        scores = user_emb[ub] @ item_emb.T
        ex = exclude[ub]
        rows = np.repeat(np.arange(len(ub)), np.diff(ex.indptr))
        scores[rows, ex.indices] = -np.inf
        if scores.shape[1] > kmax:
            top = np.argpartition(-scores, kth=kmax - 1, axis=1)[:, :kmax]
        else:
            top = np.tile(np.arange(scores.shape[1]), (len(ub), 1))
        top_scores = np.take_along_axis(scores, top, axis=1)
        top = np.take_along_axis(top, np.argsort(-top_scores, axis=1, kind="mergesort"), axis=1)
        truth = test[ub]
        hits = np.asarray(truth[np.arange(len(ub))[:, None], top].todense(), dtype=np.float64)
        # excluded items sit at -inf; they can reach the top only when a user has < K candidates
        hits[np.isneginf(np.take_along_axis(scores, top, axis=1))] = 0.0
        if hits.shape[1] < kmax:
            hits = np.pad(hits, ((0, 0), (0, kmax - hits.shape[1])))
        n_true = np.diff(truth.indptr).astype(np.float64)
        for k in ks:
            h = hits[:, :k]
            sums[f"recall@{k}"] += float((h.sum(1) / n_true).sum())
            dcg = (h * discounts[:k]).sum(1)
            ideal = np.cumsum(discounts[:k])[np.minimum(n_true, k).astype(int) - 1]
            sums[f"ndcg@{k}"] += float((dcg / ideal).sum())
    n = max(len(users), 1)
    return {key: value / n for key, value in sums.items()}


def pairs_matrix(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> sp.csr_matrix:
    m = sp.csr_matrix((np.ones(len(users), dtype=np.float32), (users, items)), shape=(n_users, n_items))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


__all__ = ["all_positive_f1", "auc", "best_threshold", "f1_at", "pairs_matrix", "platt_fit", "ranking_metrics"]
