"""KLUE-NLI (JSON ``guid, source, premise, hypothesis, gold_label``), the KLUE benchmark's NLI task."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from haneul.evals.tasks import kornli, register
from haneul.evals.tasks._base import Example, label_index, need_fields, read_records

NAME = "klue_nli"


def load(path: Path) -> list[Example]:
    out = []
    for loc, obj in read_records(NAME, path):
        row = need_fields(NAME, path, loc, obj, ("guid", "premise", "hypothesis", "gold_label"))
        label = label_index(NAME, path, loc, row["gold_label"], kornli.LABELS, by_position=True)
        fields = {"premise": row["premise"], "hypothesis": row["hypothesis"]}
        out.append(Example(id=str(row["guid"]), fields=fields, label=label))
    return out


# the task is KorNLI's (labels, verbaliser, prompt); only the file format differs
TASK = register(
    replace(
        kornli.TASK,
        name=NAME,
        loader=load,
        description="KLUE-NLI, JSON guid/source/premise/hypothesis/gold_label",
    )
)
