"""KoBEST SentiNeg: sentiment of sentences with negation (JSONL ``sentence, label``)."""

from __future__ import annotations

from pathlib import Path

from haneul.evals.tasks import register
from haneul.evals.tasks._base import Example, Task
from haneul.evals.tasks._kobest import simple

NAME = "kobest_sentineg"


def load(path: Path) -> list[Example]:
    return simple(NAME, path, ("sentence",), 2)


TASK = register(
    Task(
        name=NAME,
        kind="choice",
        loader=load,
        template="문장: {sentence}\n감정:",
        choices=("부정", "긍정"),
        labels=("0", "1"),
        metric="acc",
        description="KoBEST SentiNeg (sentiment under negation), JSONL sentence/label",
    )
)
