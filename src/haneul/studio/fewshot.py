"""The Studio's few-shot builder (HyperCLOVA §5 with §3's in-context learning): examples for a prompt
picked from a table of input / output pairs, a file of a platform dataset (CSV, TSV or JSON lines) or an
uploaded one.

Three ways to pick ``k`` examples: the ``first`` rows, ``random`` rows (seeded, so the same seed gives
the same prompt again), or the rows ``similar`` to the current input, ranked by the Jaccard overlap of
their morpheme-ish tokens (words with a trailing Korean particle split off, so 영화가 and 영화는 share
영화); ties keep table order. No embedding model is needed, so it works on a fresh install.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from haneul.errors import InvalidInput
from haneul.studio.prompt import Example
from haneul.text.korean import PARTICLES, normalize

__all__ = ["Table", "Picked", "STRATEGIES", "FORMATS", "load_table", "read_table", "table_format", "tokens", "jaccard", "pick"]

STRATEGIES = ("first", "random", "similar")
FORMATS = ("csv", "tsv", "jsonl")
#: a table larger than this is refused: the builder reads it whole into memory
MAX_BYTES = 50 * 2**20
MAX_K = 64

_WORD = re.compile(r"\w+")
# the particles' forms (both spellings) plus the case markers that have only one, longest first so
# 에서 is split before 에
_ENDINGS = tuple(sorted({form for pair in PARTICLES for form in pair}
                        | {"도", "만", "의", "에", "에서", "에게", "한테", "까지", "부터", "보다", "처럼", "이다", "다"},
                        key=len, reverse=True))


@dataclass(frozen=True)
class Table:
    """Rows of named text columns, in file order."""

    columns: tuple[str, ...]
    rows: tuple[dict[str, str], ...]

    def check(self, *names: str) -> None:
        """Refuse a column the table lacks, naming the ones it has."""
        for name in names:
            if name not in self.columns:
                raise InvalidInput(f"column {name!r} is not in the table; its columns are "
                                   f"{', '.join(self.columns) or '(none)'}")

    def examples(self, input_column: str, output_column: str) -> list[Example]:
        self.check(input_column, output_column)
        return [Example(r.get(input_column, ""), r.get(output_column, "")) for r in self.rows]


@dataclass(frozen=True)
class Picked:
    row: int  # 0-based, in table order
    example: Example
    score: float | None = None  # the similarity, for ``similar``

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "input": self.example.input, "output": self.example.output, "score": self.score}


def table_format(path: str, fmt: str | None = None) -> str:
    """``fmt`` checked, or the format a file name's extension says."""
    if fmt is None:
        ext = path.rsplit(".", 1)[-1].lower() if "." in path else ""
        fmt = {"json": "jsonl", "ndjson": "jsonl", "txt": "tsv"}.get(ext, ext)
    if fmt not in FORMATS:
        raise InvalidInput(f"table format {fmt!r} of {path!r} is unknown; use one of {', '.join(FORMATS)} "
                           "(a .csv, .tsv or .jsonl file)")
    return fmt


def read_table(data: bytes | str, *, fmt: str) -> Table:
    """Parse a CSV / TSV file with a header row, or JSON lines of objects (values become strings)."""
    if len(data) > MAX_BYTES:
        raise InvalidInput(f"the table is {len(data)} bytes; the few-shot builder reads at most {MAX_BYTES}")
    text = data.decode("utf-8-sig", errors="replace") if isinstance(data, bytes) else data
    if fmt == "jsonl":
        return _read_jsonl(text)
    if fmt not in ("csv", "tsv"):
        raise InvalidInput(f"table format {fmt!r} is unknown; use one of {', '.join(FORMATS)}")
    reader = csv.DictReader(io.StringIO(text), delimiter="," if fmt == "csv" else "\t")
    columns = tuple(reader.fieldnames or ())
    rows = tuple({k: v or "" for k, v in row.items() if k is not None} for row in reader)
    return Table(columns, rows)


