"""KorNLI natural-language inference (TSV ``sentence1, sentence2, gold_label``), three classes."""

from __future__ import annotations

from pathlib import Path

from haneul.evals.tasks import register
from haneul.evals.tasks._base import Example, Task, label_index, read_tsv

NAME = "kornli"
LABELS = ("entailment", "neutral", "contradiction")
VERBALISER = ("예", "아마도", "아니오")
TEMPLATE = "{premise}\n질문: {hypothesis} 참인가요?\n답:"


def load(path: Path) -> list[Example]:
    out = []
    for loc, row in read_tsv(NAME, path, ("sentence1", "sentence2", "gold_label")):
        label = label_index(NAME, path, loc, row["gold_label"], LABELS)
        fields = {"premise": row["sentence1"], "hypothesis": row["sentence2"]}
        out.append(Example(id=f"{path.name}:{loc.split()[-1]}", fields=fields, label=label))
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
        description="KorNLI (entailment / neutral / contradiction), TSV sentence1/sentence2/gold_label",
    )
)
