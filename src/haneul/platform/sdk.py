"""The in-session SDK: ``haneul.report``, ``config``, ``save``, ``load``, ``bind``, ``session_id``,
``DATASET_PATH``.

Inside a platform session the executor sets ``HANEUL_SESSION``, ``HANEUL_SERVER`` and
``HANEUL_TOKEN``; metrics are shipped to the server and checkpoints uploaded to its artifact store.
Outside a session every call still works: metrics go to a local CSV under ``HANEUL_HOME/local``
(with a rate-limited line on stderr) and checkpoints to a local folder, so library code can call the
SDK unconditionally.

How metrics reach the server. ``report`` only appends to an in-memory buffer (one uncontended lock
per call, a few microseconds) and a background thread ships it every 0.25 s or at 20,000 points;
:func:`flush` and the exit hook ship the rest, in the order the points were reported.

- *Requests the server accepts.* A request carries at most the server's ``max_metric_batch`` (read
  from ``GET /api/v1/health`` on first use; 10,000 until it is known, never more than 100,000). A
  413 splits the batch in two, or to the limit the answer names, and sends the parts.
- *Bounded memory, no stalls.* When the unsent buffer reaches :data:`SPILL_AT_POINTS` (200,000
  points, some 20 MB) because the server is slower than the training loop or is restarting,
  ``report`` writes the whole buffer to a file in ``<session folder>/metrics-spill-<pid>/`` and
  carries on; spilled files are shipped oldest first and deleted once stored. Spilling instead of
  blocking keeps a GPU job running at full speed through a slow or restarting server, for one file
  write per 200,000 points.
- *Transient failures are retried.* A 5xx answer or an unreachable server is retried with backoff
  (0.2 s doubling to 5 s): indefinitely in the background, where waiting costs nothing, and for up to
  ``HANEUL_FLUSH_RETRY_S`` seconds (default 120) in :func:`flush` and at exit.
- *Nothing is dropped.* Points that still could not be stored (the server stayed away past that
  wait, or refused them for good, e.g. with a 401) are appended to
  ``<session folder>/metrics-undelivered-<pid>.jsonl`` and one line on stderr, which is the session
  log, says where they are and how to send them again with :func:`resend`. The background thread
  never raises into the program and never prints a traceback.

The session folder is ``HANEUL_SESSION_DIR`` when set, else the executor's folder for the session
(``HANEUL_HOME/sessions/<id>``), else the working directory. Delivery is at least once: a batch
whose answer is lost after the server stored it (a timeout) is sent again and stored twice.
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
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from haneul.errors import HaneulError, IntegrityError, InvalidInput, NotFound, PayloadTooLarge

DATASET_PATH: str | None = os.environ.get("HANEUL_DATASET_PATH") or None

FLUSH_INTERVAL_S = 0.25
FLUSH_AT_POINTS = 20_000
# the back-pressure bound: an unsent buffer this large goes to a spill file instead of growing
SPILL_AT_POINTS = 200_000
# points per request before the server has said its limit, and never more than MAX_BATCH_POINTS
# whatever it allows (100,000 points are about 5 MB of JSON, one short transaction on the server)
DEFAULT_BATCH_POINTS = 10_000
MAX_BATCH_POINTS = 100_000
# how long an explicit flush() and the flush at exit wait for an unreachable server (a restart)
RETRY_S = float(os.environ.get("HANEUL_FLUSH_RETRY_S", "120"))
RETRY_AT_EXIT_S = RETRY_S
BACKOFF_S = (0.2, 5.0)  # first and longest wait between tries while the server is away
MAX_KEY_LEN = 256  # the server's limit (service.MAX_KEY_LEN), checked here so a bad key fails at the call
UNDELIVERED_FORMAT = "haneul-undelivered-metrics/1"


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
        if not key or len(key) > MAX_KEY_LEN:
            raise InvalidInput(f"report({key[:40]!r}=...): metric names must be 1-{MAX_KEY_LEN} characters")
        out[key] = number
    return out


Groups = dict[str, tuple[list[int], list[float], list[float]]]  # key -> (steps, values, times)


def _count(groups: Groups) -> int:
    return sum(len(g[1]) for g in groups.values())


def _chunks(groups: Groups, limit: int) -> list[Groups]:
    """Split ``groups`` into pieces of at most ``limit`` points, each key's points kept in order."""
    if _count(groups) <= limit:
        return [groups] if groups else []
    out: list[Groups] = []
    piece: Groups = {}
    room = limit
    for key, (steps, values, times) in groups.items():
        start, n = 0, len(values)
        while start < n:
            end = start + min(room, n - start)
            piece[key] = (steps[start:end], values[start:end], times[start:end])
            room -= end - start
            start = end
            if room == 0:
                out.append(piece)
                piece, room = {}, limit
    if piece:
        out.append(piece)
    return out


