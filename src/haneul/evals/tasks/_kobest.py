"""Shared reader for KoBEST-style JSON Lines files (one object per line, integer ``label``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from haneul.evals.tasks._base import Example, label_index, need, need_fields, read_records


def load_rows(
    name: str, path: Path, fields: tuple[str, ...], n_labels: int
) -> list[tuple[str, str, dict[str, Any], int]]:
    labels = tuple(str(i) for i in range(n_labels))
    rows = []
    for loc, obj in read_records(name, path):
        values = need_fields(name, path, loc, obj, fields)
        label = label_index(name, path, loc, need(name, path, loc, obj, "label"), labels)
        ident = str(obj.get("id", obj.get("idx", f"{path.name}:{loc.split()[-1]}")))
        rows.append((loc, ident, values, label))
    return rows


def simple(name: str, path: Path, fields: tuple[str, ...], n_labels: int) -> list[Example]:
    return [Example(id=i, fields=f, label=lab) for _, i, f, lab in load_rows(name, path, fields, n_labels)]
