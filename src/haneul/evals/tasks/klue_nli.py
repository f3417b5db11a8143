"""KLUE-NLI (JSON ``guid, source, premise, hypothesis, gold_label``), the KLUE benchmark's NLI task."""

from __future__ import annotations

from pathlib import Path

from haneul.evals.tasks import register
from haneul.evals.tasks._base import Example, Task, label_index, need, read_records
from haneul.evals.tasks.kornli import LABELS, TEMPLATE, VERBALISER

NAME = "klue_nli"


def load(path: Path) -> list[Example]:
    out = []
    for loc, obj in read_records(NAME, path):
        guid = str(need(NAME, path, loc, obj, "guid"))
        premise = need(NAME, path, loc, obj, "premise")
        hypothesis = need(NAME, path, loc, obj, "hypothesis")
        raw = need(NAME, path, loc, obj, "gold_label")
        # the Hugging Face export stores the label as its index
        if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw < len(LABELS):
            raw = LABELS[raw]
        label = label_index(NAME, path, loc, raw, LABELS)
        out.append(Example(id=guid, fields={"premise": premise, "hypothesis": hypothesis}, label=label))
    return out


TASK = register(
    Task(
        name=NAME,
        kind="choice",
        loader=load,
        template=TEMPLATE,
        choices=VERBALISER,
        labels=LABELS,
        metric="acc",
        description="KLUE-NLI, JSON guid/source/premise/hypothesis/gold_label",
    )
)
