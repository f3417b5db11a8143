"""How every ``haneul`` command prints: a table or a key/value view for people, one JSON document for scripts.

A command builds its result (a dataclass, a mapping, or a list of rows) and prints it with
:func:`emit` (or :func:`print_json`, :func:`print_fields`, :func:`print_table` directly). With
``--json`` stdout holds exactly one JSON document on one line — ``ensure_ascii=False`` so Korean stays
readable, keys in the order the result defines them, paths as strings — so ``haneul ... --json | jq``
and ``json.loads(stdout)`` always work. Progress bars, notes and warnings go to stderr and never mix
with the result. Errors are not printed here: :mod:`haneul.cli.main` turns a
:class:`~haneul.errors.HaneulError` into one line on stderr.

Only the standard library is imported at module level (rich loads when something is printed), so
``haneul --help`` stays light.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.progress import Progress, ProgressColumn

__all__ = [
    "emit",
    "format_value",
    "jsonable",
    "note",
    "print_fields",
    "print_json",
    "print_table",
    "progress",
    "say",
    "stderr",
    "stdout",
]


def stdout() -> Console:
    """The console for results; created per call so it follows ``sys.stdout`` (tests capture it)."""
    from rich.console import Console

    return Console(file=sys.stdout)


def stderr() -> Console:
    """The console for progress, notes and warnings."""
    from rich.console import Console

    return Console(file=sys.stderr)


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types: dataclasses and ``to_dict()`` objects become objects, paths strings."""
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return jsonable(value.to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, set | frozenset):  # sorted, so the same result prints the same document
        return sorted((jsonable(v) for v in value), key=repr)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    return value


def print_json(value: Any) -> None:
    """Write ``value`` as one JSON document on one line of stdout."""
    sys.stdout.write(json.dumps(jsonable(value), ensure_ascii=False) + "\n")
    sys.stdout.flush()


def format_value(value: Any) -> str:
    """A short human form: 4 significant digits for floats, 1,234 for ints, ``k=v, ...`` for mappings."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={format_value(v)}" for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(format_value(v) for v in value)
    if isinstance(value, PurePath | enum.Enum):
        return str(value.value if isinstance(value, enum.Enum) else value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return format_value(jsonable(value))
    return str(value)


def print_table(
    rows: Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]],
    *,
    columns: Sequence[str] | None = None,
    title: str | None = None,
    right: Sequence[str] = (),
    no_wrap: Sequence[str] = (),
    formats: Mapping[str, Callable[[Any], str | RenderableType]] | None = None,
) -> None:
    """A rich table on stdout; ``rows`` are mappings (``columns``: the first row's keys) or sequences.

    ``right`` names the columns aligned right (numbers), ``no_wrap`` those kept on one line (names a
    reader searches for); ``formats`` maps a column to its formatter (default :func:`format_value`),
    which may return a styled rich ``Text``. Plain strings are never read as rich markup: user text may
    hold ``[brackets]``.
    """
    from rich.table import Table
    from rich.text import Text

    if columns is None:
        first = rows[0] if rows else {}
        columns = list(first.keys()) if isinstance(first, Mapping) else []
    table = Table(title=title, title_justify="left")
    for col in columns:
        justify = "right" if col in right else "left"
        table.add_column(col, justify=justify, overflow="fold", no_wrap=col in no_wrap)
    formats = formats or {}
    for row in rows:
        cells = [row.get(col) for col in columns] if isinstance(row, Mapping) else list(row)
        shown = (formats.get(col, format_value)(cell) for col, cell in zip(columns, cells, strict=True))
        table.add_row(*(Text(text) if isinstance(text, str) else text for text in shown))
    stdout().print(table)


def print_fields(fields: Mapping[str, Any], *, title: str | None = None) -> None:
    """A key/value view of one result: one row per field, the value formatted by :func:`format_value`."""
    print_table(
        [(key, value) for key, value in fields.items()],
        columns=["what", "value"],
        title=title,
        right=["value"],
        no_wrap=["what"],
        formats={"what": str},
    )


def say(text: str, *, style: str | None = None) -> None:
    """Text for people on stdout, printed as is (no markup, no highlighting); ``style`` e.g. ``"bold"``."""
    if style is None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        return
    from rich.text import Text

    stdout().print(Text(text, style=style), highlight=False, soft_wrap=True)


def note(text: str, *, style: str | None = None) -> None:
    """A status line or warning on stderr (``style`` e.g. ``"yellow"``); never part of the result."""
    from rich.text import Text

    sys.stdout.flush()  # after the result printed before it, on a terminal showing both

    stderr().print(Text(text, style=style or ""), highlight=False, soft_wrap=True)


def progress(*columns: ProgressColumn, transient: bool = False, disable: bool = False) -> Progress:
    """A progress bar on stderr: description, bar, done/total and elapsed time, or the given ``columns``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if not columns:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    return Progress(*columns, console=stderr(), transient=transient, disable=disable)


def emit(
    result: Any,
    *,
    as_json: bool,
    title: str | None = None,
    show: Callable[[], None] | None = None,
) -> None:
    """Print a command's result: JSON with ``--json``; otherwise ``show()`` when given, else a default view.

    The default view is a key/value table for a mapping or dataclass, a table for a list of mappings,
    and the text itself for anything else.
    """
    if as_json:
        print_json(result)
        return
    if show is not None:
        show()
        return
    plain = jsonable(result)
    if isinstance(plain, Mapping):
        print_fields(plain, title=title)
    elif isinstance(plain, list) and plain and all(isinstance(r, Mapping) for r in plain):
        print_table(plain, title=title)
    else:
        say(format_value(plain))
