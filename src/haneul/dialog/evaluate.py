"""Memory-update evaluation on CareCall-memory-format data (Keep Me Updated §4, memory update).

For every transition (memory k, summary k → memory k+1) each operator predicts memory k+1 from the
*reference* memory k and summary k. Predicted and reference sentences are matched one-to-one when
their character-bigram Jaccard similarity is ≥ the threshold (0.5 by default, see
:mod:`haneul.dialog.text`); precision = matched / predicted, recall = matched / reference, F1 their
harmonic mean, micro-averaged over the transitions of each session index k, over all of them
(``"all"``) and over those from session 2 and 3 on (``"k>=2"``, ``"k>=3"``): session 1 starts from
an empty memory, where every policy adds the summary and scores 1.0, so ``"all"`` flatters the weak
policies and ``"k>=2"`` is the figure that measures memory *updates*. Operation accuracy compares
the predicted pair operations with the labels derived by :func:`haneul.dialog.data.derive_pair_ops`.

With a ``summarizer`` the summary k is produced from the session's dialogue instead of taken from
the file, which scores the whole pipeline (summarise, then update); operation accuracy is then not
defined (the pairs differ from the labelled ones) and is left out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from haneul.dialog.data import Episode, Transition, transitions
from haneul.dialog.operators import Op, Operator, SentenceInfo, UpdateResult
from haneul.dialog.text import MATCH_THRESHOLD, greedy_match

# summary rows that leave out the first sessions (session 1 updates an empty memory)
LATER_SESSIONS = (2, 3)


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

    def overall(self, operator: str, session: str = "all") -> dict[str, Any]:
        """The summary row of ``operator``: ``"all"`` sessions, or ``"k>=2"`` / ``"k>=3"``."""
        return next(r for r in self.rows if r["session"] == session and r["operator"] == operator)


def evaluate(
    episodes: Sequence[Episode] | Sequence[Transition],
    operators: Mapping[str, Operator],
    *,
    threshold: float = MATCH_THRESHOLD,
    summarizer: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> EvalReport:
    trs: list[Transition] = [e for e in episodes if isinstance(e, Transition)]
    if not trs:
        trs = transitions([e for e in episodes if not isinstance(e, Transition)], threshold)
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
    for first in LATER_SESSIONS:
        if any(k >= first for k in by_k):
            for name in operators:
                later = _Tally()
                for k in by_k:
                    if k >= first:
                        later.add(by_k[k][name])
                report.rows.append({"session": f"k>={first}", "operator": name, **later.row()})
    return report


@dataclass
class UpdateErrors:
    """Why a predicted memory differs from the reference, counted by cause (error analysis).

    ``lost``: reference sentences missing from the prediction — a new fact dropped by a PASS (against a
    related memory sentence, or an unrelated one: one that shares no content bigram) or a DELETE, or a
    kept fact removed by a REPLACE or DELETE. ``stale``: predicted sentences the reference does not
    have — an outdated memory sentence kept (a REPLACE / DELETE missed) or a summary sentence added
    (a PASS / DELETE missed). ``confusion``: (derived label, predicted operation) over labelled pairs.
    """

    lost: Counter[str] = field(default_factory=Counter)
    stale: Counter[str] = field(default_factory=Counter)
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, other: UpdateErrors) -> None:
        self.lost.update(other.lost)
        self.stale.update(other.stale)
        self.confusion.update(other.confusion)


def explain_errors(tr: Transition, res: UpdateResult, threshold: float = MATCH_THRESHOLD) -> UpdateErrors:
    """Attribute every sentence in which ``res.new_memory`` and ``tr.next_memory`` differ to a cause."""
    out = UpdateErrors()
    gold = {(p.memory_index, p.summary_index): p.op.value for p in tr.labels}
    for p in res.ops:
        if (p.memory_index, p.summary_index) in gold:
            out.confusion[(gold[(p.memory_index, p.summary_index)], p.op.value)] += 1
    memory, summary = res.previous_memory, res.summary
    by_col: dict[int, list[Any]] = {}
    by_row: dict[int, list[Any]] = {}
    for p in res.ops:
        by_col.setdefault(p.summary_index, []).append(p)
        by_row.setdefault(p.memory_index, []).append(p)
    kept = {j for _, j, _ in greedy_match(res.new_memory, tr.next_memory, threshold)}
    source = {j: i for i, j, _ in greedy_match(memory + summary, tr.next_memory, threshold)}
    for r in range(len(tr.next_memory)):
        if r not in kept:
            out.lost[_lost_cause(source.get(r), len(memory), by_row, by_col)] += 1
    predicted = {i for i, _, _ in greedy_match(res.new_memory, tr.next_memory, threshold)}
    for i, text in enumerate(res.new_memory):
        if i not in predicted:
            out.stale["outdated memory kept" if text in memory else "summary sentence added"] += 1
    return out


def _lost_cause(src: int | None, n_memory: int, by_row: dict[int, list[Any]], by_col: dict[int, list[Any]]) -> str:
    if src is None:
        return "not in memory or summary"
    if src >= n_memory:
        pairs = by_col.get(src - n_memory, [])
        passes = [p for p in pairs if p.op is Op.PASS]
        if passes:
            related = any(SentenceInfo.of(p.memory).topic & SentenceInfo.of(p.summary).topic for p in passes)
            return "new fact dropped by PASS (related memory)" if related else "new fact dropped by PASS (unrelated memory)"
        return "new fact dropped by DELETE" if any(p.op is Op.DELETE for p in pairs) else "new fact dropped as a duplicate"
    ops = {p.op for p in by_row.get(src, [])}
    if Op.REPLACE in ops:
        return "kept fact removed by REPLACE"
    return "kept fact removed by DELETE" if Op.DELETE in ops else "kept fact removed as a duplicate"
