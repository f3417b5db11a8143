"""Datasets on the server's own machine: push and pull through the blob store's folder, not HTTP.

When the client runs on the server's machine as the server's user (the zero-config case: ``make up``
and the CLI beside it), a file's bytes need not pass through the server's HTTP stack at all, as
``git clone`` of a local path copies objects without a protocol in between:

- **push**: the client copies each file into ``<store>/incoming/<random>.part`` (``copy_file_range``:
  the kernel copies, no byte passes through Python) without reading it first, then asks the server to
  *adopt* them (:meth:`~haneul.platform.datasets.DatasetStore.adopt`). The server hashes each one (the
  one read of its bytes in the whole push), keeps it as a new blob or drops it when the store has that
  blob already, and answers the checksums the client then commits. On the same machine, reading a
  file to learn whether the server needs it costs as much as copying it, so the client does not hash
  ahead as it does over HTTP. The server only reads files of its own user in its own incoming folder,
  opened without following links: a client can make it store nothing the client could not have
  written there itself.
- **pull**: the client reads each blob straight from ``<store>/blobs``, hashing while it copies, and
  checks it against the version's file list (which it read through the API, access checks and all).

:func:`discover` decides, and answers None (HTTP then) unless every condition holds: the server
answers ``GET /api/v1/datasets/_local`` (only to a client connecting from loopback, only for a store
that is a local folder); its user id is the client's; and the client finds, at the folder the server
names, the probe file holding the token the server gave — the same folder, not another one at the same
path (a container, another machine).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import stat
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from haneul.errors import HaneulError, IntegrityError, InvalidInput
from haneul.platform.datasets import PIECE, read_buffer, start_writeback, validate_path

if TYPE_CHECKING:
    from haneul.platform.client import Client
    from haneul.platform.datasets import LocalFile

__all__ = ["PROBE", "ChecksumCache", "SameHost", "Spool", "copy_in", "copy_out", "discover"]

#: the file in the incoming folder that holds the server's token
PROBE = ".probe"
_PART = re.compile(r"^[0-9a-f]{24}\.part$")
#: an incoming file older than this belongs to a push that died: the next server start removes it
STALE_S = 24 * 3600


# --------------------------------------------------------------------------------------------------
# the server's side


class Spool:
    """The incoming folder of a local blob store: what ``/_local`` describes and ``adopt`` reads."""

    def __init__(self, root: Path) -> None:
        self.folder = root / "incoming"
        self._token: str | None = None
        self._lock = threading.Lock()

    def describe(self, blobs: Path) -> dict[str, Any]:
        """The folders and the probe's token; the first call makes the folder, sweeps files left by
        dead pushes and writes the probe (atomically: a client never reads half a token)."""
        with self._lock:
            if self._token is None:
                self.folder.mkdir(parents=True, exist_ok=True)
                self._sweep()
                token = secrets.token_hex(16)
                tmp = self.folder / f"{PROBE}.{token}"
                tmp.write_text(token)
                os.replace(tmp, self.folder / PROBE)
                self._token = token
        return {"incoming": str(self.folder), "blobs": str(blobs), "token": self._token, "uid": os.geteuid()}

    def _sweep(self) -> None:
        cutoff = time.time() - STALE_S
        for entry in os.scandir(self.folder):
            with contextlib.suppress(OSError):
                if entry.name.startswith(PROBE + ".") or (
                        _PART.match(entry.name) and entry.stat(follow_symlinks=False).st_mtime < cutoff):
                    os.unlink(entry.path)

    def claim(self, name: str, size: int, sha256: str | None = None) -> tuple[Path, int]:
        """Open the incoming file ``name`` announced as ``size`` bytes (of blob ``sha256``, when the
        client knows it): its path and a read-only descriptor (the caller closes it). A name that is not
        ``<24 hex digits>.part``, a link, a file of another user or of another size is refused in one
        line."""
        if _PART.match(name) is None:
            raise InvalidInput(f"{name[:100]!r} is not an incoming file; name it <24 hex digits>.part")
        path = self.folder / name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise InvalidInput(f"{name} is not in {self.folder}; copy the file there first, or push over HTTP",
                               sha256=sha256) from None
        except OSError as exc:  # ELOOP: a link
            raise InvalidInput(f"{name} in {self.folder} cannot be opened ({exc.strerror}); push over HTTP",
                               sha256=sha256) from None
        st = os.fstat(fd)
        problem = ("is not a regular file" if not stat.S_ISREG(st.st_mode)
                   else "belongs to another user" if st.st_uid != os.geteuid()
                   else f"has {st.st_size} bytes, not the {size} announced" if st.st_size != size else None)
        if problem:
            os.close(fd)
            raise InvalidInput(f"{name} in {self.folder} {problem}; push over HTTP", sha256=sha256)
        return path, fd


# --------------------------------------------------------------------------------------------------
# the client's side


@dataclass(frozen=True)
class SameHost:
    """The server's store folders, reachable from this process."""

    incoming: Path
    blobs: Path

    def blob(self, sha256: str) -> Path:
        return self.blobs / sha256[:2] / sha256


