"""Reading training corpora: plain text and JSONL (a ``text`` field), optionally gzip-compressed.

Every tokenizer-training and data-preparation command reads its input through :func:`iter_documents`,
so the checks live in one place: a file that does not exist, a file with no text in it, and bytes that
are not UTF-8 each raise :class:`~haneul.errors.InvalidInput` naming the file and, for bad bytes, the
byte offset (in the decompressed stream for ``.gz`` files). A plain-text file holds one document per
line; a JSONL file holds one JSON object per line with the document in its ``text`` field.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from haneul.errors import InvalidInput, NotFound

__all__ = ["corpus_format", "iter_documents", "iter_corpus", "check_corpus"]


def corpus_format(path: str | os.PathLike[str]) -> str:
    """``"jsonl"`` for ``*.jsonl`` / ``*.json`` / ``*.ndjson`` (optionally ``.gz``), else ``"text"``."""
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return "jsonl" if name.endswith((".jsonl", ".ndjson", ".json")) else "text"


def _open(path: Path) -> IO[bytes]:
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")
    return open(path, "rb")  # noqa: SIM115 - closed by the caller's with-block


def iter_documents(path: str | os.PathLike[str], *, field: str = "text") -> Iterator[str]:
    """Yield the non-empty documents of one corpus file, validating UTF-8 as it goes."""
    p = Path(path)
    if not p.is_file():
        raise NotFound(f"corpus file {p} does not exist; pass an existing text or JSONL file")
    fmt = corpus_format(p)
    offset = 0
    seen = False
    try:
        fh = _open(p)
        with fh:
            for lineno, raw in enumerate(fh, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise InvalidInput(
                        f"corpus file {p} is not UTF-8: invalid byte at offset {offset + exc.start} "
                        f"(line {lineno}); convert it with `iconv -t UTF-8` first"
                    ) from None
                offset += len(raw)
                if fmt == "jsonl":
                    if not line.strip():
                        continue
                    try:
                        obj = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise InvalidInput(
                            f"corpus file {p} line {lineno} is not valid JSON ({exc.msg}); "
                            f"write one JSON object per line with a {field!r} field"
                        ) from None
                    text = obj.get(field) if isinstance(obj, dict) else None
                    if not isinstance(text, str):
                        raise InvalidInput(
                            f"corpus file {p} line {lineno} has no string {field!r} field; "
                            f"write one JSON object per line with a {field!r} field"
                        )
                else:
                    text = line.rstrip("\r\n")
                if text.strip():
                    seen = True
                    yield text
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InvalidInput(f"corpus file {p} could not be read ({exc}); check that it is intact") from None
    if not seen:
        raise InvalidInput(f"corpus file {p} is empty (no text in it); pass a file with at least one non-blank line")


def iter_corpus(paths: Sequence[str | os.PathLike[str]], *, field: str = "text") -> Iterator[str]:
    """All documents of several files, in order."""
    if not paths:
        raise InvalidInput("no corpus files given; pass at least one --corpus FILE")
    for path in paths:
        yield from iter_documents(path, field=field)


def check_corpus(paths: Sequence[str | os.PathLike[str]], *, field: str = "text") -> None:
    """Fail fast (before minutes of work) on a missing, empty or non-UTF-8 file."""
    for _ in iter_corpus(paths, field=field):
        pass
