"""Scores for the evaluation harness: accuracy, KorQuAD EM / character F1, BLEU, chrF, Pearson /
Spearman, and bootstrap standard errors.

The KorQuAD functions follow the rules of the official KorQuAD 1.0 evaluation script: answers are
normalised (quote and bracket symbols dropped, ASCII punctuation removed, lower-cased, whitespace
collapsed) and F1 is computed over the *characters* of the whitespace tokens, because Korean answers
differ mostly in attached particles (세종대왕 / 세종대왕의), which word-level F1 would score as zero.
BLEU (Papineni et al., 2002) and chrF (Popović, 2015) are corpus-level and match sacreBLEU's defaults
(BLEU with ``exp`` smoothing on whitespace tokens; chrF with character 6-grams, beta 2).
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from haneul.errors import InvalidInput

# --------------------------------------------------------------------------------------------------
# KorQuAD 1.0

_KORQUAD_SYMBOLS = re.compile("['\"《》<>〈〉()‘’]")
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Normalise an answer the way the KorQuAD 1.0 script does before comparing."""
    text = _KORQUAD_SYMBOLS.sub(" ", text)
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    return " ".join(text.split())


def exact_match(prediction: str, truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(truth))


def char_f1(prediction: str, truth: str) -> float:
    """Character-level F1 over the normalised answers' characters (spaces excluded)."""
    pred_chars = list(normalize_answer(prediction).replace(" ", ""))
    true_chars = list(normalize_answer(truth).replace(" ", ""))
    same = sum((Counter(pred_chars) & Counter(true_chars)).values())
    if same == 0:
        return 0.0
    precision = same / len(pred_chars)
    recall = same / len(true_chars)
    return 2 * precision * recall / (precision + recall)


def best_over(fn: Callable[[str, str], float], prediction: str, truths: Sequence[str]) -> float:
    return max(fn(prediction, t) for t in truths) if truths else 0.0


def korquad_scores(predictions: Sequence[str], answers: Sequence[Sequence[str]]) -> dict[str, float]:
    """``{"exact_match", "f1"}`` in percent, as the official script reports them."""
    n = len(predictions)
    if n == 0:
        return {"exact_match": 0.0, "f1": 0.0}
    em = sum(best_over(exact_match, p, a) for p, a in zip(predictions, answers, strict=True))
    f1 = sum(best_over(char_f1, p, a) for p, a in zip(predictions, answers, strict=True))
    return {"exact_match": 100.0 * em / n, "f1": 100.0 * f1 / n}


# --------------------------------------------------------------------------------------------------
# BLEU / chrF


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[Sequence[str]], max_order: int = 4) -> float:
    """Corpus BLEU in percent over whitespace tokens (sacreBLEU ``tokenize='none'``, ``exp`` smoothing)."""
    correct = [0] * max_order
    total = [0] * max_order
    hyp_len = ref_len = 0
    for hyp, refs in zip(hypotheses, references, strict=True):
        h = hyp.split()
        rs = [r.split() for r in refs]
        hyp_len += len(h)
        # the reference closest in length sets the brevity penalty (ties go to the shorter)
        ref_len += min((abs(len(r) - len(h)), len(r)) for r in rs)[1]
        for n in range(1, max_order + 1):
            hyp_counts = _ngrams(h, n)
            max_ref: Counter = Counter()
            for r in rs:
                max_ref |= _ngrams(r, n)
            correct[n - 1] += sum((hyp_counts & max_ref).values())
            total[n - 1] += max(len(h) - n + 1, 0)
    if hyp_len == 0 or correct[0] == 0:
        return 0.0
    log_prec = 0.0
    smooth = 1.0
    for c, t in zip(correct, total, strict=True):
        if t == 0:
            return 0.0
        if c == 0:
            smooth *= 2
            log_prec += math.log(1.0 / (smooth * t))
        else:
            log_prec += math.log(c / t)
    bp = 1.0 if hyp_len >= ref_len else math.exp(1 - ref_len / hyp_len)
    return 100.0 * bp * math.exp(log_prec / max_order)


