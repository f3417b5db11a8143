"""KLUE-STS (JSON ``guid, source, sentence1, sentence2, labels: {label, real-label, binary-label}``).

Scored like KorSTS: expected score over the verbalised scores 0..5 against ``labels.real-label``
(falling back to ``labels.label``), Pearson / Spearman.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from haneul.evals.tasks import korsts, register
from haneul.evals.tasks._base import Example, bad_line, need_fields, read_records

NAME = "klue_sts"


def load(path: Path) -> list[Example]:
    out = []
    for loc, obj in read_records(NAME, path):
        row = need_fields(NAME, path, loc, obj, ("guid", "sentence1", "sentence2", "labels"))
        labels = row["labels"]
        if not isinstance(labels, dict) or ("real-label" not in labels and "label" not in labels):
            raise bad_line(NAME, path, loc, "missing field 'labels.real-label'")
        raw = labels.get("real-label", labels.get("label"))
        score = korsts.sts_score(NAME, path, loc, raw, "labels.real-label")
        fields = {"sentence1": row["sentence1"], "sentence2": row["sentence2"]}
        out.append(Example(id=str(row["guid"]), fields=fields, score=score))
    return out


# the task is KorSTS's (scores 0-5, prompt, correlation); only the file format differs
TASK = register(
    replace(
        korsts.TASK,
        name=NAME,
        loader=load,
        description="KLUE-STS 0-5 similarity (Pearson/Spearman), JSON guid/sentence1/sentence2/labels",
    )
)
