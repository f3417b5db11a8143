"""Proactive inspection: whom to test first, ranked from the answers of their monitoring calls.

CareCall (Lee et al., 2020, the statistics staff use) phoned people under active monitoring twice a
day so that public-health staff could see who to look at — and test — before anyone called in. This
module turns each person's calls into a risk ranking. :func:`person_features` reads a person's call
history up to a day into the features of :data:`FEATURES` (temperature maximum, last reading and
trend, fever calls, symptom counts and onset, days since the first symptom, unanswered calls,
contact answers). Two rankers share them:

- :func:`rule_score`, a transparent points rule whose every point comes with a reason staff can
  read (``최고 체온 38.2도``, ``체온 상승 +0.6도/일``, ``호흡곤란``);
- :class:`LogisticModel`, a logistic regression fitted in numpy (Newton steps with an L2 penalty) on a
  simulated cohort, whose reasons are the features that push a person's score up the most.

:func:`evaluate` measures a ranking against the simulator's infection truth, beside random order and
"fever today" (only people whose temperature today is 37.5 °C or more, hottest first): the cases in
the top 10 % and the top-k curve on the last day, and, with ``budget`` tests a day given to people not
yet tested, the day each case is found. ``benchmarks/bench_carecall_inspection.py`` runs it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from haneul.carecall.campaigns import UNANSWERED
from haneul.carecall.simulate import FEVER
from haneul.errors import InvalidInput

__all__ = [
    "FEATURES",
    "METHODS",
    "SYMPTOMS",
    "CallObservation",
    "LogisticModel",
    "Ranked",
    "evaluate",
    "fit_logistic",
    "observe",
    "person_features",
    "rank",
    "rule_score",
    "training_set",
]

#: the respiratory symptoms counted (fever is read from the temperature, contact apart)
SYMPTOMS = ("cough", "sore_throat", "breathing", "taste_smell")
SYMPTOM_NAMES = {"cough": "기침", "sore_throat": "인후통", "breathing": "호흡곤란", "taste_smell": "미각·후각 이상"}
#: what a person's history is read into, in this order (the model's inputs)
FEATURES = (
    "t_max",  # highest temperature reported, °C above 36.5 (0 when none was)
    "t_last",  # the latest reading, °C above 36.5
    "t_slope",  # least-squares slope of the readings of the last three days, °C per day
    "fever_calls",  # calls reporting 37.5 °C or more
    "symptoms_ever",  # distinct symptoms ever reported
    "symptoms_today",  # distinct symptoms reported on the day ranked
    "symptom_share",  # share of answered calls reporting any symptom
    "breathing",  # breathing difficulty ever reported (0/1)
    "taste_smell",  # loss of taste or smell ever reported (0/1)
    "onset_recent",  # 1 / (1 + days since the first symptom or fever), 0 when none
    "days_since_first",  # days since the first symptom or fever, 0 when none
    "unanswered_share",  # share of calls nobody answered
    "unanswered_streak",  # unanswered calls in a row up to the day ranked
    "contact",  # said yes to meeting a confirmed case (0/1)
)
METHODS = ("rule", "model", "fever_today", "random")
_BASE = 36.5


@dataclass(frozen=True)
class CallObservation:
    """What one call told about a person: whether anyone answered, the temperature and the yes/no symptoms."""

    person: str
    day: int
    answered: bool
    temperature: float | None = None
    symptoms: Mapping[str, bool] = field(default_factory=dict)


def observe(record: Any, *, person: str | None = None, day: int | None = None) -> CallObservation:
    """A :class:`~haneul.carecall.agent.CallRecord`, or its ``to_dict()`` as stored (``None`` for a call
    that failed before a record), as an observation; ``person`` and ``day`` override the record's."""
    get = record.get if isinstance(record, Mapping) else (lambda k, d=None: getattr(record, k, d))
    if record is None:
        if person is None or day is None:
            raise InvalidInput("a call without a record needs person= and day=")
        return CallObservation(str(person), int(day), False)
    who = person if person is not None else get("person", "")
    when = day if day is not None else get("day")
    if when is None:
        raise InvalidInput(f"the call record of {who!r} has no day; pass day=")
    outcome = get("outcome")
    answered = bool(get("answers")) and outcome not in UNANSWERED
    temp = get("temperature")
    return CallObservation(str(who), int(when), answered, None if temp is None else float(temp),
                           dict(get("symptoms") or {}) if answered else {})


