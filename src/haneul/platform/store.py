"""Artifact storage: checkpoints written tmp-then-rename with a recorded sha256, verified on read.

One folder per owner (a session on the server, or the local run outside one). Each checkpoint is
a blob plus a small JSON record (kind, size, sha256, time); the record is written after the blob,
so a checkpoint either exists whole or not at all.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from haneul.errors import IntegrityError, InvalidInput, NotFound
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


