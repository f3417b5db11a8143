"""KoBEST COPA: pick the plausible cause or effect (JSONL ``premise, question, alternative_1/2, label``).

The premise is followed by a connective chosen by the question ("원인" -> "왜냐하면", "결과" ->
"그래서") and the two alternatives are scored as continuations.
"""

from __future__ import annotations

from pathlib import Path

from haneul.evals.tasks import register
from haneul.evals.tasks._base import Example, Task, bad_line
from haneul.evals.tasks._kobest import load_rows

NAME = "kobest_copa"
CONNECTIVE = {"원인": "왜냐하면", "결과": "그래서"}


def load(path: Path) -> list[Example]:
    out = []
    for loc, ident, f, label in load_rows(NAME, path, ("premise", "question", "alternative_1", "alternative_2"), 2):
        if f["question"] not in CONNECTIVE:
            raise bad_line(NAME, path, loc, f"question {f['question']!r} must be '원인' or '결과'")
        fields = {"premise": f["premise"], "connective": CONNECTIVE[f["question"]]}
        out.append(Example(id=ident, fields=fields, label=label, choices=(f["alternative_1"], f["alternative_2"])))
    return out


TASK = register(
    Task(
        name=NAME,
        kind="choice",
        loader=load,
        template="{premise} {connective}",
        labels=("0", "1"),
        metric="acc",
        description="KoBEST COPA (cause/effect), JSONL premise/question/alternative_1/alternative_2/label",
    )
)
