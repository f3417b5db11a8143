"""KMMLU / HAE-RAE-style four-option multiple choice (CSV or JSONL ``question, A, B, C, D, answer``).

``answer`` may be a letter (``B`` or ``(B)``) or a 1-based number (KMMLU's convention); a list field
``options`` may replace the four letter columns. The model scores the letters after the listed options.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from haneul.evals.tasks import register
from haneul.evals.tasks._base import Example, Task, bad_line, need, open_text, read_records

LETTERS = ("A", "B", "C", "D")
TEMPLATE = "{question}\nA. {A}\nB. {B}\nC. {C}\nD. {D}\n정답:"


def _rows(name: str, path: Path) -> list[tuple[str, dict[str, Any]]]:
    if path.name.removesuffix(".gz").endswith(".csv"):
        with open_text(path) as fh:
            reader = csv.DictReader(fh)
            # DictReader's line_num is the physical line just read, so multi-line cells stay right
            return [(f"line {reader.line_num}", dict(row)) for row in reader]
    return list(read_records(name, path))


def _answer(name: str, path: Path, loc: str, raw: Any) -> int:
    text = str(raw).strip().strip("()").strip().upper()
    if text in LETTERS:
        return LETTERS.index(text)
    if text.isdigit() and 1 <= int(text) <= 4:
        return int(text) - 1
    raise bad_line(
        name, path, loc, f"label {raw!r} is not in the task's label set A-D (or 1-4)",
        "fix the label or choose the task that matches the data",
    )


def loader_for(name: str):
    def load(path: Path) -> list[Example]:
        out = []
        for loc, obj in _rows(name, path):
            question = need(name, path, loc, obj, "question")
            if isinstance(obj.get("options"), list):
                options = [str(o) for o in obj["options"]]
                if len(options) != 4:
                    raise bad_line(name, path, loc, f"field 'options' has {len(options)} entries, expected 4")
            else:
                options = [str(need(name, path, loc, obj, letter)) for letter in LETTERS]
            label = _answer(name, path, loc, need(name, path, loc, obj, "answer"))
            fields = {"question": question, **dict(zip(LETTERS, options, strict=True))}
            ident = str(obj.get("id") or f"{path.name}:{loc.split()[-1]}")
            out.append(Example(id=ident, fields=fields, label=label))
        return out

    return load


for _name, _desc in (("kmmlu", "KMMLU-style"), ("haerae", "HAE-RAE-style")):
    register(
        Task(
            name=_name,
            kind="choice",
            loader=loader_for(_name),
            template=TEMPLATE,
            choices=LETTERS,
            labels=LETTERS,
            metric="acc",
            description=f"{_desc} 4-option multiple choice, CSV/JSONL question/A/B/C/D/answer",
        )
    )