def _body(groups: Groups) -> dict[str, Any]:
    """The metrics route's request body."""
    return {"metrics": {k: {"steps": g[0], "values": g[1], "times": g[2]} for k, g in groups.items()}}


def _transient(exc: BaseException) -> bool:
    """Worth retrying: the server is away or failed (5xx), or the local disk is (for the CSV)."""
    if isinstance(exc, HaneulError):
        return exc.http_status >= 500
    return isinstance(exc, OSError)


def _session_dir(session: str | None) -> Path:
    explicit = os.environ.get("HANEUL_SESSION_DIR")
    if explicit:
        return Path(explicit)
    if session is None:
        return _local_dir()
    from haneul.settings import get_settings

    folder = get_settings().sessions_dir / session
    return folder if folder.is_dir() else Path.cwd()


class _Link:
    """The connection to one session's metrics route: learns the batch limit, splits on a 413."""

    def __init__(self, client: Any, session: str) -> None:
        self.client = client
        self.session = session
        self.limit = DEFAULT_BATCH_POINTS
        self._limit_known = False

    def chunks(self, groups: Groups) -> deque[Groups]:
        self._learn_limit()
        return deque(_chunks(groups, self.limit))

    def ship(self, queue: deque[Groups]) -> None:
        """Send ``queue`` in order, removing each piece once stored; a piece the server would not
        take stays at the front and the error is raised."""
        while queue:
            piece = queue[0]
            n = _count(piece)
            if n > self.limit:  # cut before the limit was lowered by a 413
                queue.popleft()
                queue.extendleft(reversed(_chunks(piece, self.limit)))
                continue
            try:
                self.client.log_metrics(self.session, piece)
            except PayloadTooLarge as exc:
                if n <= 1:
                    raise
                hint = exc.details.get("max_points")
                smaller = hint if isinstance(hint, int) and 0 < hint < n else n // 2
                self.limit = min(self.limit, smaller)
                queue.popleft()
                queue.extendleft(reversed(_chunks(piece, self.limit)))
                continue
            queue.popleft()

    def _learn_limit(self) -> None:
        if self._limit_known:
            return
        try:
            health = self.client.health()
        except Exception:
            return  # asked again next time; until then the default is small enough for any server
        self._limit_known = True
        limits = health.get("limits") if isinstance(health, dict) else None
        limit = limits.get("max_metric_batch") if isinstance(limits, dict) else None
        if isinstance(limit, int) and limit > 0:
            self.limit = min(limit, MAX_BATCH_POINTS)