def _slope(points: Sequence[tuple[float, float]]) -> float:
    if len(points) < 2:
        return 0.0
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return 0.0 if var == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var


def person_features(calls: Iterable[CallObservation], day: int) -> dict[str, float]:
    """The :data:`FEATURES` of one person from their calls up to and including ``day``."""
    history = sorted((c for c in calls if c.day <= day), key=lambda c: c.day)
    answered = [c for c in history if c.answered]
    readings = [(i, c.day, c.temperature) for i, c in enumerate(answered) if c.temperature is not None]
    temps = [t for _, _, t in readings]
    # two calls a day: place each reading at its call's position within the day for the slope
    per_day: dict[int, int] = {}
    points = []
    for _, d, t in readings:
        if d >= day - 2:
            points.append((d + 0.5 * per_day.get(d, 0), t))
        per_day[d] = per_day.get(d, 0) + 1
    first = None
    ever: set[str] = set()
    with_symptom = 0
    for c in answered:
        said = {s for s in SYMPTOMS if c.symptoms.get(s)}
        ever |= said
        with_symptom += bool(said)
        if first is None and (said or (c.temperature is not None and c.temperature >= FEVER)):
            first = c.day
    today = {s for c in answered if c.day == day for s in SYMPTOMS if c.symptoms.get(s)}
    streak = 0
    for c in reversed(history):
        if c.answered:
            break
        streak += 1
    since = 0 if first is None else day - first
    return {
        "t_max": max(temps) - _BASE if temps else 0.0,
        "t_last": temps[-1] - _BASE if temps else 0.0,
        "t_slope": _slope(points),
        "fever_calls": float(sum(t >= FEVER for t in temps)),
        "symptoms_ever": float(len(ever)),
        "symptoms_today": float(len(today)),
        "symptom_share": with_symptom / len(answered) if answered else 0.0,
        "breathing": float("breathing" in ever),
        "taste_smell": float("taste_smell" in ever),
        "onset_recent": 0.0 if first is None else 1.0 / (1.0 + since),
        "days_since_first": float(since),
        "unanswered_share": (len(history) - len(answered)) / len(history) if history else 0.0,
        "unanswered_streak": float(streak),
        "contact": float(any(c.symptoms.get("contact") for c in answered)),
    }


# ------------------------------------------------------------------------------------------------
# the transparent rule


def rule_score(f: Mapping[str, float]) -> tuple[float, list[str]]:
    """Points for a person's features, with one Korean reason per term that scored.

    Fever counts most (3, and 1 more from 38.5 °C), then a rising temperature (2 when the readings of
    the last three days climb 0.2 °C a day or more: a fever on its way, before it crosses 37.5),
    each distinct symptom 1.5, breathing difficulty 2 more, a first symptom in the last two days 1,
    contact with a confirmed case 2, and two or more unanswered calls in a row 1 (someone too ill, or
    avoiding the call, needs a visit either way).
    """
    score, why = 0.0, []
    t_max = f["t_max"] + _BASE
    if f["t_max"] > 0 and t_max >= FEVER:
        score += 3.0
        why.append(f"최고 체온 {t_max:.1f}도")
        if t_max >= 38.5:
            score += 1.0
    if f["t_slope"] >= 0.2:
        score += 2.0
        why.append(f"체온 상승 +{f['t_slope']:.1f}도/일")
    if f["symptoms_ever"]:
        score += 1.5 * f["symptoms_ever"]
        why.append(f"증상 {int(f['symptoms_ever'])}개")
    if f["breathing"]:
        score += 2.0
        why.append("호흡곤란")
    if f["onset_recent"] and f["days_since_first"] <= 2:
        score += 1.0
        why.append(f"증상 시작 {int(f['days_since_first'])}일 전" if f["days_since_first"] else "오늘 증상 시작")
    if f["contact"]:
        score += 2.0
        why.append("확진자 접촉")
    if f["unanswered_streak"] >= 2:
        score += 1.0
        why.append(f"연속 미응답 {int(f['unanswered_streak'])}회")
    return score, why


