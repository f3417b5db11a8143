"""KorSTS semantic similarity (TSV ``genre, filename, year, id, score, sentence1, sentence2``).

Scored as regression: the model's probabilities over the verbalised scores 0..5 give an expected
score per pair, and the metric is Pearson / Spearman correlation with the gold scores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from haneul.evals.tasks import register
from haneul.evals.tasks._base import Example, Task, as_float, bad_line, read_tsv

NAME = "korsts"
SCORES = ("0", "1", "2", "3", "4", "5")
TEMPLATE = "문장 1: {sentence1}\n문장 2: {sentence2}\n두 문장의 유사도 (0~5):"


def sts_score(task: str, path: Path, loc: str | None, value: Any, name: str) -> float:
    """``value`` as a gold similarity; anything but a number from 0 to 5 is an error naming the place."""
    score = as_float(task, path, loc, value, name)
    if not 0.0 <= score <= 5.0:
        raise bad_line(task, path, loc, f"score {score} is outside the label range 0-5")
    return score


def load(path: Path) -> list[Example]:
    out = []
    columns = ("genre", "filename", "year", "id", "score", "sentence1", "sentence2")
    for loc, row in read_tsv(NAME, path, columns):
        score = sts_score(NAME, path, loc, row["score"], "score")
        fields = {"sentence1": row["sentence1"], "sentence2": row["sentence2"]}
        ident = f"{row['genre']}/{row['filename']}/{row['year']}/{row['id']}"
        out.append(Example(id=ident, fields=fields, score=score))
    return out


TASK = register(
    Task(
        name=NAME,
        kind="regression",
        loader=load,
        template=TEMPLATE,
        choices=SCORES,
        choice_values=tuple(float(s) for s in SCORES),
        metric="pearson_spearman",
        description="KorSTS sentence similarity 0-5 (Pearson/Spearman), TSV genre/filename/year/id/score/s1/s2",
    )
)