class _Reporter:
    """Buffers points grouped by key (the wire format) and ships them; one per process.

    Points wait in three places, oldest first: the batch in flight (``_inflight``, owned by whoever
    holds ``_ship_lock``), spilled files (``_spilled``) and the buffer ``report`` appends to.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards _buf, _pending, _step and _spilled
        self._ship_lock = threading.Lock()  # one shipper at a time keeps batches in order
        self._buf: Groups = {}
        self._pending = 0
        self._step = -1
        self._spill_at = SPILL_AT_POINTS
        self._spilled: deque[Path] = deque()
        self._spill_seq = 0
        self._spill_folder: Path | None = None
        self._inflight: deque[Groups] = deque()
        self._inflight_file: Path | None = None
        self._gave_up = False  # after one long wait for the server, later flushes try once
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._closed = False
        self._last_print = 0.0
        self._csv: Any = None
        self._errors = 0
        self._link: _Link | None = None
        self._session = session_id()
        self._undelivered: Path | None = None
        self._undelivered_points = 0
        self._announced_points = 0
        self._undelivered_reason = ""
        atexit.register(self.close)

    # -- public
    def report(self, step: int | None, scalars: dict[str, Any]) -> None:
        values = _validate(step, scalars)
        if not values:
            return
        now = time.time()
        n = len(values)
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
            self._pending += n
            pending = self._pending
            if pending >= self._spill_at:
                self._spill()
        if self._session is None:
            self._echo(step, values, now)
        if self._thread is None:
            self._start_thread()
        if pending - n < FLUSH_AT_POINTS <= pending:  # wake the shipper once per crossing, not per call
            self._wake.set()

    def flush(self, wait_s: float = 0.0) -> None:
        """Ship what was reported before the call; while the server is away retry for ``wait_s``,
        then keep the rest in the undelivered file. Never raises for a delivery failure."""
        if self._gave_up or self._session is None:  # a local disk error does not heal in seconds
            wait_s = 0.0
        deadline = time.monotonic() + wait_s
        started = time.monotonic()
        delay = BACKOFF_S[0]
        with self._ship_lock:
            while True:
                try:
                    self._drain()
                    return
                except Exception as exc:
                    left = deadline - time.monotonic()
                    if not _transient(exc) or left <= 0:
                        waited = time.monotonic() - started
                        self._give_up(f"{_message(exc)}; gave up after {waited:.0f} s")
                        return
                time.sleep(min(delay, left))  # e.g. the server is restarting: nothing was lost
                delay = min(delay * 2, BACKOFF_S[1])

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        self._wake.set()
        try:
            self.flush(wait_s=RETRY_AT_EXIT_S)
            self._announce()
        finally:
            if self._csv is not None:
                self._csv[0].close()
            if self._link is not None:
                self._link.client.close()
            if self._spill_folder is not None and not self._spilled:
                shutil.rmtree(self._spill_folder, ignore_errors=True)

    # -- shipping
    def _drain(self) -> None:
        """Ship in order until the buffer as it was when this started is stored.

        A transient failure is raised with the unsent points kept where they were; points the
        server refuses for good go to the undelivered file.
        """
        while True:
            took_buffer = False
            if not self._inflight:
                source = self._take()
                if source is None:
                    return
                took_buffer = source == "buffer"
            self._ship_inflight()
            if self._inflight_file is not None:
                with self._lock:
                    self._spilled.popleft()
                self._inflight_file.unlink(missing_ok=True)
                self._inflight_file = None
            if took_buffer:
                return

    def _take(self) -> str | None:
        """Move the oldest waiting points (a spilled file, else the buffer) into ``_inflight``."""
        if self._session is not None:
            self._connect()  # before anything leaves the buffer: a failure here must lose nothing
        with self._lock:
            path = self._spilled[0] if self._spilled else None
            if path is None:
                batch, self._buf, self._pending = self._buf, {}, 0
        if path is not None:
            self._inflight_file = path
            try:
                self._inflight = self._split(_read_groups(path))
            except (OSError, ValueError) as exc:  # only if someone removed or damaged it
                self._say(f"haneul: spilled metrics in {path} could not be read back and are lost ({exc})")
            return "file"
        if not batch:
            return None
        self._inflight = self._split(batch)
        return "buffer"

    def _split(self, groups: Groups) -> deque[Groups]:
        if self._link is None:
            return deque([groups] if groups else [])
        return self._link.chunks(groups)

    def _ship_inflight(self) -> None:
        while self._inflight:
            try:
                if self._session is None:
                    self._write_csv(self._inflight[0])
                    self._inflight.popleft()
                else:
                    self._connect().ship(self._inflight)
                self._gave_up = False
            except Exception as exc:
                if _transient(exc):
                    raise
                self._reject([self._inflight.popleft()], _message(exc))

    def _connect(self) -> _Link:
        if self._link is None:
            from haneul.platform.client import Client

            self._link = _Link(Client.from_env(), str(self._session))
        return self._link

    # -- back-pressure and the undelivered file
    def _spill(self) -> None:
        """Move the whole buffer to a file (called with ``_lock`` held, from ``report``)."""
        try:
            if self._spill_folder is None:
                self._spill_folder = _session_dir(self._session) / f"metrics-spill-{os.getpid()}"
                self._spill_folder.mkdir(parents=True, exist_ok=True)
            self._spill_seq += 1
            path = self._spill_folder / f"{self._spill_seq:06d}.json"
            _write_groups(path, self._buf)
        except OSError as exc:
            # keep the points in memory rather than lose them, and try the disk again later
            self._spill_at = self._pending + SPILL_AT_POINTS
            self._say(f"haneul: could not spill metrics to disk ({exc}); keeping them in memory")
            return
        self._spilled.append(path)
        self._buf, self._pending = {}, 0

    def _give_up(self, reason: str) -> None:
        """Move every point not yet stored to the undelivered file (``_ship_lock`` held)."""
        self._gave_up = True
        waiting: list[Groups] = list(self._inflight)
        self._inflight.clear()
        with self._lock:
            files = list(self._spilled)
            self._spilled.clear()
            batch, self._buf, self._pending = self._buf, {}, 0
        if self._inflight_file is not None:
            files = files[1:]  # its unsent part is in _inflight already
        for path in files:
            try:
                waiting.append(_read_groups(path))
            except (OSError, ValueError) as exc:
                self._say(f"haneul: spilled metrics in {path} could not be read back ({exc})")
        waiting.append(batch)
        self._reject(waiting, reason)
        for path in [*files, *([self._inflight_file] if self._inflight_file else [])]:
            path.unlink(missing_ok=True)
        self._inflight_file = None
        self._announce()

    def _reject(self, batches: Iterable[Groups], reason: str) -> None:
        """Append points the server did not store to the undelivered file, which :func:`resend` reads."""
        batches = [b for b in batches if b]
        n = sum(_count(b) for b in batches)
        if n == 0:
            return
        import orjson

        if self._undelivered is None:
            self._undelivered = _session_dir(self._session) / f"metrics-undelivered-{os.getpid()}.jsonl"
        path = self._undelivered
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # 0600: the header holds the session token, which re-sending needs
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "ab") as fh:
                if fh.tell() == 0:
                    fh.write(orjson.dumps({"format": UNDELIVERED_FORMAT, "session": self._session,
                                           "server": os.environ.get("HANEUL_SERVER"),
                                           "token": os.environ.get("HANEUL_TOKEN")}) + b"\n")
                for b in batches:
                    fh.write(orjson.dumps(_body(b)) + b"\n")
        except OSError as exc:
            self._say(f"haneul: {n} metric points were lost: they were not delivered ({reason}) "
                      f"and could not be written to {path} ({exc})")
            return
        self._undelivered_points += n
        self._undelivered_reason = reason
        if self._announced_points == 0:
            self._announce()  # at once, in case the process is killed before it exits

    def _announce(self) -> None:
        """One line for the points written to the undelivered file since the last such line."""
        new = self._undelivered_points - self._announced_points
        if new <= 0 or self._undelivered is None:
            return
        self._announced_points = self._undelivered_points
        path = self._undelivered
        how = "" if self._session is None else (
            f"; re-send them with: python -c \"from haneul.platform.sdk import resend; resend('{path}')\"")
        self._say(f"haneul: {new} metric points were not delivered ({self._undelivered_reason}); "
                  f"they are saved in {path}{how}")

    # -- internals
    def _start_thread(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="haneul-report", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        delay = 0.0
        while not self._closed:
            if delay:
                self._closing.wait(delay)  # the server is away: back off instead of trying on every wake
            else:
                self._wake.wait(FLUSH_INTERVAL_S)
            self._wake.clear()
            if self._closed:
                return  # close() ships the rest
            try:
                with self._ship_lock:
                    self._drain()
                delay = 0.0
            except Exception as exc:  # keep the program alive and quiet; the points wait, in order
                delay = min(max(delay * 2, BACKOFF_S[0]), BACKOFF_S[1])
                if not _transient(exc):
                    self._errors += 1
                    if self._errors in (1, 10, 100):
                        self._say(f"haneul: could not ship metrics ({_message(exc)}); retrying")

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

    @staticmethod
    def _say(line: str) -> None:
        try:
            print(line, file=sys.stderr, flush=True)
        except (OSError, ValueError):  # stderr closed at interpreter exit
            pass


def _message(exc: BaseException) -> str:
    text = exc.message if isinstance(exc, HaneulError) else f"{exc.__class__.__name__}: {exc}"
    return " ".join(str(text).split())  # one line


def _write_groups(path: Path, groups: Groups) -> None:
    import orjson

    with open(path, "wb") as fh:
        fh.write(orjson.dumps(groups))


def _read_groups(path: Path) -> Groups:
    import orjson

    raw = orjson.loads(path.read_bytes())
    return {key: (g[0], g[1], g[2]) for key, g in raw.items()}


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
    """Ship every metric point reported so far (also done in the background and at exit).

    Returns once they are stored. While the server is unreachable (a restart) it retries for up to
    ``HANEUL_FLUSH_RETRY_S`` seconds (default 120); points still not stored then are kept in the
    session folder's undelivered file, named in one line on stderr, and the program carries on.
    """
    _get_reporter().flush(wait_s=RETRY_S)


def resend(path: str | os.PathLike[str]) -> int:
    """Send the points of an undelivered file (``metrics-undelivered-<pid>.jsonl``) to the server.

    Uses the server and session token recorded in the file (``HANEUL_SERVER`` overrides the
    server). Returns the number of points stored; the file is then renamed to ``*.sent``. After a
    failure the file keeps only the points that were not stored, so running it again is safe.
    """
    import orjson

    from haneul.io import atomic_write_bytes
    from haneul.platform.client import Client

    source = Path(path)
    try:
        header, *lines = source.read_bytes().splitlines()
        meta = orjson.loads(header)
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{source} is not a file of undelivered metrics ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != UNDELIVERED_FORMAT:
        raise InvalidInput(f"{source} is not a file of undelivered metrics (its first line is not the header)")
    if not meta.get("session"):
        raise InvalidInput(f"{source} was written outside a platform session; there is no server to send it to")
    server = os.environ.get("HANEUL_SERVER") or meta.get("server")
    link = _Link(Client(server, token=meta.get("token")), str(meta["session"]))
    sent = 0
    try:
        for i, line in enumerate(lines):
            try:
                raw = orjson.loads(line)["metrics"]
                groups = {k: (g["steps"], g["values"], g["times"]) for k, g in raw.items()}
            except (ValueError, KeyError, TypeError, AttributeError):
                raise InvalidInput(f"{source}: line {i + 2} is not a metric batch; fix or remove it") from None
            queue = link.chunks(groups)
            try:
                link.ship(queue)
            except HaneulError:
                rest = ([orjson.dumps(_body(_merge(queue)))] if queue else []) + lines[i + 1:]
                atomic_write_bytes(source, b"\n".join([header, *rest]) + b"\n")
                raise
            sent += _count(groups)
    finally:
        link.client.close()
    source.replace(source.with_name(source.name + ".sent"))
    return sent


def _merge(pieces: Iterable[Groups]) -> Groups:
    out: Groups = {}
    for piece in pieces:
        for key, (steps, values, times) in piece.items():
            group = out.setdefault(key, ([], [], []))
            group[0].extend(steps)
            group[1].extend(values)
            group[2].extend(times)
    return out


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

    When the platform runs the script in a mode (``HANEUL_MODE``, e.g. ``serve`` for a replica of
    ``haneul deploy``), ``bind`` does not return: it runs that mode with these functions and exits,
    so the training code after it never runs (see :mod:`haneul.platform.serving`).
    """
    _bound.update(save=save, load=load, infer=infer)
    _run_mode()


