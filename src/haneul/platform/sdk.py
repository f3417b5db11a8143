"""The in-session SDK: ``haneul.report``, ``save``, ``load``, ``bind``, ``session_id``, ``DATASET_PATH``.

Inside a platform session the executor sets ``HANEUL_SESSION``, ``HANEUL_SERVER`` and
``HANEUL_TOKEN``; metrics are buffered in memory and shipped in batches by a background thread (and
at exit, and on :func:`flush`), checkpoints are uploaded to the server's artifact store. Outside a
session every call still works: metrics go to a local CSV under ``HANEUL_HOME/local`` (with a
rate-limited line on stderr) and checkpoints to a local folder, so library code can call the SDK
unconditionally.
"""

from __future__ import annotations

import atexit
import csv
import math
import os
import pickle
import shutil
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from haneul.errors import HaneulError, IntegrityError, InvalidInput, NotFound, ServerUnavailable

DATASET_PATH: str | None = os.environ.get("HANEUL_DATASET_PATH") or None

FLUSH_INTERVAL_S = 0.25
FLUSH_AT_POINTS = 20_000
# how long an explicit flush() and the flush at exit wait for an unreachable server (a restart)
RETRY_S = float(os.environ.get("HANEUL_FLUSH_RETRY_S", "120"))
RETRY_AT_EXIT_S = RETRY_S


def session_id() -> str | None:
    """The id of the platform session this process runs in, or ``None`` outside one."""
    return os.environ.get("HANEUL_SESSION") or None


# --------------------------------------------------------------------------------------------------
# metrics


def _validate(step: int | None, scalars: dict[str, Any]) -> dict[str, float]:
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
        raise InvalidInput(f"report(step={step!r}): step must be a non-negative int or None")
    out: dict[str, float] = {}
    for key, value in scalars.items():
        try:
            number = float(value)  # accepts numpy and 0-d torch scalars
        except (TypeError, ValueError):
            raise InvalidInput(f"report({key}={value!r}): metric values must be numbers") from None
        if not math.isfinite(number):
            raise InvalidInput(f"report({key}={number}): metric values must be finite (got NaN or inf)")
        out[key] = number
    return out


Groups = dict[str, tuple[list[int], list[float], list[float]]]  # key -> (steps, values, times)


