"""The task contract shared by every evaluation task: examples, the task description, file readers.

A task is data plus a way to ask about it: a loader that turns a file into :class:`Example` rows, a
prompt template, and either a fixed verbaliser (classification), per-example options (multiple
choice), reference answers (generation) or a numeric target (regression, e.g. STS). The readers here
name the file, the line and the missing field when a file does not match the task's format, which is
what every loader reports on bad input.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import string
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from haneul.errors import InvalidInput, NotFound

TaskKind = Literal["choice", "generate", "regression"]


@dataclass(frozen=True)
class Example:
    """One item to score.

    ``fields`` feed the prompt template. Choice tasks set ``label`` (an index into the options);
    generation tasks set ``answers``; regression tasks set ``score``. ``choices`` overrides the task's
    fixed options for tasks whose options differ per item (COPA, KMMLU, HellaSwag).
    """

    id: str
    fields: dict[str, Any]
    label: int | None = None
    answers: tuple[str, ...] = ()
    score: float | None = None
    choices: tuple[str, ...] | None = None


@dataclass
class Task:
    """How to load, prompt and score one task.

    ``template`` is a ``str.format`` template over the example's fields; the answer follows it after
    ``answer_prefix``. ``choices`` are the verbalised labels of a classification task (the label set);
    ``choice_values`` map them to numbers for regression tasks scored through option likelihoods.
    """

    name: str
    kind: TaskKind
    loader: Callable[[Path], list[Example]]
    template: str
    metric: str
    choices: tuple[str, ...] | None = None
    choice_values: tuple[float, ...] | None = None
    answer_prefix: str = " "
    separator: str = "\n\n"
    description: str = ""
    max_new_tokens: int = 32
    stop: tuple[str, ...] = ("\n",)
    labels: tuple[str, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def options(self, example: Example) -> tuple[str, ...]:
        opts = example.choices if example.choices is not None else self.choices
        if not opts:
            raise InvalidInput(f"task {self.name!r} has no answer options for example {example.id!r}")
        return opts

    def gold_text(self, example: Example) -> str:
        """The answer text shown after a few-shot demonstration."""
        if self.kind == "generate":
            return example.answers[0] if example.answers else ""
        if self.kind == "regression" and example.label is None:
            return _nearest_choice(self, example.score)
        return self.options(example)[int(example.label or 0)]

    def load(self, path: str | Path) -> list[Example]:
        """Every example of ``path``; a file that is not UTF-8 text (or not gzip) is an error naming it."""
        path = Path(path)
        if not path.exists():
            raise NotFound(f"task {self.name!r}: data file {path} does not exist; pass the path of the task's data file")
        try:
            return self.loader(path)
        except UnicodeDecodeError as exc:
            raise bad_line(self.name, path, None, f"is not UTF-8 text (byte {exc.start})") from None
        except (gzip.BadGzipFile, EOFError, zlib.error):
            raise bad_line(self.name, path, None, "is not a readable gzip file", "recompress it or drop the .gz") from None
        except csv.Error as exc:
            raise bad_line(self.name, path, None, f"is not a well-formed TSV/CSV file ({exc})") from None

    def validate(
        self,
        data: str | Path,
        *,
        fewshot: str | Path | None = None,
        shots: Sequence[int] = (0,),
        limit: int | None = None,
        template: str | None = None,
    ) -> TaskData:
        """Read and check everything a run of this task needs, before any model is loaded.

        Every row of ``data`` (and of ``fewshot``) is parsed, so the first bad row is reported with
        its file, line and field; then the run's settings are checked against the data: the template
        only names fields the rows have, ``limit`` is at least 1, and the demonstration pool holds
        ``max(shots)`` examples besides the item itself. Returns the parsed rows for the run to reuse.
        """
        data = Path(data)
        if limit is not None and limit < 1:
            raise InvalidInput(f"task {self.name!r}: limit {limit} must be at least 1 (or left out to score every item)")
        if any(k < 0 for k in shots):
            raise InvalidInput(f"task {self.name!r}: shots {list(shots)} must be non-negative integers")
        examples = self.load(data)
        if not examples:
            raise InvalidInput(f"task {self.name!r}: {data} holds no examples; pass a non-empty data file")
        pool = self.load(fewshot) if fewshot is not None else examples
        pool_file = Path(fewshot) if fewshot is not None else data
        k = max(shots, default=0)
        # without a separate pool an item never demonstrates itself, so one example fewer is available
        available = len(pool) if fewshot is not None else len(pool) - 1
        if k > available:
            raise InvalidInput(
                f"task {self.name!r}: {k} shots need {k} demonstration examples but {pool_file} gives {available}; "
                "lower --shots or pass a larger --fewshot file"
            )
        self._check_template(template or self.template, examples[0], data)
        return TaskData(examples=examples, pool=pool)

    def _check_template(self, template: str, example: Example, path: Path) -> None:
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
        except ValueError as exc:
            raise InvalidInput(f"template of task {self.name!r} is not a valid format string ({exc}); fix the template") from None
        # loaders give every row the same fields, so the first row stands for all of them
        missing = sorted(n for n in names if n.split(".")[0].split("[")[0] not in example.fields)
        if missing:
            raise InvalidInput(
                f"template of task {self.name!r} uses field {missing[0]!r} that {path} lacks "
                f"(fields: {', '.join(sorted(example.fields))}); fix the template"
            )


@dataclass(frozen=True)
class TaskData:
    """A task's parsed rows: the items to score and the pool demonstrations are drawn from."""

    examples: list[Example]
    pool: list[Example]


