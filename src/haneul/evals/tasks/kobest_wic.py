"""KoBEST WiC: is a word used in the same sense in two sentences (JSONL ``word, context_1, context_2, label``)."""

from __future__ import annotations

from pathlib import Path

from haneul.evals.tasks import register
from haneul.evals.tasks._base import Example, Task
from haneul.evals.tasks._kobest import simple

NAME = "kobest_wic"


def load(path: Path) -> list[Example]:
    return simple(NAME, path, ("word", "context_1", "context_2"), 2)


TASK = register(
    Task(
        name=NAME,
        kind="choice",
        loader=load,
        template="문장 1: {context_1}\n문장 2: {context_2}\n질문: 두 문장에서 '{word}'의 의미가 같습니까?\n답변:",
        choices=("아니오", "예"),
        labels=("0", "1"),
        metric="acc",
        description="KoBEST WiC (same sense?), JSONL word/context_1/context_2/label",
    )
)
