"""KoBEST BoolQ: yes/no questions about a paragraph (JSONL ``paragraph, question, label``)."""

from __future__ import annotations

from pathlib import Path

from haneul.evals.tasks import register
from haneul.evals.tasks._base import Example, Task
from haneul.evals.tasks._kobest import simple

NAME = "kobest_boolq"


def load(path: Path) -> list[Example]:
    return simple(NAME, path, ("paragraph", "question"), 2)


TASK = register(
    Task(
        name=NAME,
        kind="choice",
        loader=load,
        template="{paragraph}\n질문: {question}\n답변:",
        choices=("아니오", "예"),
        labels=("0", "1"),
        metric="acc",
        description="KoBEST BoolQ (yes/no), JSONL paragraph/question/label",
    )
)
