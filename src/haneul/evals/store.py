"""Published evaluation runs: validation of a ``results.json`` document, storage, the models × tasks table.

The platform server keeps every run that ``haneul eval run`` (or ``haneul eval publish``) sends it,
so the web results page can compare models across tasks and shot counts. Runs are stored as one
JSON file each, ``HANEUL_HOME/evals/results/<id>.json``, written atomically: a results document is
a nested, self-describing object that is only ever written whole and read whole, so a table of
columns would add a schema migration for every field the runner grows, while a file is inspectable,
copyable and deletable with ordinary tools, and a few hundred runs list in milliseconds. The id is a
digest of the document's model, settings and scores, so publishing the same run twice (a resumed
run, a repeated ``publish``) keeps one copy.

The "main metric" of a task (the number shown in the table) is accuracy for choice tasks,
character F1 for KorQuAD-style extraction, Spearman's correlation ×100 for STS (the figure the
KorSTS and SentEval literature reports) and the task's only metric otherwise. This is the
bookkeeping side of the in-context evaluation of HyperCLOVA (Kim et al., 2021, section 4).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from haneul.errors import InvalidInput, NotFound

#: task metric -> the score shown in the table (the first score of the cell when not listed)
MAIN_METRIC = {
    "acc": "acc",
    "korquad": "f1",
    "em": "exact_match",
    "f1": "f1",
    "bleu": "bleu",
    "chrf": "chrf",
    "pearson_spearman": "spearman",
}

_ID = re.compile(r"^[0-9a-f]{12}$")
_FIX = "post the results.json that `haneul eval run` writes"


# --------------------------------------------------------------------------------------------------
# validation


def _finite(value: Any) -> Any:
    """NaN and infinities become null (a correlation over constant predictions is NaN), so stored
    documents are strict JSON that a browser can parse."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _bad(where: str, problem: str) -> InvalidInput:
    return InvalidInput(f"results document: {where} {problem}; {_FIX}")


def _scores(where: str, value: Any, required: bool) -> None:
    if value is None and not required:
        return
    if not isinstance(value, dict) or (required and not value):
        raise _bad(where, "must be an object of metric -> number")
    for name, v in value.items():
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
            raise _bad(f"{where}.{name}", f"is {v!r}, expected a number")


def validate_results(doc: Any) -> dict[str, Any]:
    """Check that ``doc`` is a runner results document; return a cleaned copy (non-finite -> null).

    Raises :class:`InvalidInput` with one line that names the offending field.
    """
    if not isinstance(doc, dict):
        raise _bad("the body", f"is a JSON {type(doc).__name__}, expected an object with 'model' and 'tasks'")
    doc = _finite(doc)
    model = doc.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _bad("'model'", "is missing or empty, expected the model's name")
    tasks = doc.get("tasks")
    if not isinstance(tasks, dict) or not tasks:
        raise _bad("'tasks'", "is missing or empty, expected an object of task name -> results")
    config = doc.get("config", {})
    if not isinstance(config, dict):
        raise _bad("'config'", "must be an object")
    for name, task in tasks.items():
        where = f"tasks.{name}"
        if not isinstance(task, dict):
            raise _bad(where, "must be an object")
        if not isinstance(task.get("metric", ""), str):
            raise _bad(f"{where}.metric", "must be a string")
        shots = task.get("shots")
        if not isinstance(shots, dict) or not shots:
            raise _bad(f"{where}.shots", "is missing or empty, expected an object of shot count -> scores")
        for k, cell in shots.items():
            if not str(k).isdigit():
                raise _bad(f"{where}.shots", f"has key {k!r}, expected a shot count such as '0' or '4'")
            at = f"{where}.shots.{k}"
            if not isinstance(cell, dict):
                raise _bad(at, "must be an object with 'mean'")
            _scores(f"{at}.mean", cell.get("mean"), required=True)
            _scores(f"{at}.se", cell.get("se"), required=False)
            _scores(f"{at}.seed_std", cell.get("seed_std"), required=False)
            seeds = cell.get("seeds", {})
            if not isinstance(seeds, dict):
                raise _bad(f"{at}.seeds", "must be an object of seed -> scores")
            for s, scores in seeds.items():
                _scores(f"{at}.seeds.{s}", scores, required=True)
    return doc


def main_metric(task: dict[str, Any]) -> str:
    """The score of ``task`` (a task entry of a results document) shown in the table."""
    first = next(iter(task["shots"].values()))["mean"]
    name = MAIN_METRIC.get(str(task.get("metric", "")))
    return name if name in first else next(iter(first))


