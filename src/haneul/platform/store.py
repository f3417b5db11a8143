"""Artifact storage: checkpoints and artifacts written tmp-then-rename with a recorded sha256,
verified on read.

One folder per owner (a session on the server, or the local run outside one). Each checkpoint is
a blob plus a small JSON record (kind, size, sha256, time); the record is written after the blob,
so a checkpoint either exists whole or not at all. Artifacts (any files, by relative path) share
one JSON index per owner, updated after each file is in place.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from haneul.errors import Conflict, IntegrityError, InvalidInput, NotFound
from haneul.io import atomic_write_chunks, atomic_write_text, iter_file, sha256_file

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
KINDS = ("file", "dir", "bytes", "torch", "pickle")


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or name.endswith(".json"):
        raise InvalidInput(
            f"checkpoint name {name!r} is invalid; use 1-128 letters, digits, '.', '_' or '-' "
            "(not starting with a dot, not ending in .json)"
        )
    return name


class CheckpointStore:
    """Checkpoints of one owner under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def put_chunks(self, name: str, chunks: Iterable[bytes], kind: str) -> dict[str, Any]:
        validate_name(name)
        if kind not in KINDS:
            raise InvalidInput(f"checkpoint kind {kind!r} is unknown; use one of {', '.join(KINDS)}")
        size, digest = atomic_write_chunks(self.root / name, chunks)
        record = {"name": name, "kind": kind, "size": size, "sha256": digest, "created_at": time.time()}
        atomic_write_text(self.root / f"{name}.json", json.dumps(record))
        return record

    def put(self, name: str, src: Path, kind: str) -> dict[str, Any]:
        return self.put_chunks(name, iter_file(src), kind)

    def record(self, name: str) -> dict[str, Any]:
        validate_name(name)
        meta = self.root / f"{name}.json"
        if not meta.exists():
            raise NotFound(f"checkpoint {name!r} not found; list them with `haneul checkpoints`")
        return json.loads(meta.read_text())

    def path(self, name: str) -> Path:
        self.record(name)
        return self.root / name

    def get(self, name: str, verify: bool = True) -> tuple[str, Path]:
        record = self.record(name)
        path = self.root / name
        if verify:
            self.verify(record, path)
        return record["kind"], path

    @staticmethod
    def verify(record: dict[str, Any], path: Path) -> None:
        if not path.exists():
            raise IntegrityError(f"checkpoint {record['name']!r} is missing its data file {path}")
        actual = sha256_file(path)
        if actual != record["sha256"]:
            raise IntegrityError(
                f"checkpoint {record['name']!r} is corrupt: sha256 {actual[:12]}… != recorded "
                f"{record['sha256'][:12]}…; re-save it or load another checkpoint"
            )

    def list(self) -> list[dict[str, Any]]:
        if not self.root.exists():
            return []
        out = []
        for meta in self.root.glob("*.json"):
            try:
                out.append(json.loads(meta.read_text()))
            except (OSError, ValueError):
                continue
        return sorted(out, key=lambda r: r["created_at"])

    def delete_all(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)




# --------------------------------------------------------------------------------------------------
# artifacts: any files a session wants kept (plots, predictions, configs, audio), by relative path

MAX_ARTIFACT_PATH = 512
MAX_PREVIEW_LINES = 1000
PREVIEW_BYTES = 256 * 1024  # a preview reads at most this much of a file, whatever its size
_PREVIEW_JSON_BYTES = 1 << 20  # a whole JSON document is parsed for a table only up to this size
_MEDIA_TYPES = {
    ".csv": "text/csv", ".tsv": "text/tab-separated-values", ".json": "application/json",
    ".jsonl": "application/x-ndjson", ".md": "text/markdown", ".yaml": "text/yaml", ".yml": "text/yaml",
    ".toml": "text/plain", ".log": "text/plain", ".txt": "text/plain", ".py": "text/x-python",
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
    ".webp": "image/webp", ".svg": "image/svg+xml", ".wav": "audio/wav", ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg", ".flac": "audio/flac",
}
MANIFEST = "manifest.json"


