"""NSMC-format movie-review sentiment (TSV ``id, document, label``; 0 negative, 1 positive).

The binary sentiment task of HyperCLOVA's in-context evaluation, scored by the likelihood of a
verbalised label after the review.
"""

from __future__ import annotations

from pathlib import Path

from haneul.evals.tasks import register
from haneul.evals.tasks._base import Example, Task, label_index, read_tsv

NAME = "nsmc"
LABELS = ("0", "1")


def load(path: Path) -> list[Example]:
    out = []
    for loc, row in read_tsv(NAME, path, ("id", "document", "label")):
        label = label_index(NAME, path, loc, row["label"], LABELS)
        out.append(Example(id=row["id"], fields={"document": row["document"]}, label=label))
    return out


TASK = register(
    Task(
        name=NAME,
        kind="choice",
        loader=load,
        template="리뷰: {document}\n감정:",
        choices=("부정", "긍정"),
        labels=LABELS,
        metric="acc",
        description="NSMC-format movie-review sentiment (binary), TSV id/document/label",
    )
)