class _Reporter:
    """Buffers points grouped by key (the wire format) and ships them; one per process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ship_lock = threading.Lock()  # one batch on the wire at a time keeps batches in order
        self._buf: Groups = {}
        self._pending = 0
        self._step = -1
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._closed = False
        self._last_print = 0.0
        self._csv: Any = None
        self._errors = 0
        self._client: Any = None
        self._session = session_id()
        atexit.register(self.close)

    # -- public
    def report(self, step: int | None, scalars: dict[str, Any]) -> None:
        values = _validate(step, scalars)
        if not values:
            return
        now = time.time()
        with self._lock:
            if step is None:
                step = self._step + 1
            if step > self._step:
                self._step = step
            buf = self._buf
            for key, value in values.items():
                group = buf.get(key)
                if group is None:
                    group = buf[key] = ([], [], [])
                group[0].append(step)
                group[1].append(value)
                group[2].append(now)
            self._pending += len(values)
            full = self._pending >= FLUSH_AT_POINTS
        if self._session is None:
            self._echo(step, values, now)
        if self._thread is None:
            self._start_thread()
        if full:
            self._wake.set()

    def flush(self, wait_s: float = 0.0) -> None:
        """Ship what is buffered; while the server is unreachable keep retrying up to ``wait_s``."""
        deadline = time.monotonic() + wait_s
        delay = 0.2
        while True:
            try:
                with self._ship_lock:
                    with self._lock:
                        batch, self._buf, self._pending = self._buf, {}, 0
                    if batch:
                        self._ship(batch)
                return
            except ServerUnavailable:
                if time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)  # e.g. the server is restarting: the batch was put back
                delay = min(delay * 2, 5.0)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        try:
            self.flush(wait_s=RETRY_AT_EXIT_S)
        except HaneulError as exc:
            print(f"haneul: {self._pending} metric points were not delivered: {exc.message}", file=sys.stderr)
        finally:
            if self._csv is not None:
                self._csv[0].close()

    # -- internals
    def _start_thread(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="haneul-report", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while not self._closed:
            self._wake.wait(FLUSH_INTERVAL_S)
            self._wake.clear()
            try:
                self.flush()
            except Exception as exc:  # keep the user's program alive; say it once in a while
                self._errors += 1
                if self._errors in (1, 10, 100):
                    print(f"haneul: could not ship metrics ({exc}); retrying", file=sys.stderr)

    def _ship(self, batch: Groups) -> None:
        if self._session is None:
            self._write_csv(batch)
            return
        from haneul.platform.client import Client

        if self._client is None:
            self._client = Client.from_env()
        try:
            self._client.log_metrics(self._session, batch)
        except Exception:
            self._requeue(batch)
            raise

    def _requeue(self, batch: Groups) -> None:
        """Put an unsent batch back in front of newer points, so nothing is lost or reordered."""
        with self._lock:
            newer, self._buf = self._buf, batch
            for key, (steps, values, times) in newer.items():
                group = self._buf.setdefault(key, ([], [], []))
                group[0].extend(steps)
                group[1].extend(values)
                group[2].extend(times)
            self._pending = sum(len(g[1]) for g in self._buf.values())

    def _write_csv(self, batch: Groups) -> None:
        path = _local_dir() / "metrics.csv"
        if self._csv is not None and self._csv[2] != path:  # HANEUL_HOME changed under us
            self._csv[0].close()
            self._csv = None
        if self._csv is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            fresh = not path.exists()
            fh = open(path, "a", newline="")  # noqa: SIM115 - kept open for the life of the process
            writer = csv.writer(fh)
            if fresh:
                writer.writerow(["key", "step", "value", "time"])
            self._csv = (fh, writer, path)
        fh, writer, _ = self._csv
        rows = [(key, st, v, t) for key, (steps, values, times) in batch.items()
                for st, v, t in zip(steps, values, times, strict=True)]
        rows.sort(key=lambda r: (r[3], r[1]))  # time order, as reported
        writer.writerows(rows)
        fh.flush()

    def _echo(self, step: int, values: dict[str, float], now: float) -> None:
        if now - self._last_print < 1.0:
            return
        self._last_print = now
        shown = " ".join(f"{k}={v:.6g}" for k, v in values.items())
        print(f"[haneul] step {step}: {shown}", file=sys.stderr)


_reporter: _Reporter | None = None
_reporter_lock = threading.Lock()


def _get_reporter() -> _Reporter:
    global _reporter
    if _reporter is None:
        with _reporter_lock:
            if _reporter is None:
                _reporter = _Reporter()
    return _reporter


def report(step: int | None = None, **scalars: Any) -> None:
    """Record scalar metrics at ``step`` (the next step when ``None``): ``report(step=3, loss=0.1)``.

    Values must be finite numbers; the call returns at once and the points are shipped in batches.
    """
    _get_reporter().report(step, scalars)


def flush() -> None:
    """Ship every buffered metric point now (also done in the background and at exit).

    While the server is unreachable (a restart) it retries for up to ``HANEUL_FLUSH_RETRY_S``
    seconds (default 120) before raising :class:`~haneul.errors.ServerUnavailable`.
    """
    _get_reporter().flush(wait_s=RETRY_S)


def _reset() -> None:
    """Flush and forget the process's reporter (step counter, buffers); used between tests."""
    global _reporter
    if _reporter is not None:
        _reporter.close()
        _reporter = None


# --------------------------------------------------------------------------------------------------
# checkpoints

_bound: dict[str, Callable[..., Any] | None] = {"save": None, "load": None, "infer": None}


def bind(
    save: Callable[[str], Any] | None = None,
    load: Callable[[str], Any] | None = None,
    infer: Callable[..., Any] | None = None,
) -> None:
    """Register the session's own ``save(dir)``, ``load(dir)`` and ``infer(...)`` functions.

    With ``save`` bound, ``haneul.save(name)`` calls it with an empty folder and stores what it
    wrote; with ``load`` bound, ``haneul.load(name)`` restores that folder and calls it.
    """
    _bound.update(save=save, load=load, infer=infer)


def bound(name: str) -> Callable[..., Any] | None:
    return _bound.get(name)


