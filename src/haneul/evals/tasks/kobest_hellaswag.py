"""KoBEST HellaSwag: choose the ending of a situation (JSONL ``context, ending_1..ending_4, label``)."""

from __future__ import annotations

from pathlib import Path

from haneul.evals.tasks import register
from haneul.evals.tasks._base import Example, Task
from haneul.evals.tasks._kobest import load_rows

NAME = "kobest_hellaswag"
ENDINGS = ("ending_1", "ending_2", "ending_3", "ending_4")


def load(path: Path) -> list[Example]:
    return [
        Example(id=i, fields={"context": f["context"]}, label=lab, choices=tuple(f[e] for e in ENDINGS))
        for _, i, f, lab in load_rows(NAME, path, ("context", *ENDINGS), 4)
    ]


TASK = register(
    Task(
        name=NAME,
        kind="choice",
        loader=load,
        template="{context}",
        labels=("0", "1", "2", "3"),
        metric="acc",
        description="KoBEST HellaSwag (4 endings), JSONL context/ending_1..4/label",
    )
)
