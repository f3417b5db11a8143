"""KLUE-YNAT news-headline topic classification (JSON ``guid, title, label``), seven topics."""

from __future__ import annotations

from pathlib import Path

from haneul.evals.tasks import register
from haneul.evals.tasks._base import Example, Task, label_index, need, read_records

NAME = "klue_ynat"
LABELS = ("IT과학", "경제", "사회", "생활문화", "세계", "스포츠", "정치")


def load(path: Path) -> list[Example]:
    out = []
    for loc, obj in read_records(NAME, path):
        guid = str(need(NAME, path, loc, obj, "guid"))
        title = need(NAME, path, loc, obj, "title")
        raw = need(NAME, path, loc, obj, "label")
        if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw < len(LABELS):
            raw = LABELS[raw]
        label = label_index(NAME, path, loc, raw, LABELS)
        out.append(Example(id=guid, fields={"title": title}, label=label))
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