def _nearest_choice(task: Task, score: float | None) -> str:
    values = task.choice_values or ()
    opts = task.choices or ()
    if score is None or not values:
        return opts[0] if opts else ""
    best = min(range(len(values)), key=lambda i: abs(values[i] - score))
    return opts[best]


# --------------------------------------------------------------------------------------------------
# readers


def open_text(path: Path) -> io.TextIOBase:
    """Open a UTF-8 text file, transparently gunzipping ``*.gz``."""
    if not path.exists():
        raise NotFound(f"data file {path} does not exist; pass the path of the task's data file")
    if not path.is_file():
        raise InvalidInput(f"data file {path} is not a file; pass the path of the task's data file")
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")  # noqa: SIM115


def bad_line(task: str, path: Path, loc: str | None, what: str, fix: str = "") -> InvalidInput:
    """An error naming the task, the file and the place in it (``line 7`` or ``record 3``)."""
    where = f"{path} {loc}" if loc else str(path)
    tail = f"; {fix}" if fix else f"; fix the file or choose the task that matches its format ({task})"
    return InvalidInput(f"{task}: {where}: {what}{tail}")


def read_tsv(
    task: str, path: Path, columns: Sequence[str], header: bool = True
) -> Iterator[tuple[str, dict[str, str]]]:
    """Yield ``("line N", row)`` for a tab-separated file whose columns include ``columns``.

    With a header the columns are found by name (extra columns are fine); a row too short for a
    required column is reported with its line number.
    """
    with open_text(path) as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        names: list[str] = list(columns)
        for lineno, row in enumerate(reader, start=1):
            if lineno == 1 and header:
                names = [c.strip() for c in row]
                missing = [c for c in columns if c not in names]
                if missing:
                    raise bad_line(
                        task,
                        path,
                        "line 1",
                        f"header lacks field {missing[0]!r} (expected columns {', '.join(columns)})",
                    )
                continue
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            record: dict[str, str] = {}
            for col in columns:
                idx = names.index(col)
                if idx >= len(row):
                    raise bad_line(
                        task,
                        path,
                        f"line {lineno}",
                        f"missing field {col!r} (expected columns {', '.join(columns)})",
                    )
                record[col] = row[idx]
            yield f"line {lineno}", record


def read_jsonl(task: str, path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise bad_line(task, path, f"line {lineno}", f"not valid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise bad_line(task, path, f"line {lineno}", "each line must be a JSON object")
            yield f"line {lineno}", obj


def read_json(task: str, path: Path) -> Any:
    with open_text(path) as fh:
        text = fh.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise bad_line(task, path, f"line {exc.lineno}", f"not valid JSON ({exc.msg})") from None


def read_records(task: str, path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """JSON Lines, a JSON list of objects, or an object holding a ``data`` list (KLUE dumps)."""
    name = path.name.removesuffix(".gz")
    if name.endswith(".jsonl"):
        yield from read_jsonl(task, path)
        return
    data = read_json(task, path)
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise bad_line(task, path, None, "expected a JSON list of objects (or JSON Lines)")
    for i, obj in enumerate(data, start=1):
        if not isinstance(obj, dict):
            raise bad_line(task, path, f"record {i}", "each record must be a JSON object")
        yield f"record {i}", obj


def need(task: str, path: Path, loc: str | None, obj: dict[str, Any], name: str) -> Any:
    """Return ``obj[name]`` or raise an error naming the file, the line/record and the field."""
    if not isinstance(obj, dict) or name not in obj or obj[name] is None:
        raise bad_line(task, path, loc, f"missing field {name!r}")
    return obj[name]


def need_fields(
    task: str, path: Path, loc: str | None, obj: dict[str, Any], names: Sequence[str]
) -> dict[str, Any]:
    """``{name: obj[name]}`` for each of ``names``; the first one missing is reported as :func:`need` does."""
    return {name: need(task, path, loc, obj, name) for name in names}


def label_index(
    task: str, path: Path, loc: str | None, value: Any, labels: Sequence[str], by_position: bool = False
) -> int:
    """Map a raw label to its index in ``labels``; anything outside the label set is an error.

    With ``by_position`` an integer that indexes ``labels`` stands for that label: the Hugging Face
    exports (KLUE) store a label as its index.
    """
    if by_position and isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(labels):
        return value
    text = str(value).strip()
    if text in labels:
        return list(labels).index(text)
    raise bad_line(
        task,
        path,
        loc,
        f"label {text!r} is not in the task's label set {list(labels)}",
        "fix the label or choose the task that matches the data",
    )


def as_float(task: str, path: Path, loc: str | None, value: Any, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise bad_line(task, path, loc, f"field {name!r} must be a number, got {value!r}") from None