def _read_jsonl(text: str) -> Table:
    columns: dict[str, None] = {}
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            raise InvalidInput(f"line {n} of the JSON lines table is not JSON; one object per line") from None
        if not isinstance(item, dict):
            raise InvalidInput(f"line {n} of the JSON lines table is not an object")
        row = {str(k): v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for k, v in item.items()}
        columns.update(dict.fromkeys(row))
        rows.append(row)
    return Table(tuple(columns), tuple(rows))


def tokens(text: str) -> frozenset[str]:
    """The morpheme-ish tokens of a text: lower-cased words, a Hangul word's trailing particle split off
    into a token of its own."""
    out: set[str] = set()
    for word in _WORD.findall(normalize(text).lower()):
        for ending in _ENDINGS:
            if len(word) > len(ending) and word.endswith(ending) and _hangul(word[-len(ending) - 1]):
                out.add(word[:-len(ending)])
                out.add(ending)
                break
        else:
            out.add(word)
    return frozenset(out)


def _hangul(ch: str) -> bool:
    return "\uac00" <= ch <= "\ud7a3"


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 0.0
    return len(a & b) / len(a | b)


def pick(examples: Sequence[Example], *, k: int, strategy: str = "first", seed: int = 0,
         query: str | None = None) -> list[Picked]:
    """``k`` examples (all of them when there are fewer) by ``strategy``; ``similar`` needs the ``query``
    and lists the best first, the others keep table order."""
    if strategy not in STRATEGIES:
        raise InvalidInput(f"strategy {strategy!r} is unknown; use one of {', '.join(STRATEGIES)}")
    if not 1 <= k <= MAX_K:
        raise InvalidInput(f"k={k} must be between 1 and {MAX_K}")
    k = min(k, len(examples))
    if strategy == "first":
        return [Picked(i, examples[i]) for i in range(k)]
    if strategy == "random":
        rows = sorted(random.Random(seed).sample(range(len(examples)), k))
        return [Picked(i, examples[i]) for i in rows]
    if not query or not query.strip():
        raise InvalidInput("strategy 'similar' ranks the examples against the input; type the input first")
    q = tokens(query)
    scored = [(jaccard(q, tokens(ex.input)), i) for i, ex in enumerate(examples)]
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [Picked(i, examples[i], round(score, 6)) for score, i in scored[:k]]


# --------------------------------------------------------------------------------------------------
# where a table comes from: a platform dataset's file, or an uploaded one


def load_table(platform: Any, principal: Any, *, dataset: str | None, file: str | None = None,
               upload: str | None = None, upload_name: str = "upload.csv",
               fmt: str | None = None) -> tuple[Table, str]:
    """The table and a reference to it (``NAME:VERSION/path`` or ``upload:NAME``): a file of a dataset
    version (``file`` may be left out when the version has one table file), else the ``upload``'s text."""
    if (dataset is None) == (upload is None):
        raise InvalidInput("give either a dataset (NAME[:VERSION] with its file) or an uploaded table")
    if upload is not None:
        return read_table(upload, fmt=table_format(upload_name, fmt)), f"upload:{upload_name}"
    if platform is None:
        raise InvalidInput("this server has no datasets; upload the table instead")
    from haneul.platform.datasets import dataset_store

    store = dataset_store(platform)
    name, version = store.resolve(principal=principal, ref=str(dataset))
    if file is None:
        listed, _ = store.files(principal=principal, name=name, version=version, limit=1000)
        tables = [f["path"] for f in listed if f["path"].rsplit(".", 1)[-1].lower() in ("csv", "tsv", "jsonl", "json")]
        if len(tables) != 1:
            raise InvalidInput(f"dataset {name}:{version} has {len(tables)} table files; name one with file "
                               f"({', '.join(tables[:10]) or 'none'})")
        file = tables[0]
    record, source = store.open_file(principal=principal, name=name, version=version, path=file)
    if record["size"] > MAX_BYTES:
        raise InvalidInput(f"{file} is {record['size']} bytes; the studio reads tables of at most {MAX_BYTES}")
    if isinstance(source, Path):
        data = source.read_bytes()
    else:
        with source as fh:
            data = fh.read()
    return read_table(data, fmt=table_format(file, fmt)), f"{name}:{version}/{file}"