def _run_mode() -> None:
    mode = os.environ.get("HANEUL_MODE")
    if mode:
        from haneul.platform.serving import run_mode

        run_mode(mode, dict(_bound))


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


def load(name: str | None = None, session: str | None = None) -> Any:
    """Load checkpoint ``name`` of ``session`` (default: this one), verifying its sha256.

    Returns what was saved: the object, bytes, a local path for a file, or a folder (or the bound
    ``load`` function's result for a folder). Without ``name`` it loads the latest checkpoint (by
    the time it was saved), and returns None when there is none yet, so a script can resume with
    ``state = haneul.load()`` on start. In a forked session that has saved nothing of its own yet,
    both forms fall back to the checkpoint it was forked from (``HANEUL_PARENT_SESSION`` and
    ``HANEUL_PARENT_CHECKPOINT``).
    """
    from haneul.platform.store import validate_name

    if name is not None:
        validate_name(name)
    sid = session or session_id()
    if sid is None:
        from haneul.platform.store import CheckpointStore

        store = CheckpointStore(_local_dir() / "checkpoints")
        if name is None:
            records = store.list()
            if not records:
                return None
            name = records[-1]["name"]
        kind, path = store.get(name)
        return _unpack(kind, path)
    from haneul.platform.client import Client

    client = Client.from_env()
    parent = (os.environ.get("HANEUL_PARENT_SESSION") or None) if session is None else None
    if name is None:
        records = client.list_checkpoints(sid)
        if records:
            name = records[-1]["name"]
        elif parent is not None and os.environ.get("HANEUL_PARENT_CHECKPOINT"):
            sid, name = parent, os.environ["HANEUL_PARENT_CHECKPOINT"]
        else:
            return None
    tmp = Path(tempfile.mkdtemp(prefix="haneul-ckpt-"))
    try:
        kind, path = client.download_checkpoint(sid, name, tmp / "blob")
    except NotFound:
        if parent is None or sid == parent:
            raise
        kind, path = client.download_checkpoint(parent, name, tmp / "blob")
    return _unpack(kind, path)


