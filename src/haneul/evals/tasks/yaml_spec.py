"""A YAML task spec for a user's own JSON Lines data, so a new task needs no code.

Example (``sentiment.yaml``)::

    name: my_sentiment
    kind: classification        # classification | multiple_choice | generation | regression
    data: reviews.jsonl         # relative to this file
    fewshot_data: train.jsonl   # optional pool of demonstrations
    template: "리뷰: {text}\n감정:"
    label_field: label
    labels: {"0": "부정", "1": "긍정"}   # raw label -> verbalised answer

``multiple_choice`` reads ``choices_field`` (a list) and ``answer_field`` (0-based index);
``generation`` reads ``answers_field`` (a string or list) and ``metric`` (``em``, ``f1``,
``korquad``, ``bleu``, ``chrf``); ``regression`` reads ``score_field`` and verbalised ``scores``.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from haneul.errors import InvalidInput
from haneul.evals.tasks._base import (
    Example,
    Task,
    as_float,
    bad_line,
    label_index,
    need,
    open_text,
    read_records,
)

KINDS = ("classification", "multiple_choice", "generation", "regression")
GEN_METRICS = ("em", "f1", "korquad", "bleu", "chrf")


@dataclass
class TaskSpec:
    """A task built from YAML plus the data files the spec points at."""

    task: Task
    data: Path
    fewshot_data: Path | None


def template_fields(template: str) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(template) if f]


def load_task_spec(path: str | Path) -> TaskSpec:
    import yaml

    path = Path(path)
    with open_text(path) as fh:
        try:
            spec = yaml.safe_load(fh)
        except yaml.YAMLError as exc:
            raise InvalidInput(f"task spec {path}: not valid YAML ({exc}); fix the file") from None
    if not isinstance(spec, dict):
        raise InvalidInput(f"task spec {path}: expected a mapping with name, kind, data, template; fix the file")
    for key in ("name", "kind", "data", "template"):
        if key not in spec:
            raise InvalidInput(f"task spec {path}: missing field {key!r}; add it (see docs/evals.md)")
    name, kind, template = str(spec["name"]), str(spec["kind"]), str(spec["template"])
    if kind not in KINDS:
        raise InvalidInput(f"task spec {path}: kind {kind!r} is not one of {', '.join(KINDS)}")
    fields = template_fields(template)
    id_field = spec.get("id_field", "id")

    def base(obj: dict[str, Any], p: Path, loc: str) -> tuple[str, dict[str, Any]]:
        values = {f: need(name, p, loc, obj, f) for f in fields}
        return str(obj.get(id_field, f"{p.name}:{loc.split()[-1]}")), values

    task_kw: dict[str, Any] = {}
    if kind == "classification":
        labels_spec = spec.get("labels")
        if isinstance(labels_spec, dict):
            raw_labels = tuple(str(k) for k in labels_spec)
            verbal = tuple(str(v) for v in labels_spec.values())
        elif isinstance(labels_spec, list) and labels_spec:
            raw_labels = verbal = tuple(str(v) for v in labels_spec)
        else:
            raise InvalidInput(f"task spec {path}: classification needs 'labels' (a mapping or a list)")
        label_field = spec.get("label_field", "label")

        def load(p: Path) -> list[Example]:
            out = []
            for loc, obj in read_records(name, p):
                ident, values = base(obj, p, loc)
                label = label_index(name, p, loc, need(name, p, loc, obj, label_field), raw_labels)
                out.append(Example(id=ident, fields=values, label=label))
            return out

        task_kw = {"kind": "choice", "choices": verbal, "labels": raw_labels, "metric": "acc"}
    elif kind == "multiple_choice":
        choices_field = spec.get("choices_field", "choices")
        answer_field = spec.get("answer_field", "answer")

        def load(p: Path) -> list[Example]:
            out = []
            for loc, obj in read_records(name, p):
                ident, values = base(obj, p, loc)
                options = need(name, p, loc, obj, choices_field)
                if not isinstance(options, list) or len(options) < 2:
                    raise bad_line(name, p, loc, f"field {choices_field!r} must be a list of at least 2 options")
                opts = tuple(str(o) for o in options)
                label = label_index(name, p, loc, need(name, p, loc, obj, answer_field), [str(i) for i in range(len(opts))])
                out.append(Example(id=ident, fields=values, label=label, choices=opts))
            return out

        task_kw = {"kind": "choice", "metric": "acc"}
    elif kind == "generation":
        answers_field = spec.get("answers_field", "answer")
        metric = str(spec.get("metric", "em"))
        if metric not in GEN_METRICS:
            raise InvalidInput(f"task spec {path}: metric {metric!r} is not one of {', '.join(GEN_METRICS)}")

        def load(p: Path) -> list[Example]:
            out = []
            for loc, obj in read_records(name, p):
                ident, values = base(obj, p, loc)
                raw = need(name, p, loc, obj, answers_field)
                answers = tuple(str(a) for a in raw) if isinstance(raw, list) else (str(raw),)
                out.append(Example(id=ident, fields=values, answers=answers))
            return out

        task_kw = {"kind": "generate", "metric": metric, "max_new_tokens": int(spec.get("max_new_tokens", 32))}
    else:
        score_field = spec.get("score_field", "score")
        scores = [str(s) for s in spec.get("scores", ["0", "1", "2", "3", "4", "5"])]
        try:
            values_f = tuple(float(s) for s in scores)
        except ValueError:
            raise InvalidInput(f"task spec {path}: 'scores' must be numbers, got {scores}") from None

        def load(p: Path) -> list[Example]:
            out = []
            for loc, obj in read_records(name, p):
                ident, values = base(obj, p, loc)
                score = as_float(name, p, loc, need(name, p, loc, obj, score_field), score_field)
                out.append(Example(id=ident, fields=values, score=score))
            return out

        task_kw = {"kind": "regression", "choices": tuple(scores), "choice_values": values_f, "metric": "pearson_spearman"}

    task = Task(
        name=name,
        loader=load,
        template=template,
        answer_prefix=str(spec.get("answer_prefix", " ")),
        separator=str(spec.get("separator", "\n\n")),
        description=str(spec.get("description", f"user task from {path.name}")),
        **task_kw,
    )
    root = path.parent
    fewshot = spec.get("fewshot_data")
    return TaskSpec(task=task, data=root / str(spec["data"]), fewshot_data=root / str(fewshot) if fewshot else None)
