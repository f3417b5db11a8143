"""Where checkpoints and artifacts are kept: a local folder, or an object store named by an fsspec URL.

``HANEUL_ARTIFACT_ROOT`` is a plain path (the default, ``$HANEUL_HOME/artifacts``) or a URL such as
``s3://bucket/prefix``. :func:`open_folder` turns either into a :class:`Folder`, the few operations
:mod:`haneul.platform.store` needs: write a stream of bytes atomically (returning its size and sha256),
read, list, remove, and take the lock that guards a read-modify-write of an index.

- :class:`LocalFolder` keeps what the stores always did: tmp-then-rename writes with fsync
  (:mod:`haneul.io`), ``flock`` for the index, and a local path the server sends with ``sendfile``.
- :class:`RemoteFolder` goes through fsspec (the same library the dataset blob store uses). In an
  object store a small file is one request and a large one one upload opened with
  ``autocommit=False``: s3fs sends it in parts of its block size, and the object only appears once
  the upload is completed, so a dropped upload is aborted and never leaves a partial object under
  the real name. On other filesystems a file is written under a temporary name and moved into
  place. Every backend failure becomes one :class:`~haneul.errors.ServerUnavailable` line naming
  the URL and what to fix, never a traceback.

Credentials come from the backend's usual environment (for S3: ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL`` or ``HANEUL_S3_ENDPOINT_URL``, a profile, an instance
role); extra fsspec options come from ``HANEUL_ARTIFACT_OPTIONS`` (JSON).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import secrets
import shutil
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar

from haneul.errors import HaneulError, IntegrityError, InvalidInput, ServerUnavailable
from haneul.io import CHUNK, atomic_write_chunks, sha256_file

__all__ = ["Folder", "LocalFolder", "RemoteFolder", "StoredFile", "is_url", "open_folder"]

_T = TypeVar("_T")
#: a file smaller than this goes up in one request; a larger one is streamed (S3: a multipart upload
#: whose parts are the filesystem's block size), never held whole in memory
ONE_REQUEST_BYTES = 5 << 20
#: object stores whose uploads appear under their name only once complete (s3fs, gcsfs, adlfs); on any
#: other filesystem a file is written under a temporary name and moved into place
WHOLE_UPLOADS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"})
#: the Python package each object-store protocol needs, and the extra of haneul that installs it
_BACKENDS = {"s3": ("s3fs", "s3"), "s3a": ("s3fs", "s3")}
#: sha256s of remote objects already read whole, by the object's version key (ETag, size, time):
#: a second download of an unchanged object skips the extra read its verification would cost
_VERIFIED: OrderedDict[str, str] = OrderedDict()
_VERIFIED_MAX = 4096
_VERIFIED_LOCK = threading.Lock()
#: locks for the read-modify-write of a remote folder's index within this process, picked by the
#: folder's URL: a fixed set, so that many sessions' folders cost no more memory than a few
_LOCKS = tuple(threading.Lock() for _ in range(64))


def is_url(location: str | Path) -> bool:
    """Whether ``location`` names an object store (``s3://...``) rather than a local folder."""
    text = str(location)
    return "://" in text and not text.startswith("file://")


class Folder(Protocol):
    """A folder of named files; ``rel`` is a ``/``-separated path inside it (``""``: the folder)."""

    def where(self, rel: str = "") -> str:
        """The path or URL of ``rel``, for messages."""
        ...

    def child(self, *parts: str) -> Folder: ...

    def local_path(self, rel: str = "") -> Path | None:
        """``rel`` as a local path, or None in an object store."""
        ...

    def write(self, rel: str, chunks: Iterable[bytes]) -> tuple[int, str]:
        """Store ``chunks`` as ``rel``, replacing it whole or not at all; ``(size, sha256)``."""
        ...

    def read_bytes(self, rel: str, limit: int | None = None) -> bytes:
        """The bytes of ``rel`` (at most ``limit`` of them); FileNotFoundError when it is missing."""
        ...

    def open(self, rel: str) -> IO[bytes]:
        """``rel`` opened for reading; FileNotFoundError when it is missing."""
        ...

    def sha256(self, rel: str) -> str:
        """The sha256 of ``rel``'s bytes; FileNotFoundError when it is missing."""
        ...

    def kind(self, rel: str) -> str | None:
        """``"file"``, ``"directory"`` or None (nothing there)."""
        ...

    def names(self) -> list[str]:
        """The names directly inside the folder (none when it does not exist)."""
        ...

    def remove(self) -> None:
        """Delete the folder and everything in it (nothing to do when it does not exist)."""
        ...

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """Held around a read-modify-write of one of the folder's files."""
        ...

    def check(self) -> None:
        """Raise a one-line HaneulError now if the folder cannot be written (called once at start)."""
        ...


class StoredFile:
    """One stored file and the sha256 recorded for it: checked whole (:meth:`verify`), streamed
    (:meth:`chunks`, checked on the way) or copied to a local file (:meth:`local_copy`). ``what``
    and ``fix`` word the IntegrityError of a missing or corrupt file."""

    def __init__(self, folder: Folder, rel: str, *, size: int, sha256: str, what: str, fix: str) -> None:
        self.folder, self.rel, self.size, self.sha256 = folder, rel, size, sha256
        self.what, self.fix = what, fix
        #: the file as a local path (the server hands it to ``sendfile``), or None in an object store
        self.local = folder.local_path(rel)

    def missing(self) -> IntegrityError:
        return IntegrityError(f"{self.what} is missing its data file {self.folder.where(self.rel)}")

    def corrupt(self, actual: str) -> IntegrityError:
        return IntegrityError(f"{self.what} is corrupt: sha256 {actual[:12]}… != recorded "
                              f"{self.sha256[:12]}…; {self.fix}")

    def verify(self) -> StoredFile:
        """This file, once its bytes are checked against the recorded sha256."""
        try:
            actual = self.folder.sha256(self.rel)
        except FileNotFoundError:
            raise self.missing() from None
        if actual != self.sha256:
            raise self.corrupt(actual)
        return self

    def chunks(self) -> Iterator[bytes]:
        """The file's bytes. If they do not match the recorded sha256 (the file changed after it was
        verified), the stream ends with an IntegrityError instead of ending as if whole."""
        digest = hashlib.sha256()
        try:
            fh = self.folder.open(self.rel)
        except FileNotFoundError:
            raise self.missing() from None
        with fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
                yield chunk
        if digest.hexdigest() != self.sha256:
            raise self.corrupt(digest.hexdigest())

    def local_copy(self, cache: Path | None) -> Path:
        """A verified local file of these bytes: the file itself in a local folder, else a copy in
        ``cache`` named by its sha256 (made once, reused while it stays intact)."""
        if self.local is not None:
            self.verify()
            return self.local
        if cache is None:
            raise ValueError(f"{self.what} is in an object store; a local copy needs a cache folder")
        target = cache / self.sha256
        if target.is_file() and sha256_file(target) == self.sha256:
            return target
        atomic_write_chunks(target, self.chunks())  # a corrupt object raises and leaves no copy
        return target


# --------------------------------------------------------------------------------------------------
# a local folder


class LocalFolder:
    """A folder on this machine: atomic tmp-then-rename writes, ``flock`` for indexes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def where(self, rel: str = "") -> str:
        return str(self.path / rel) if rel else str(self.path)

    def child(self, *parts: str) -> LocalFolder:
        return LocalFolder(self.path.joinpath(*parts))

    def local_path(self, rel: str = "") -> Path:
        return self.path / rel if rel else self.path

    def write(self, rel: str, chunks: Iterable[bytes]) -> tuple[int, str]:
        return atomic_write_chunks(self.path / rel, chunks)

    def read_bytes(self, rel: str, limit: int | None = None) -> bytes:
        with open(self.path / rel, "rb") as fh:
            return fh.read() if limit is None else fh.read(limit)

    def open(self, rel: str) -> IO[bytes]:
        return open(self.path / rel, "rb")  # noqa: SIM115 - the caller closes it

    def sha256(self, rel: str) -> str:
        return sha256_file(self.path / rel)

    def kind(self, rel: str) -> str | None:
        path = self.path / rel
        return "directory" if path.is_dir() else "file" if path.is_file() else None

    def names(self) -> list[str]:
        return [p.name for p in self.path.iterdir()] if self.path.is_dir() else []

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        import fcntl

        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def check(self) -> None:
        """Nothing: a local folder is made on first use, and a write error then names the path."""


# --------------------------------------------------------------------------------------------------
# an object store through fsspec


class RemoteFolder:
    """A folder in an object store (or any fsspec filesystem) under ``url``."""

    def __init__(self, fs: Any, path: str, url: str) -> None:
        self.fs = fs
        self.path = path.rstrip("/")
        self.url = url.rstrip("/")
        protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
        #: whether an upload only appears once complete (object stores), so it can go straight to its name
        self.whole_uploads = bool(set(protocols) & WHOLE_UPLOADS)

    def where(self, rel: str = "") -> str:
        return f"{self.url}/{rel}" if rel else self.url

    def child(self, *parts: str) -> RemoteFolder:
        tail = "/".join(parts)
        return RemoteFolder(self.fs, f"{self.path}/{tail}", f"{self.url}/{tail}")

    def local_path(self, rel: str = "") -> None:
        return None

    def _full(self, rel: str) -> str:
        return f"{self.path}/{rel}" if rel else self.path

    def _call(self, action: str, rel: str, call: Callable[[], _T], *, missing_ok: bool = True) -> _T:
        """``call()``, with any backend failure turned into one ServerUnavailable line. A missing file
        stays FileNotFoundError when ``missing_ok`` (reads); on a write it means a missing bucket."""
        try:
            return call()
        except HaneulError:
            raise
        except FileNotFoundError as exc:
            if missing_ok:
                raise
            raise unavailable(self.where(rel), action, exc) from None  # a write: the bucket is missing
        except Exception as exc:
            raise unavailable(self.where(rel), action, exc) from None

    def write(self, rel: str, chunks: Iterable[bytes]) -> tuple[int, str]:
        full = self._full(rel)
        digest, size = hashlib.sha256(), 0

        def counted() -> Iterator[bytes]:  # the caller's errors (a dropped upload) pass through unchanged
            nonlocal size
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                yield chunk

        stream = counted()
        if not self.whole_uploads:  # any other filesystem: a temporary name, then a move
            tmp = f"{full}.{secrets.token_hex(6)}.part"
            try:
                self._upload(rel, tmp, b"", stream)
                self._call("write", rel, functools.partial(self.fs.mv, tmp, full), missing_ok=False)
            except BaseException:
                with contextlib.suppress(Exception):
                    self.fs.rm_file(tmp)
                raise
            return size, digest.hexdigest()
        head = bytearray()
        for chunk in stream:
            head += chunk
            if len(head) >= ONE_REQUEST_BYTES:
                break
        else:  # small (a record, an index): one request, which the store applies whole or not at all
            self._call("write", rel, functools.partial(self.fs.pipe_file, full, bytes(head)), missing_ok=False)
            return size, digest.hexdigest()
        self._upload(rel, full, bytes(head), stream)
        return size, digest.hexdigest()

    def _upload(self, rel: str, target: str, head: bytes, rest: Iterator[bytes]) -> None:
        """Stream ``head`` and ``rest`` to ``target`` as one upload, committed only at its end."""
        fh = self._call("write", rel, lambda: self.fs.open(target, "wb", autocommit=False), missing_ok=False)
        try:
            self._call("write", rel, functools.partial(fh.write, head), missing_ok=False)
            for chunk in rest:
                self._call("write", rel, functools.partial(fh.write, chunk), missing_ok=False)
            self._call("write", rel, fh.close, missing_ok=False)  # sends the last part
            self._call("write", rel, fh.commit, missing_ok=False)  # the object appears whole, now
        except BaseException:
            with contextlib.suppress(Exception):
                fh.discard()  # aborts a multipart upload: no part of it stays behind
            raise

    def read_bytes(self, rel: str, limit: int | None = None) -> bytes:
        # a ranged read: a preview of a large object fetches its first bytes, not a whole read-ahead block
        return bytes(self._call("read", rel, functools.partial(self.fs.cat_file, self._full(rel), start=0, end=limit)))

    def open(self, rel: str) -> IO[bytes]:
        fh: IO[bytes] = self._call("read", rel, lambda: self.fs.open(self._full(rel), "rb", block_size=4 * CHUNK))
        return fh

    def sha256(self, rel: str) -> str:
        full = self._full(rel)

        def version() -> str:
            self.fs.invalidate_cache(full)  # an object replaced behind our back must show its new version
            return f"{self.url}|{full}|{self.fs.ukey(full)}"

        key = self._call("read", rel, version)
        with _VERIFIED_LOCK:
            known = _VERIFIED.get(key)
        if known is not None:
            return known

        def digest() -> str:
            sha = hashlib.sha256()
            with self.fs.open(full, "rb", block_size=4 * CHUNK) as fh:
                while chunk := fh.read(CHUNK):
                    sha.update(chunk)
            return sha.hexdigest()

        actual = self._call("read", rel, digest)
        with _VERIFIED_LOCK:
            _VERIFIED[key] = actual
            while len(_VERIFIED) > _VERIFIED_MAX:
                _VERIFIED.popitem(last=False)
        return actual

    def kind(self, rel: str) -> str | None:
        full = self._full(rel)

        def info() -> str | None:
            self.fs.invalidate_cache(full)
            try:
                kind = self.fs.info(full)["type"]
            except FileNotFoundError:
                return None
            return "directory" if kind == "directory" else "file"

        return self._call("read", rel, info)

    def names(self) -> list[str]:
        def listing() -> list[str]:
            self.fs.invalidate_cache(self.path)
            try:
                return [str(p).rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(self.path, detail=False)]
            except FileNotFoundError:
                return []

        return self._call("list", "", listing)

    def remove(self) -> None:
        def rm() -> None:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm(self.path, recursive=True)
            self.fs.invalidate_cache(self.path)

        self._call("delete", "", rm)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        # An object store has no file locks; one server process writes a session's index, so a lock
        # per folder in this process keeps its concurrent uploads from losing each other's entries.
        with _LOCKS[hash(self.url) % len(_LOCKS)]:
            yield

    def check(self) -> None:
        """Write and delete a probe object: an endpoint that refuses, a missing bucket or missing
        credentials is found at start, in one line, instead of at the first upload."""
        probe = f".haneul-probe-{secrets.token_hex(6)}"
        self.write(probe, [b"probe"])
        self._call("delete", probe, lambda: self.fs.rm_file(self._full(probe)), missing_ok=False)


def unavailable(url: str, action: str, exc: BaseException) -> ServerUnavailable:
    """One line for a failed object-store call: what failed, on which URL, and what to fix."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"}:
        fix = "no credentials were found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a profile)"
    elif names & {"EndpointConnectionError", "ConnectTimeoutError", "ConnectionError", "ClientConnectorError"}:
        fix = ("nothing answers at the endpoint; check HANEUL_S3_ENDPOINT_URL or AWS_ENDPOINT_URL "
               "and that the store is up")
    elif isinstance(exc, FileNotFoundError):
        fix = "the bucket does not exist; create it or fix HANEUL_ARTIFACT_ROOT"
    elif isinstance(exc, PermissionError):
        fix = "access was denied; check the credentials and the bucket's policy"
    else:
        fix = "check HANEUL_ARTIFACT_ROOT, the endpoint and the credentials"
    detail = " ".join(str(exc).split())[:200] or type(exc).__name__
    return ServerUnavailable(f"artifact store {url}: cannot {action} ({type(exc).__name__}: {detail}); {fix}")