# --------------------------------------------------------------------------------------------------
# artifacts


def log_artifact(path: str | os.PathLike[str], name: str | None = None) -> list[dict[str, Any]]:
    """Keep a file or a folder (plots, predictions, configs, audio) with this session.

    A file is stored as ``name`` (default: its file name); a folder's files are stored one by one
    under ``name`` (default: the folder's name) with their paths inside it, e.g.
    ``log_artifact("out/plots")`` stores ``plots/loss.png``. Outside a session they are copied to
    ``HANEUL_HOME/local/<run>/artifacts``. Returns a record (path, size, sha256, media type) per file.
    """
    from haneul.platform.store import validate_artifact_path

    src = Path(path)
    if not src.exists():
        raise InvalidInput(f"log_artifact: {src} does not exist; pass an existing file or folder")
    prefix = validate_artifact_path(name if name is not None else src.resolve().name)
    if src.is_dir():
        # sorted so that a folder is stored (and listed while it uploads) in a stable order
        files = [(f"{prefix}/{f.relative_to(src).as_posix()}", f) for f in sorted(src.rglob("*")) if f.is_file()]
    else:
        files = [(prefix, src)]
    for dest, _ in files:
        validate_artifact_path(dest)  # every path before any upload: a bad one leaves nothing half-logged
    sid = session_id()
    if sid is None:
        from haneul.platform.store import ArtifactStore

        store = ArtifactStore(_local_dir() / "artifacts")
        return [store.put(dest, f) for dest, f in files]
    from haneul.platform.client import Client

    client = Client.from_env()
    try:
        return [client.upload_artifact(sid, dest, f) for dest, f in files]
    finally:
        client.close()


