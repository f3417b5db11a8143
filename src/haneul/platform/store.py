"""Artifact storage: checkpoints and artifacts written atomically with a recorded sha256, verified
on read, in a local folder or an object store (:mod:`haneul.platform.objects`: tmp-then-rename in a
folder, one completed upload in a bucket).

One folder per owner (a session on the server, or the local run outside one). Each checkpoint is
a blob plus a small JSON record (kind, size, sha256, time); the record is written after the blob,
so a checkpoint either exists whole or not at all. Artifacts (any files, by relative path) share
one JSON index per owner, updated after each file is in place.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from haneul.errors import Conflict, IntegrityError, InvalidInput, NotFound
from haneul.io import iter_file
from haneul.platform.objects import Folder, StoredFile, open_folder

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
KINDS = ("file", "dir", "bytes", "torch", "pickle")


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or name.endswith(".json"):
        raise InvalidInput(
            f"checkpoint name {name!r} is invalid; use 1-128 letters, digits, '.', '_' or '-' "
            "(not starting with a dot, not ending in .json)"
        )
    return name


def _folder(root: str | os.PathLike[str] | Folder) -> Folder:
    return open_folder(os.fspath(root)) if isinstance(root, str | os.PathLike) else root


class CheckpointStore:
    """Checkpoints of one owner in ``root``: a local folder (a path) or any
    :class:`~haneul.platform.objects.Folder` (an object store)."""

    def __init__(self, root: str | os.PathLike[str] | Folder) -> None:
        self.folder = _folder(root)

    @property
    def root(self) -> Path | None:
        """The local folder holding the checkpoints; None in an object store."""
        return self.folder.local_path()

    def put_chunks(self, name: str, chunks: Iterable[bytes], kind: str) -> dict[str, Any]:
        validate_name(name)
        if kind not in KINDS:
            raise InvalidInput(f"checkpoint kind {kind!r} is unknown; use one of {', '.join(KINDS)}")
        size, digest = self.folder.write(name, chunks)
        record = {"name": name, "kind": kind, "size": size, "sha256": digest, "created_at": time.time()}
        self.folder.write(f"{name}.json", [json.dumps(record).encode()])  # only once the blob is whole
        return record

    def put(self, name: str, src: Path, kind: str) -> dict[str, Any]:
        return self.put_chunks(name, iter_file(src), kind)

    def record(self, name: str) -> dict[str, Any]:
        validate_name(name)
        try:
            return dict(json.loads(self.folder.read_bytes(f"{name}.json")))
        except FileNotFoundError:
            raise NotFound(f"checkpoint {name!r} not found; list them with `haneul checkpoints`") from None

    def stored(self, record: dict[str, Any]) -> StoredFile:
        """The data file of the checkpoint ``record`` describes (not yet verified)."""
        return StoredFile(self.folder, record["name"], size=record["size"], sha256=record["sha256"],
                          what=f"checkpoint {record['name']!r}", fix="re-save it or load another checkpoint")

    def get(self, name: str, cache: Path | None = None) -> tuple[str, Path]:
        """The kind and verified local file of checkpoint ``name``; from an object store the file is
        a copy in ``cache``."""
        record = self.record(name)
        return record["kind"], self.stored(record).local_copy(cache)

    def list(self) -> list[dict[str, Any]]:
        out = []
        for meta in self.folder.names():
            if not meta.endswith(".json"):
                continue
            try:
                out.append(json.loads(self.folder.read_bytes(meta)))
            except (OSError, ValueError):
                continue
        return sorted(out, key=lambda r: r["created_at"])

    def delete_all(self) -> None:
        self.folder.remove()


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
    """Artifacts of one owner in ``root`` (a local folder or any
    :class:`~haneul.platform.objects.Folder`): the files under ``files/`` and an index,
    ``manifest.json`` (path -> size, sha256, media type, time), rewritten whole under the folder's
    lock so that concurrent uploads of one session do not lose each other's entries."""

    def __init__(self, root: str | os.PathLike[str] | Folder) -> None:
        self.folder = _folder(root)
        self._files = self.folder.child("files")

    @property
    def root(self) -> Path | None:
        """The local folder of the artifacts; None in an object store."""
        return self.folder.local_path()

    @property
    def files(self) -> Path | None:
        """The local folder of the artifact files; None in an object store."""
        return self._files.local_path()

    def put_chunks(self, path: str, chunks: Iterable[bytes]) -> dict[str, Any]:
        validate_artifact_path(path)
        self._check_clash(path)
        size, digest = self._files.write(path, chunks)
        record = {"path": path, "size": size, "sha256": digest, "media_type": media_type(path),
                  "created_at": time.time()}
        with self.folder.lock():  # the index names the file only once it is whole
            manifest = self._read()
            manifest[path] = record
            self.folder.write(MANIFEST, [json.dumps(manifest, ensure_ascii=False).encode()])
        return record

    def put(self, path: str, src: Path) -> dict[str, Any]:
        return self.put_chunks(path, iter_file(src))

    def _check_clash(self, path: str) -> None:
        if self._files.kind(path) == "directory":
            raise Conflict(f"artifact path {path!r} is already a folder of artifacts; pick another name")
        for parent in PurePosixPath(path).parents:
            if str(parent) != "." and self._files.kind(str(parent)) == "file":
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

    def get(self, path: str, verify: bool = True) -> tuple[dict[str, Any], StoredFile]:
        """The record and file of ``path``, its sha256 checked against the index."""
        record = self.record(path)
        stored = StoredFile(self._files, path, size=record["size"], sha256=record["sha256"],
                            what=f"artifact {path!r}", fix="log it again")
        return record, stored.verify() if verify else stored

    def preview(self, path: str, lines: int = 50) -> dict[str, Any]:
        """The start of a text, CSV/TSV or JSON artifact: ``kind`` is ``table`` (``columns``, ``rows``),
        ``text`` (``lines``) or ``none`` (binary; show it by its media type). Reads a bounded prefix and
        so skips the sha256 check, which would read the whole file; downloads are checked."""
        if not 1 <= lines <= MAX_PREVIEW_LINES:
            raise InvalidInput(f"lines={lines} is out of range; use 1-{MAX_PREVIEW_LINES}")
        record, stored = self.get(path, verify=False)

        def head() -> bytes:
            try:
                return self._files.read_bytes(path, PREVIEW_BYTES)
            except FileNotFoundError:
                raise stored.missing() from None

        return {"path": path, "media_type": record["media_type"], "size": record["size"],
                **_preview(path, head, record["media_type"], record["size"], lines)}

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.folder.read_bytes(MANIFEST))
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise IntegrityError(f"artifact index {self.folder.where(MANIFEST)} is damaged ({exc}); "
                                 "restore it from a backup or remove it and log the artifacts again") from None
        return data if isinstance(data, dict) else {}


def _preview(path: str, read_head: Callable[[], bytes], media: str, size: int, lines: int) -> dict[str, Any]:
    suffix = PurePosixPath(path).suffix.lower()
    textual = media.startswith("text/") or media in ("application/json", "application/x-ndjson") \
        or (media == "image/svg+xml")
    if not textual:
        return {"kind": "none"}
    head = read_head()
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