def validate_artifact_path(path: str) -> str:
    """``path`` if it is a safe relative path (``plots/loss.png``): no ``..``, not absolute, bounded."""
    def bad(why: str) -> InvalidInput:
        return InvalidInput(f"artifact path {path[:80]!r} is invalid: {why}; use a relative path like "
                            f"'plots/loss.png' of at most {MAX_ARTIFACT_PATH} characters")

    if not isinstance(path, str) or not path:
        raise bad("it is empty")
    if len(path) > MAX_ARTIFACT_PATH:
        raise bad(f"it is {len(path)} characters long")
    if path.startswith("/") or "\\" in path:
        raise bad("it is absolute or holds a backslash")
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise bad("it holds a control character")
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise bad("it has an empty, '.' or '..' part")
    if any(len(p.encode()) > 255 for p in parts):
        raise bad("one part is longer than 255 bytes")
    return path


def media_type(path: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix in _MEDIA_TYPES:
        return _MEDIA_TYPES[suffix]
    import mimetypes

    return mimetypes.guess_type(path)[0] or "application/octet-stream"


class ArtifactStore:
    """Artifacts of one owner under ``root``: the files under ``root/files`` and an index,
    ``root/manifest.json`` (path -> size, sha256, media type, time), rewritten atomically under a
    lock so that concurrent uploads of one session do not lose each other's entries."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.files = self.root / "files"

    def put_chunks(self, path: str, chunks: Iterable[bytes]) -> dict[str, Any]:
        validate_artifact_path(path)
        target = self.files / path
        self._check_clash(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        size, digest = atomic_write_chunks(target, chunks)
        record = {"path": path, "size": size, "sha256": digest, "media_type": media_type(path),
                  "created_at": time.time()}
        with self._locked():
            manifest = self._read()
            manifest[path] = record
            atomic_write_text(self.root / MANIFEST, json.dumps(manifest, ensure_ascii=False))
        return record

    def put(self, path: str, src: Path) -> dict[str, Any]:
        return self.put_chunks(path, iter_file(src))

    def _check_clash(self, path: str) -> None:
        target = self.files / path
        if target.is_dir():
            raise Conflict(f"artifact path {path!r} is already a folder of artifacts; pick another name")
        for parent in Path(path).parents:
            if str(parent) != "." and (self.files / parent).is_file():
                raise Conflict(f"artifact path {path!r} runs through the file artifact {str(parent)!r}; "
                               "pick another name")

    def list(self) -> list[dict[str, Any]]:
        return sorted(self._read().values(), key=lambda r: r["path"])

    def record(self, path: str) -> dict[str, Any]:
        validate_artifact_path(path)
        record = self._read().get(path)
        if record is None:
            raise NotFound(f"artifact {path!r} not found; list them with GET .../artifacts")
        return record

    def get(self, path: str, verify: bool = True) -> tuple[dict[str, Any], Path]:
        """The record and file of ``path``, its sha256 checked against the index."""
        record = self.record(path)
        file = self.files / path
        if verify:
            if not file.is_file():
                raise IntegrityError(f"artifact {path!r} is missing its data file {file}")
            actual = sha256_file(file)
            if actual != record["sha256"]:
                raise IntegrityError(f"artifact {path!r} is corrupt: sha256 {actual[:12]}… != recorded "
                                     f"{record['sha256'][:12]}…; log it again")
        return record, file

    def preview(self, path: str, lines: int = 50) -> dict[str, Any]:
        """The start of a text, CSV/TSV or JSON artifact: ``kind`` is ``table`` (``columns``, ``rows``),
        ``text`` (``lines``) or ``none`` (binary; show it by its media type). Reads a bounded prefix and
        so skips the sha256 check, which would read the whole file; downloads are checked."""
        if not 1 <= lines <= MAX_PREVIEW_LINES:
            raise InvalidInput(f"lines={lines} is out of range; use 1-{MAX_PREVIEW_LINES}")
        record, file = self.get(path, verify=False)
        return {"path": path, "media_type": record["media_type"], "size": record["size"],
                **_preview(file, record["media_type"], record["size"], lines)}

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads((self.root / MANIFEST).read_text())
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise IntegrityError(f"artifact index {self.root / MANIFEST} is damaged ({exc}); "
                                 "restore it from a backup or remove it and log the artifacts again") from None
        return data if isinstance(data, dict) else {}

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        import fcntl

        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def _preview(file: Path, media: str, size: int, lines: int) -> dict[str, Any]:
    suffix = file.suffix.lower()
    textual = media.startswith("text/") or media in ("application/json", "application/x-ndjson") \
        or (media == "image/svg+xml")
    if not textual:
        return {"kind": "none"}
    with open(file, "rb") as fh:
        head = fh.read(PREVIEW_BYTES)
    if b"\x00" in head:
        return {"kind": "none"}
    complete = len(head) >= size
    text = head.decode("utf-8", errors="replace")
    if not complete:  # the last line read may be cut: drop it rather than show half a row
        text = text[: text.rfind("\n") + 1] if "\n" in text else text
    all_lines = text.splitlines()
    if suffix in (".csv", ".tsv"):
        import csv
        import io

        reader = csv.reader(io.StringIO("\n".join(all_lines[: lines + 1])),
                            delimiter="\t" if suffix == ".tsv" else ",")
        rows = list(reader)
        columns, body = (rows[0], rows[1:]) if rows else ([], [])
        return {"kind": "table", "columns": columns, "rows": body,
                "truncated": len(all_lines) > lines + 1 or not complete}
    if suffix == ".jsonl":
        records = []
        for line in all_lines[:lines]:
            try:
                records.append(json.loads(line))
            except ValueError:
                break
        else:
            table = _json_table(records, lines)
            if table is not None:
                table["truncated"] = table["truncated"] or len(all_lines) > lines or not complete
                return table
    if suffix == ".json" and complete and size <= _PREVIEW_JSON_BYTES:
        try:
            table = _json_table(json.loads(text), lines)
        except ValueError:
            table = None
        if table is not None:
            return table
        try:  # not tabular: show it pretty-printed
            all_lines = json.dumps(json.loads(text), indent=2, ensure_ascii=False).splitlines()
        except ValueError:
            pass
    return {"kind": "text", "lines": all_lines[:lines], "truncated": len(all_lines) > lines or not complete}


def _json_table(value: Any, lines: int) -> dict[str, Any] | None:
    """A table for a list of objects (columns: their keys in first-seen order) or a list of lists;
    an object of scalars becomes a key/value table. Anything else is not tabular."""
    def cell(v: Any) -> Any:
        return v if isinstance(v, str | int | float | bool) or v is None else json.dumps(v, ensure_ascii=False)

    if isinstance(value, dict):
        items = list(value.items())
        return {"kind": "table", "columns": ["key", "value"], "rows": [[k, cell(v)] for k, v in items[:lines]],
                "truncated": len(items) > lines}
    if not isinstance(value, list) or not value:
        return None
    rows = value[:lines]
    if all(isinstance(r, dict) for r in rows):
        columns: dict[str, None] = {}
        for r in rows:
            columns.update(dict.fromkeys(map(str, r)))
        return {"kind": "table", "columns": list(columns),
                "rows": [[cell(r.get(c)) for c in columns] for r in rows], "truncated": len(value) > lines}
    if all(isinstance(r, list) for r in rows):
        width = max(len(r) for r in rows)
        return {"kind": "table", "columns": [str(i) for i in range(width)],
                "rows": [[cell(v) for v in r] for r in rows], "truncated": len(value) > lines}
    return None