def config(params: Any) -> dict[str, Any]:
    """Record hyper-parameters: a dict (nested dicts are flattened with dots, ``{"opt": {"lr": 1e-3}}``
    -> ``opt.lr``) or an ``argparse.Namespace``. Returns the flattened params.

    Inside a session they are stored on the server at once (a key given again, or taken from the
    command line at launch, is replaced); outside one they are merged into
    ``$HANEUL_HOME/local/<run>/params.json`` with a line on stderr. Like :func:`report`, a server that
    cannot be reached costs a line in the log, not the training run.
    """
    import json

    from haneul.platform.params import flatten_params

    if not isinstance(params, dict):
        if not hasattr(params, "__dict__"):
            raise InvalidInput(f"config() takes a dict or an argparse.Namespace, not {type(params).__name__}")
        params = vars(params)
    flat = flatten_params(params)
    sid = session_id()
    if sid is None:
        path = _local_dir() / "params.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        held = json.loads(path.read_text()) if path.exists() else {}
        from haneul.io import atomic_write_text

        atomic_write_text(path, json.dumps({**held, **flat}, indent=2, ensure_ascii=False))
        _Reporter._say(f"[haneul] config: {len(flat)} params -> {path}")
        return flat
    from haneul.platform.client import Client

    try:
        Client.from_env().set_params(sid, flat)
    except HaneulError as exc:
        if not _transient(exc):
            raise
        _Reporter._say(f"[haneul] config: could not store params on the server ({_message(exc)})")
    return flat


