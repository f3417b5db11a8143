"""KLUE-YNAT news-headline topic classification (JSON ``guid, title, label``), seven topics."""

from __future__ import annotations

from pathlib import Path

from haneul.evals.tasks import register
from haneul.evals.tasks._base import Example, Task, label_index, need_fields, read_records

NAME = "klue_ynat"
LABELS = ("IT과학", "경제", "사회", "생활문화", "세계", "스포츠", "정치")


def load(path: Path) -> list[Example]:
    out = []
    for loc, obj in read_records(NAME, path):
        row = need_fields(NAME, path, loc, obj, ("guid", "title", "label"))
        label = label_index(NAME, path, loc, row["label"], LABELS, by_position=True)
        out.append(Example(id=str(row["guid"]), fields={"title": row["title"]}, label=label))
    return out


TASK = register(
    Task(
        name=NAME,
        kind="choice",
        loader=load,
        template="뉴스 제목: {title}\n분야:",
        choices=LABELS,
        labels=LABELS,
        metric="acc",
        description="KLUE-YNAT headline topic (7 classes), JSON guid/title/label",
    )
)