# ------------------------------------------------------------------------------------------------
# the learned model


@dataclass(frozen=True)
class LogisticModel:
    """``p = sigmoid(bias + weights · (x - mean) / scale)`` over :data:`FEATURES` (as named in ``features``)."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float

    def z(self, f: Mapping[str, float]) -> list[float]:
        return [(f[k] - m) / s for k, m, s in zip(self.features, self.mean, self.scale, strict=True)]

    def score(self, f: Mapping[str, float]) -> tuple[float, list[str]]:
        """The probability of infection, with the (up to three) features that raise it most as reasons."""
        parts = [w * z for w, z in zip(self.weights, self.z(f), strict=True)]
        logit = self.bias + sum(parts)
        top = sorted(((p, k) for p, k in zip(parts, self.features, strict=True) if p > 0.25), reverse=True)[:3]
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, logit)))), [f"{k} {f[k]:g}" for _, k in top]

    def to_dict(self) -> dict[str, Any]:
        return {"features": list(self.features), "mean": list(self.mean), "scale": list(self.scale),
                "weights": list(self.weights), "bias": self.bias}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogisticModel:
        return cls(tuple(data["features"]), tuple(data["mean"]), tuple(data["scale"]), tuple(data["weights"]),
                   float(data["bias"]))


def fit_logistic(rows: Sequence[Mapping[str, float]], labels: Sequence[bool], *, l2: float = 1.0,
                 steps: int = 25, features: Sequence[str] = FEATURES) -> LogisticModel:
    """Fit by Newton's method (iteratively reweighted least squares) on standardised features.

    ``l2`` penalises the weights, not the bias; with a dozen features and thousands of rows the
    Hessian is tiny, so a few exact steps beat tuning a learning rate.
    """
    import numpy as np

    if len(rows) != len(labels) or not rows:
        raise InvalidInput(f"need as many labels as rows (and some rows); got {len(rows)} rows, {len(labels)} labels")
    x = np.array([[r[k] for k in features] for r in rows], dtype=np.float64)  # (n, d)
    y = np.array(labels, dtype=np.float64)  # (n,)
    mean, scale = x.mean(0), x.std(0)
    scale[scale == 0] = 1.0  # a feature constant in training carries no weight
    z = np.hstack([np.ones((len(x), 1)), (x - mean) / scale])  # (n, d+1), bias first
    w = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    penalty[0] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -60, 60)))
        grad = z.T @ (p - y) + penalty * w
        hess = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty + 1e-9)
        delta = np.linalg.solve(hess, grad)
        w -= delta
        if float(np.abs(delta).max()) < 1e-8:
            break
    return LogisticModel(tuple(features), tuple(float(v) for v in mean), tuple(float(v) for v in scale),
                         tuple(float(v) for v in w[1:]), float(w[0]))


# ------------------------------------------------------------------------------------------------
# ranking


@dataclass(frozen=True)
class Ranked:
    """One person's place in the ranking: ``score`` (points for the rule, a probability for the model)."""

    person: str
    score: float
    reasons: tuple[str, ...]
    features: Mapping[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"person": self.person, "score": round(self.score, 4), "reasons": list(self.reasons),
                "features": {k: round(v, 4) for k, v in self.features.items()}}


def _by_person(calls: Iterable[CallObservation]) -> dict[str, list[CallObservation]]:
    out: dict[str, list[CallObservation]] = {}
    for c in calls:
        out.setdefault(c.person, []).append(c)
    return out


def _fever_today(calls: Sequence[CallObservation], day: int) -> tuple[float, list[str]]:
    today = [c.temperature for c in calls if c.day == day and c.answered and c.temperature is not None]
    hot = max(today, default=0.0)
    return (hot, [f"오늘 체온 {hot:.1f}도"]) if hot >= FEVER else (0.0, [])