def param(name: str, low: float | None = None, high: float | None = None, *, log: bool = False,
          step: float | None = None, choices: Sequence[Any] | None = None, default: Any = None) -> Any:
    """A hyper-parameter chosen by the study this session is a trial of (define-by-run)::

        lr = haneul.param("lr", 1e-4, 1e-1, log=True)
        layers = haneul.param("layers", 2, 8)            # whole numbers: an int parameter
        opt = haneul.param("opt", choices=["adamw", "sgd"])

    In a trial, a parameter of the study file's space comes from ``HANEUL_TRIAL_PARAMS``; any other
    is sampled by the study's sampler on the server (the same value again if the trial asks twice).
    Outside a study it returns ``default``, or else the middle of the range (the geometric middle
    when ``log``) or the first choice, so the same script runs alone unchanged.
    """
    import json

    if choices is not None:
        choices = list(choices)
        if not choices:
            raise InvalidInput(f"param {name!r}: choices must not be empty")
        dist: dict[str, Any] = {"type": "categorical", "choices": choices}
    else:
        if low is None or high is None:
            raise InvalidInput(f"param {name!r} needs low and high, or choices")
        whole = all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)) and \
            (step is None or float(step).is_integer())
        dist = {"type": "int" if whole else "float", "low": low, "high": high, "log": log}
        if step is not None:
            dist["step"] = step
    given = json.loads(os.environ.get("HANEUL_TRIAL_PARAMS") or "{}")
    if name in given:
        return given[name]
    sid = session_id()
    if sid is not None and "HANEUL_TRIAL_PARAMS" in os.environ:
        from haneul.platform.client import Client

        client = Client.from_env()
        try:
            value = client.call("POST", "/api/v1/tune/suggest", json={"name": name, "distribution": dist})["value"]
        finally:
            client.close()
        given[name] = value
        os.environ["HANEUL_TRIAL_PARAMS"] = json.dumps(given, sort_keys=True)
        return value
    if default is not None:
        return default
    if choices is not None:
        return choices[0]
    assert low is not None and high is not None
    middle = (low * high) ** 0.5 if log else (low + high) / 2
    return int(round(middle)) if dist["type"] == "int" else middle


def paused() -> bool:
    """True when the platform asked this session to pause (it should save and exit cleanly)."""
    flag = os.environ.get("HANEUL_PAUSE_FILE")
    if not flag or not Path(flag).exists():
        return False
    try:  # tells the platform the code saw the request: its clean exit is a pause, not the end
        Path(flag + ".ack").touch()
    except OSError:
        pass
    return True


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
    "config",
    "flush",
    "load",
    "log_artifact",
    "param",
    "paused",
    "report",
    "resend",
    "save",
    "session_id",
]