def _pack(obj: Any) -> tuple[str, Path, Callable[[], None]]:
    """Turn what the user gave into ``(kind, file_to_store, cleanup)``."""
    tmpdir = Path(tempfile.mkdtemp(prefix="haneul-save-"))

    def cleanup() -> None:
        shutil.rmtree(tmpdir, ignore_errors=True)

    try:
        if obj is None:
            fn = _bound["save"]
            if fn is None:
                raise InvalidInput("save(name) with no object needs haneul.bind(save=...) first")
            work = tmpdir / "dir"
            work.mkdir()
            fn(str(work))
            obj = work
        if isinstance(obj, str | os.PathLike) and Path(obj).exists():
            src = Path(obj)
            if src.is_dir():
                blob = tmpdir / "blob.tar"
                with tarfile.open(blob, "w") as tar:
                    for child in sorted(src.iterdir()):
                        tar.add(child, arcname=child.name)
                return "dir", blob, cleanup
            return "file", src, cleanup
        if isinstance(obj, str | os.PathLike):
            raise InvalidInput(f"save: path {obj} does not exist; pass an existing file or folder or an object")
        blob = tmpdir / "blob.bin"
        if isinstance(obj, bytes | bytearray):
            blob.write_bytes(bytes(obj))
            return "bytes", blob, cleanup
        if _looks_like_torch(obj):
            import torch

            torch.save(obj, blob)
            return "torch", blob, cleanup
        with open(blob, "wb") as fh:
            pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
        return "pickle", blob, cleanup
    except BaseException:
        cleanup()
        raise


def _looks_like_torch(obj: Any) -> bool:
    if "torch" not in sys.modules:
        return False
    import torch

    def walk(x: Any, depth: int = 0) -> bool:
        if isinstance(x, torch.Tensor | torch.nn.Module):
            return True
        if depth > 3:
            return False
        if isinstance(x, dict):
            return any(walk(v, depth + 1) for v in x.values())
        if isinstance(x, list | tuple):
            return any(walk(v, depth + 1) for v in x[:32])
        return False

    return walk(obj)


def _unpack(kind: str, path: Path, dest: Path | None = None) -> Any:
    if kind == "file":
        return path
    if kind == "dir":
        out = dest or Path(tempfile.mkdtemp(prefix="haneul-load-"))
        with tarfile.open(path) as tar:
            tar.extractall(out, filter="data")
        fn = _bound["load"]
        if fn is not None:
            return fn(str(out))
        return out
    if kind == "bytes":
        return path.read_bytes()
    if kind == "torch":
        import torch

        return torch.load(path, weights_only=False)
    if kind == "pickle":
        with open(path, "rb") as fh:
            return pickle.load(fh)
    raise IntegrityError(f"checkpoint kind {kind!r} is unknown; was it written by a newer haneul?")


def save(name: str, obj: Any = None) -> dict[str, Any]:
    """Store a checkpoint ``name`` of this session: a path (file or folder), bytes, a torch object
    (state dict, tensors, module) or any picklable object. Written atomically with a sha256.

    Returns the checkpoint record (name, size, sha256, kind).
    """
    from haneul.platform.store import validate_name

    validate_name(name)
    kind, blob, cleanup = _pack(obj)
    try:
        sid = session_id()
        if sid is None:
            from haneul.platform.store import CheckpointStore

            return CheckpointStore(_local_dir() / "checkpoints").put(name, blob, kind)
        from haneul.platform.client import Client

        flush()  # metrics up to this point belong before the checkpoint
        return Client.from_env().upload_checkpoint(sid, name, blob, kind)
    finally:
        cleanup()


def load(name: str, session: str | None = None) -> Any:
    """Load checkpoint ``name`` of ``session`` (default: this one), verifying its sha256.

    Returns what was saved: the object, bytes, a local path for a file, or a folder (or the bound
    ``load`` function's result for a folder).
    """
    from haneul.platform.store import validate_name

    validate_name(name)
    sid = session or session_id()
    if sid is None:
        from haneul.platform.store import CheckpointStore

        kind, path = CheckpointStore(_local_dir() / "checkpoints").get(name)
        return _unpack(kind, path)
    from haneul.platform.client import Client

    tmp = Path(tempfile.mkdtemp(prefix="haneul-ckpt-"))
    kind, path = Client.from_env().download_checkpoint(sid, name, tmp / "blob")
    return _unpack(kind, path)


def paused() -> bool:
    """True when the platform asked this session to pause (it should save and exit cleanly)."""
    flag = os.environ.get("HANEUL_PAUSE_FILE")
    return flag is not None and flag != "" and Path(flag).exists()


def _local_dir() -> Path:
    from haneul.settings import get_settings

    run = os.environ.get("HANEUL_LOCAL_RUN", "default")
    return get_settings().home / "local" / run


__all__ = [
    "DATASET_PATH",
    "HaneulError",
    "NotFound",
    "bind",
    "bound",
    "flush",
    "load",
    "paused",
    "report",
    "save",
    "session_id",
]
