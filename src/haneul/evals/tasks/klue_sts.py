"""KLUE-STS (JSON ``guid, source, sentence1, sentence2, labels: {label, real-label, binary-label}``).

Scored like KorSTS: expected score over the verbalised scores 0..5 against ``labels.real-label``
(falling back to ``labels.label``), Pearson / Spearman.
"""

from __future__ import annotations

from pathlib import Path

from haneul.evals.tasks import register
from haneul.evals.tasks._base import Example, Task, as_float, bad_line, need, read_records
from haneul.evals.tasks.korsts import SCORES, TEMPLATE

NAME = "klue_sts"


def load(path: Path) -> list[Example]:
    out = []
    for loc, obj in read_records(NAME, path):
        guid = str(need(NAME, path, loc, obj, "guid"))
        s1 = need(NAME, path, loc, obj, "sentence1")
        s2 = need(NAME, path, loc, obj, "sentence2")
        labels = need(NAME, path, loc, obj, "labels")
        if not isinstance(labels, dict) or ("real-label" not in labels and "label" not in labels):
            raise bad_line(NAME, path, loc, "missing field 'labels.real-label'")
        raw = labels.get("real-label", labels.get("label"))
        score = as_float(NAME, path, loc, raw, "labels.real-label")
        if not 0.0 <= score <= 5.0:
            raise bad_line(NAME, path, loc, f"score {score} is outside the label range 0-5")
        out.append(Example(id=guid, fields={"sentence1": s1, "sentence2": s2}, score=score))
    return out


TASK = register(
    Task(
        name=NAME,
        kind="regression",
        loader=load,
        template=TEMPLATE,
        choices=SCORES,
        choice_values=tuple(float(s) for s in SCORES),
        metric="pearson_spearman",
        description="KLUE-STS 0-5 similarity (Pearson/Spearman), JSON guid/sentence1/sentence2/labels",
    )
)