def discover(client: Client) -> SameHost | None:
    """The store's folders when this process may push and pull through them (see the module's
    docstring), else None."""
    try:
        info = client.request_json("GET", "/api/v1/datasets/_local")
        if info.get("uid") != os.geteuid():
            return None
        incoming, blobs = Path(info["incoming"]), Path(info["blobs"])
        if (incoming / PROBE).read_text() != info["token"]:
            return None
    except (HaneulError, OSError, KeyError, TypeError):
        return None
    return SameHost(incoming, blobs) if os.access(incoming, os.W_OK) else None


def copy_in(host: SameHost, f: LocalFile) -> str:
    """Copy ``f`` into the incoming folder under a fresh name, which is returned; the kernel copies
    (``copy_file_range``, else ``sendfile``, else plain reads and writes)."""
    name = f"{secrets.token_hex(12)}.part"
    dest = host.incoming / name
    try:
        src = os.open(f.source, os.O_RDONLY)
    except FileNotFoundError:
        raise InvalidInput(f"{f.source} vanished during the push; nothing was committed, push again") from None
    try:
        out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            copied = _kernel_copy(src, out, f.size)
            if copied != f.size or os.fstat(src).st_size != f.size:
                raise InvalidInput(f"{f.source} changed size during the push; nothing was committed, push again")
            start_writeback(_Fd(out))
        except BaseException:
            os.close(out)
            with contextlib.suppress(OSError):
                os.unlink(dest)
            raise
        os.close(out)
    finally:
        os.close(src)
    return name


