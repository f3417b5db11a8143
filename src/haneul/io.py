"""Atomic file and folder writes, and checksums, shared by every package.

A write goes to a temporary file in the destination folder, is flushed and fsynced, then renamed
over the target, so a crash or a full disk never leaves a half-written file under the real name.
:func:`atomic_dir` does the same for a whole folder (a model, a checkpoint): it is filled under a
temporary sibling name and swapped in with two renames, and :func:`recover_dir` repairs the one state a
crash between those renames can leave.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from haneul.errors import StorageError

CHUNK = 1 << 20


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` on success."""
    if "r" in mode or "a" in mode:
        raise ValueError("atomic_open is for writing only")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        _unlink_quietly(tmp)
        _raise_if_full(exc, target)
        raise
    except BaseException:
        _unlink_quietly(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> str:
    """Write ``data`` atomically and return its sha256 hex digest."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    return hashlib.sha256(data).hexdigest()


def atomic_write_text(path: str | os.PathLike[str], text: str) -> str:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_chunks(path: str | os.PathLike[str], chunks: Iterable[bytes]) -> tuple[int, str]:
    """Stream ``chunks`` to ``path`` atomically; return ``(size, sha256)``."""
    digest = hashlib.sha256()
    size = 0
    with atomic_open(path, "wb") as fh:
        for chunk in chunks:
            fh.write(chunk)
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def iter_file(path: str | os.PathLike[str], chunk_size: int = CHUNK) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            yield chunk


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _raise_if_full(exc: OSError, target: Path) -> None:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        raise StorageError(f"no space left on device writing {target}; free disk space and retry") from exc


# -- folders
#
# Writing ``<parent>/<name>`` uses two siblings:
#   .<name>.<pid>@<host>.<random>.tmp   the folder being filled (one per writer)
#   .<name>.old                         the previous folder, for the moment between the two renames
# The swap renames the old folder to the backup, the new one to the real name, then deletes the
# backup. A crash before the first rename leaves the old folder in place; after the second, the new
# one. Between them only the backup exists, and recover_dir renames it back; a backup beside a real
# folder is a finished swap whose clean-up was cut short, and is deleted.

# a short fixed-width tag so a host name with dots or odd characters cannot confuse the parse below
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


@contextlib.contextmanager
def atomic_dir(
    path: str | os.PathLike[str], *, keep: Callable[[Path], bool] | None = None
) -> Iterator[Path]:
    """Yield an empty temporary sibling folder of ``path``; on success it replaces ``path`` whole.

    Every file in it is fsynced before the swap. If the block raises, the temporary folder is
    deleted and ``path`` is left as it was. ``keep(path)`` true at the moment of the swap keeps the
    existing folder and discards the new one, for a cache several processes may fill at once (the
    first complete copy wins). A full disk or quota raises :class:`StorageError`. Otherwise there is
    one writer per folder at a time.

    A writer killed outright (no exception, no clean-up) leaves its temporary folder behind; the next
    write of the same ``path`` on this host deletes it once that process is gone.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_dir(target)
    tmp = _make_temp_dir(target)
    try:
        yield tmp
        _fsync_tree(tmp)
        if keep is not None and keep(target):
            return  # the finally below discards the new copy
        _swap_in(tmp, target, keep)
        _fsync_dir(target.parent)
    except OSError as exc:
        _raise_if_full(exc, target)
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def recover_dir(path: str | os.PathLike[str]) -> Path:
    """Repair what a crash in the middle of :func:`atomic_dir`'s swap left at ``path``; return ``path``.

    Readers that may run after such a crash (resuming from a checkpoint) call this before looking.
    It also deletes temporary folders of writers on this host that no longer run.
    """
    target = Path(path)
    if not target.parent.is_dir():
        return target  # nothing was ever written there
    backup = _backup_of(target)
    if backup.exists():
        if target.exists():
            shutil.rmtree(backup)  # the swap finished; only its clean-up was cut short
        else:
            os.replace(backup, target)  # cut between the two renames: the old folder is the whole one
    _sweep_dead_writers(target)
    return target


def _backup_of(target: Path) -> Path:
    return target.with_name(f".{target.name}.old")


def _temp_prefix(target: Path, pid: int) -> str:
    return f".{target.name}.{pid}@{_HOST}."


def _make_temp_dir(target: Path) -> Path:
    # os.mkdir rather than mkdtemp: mkdtemp makes the folder private (0o700), and a model folder
    # should get the same permissions as any other folder the user creates
    prefix = _temp_prefix(target, os.getpid())
    while True:
        tmp = target.with_name(f"{prefix}{secrets.token_hex(4)}.tmp")
        try:
            tmp.mkdir()
        except FileExistsError:
            continue
        return tmp


def _swap_in(tmp: Path, target: Path, keep: Callable[[Path], bool] | None) -> None:
    backup = _backup_of(target)
    moved_old = False
    if target.exists():
        os.replace(target, backup)
        moved_old = True
    try:
        os.replace(tmp, target)
    except OSError:
        if keep is not None and keep(target):
            return  # another process swapped in a complete copy between our check and our rename
        if moved_old and not target.exists():
            os.replace(backup, target)
        raise
    if moved_old:
        shutil.rmtree(backup, ignore_errors=True)


def _sweep_dead_writers(target: Path) -> None:
    head, tail = f".{target.name}.", f"@{_HOST}."
    for entry in target.parent.iterdir():
        if not (entry.name.startswith(head) and entry.name.endswith(".tmp")):
            continue
        pid_text, sep, _ = entry.name[len(head) :].partition(tail)
        if sep and pid_text.isdigit() and int(pid_text) != os.getpid() and not _alive(int(pid_text)):
            shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists but belongs to someone else
    return True


def _fsync_tree(root: Path) -> None:
    for folder, _dirs, files in os.walk(root):
        for name in files:
            file = os.path.join(folder, name)
            if os.path.islink(file):
                continue
            fd = os.open(file, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(folder))


def _fsync_dir(folder: Path) -> None:
    # a folder's entries (the renames) are durable only once the folder itself is fsynced; not every
    # platform lets a folder be opened for that, which only weakens durability, not atomicity
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