def run_id(doc: dict[str, Any]) -> str:
    """A digest of what the run measured (model, settings, scores); timing and publishing details
    are left out, so the same evaluation always gets the same id."""
    core = {"model": doc["model"], "config": doc.get("config", {}), "tasks": doc["tasks"]}
    return hashlib.sha256(json.dumps(core, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:12]


# --------------------------------------------------------------------------------------------------
# storage


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """The list view of a stored run: who, what, when, without the scores."""
    res = record["results"]
    shots = sorted({int(k) for t in res["tasks"].values() for k in t["shots"]})
    return {
        "id": record["id"],
        "model": res["model"],
        "tasks": list(res["tasks"]),
        "shots": shots,
        "seeds": res.get("config", {}).get("seeds"),
        "created_at": record["created_at"],
        "session": record.get("session"),
    }


class ResultStore:
    """Published runs under ``root`` (``HANEUL_HOME/evals/results``), one JSON file per run."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, rid: str) -> Path:
        if not _ID.match(rid):
            raise NotFound(f"evaluation run {rid!r} not found; list the runs with GET /api/v1/evals/results")
        return self.root / f"{rid}.json"

    def add(self, doc: Any, session: int | str | None = None) -> tuple[dict[str, Any], bool]:
        """Store a results document; return ``(record, created)`` (``False`` when already stored)."""
        from haneul.io import atomic_write_text

        if session is not None and session != "":
            if not str(session).strip().isdigit():
                raise InvalidInput(f"session {session!r} is not a platform session id; pass the number "
                                   "`haneul ps` shows, or leave it out")
            session = int(str(session).strip())
        results = validate_results(doc)
        rid = run_id(results)
        path = self.root / f"{rid}.json"
        if path.is_file():
            return self.get(rid), False
        record = {"id": rid, "created_at": time.time(), "session": session if session != "" else None,
                  "results": results}
        atomic_write_text(path, json.dumps(record, ensure_ascii=False, allow_nan=False))
        return record, True

    def get(self, rid: str) -> dict[str, Any]:
        path = self._path(rid)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NotFound(f"evaluation run {rid!r} not found; list the runs with GET /api/v1/evals/results") from None

    def delete(self, rid: str) -> None:
        path = self._path(rid)
        try:
            path.unlink()
        except FileNotFoundError:
            raise NotFound(f"evaluation run {rid!r} not found; list the runs with GET /api/v1/evals/results") from None

    def records(self, model: str | None = None) -> list[dict[str, Any]]:
        """Every stored run, newest first (optionally of one model)."""
        out = []
        for path in self.root.glob("*.json") if self.root.is_dir() else ():
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue  # deleted while listing, or not one of ours
            if model is None or record["results"]["model"] == model:
                out.append(record)
        out.sort(key=lambda r: (r["created_at"], r["id"]), reverse=True)
        return out


# --------------------------------------------------------------------------------------------------
# the models × tasks table


def leaderboard(records: Iterable[dict[str, Any]], shots: int | None = None) -> dict[str, Any]:
    """The results page's table: one row per model, one column per (shots, task).

    When a model has several runs of the same task and shot count, the newest run fills the cell.
    A column's best cell is the highest main metric (every metric here is higher-is-better).
    Returns ``{"shots": [...all shot counts], "columns": [...], "groups": [(shots, n_columns)],
    "rows": [...], "details": {key: cell details for the page's detail panel}}``.
    """
    newest_first = sorted(records, key=lambda r: (r["created_at"], r["id"]), reverse=True)
    cells: dict[tuple[str, int, str], dict[str, Any]] = {}
    runs: dict[str, int] = {}
    metrics: dict[str, str] = {}
    all_shots: set[int] = set()
    for rec in newest_first:
        res = rec["results"]
        model = res["model"]
        runs[model] = runs.get(model, 0) + 1
        for task_name, task in res["tasks"].items():
            metrics.setdefault(task_name, main_metric(task))
            for k, cell in task["shots"].items():
                all_shots.add(int(k))
                cells.setdefault((model, int(k), task_name), {"record": rec, "task": task, "cell": cell})

    chosen = sorted(all_shots) if shots is None else [shots]
    columns = [
        {"shots": k, "task": t, "metric": metrics[t]}
        for k in chosen for t in sorted(metrics) if any((m, k, t) in cells for m in runs)
    ]
    details: dict[str, Any] = {}
    rows = []
    for model in sorted(runs):
        row_cells = []
        for col in columns:
            hit = cells.get((model, col["shots"], col["task"]))
            if hit is None:
                row_cells.append(None)
                continue
            rec, task, cell = hit["record"], hit["task"], hit["cell"]
            name = metrics[col["task"]] if metrics[col["task"]] in cell["mean"] else next(iter(cell["mean"]))
            key = f"{rec['id']}|{col['task']}|{col['shots']}"
            row_cells.append({"key": key, "run": rec["id"], "metric": name, "value": cell["mean"].get(name),
                              "se": (cell.get("se") or {}).get(name), "best": False})
            details[key] = {
                "model": model, "task": col["task"], "shots": col["shots"], "metric": name,
                "mean": cell["mean"], "se": cell.get("se") or {}, "seed_std": cell.get("seed_std") or {},
                "seeds": cell.get("seeds") or {}, "n": task.get("n"), "data": task.get("data"),
                "reduced_shot_prompts": task.get("reduced_shot_prompts", 0),
                "run": {"id": rec["id"], "created_at": rec["created_at"], "session": rec.get("session"),
                        "config": rec["results"].get("config", {})},
            }
        rows.append({"model": model, "runs": runs[model], "cells": row_cells})
    for j in range(len(columns)):
        values = [r["cells"][j]["value"] for r in rows if r["cells"][j] and r["cells"][j]["value"] is not None]
        if values:
            best = max(values)
            for r in rows:
                c = r["cells"][j]
                if c and c["value"] is not None and c["value"] == best:
                    c["best"] = True
    groups: list[tuple[int, int]] = []
    for col in columns:
        if groups and groups[-1][0] == col["shots"]:
            groups[-1] = (col["shots"], groups[-1][1] + 1)
        else:
            groups.append((col["shots"], 1))
    return {"shots": sorted(all_shots), "columns": columns, "groups": groups, "rows": rows, "details": details}