def open_folder(location: str | Path, options: Mapping[str, Any] | None = None) -> Folder:
    """The folder at ``location``: a local path, or an fsspec URL opened with ``options`` (its
    storage options, e.g. ``endpoint_url``). A URL whose backend is not installed is a one-line
    InvalidInput naming the package to install."""
    if not is_url(location):
        text = str(location)
        return LocalFolder(Path(text[len("file://"):] if text.startswith("file://") else text))
    url = str(location).rstrip("/")
    protocol = url.split("://", 1)[0]
    import fsspec

    try:
        # a deep copy: botocore rewrites nested dicts it is given (config_kwargs), and these are the settings'
        fs, path = fsspec.core.url_to_fs(url, **copy.deepcopy(dict(options or {})))
    except ImportError as exc:
        if protocol in _BACKENDS:
            package, extra = _BACKENDS[protocol]
            raise InvalidInput(f"HANEUL_ARTIFACT_ROOT={url} needs {package}, which is not installed; "
                               f"pip install 'haneul[{extra}]'") from None
        raise InvalidInput(f"HANEUL_ARTIFACT_ROOT={url} needs an fsspec backend that is not installed ({exc}); "
                           "install it beside haneul") from None
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"HANEUL_ARTIFACT_ROOT={url} cannot be opened ({exc}); "
                           "check the URL and HANEUL_ARTIFACT_OPTIONS") from None
    return RemoteFolder(fs, path, url)
