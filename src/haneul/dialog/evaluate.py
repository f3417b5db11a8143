"""Memory-update evaluation on CareCall-memory-format data (Keep Me Updated §4, memory update).

For every transition (memory k, summary k → memory k+1) each operator predicts memory k+1 from the
*reference* memory k and summary k. Predicted and reference sentences are matched one-to-one when
their character-bigram Jaccard similarity is ≥ the threshold (0.5 by default, see
:mod:`haneul.dialog.text`); precision = matched / predicted, recall = matched / reference, F1 their
harmonic mean, micro-averaged over the transitions of each session index k. Operation accuracy compares
the predicted pair operations with the labels derived by :func:`haneul.dialog.data.derive_pair_ops`.

With a ``summarizer`` the summary k is produced from the session's dialogue instead of taken from
the file, which scores the whole pipeline (summarise, then update); operation accuracy is then not
defined (the pairs differ from the labelled ones) and is left out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from haneul.dialog.data import Episode, Transition, transitions
from haneul.dialog.operators import Operator
from haneul.dialog.text import MATCH_THRESHOLD, greedy_match


@dataclass
class _Tally:
    transitions: int = 0
    pred: int = 0
    ref: int = 0
    matched: int = 0
    pairs: int = 0
    correct: int = 0
    fallbacks: int = 0
    exact: int = 0

    def add(self, other: _Tally) -> None:
        for k in self.__dataclass_fields__:
            setattr(self, k, getattr(self, k) + getattr(other, k))

    def row(self) -> dict[str, Any]:
        p = self.matched / self.pred if self.pred else 0.0
        r = self.matched / self.ref if self.ref else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        return {
            "transitions": self.transitions, "precision": p, "recall": r, "f1": f,
            "op_acc": self.correct / self.pairs if self.pairs else None, "pairs": self.pairs,
            "exact_match": self.exact / self.transitions if self.transitions else 0.0, "fallbacks": self.fallbacks,
        }


def score_transition(
    tr: Transition, op: Operator, threshold: float = MATCH_THRESHOLD, summary: list[str] | None = None
) -> tuple[_Tally, list[str]]:
    """Score one update; ``summary`` replaces the reference summary (and disables op accuracy)."""
    t = _Tally(transitions=1)
    labelled = summary is None
    summary = tr.summary if summary is None else summary
    if summary:
        res = op.update(tr.memory, summary)
        pred, ops = res.new_memory, res.ops
        t.fallbacks = int(res.fallback is not None)
    else:  # nothing learned this session: every policy keeps the memory as it is
        pred, ops = list(tr.memory), []
    matches = greedy_match(pred, tr.next_memory, threshold)
    t.pred, t.ref, t.matched = len(pred), len(tr.next_memory), len(matches)
    t.exact = int(len(matches) == len(pred) == len(tr.next_memory))
    gold = {(p.memory_index, p.summary_index): p.op for p in tr.labels} if labelled else {}
    for p in ops:
        if (p.memory_index, p.summary_index) in gold:
            t.pairs += 1
            t.correct += int(gold[(p.memory_index, p.summary_index)] is p.op)
    return t, pred


@dataclass
class EvalReport:
    threshold: float
    operators: list[str]
    summarizer: str = "reference"
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per (session index or "all", operator)
    predictions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "summarizer": self.summarizer, "operators": self.operators, "rows": self.rows}

    def overall(self, operator: str) -> dict[str, Any]:
        return next(r for r in self.rows if r["session"] == "all" and r["operator"] == operator)


def evaluate(
    episodes: Sequence[Episode] | Sequence[Transition],
    operators: Mapping[str, Operator],
    *,
    threshold: float = MATCH_THRESHOLD,
    summarizer: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> EvalReport:
    trs = list(episodes) if episodes and isinstance(episodes[0], Transition) else transitions(episodes, threshold)  # type: ignore[arg-type]
    report = EvalReport(threshold=threshold, operators=list(operators),
                        summarizer=getattr(summarizer, "name", "reference") if summarizer is not None else "reference")
    by_k: dict[int, dict[str, _Tally]] = {}
    total = {name: _Tally() for name in operators}
    done = 0
    for tr in trs:
        summary = summarizer.summarize(tr.dialogue, tr.memory).sentences if summarizer is not None else None
        for name, op in operators.items():
            t, pred = score_transition(tr, op, threshold, summary)
            by_k.setdefault(tr.index, {n: _Tally() for n in operators})[name].add(t)
            total[name].add(t)
            report.predictions.setdefault(name, []).append({"guid": tr.guid, "predicted": pred, "reference": tr.next_memory})
            done += 1
            if progress:
                progress(done, len(trs) * len(operators))
    for k in sorted(by_k):
        for name in operators:
            report.rows.append({"session": k, "operator": name, **by_k[k][name].row()})
    for name in operators:
        report.rows.append({"session": "all", "operator": name, **total[name].row()})
    return report