def rank(calls: Iterable[CallObservation], *, day: int | None = None, method: str = "rule",
         model: LogisticModel | None = None, people: Iterable[str] = (), seed: int = 0) -> list[Ranked]:
    """Everyone in ``calls`` (and ``people`` never called), highest risk first, as of ``day`` (default:
    the last day called). Ties keep a seeded random order, so no one is favoured by their id."""
    if method not in METHODS:
        raise InvalidInput(f"unknown ranking method {method!r}; use one of {', '.join(METHODS)}")
    if method == "model" and model is None:
        raise InvalidInput("method='model' needs model= (fit one with fit_logistic on a training_set)")
    grouped = _by_person(calls)
    for p in people:
        grouped.setdefault(str(p), [])
    if day is None:
        day = max((c.day for cs in grouped.values() for c in cs), default=0)
    order = sorted(grouped)
    random.Random(f"rank:{seed}:{day}").shuffle(order)
    out = []
    for i, person in enumerate(order):
        feats = person_features(grouped[person], day)
        if method == "rule":
            score, why = rule_score(feats)
        elif method == "model":
            assert model is not None
            score, why = model.score(feats)
        elif method == "fever_today":
            score, why = _fever_today(grouped[person], day)
        else:
            score, why = -float(i), []
        out.append((score, -i, Ranked(person, score, tuple(why), feats)))
    out.sort(key=lambda t: (t[0], t[1]), reverse=True)
    return [r for _, _, r in out]


def training_set(calls: Iterable[CallObservation], truth: Mapping[str, bool],
                 days: Iterable[int]) -> tuple[list[dict[str, float]], list[bool]]:
    """One row per person and day (their features as of that day) labelled with their infection."""
    grouped = _by_person(calls)
    for p in truth:
        grouped.setdefault(p, [])
    rows, labels = [], []
    for d in days:
        for person in sorted(grouped):
            rows.append(person_features(grouped[person], d))
            labels.append(bool(truth[person]))
    return rows, labels


# ------------------------------------------------------------------------------------------------
# evaluation

#: the shares of the population at which the top-k curve is read
TOP_SHARES = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)


def evaluate(calls: Sequence[CallObservation], truth: Mapping[str, bool], days: int, *,
             methods: Sequence[str] = METHODS, model: LogisticModel | None = None, budget: float = 0.1,
             seed: int = 0) -> dict[str, dict[str, Any]]:
    """How each ranking finds the true cases, per method.

    On the last day: ``found_top10`` cases in the top ``budget`` share (with ``recall_top10`` and
    ``precision_top10``) and ``recall_at`` the :data:`TOP_SHARES`. Over the campaign, testing the top
    ``budget`` share of the people *not yet tested* each day: ``found_by_day`` (the share of cases
    found by the end of each day) and ``mean_day_found`` (over the cases found; ``None`` when none).
    """
    people = sorted(truth)
    cases = sum(truth.values())
    k = max(1, round(budget * len(people)))
    out: dict[str, dict[str, Any]] = {}
    for method in methods:
        ranked = rank(calls, day=days - 1, method=method, model=model, people=people, seed=seed)
        order = [r.person for r in ranked]
        hits = sum(truth[p] for p in order[:k])
        at = {f"{s:g}": (sum(truth[p] for p in order[:max(1, round(s * len(people)))]) / cases if cases else None)
              for s in TOP_SHARES}
        tested: set[str] = set()
        found_day: dict[str, int] = {}
        by_day = []
        for d in range(days):
            todays = [r.person for r in rank(calls, day=d, method=method, model=model, people=people, seed=seed)
                      if r.person not in tested][:k]
            tested.update(todays)
            found_day.update({p: d for p in todays if truth[p]})
            by_day.append(len(found_day) / cases if cases else None)
        out[method] = {
            "found_top10": hits, "recall_top10": hits / cases if cases else None, "precision_top10": hits / k,
            "recall_at": at, "found_by_day": by_day,
            "mean_day_found": sum(found_day.values()) / len(found_day) if found_day else None,
            "cases": cases, "tests_per_day": k,
        }
    return out