def corpus_chrf(hypotheses: Sequence[str], references: Sequence[str], order: int = 6, beta: float = 2.0) -> float:
    """Corpus chrF in percent: character n-gram precision and recall averaged over n, then F-beta."""
    stats = np.zeros((order, 3))  # per n: hypothesis n-grams, reference n-grams, matches
    for hyp, ref in zip(hypotheses, references, strict=True):
        h = hyp.replace(" ", "")
        r = ref.replace(" ", "")
        for n in range(1, order + 1):
            hc, rc = _ngrams(h, n), _ngrams(r, n)
            stats[n - 1] += (sum(hc.values()), sum(rc.values()), sum((hc & rc).values()))
    precs, recs = [], []
    for n_hyp, n_ref, n_match in stats:
        if n_hyp > 0 and n_ref > 0:
            precs.append(n_match / n_hyp)
            recs.append(n_match / n_ref)
    if not precs:
        return 0.0
    p, r = float(np.mean(precs)), float(np.mean(recs))
    if p + r == 0:
        return 0.0
    b2 = beta * beta
    return 100.0 * (1 + b2) * p * r / (b2 * p + r)


# --------------------------------------------------------------------------------------------------
# correlation


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    from scipy.stats import rankdata

    return pearson(rankdata(x), rankdata(y))


# --------------------------------------------------------------------------------------------------
# per-task aggregation and bootstrap

METRICS = ("acc", "korquad", "em", "f1", "bleu", "chrf", "pearson_spearman")


def aggregate(metric: str, items: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Corpus-level scores from per-item records (see the runner for the fields each metric uses).

    Accuracy and EM/F1 are percentages; correlations are in [-1, 1] scaled by 100 so every figure
    in a report reads on the same 0-100 scale.
    """
    if metric == "acc":
        n = len(items)
        return {"acc": 100.0 * sum(float(i["correct"]) for i in items) / n if n else 0.0}
    if metric in ("korquad", "em", "f1"):
        scores = korquad_scores([i["prediction"] for i in items], [i["answers"] for i in items])
        if metric == "em":
            return {"exact_match": scores["exact_match"]}
        if metric == "f1":
            return {"f1": scores["f1"]}
        return scores
    if metric == "bleu":
        return {"bleu": corpus_bleu([i["prediction"] for i in items], [i["answers"] for i in items])}
    if metric == "chrf":
        return {"chrf": corpus_chrf([i["prediction"] for i in items], [i["answers"][0] for i in items])}
    if metric == "pearson_spearman":
        pred = [float(i["prediction"]) for i in items]
        gold = [float(i["gold"]) for i in items]
        return {"pearson": 100.0 * pearson(pred, gold), "spearman": 100.0 * spearman(pred, gold)}
    raise InvalidInput(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")


def bootstrap_stderr(
    metric: str, items: Sequence[dict[str, Any]], n_resamples: int = 1000, seed: int = 0
) -> dict[str, float]:
    """Standard error of each corpus score: the spread of the score over resampled item sets."""
    if len(items) < 2 or n_resamples < 2:
        return {k: 0.0 for k in aggregate(metric, items)}
    rng = np.random.default_rng(seed)
    n = len(items)
    draws: dict[str, list[float]] = {}
    if metric == "acc":
        # a vectorised fast path: accuracy is a mean, so resample the 0/1 vector directly
        correct = np.array([float(i["correct"]) for i in items])
        idx = rng.integers(0, n, size=(n_resamples, n))
        return {"acc": float((100.0 * correct[idx].mean(axis=1)).std(ddof=1))}
    for _ in range(n_resamples):
        sample = [items[j] for j in rng.integers(0, n, size=n)]
        for k, v in aggregate(metric, sample).items():
            draws.setdefault(k, []).append(v)
    return {k: float(np.std(v, ddof=1)) for k, v in draws.items()}