class _Fd:
    """A raw descriptor where :func:`start_writeback` expects a file object."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def flush(self) -> None:
        pass

    def fileno(self) -> int:
        return self._fd


#: errors that say "not this way on these files": the next, plainer way is tried
_TRY_ANOTHER_WAY = (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM)


def _kernel_copy(src: int, out: int, size: int) -> int:
    """Copy up to ``size`` bytes from ``src`` to ``out`` (both at their current offsets): the bytes
    copied, fewer if ``src`` ends early. ``copy_file_range`` first, then ``sendfile``, then reads and
    writes, each taking over where the one before stopped."""
    def read_write(n: int) -> int:
        data = memoryview(os.read(src, min(n, PIECE)))
        written = 0
        while written < len(data):
            written += os.write(out, data[written:])
        return written

    ways = (lambda n: os.copy_file_range(src, out, n), lambda n: os.sendfile(out, src, None, n), read_write)
    done = 0
    for way in ways:
        try:
            while done < size:
                n = way(min(size - done, 1 << 30))
                if n == 0:
                    return done
                done += n
            return done
        except OSError as exc:
            if exc.errno not in _TRY_ANOTHER_WAY:
                raise
    return done


def copy_out(host: SameHost, tmp: Path, batch: Sequence[dict[str, Any]], *, verify: bool = False) -> int:
    """Copy the blobs of ``batch`` (file-list entries: path, size, sha256) to their paths under ``tmp``:
    in the kernel, each checked by its size, or (``verify``) read, hashed and written, each checked by
    its sha256 — the store checked every blob's sha256 when it stored it and keeps them read-only, so
    re-hashing guards only against the disk under the store. A blob that fails its check is an
    :class:`IntegrityError`; one that cannot be read here an ``OSError`` (the caller then goes over HTTP)."""
    total = 0
    for f in batch:
        out = tmp / validate_path(f["path"])
        out.parent.mkdir(parents=True, exist_ok=True)
        size = int(f["size"])
        with open(host.blob(f["sha256"]), "rb", buffering=0) as src, open(out, "wb", buffering=0) as dst:
            if verify:
                ok = _copy_hashing(src, dst) == f["sha256"]
            else:
                ok = _kernel_copy(src.fileno(), dst.fileno(), size + 1) == size
            start_writeback(dst)
        if not ok:
            raise IntegrityError(f"the stored bytes of {f['path']!r} do not match their "
                                 f"{'sha256' if verify else 'size'}; the server's blob store is damaged")
        total += size
    return total


def _copy_hashing(src: Any, dst: Any) -> str:
    buf, digest = read_buffer(), hashlib.sha256()
    while n := src.readinto(buf):
        digest.update(buf[:n])
        dst.write(buf[:n])
    return digest.hexdigest()


class ChecksumCache:
    """Checksums of this machine's files, keyed by device, inode, size and modification and change
    times (as git's index keeps them), so that pushing a tree again finds what the server has without
    copying or reading it. Any write to a file, and any ``utime`` that hides one, changes its change
    time, so a changed file never matches. Entries for files modified in the last
    :data:`SETTLE_NS` are not kept: a write in the same clock tick could otherwise go unseen. A cache
    that cannot be opened or written is simply not used."""

    #: how old a file's last change must be before its checksum is remembered
    SETTLE_NS = 2 * 10**9

    def __init__(self, path: Path) -> None:
        import sqlite3

        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=10, check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, dev INTEGER, ino INTEGER, "
                         "size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER, sha256 TEXT)")
        self._lock = threading.Lock()

    @classmethod
    def open(cls) -> ChecksumCache | None:
        """The user's cache (``$XDG_CACHE_HOME/haneul/checksums.sqlite``), or None when unusable."""
        import sqlite3

        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        try:
            return cls(root / "haneul" / "checksums.sqlite")
        except (OSError, sqlite3.Error):
            return None

    @staticmethod
    def _key(st: os.stat_result) -> tuple[int, int, int, int, int]:
        return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns

    def lookup(self, files: Sequence[LocalFile]) -> dict[Path, str]:
        """The remembered checksums of those ``files`` unchanged since."""
        import sqlite3

        found: dict[Path, str] = {}
        try:
            with self._lock:
                for f in files:
                    row = self._db.execute("SELECT dev, ino, size, mtime_ns, ctime_ns, sha256 FROM files "
                                           "WHERE path = ?", (str(f.source),)).fetchone()
                    if row is None:
                        continue
                    with contextlib.suppress(OSError):
                        st = os.stat(f.source)
                        if tuple(row[:5]) == self._key(st) and st.st_size == f.size and st.st_mtime_ns == f.mtime_ns:
                            found[f.source] = row[5]
        except sqlite3.Error:
            return {}
        return found

    def remember(self, files: Sequence[LocalFile]) -> None:
        """Keep the checksums of ``files`` (hashed), each with its current stat."""
        import sqlite3

        now = time.time_ns()
        rows = []
        for f in files:
            with contextlib.suppress(OSError):
                st = os.stat(f.source)
                if f.sha256 and st.st_mtime_ns == f.mtime_ns and now - max(st.st_mtime_ns, st.st_ctime_ns) > self.SETTLE_NS:
                    rows.append((str(f.source), *self._key(st), f.sha256))
        with contextlib.suppress(sqlite3.Error), self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def close(self) -> None:
        self._db.close()
