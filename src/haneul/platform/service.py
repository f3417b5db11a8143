"""The platform's service layer: sessions, metrics, checkpoints and logs over the DB and executors.

One :class:`Platform` per server process. Routes call its keyword-only methods and never touch the
database directly; methods raise :class:`~haneul.errors.HaneulError` subclasses only. A supervisor
thread polls running sessions, records how they ended and starts queued ones as resources free up.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson
from sqlalchemy import (
    BigInteger,
    Engine,
    Float,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    not_,
    or_,
    select,
    update,
)

from haneul.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from haneul.platform.db import (
    Checkpoint,
    MetricChunk,
    MetricKey,
    Session,
    make_engine,
    migrate,
    version_table,
)
from haneul.platform.db.models import SavedView, SessionParam, SessionTag
from haneul.platform.executors import Executor, Exit, Handle, LaunchSpec, get_executor
from haneul.platform.objects import Folder, StoredFile, open_folder
from haneul.platform.params import command_params, flatten_params
from haneul.platform.scheduler import Resources, Scheduler, parse_memory
from haneul.platform.search import And, Compare, Node, Not, Or, parse
from haneul.platform.store import ArtifactStore, CheckpointStore, validate_artifact_path, validate_name
from haneul.settings import Settings

STATUSES = ("queued", "running", "paused", "done", "failed", "stopped", "lost")
ACTIVE = ("queued", "running")
SORTABLE = {"id", "name", "owner", "status", "created_at", "started_at", "ended_at", "priority"}
MAX_KEY_LEN = 256
#: the database stores integers as signed 64-bit: ids, offsets, steps and sizes must fit
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
#: how many of a session's keys (the first reported) a session summary carries in ``metrics``
SUMMARY_METRICS = 20
#: distinct keys of each kind (params, metrics, tags) that ``Platform.session_keys`` answers at most
SESSION_KEYS = 500
#: environment variable names containing one of these (any case) have their values masked in answers
SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH")
MASK = "••••••"
_IN_CHUNK = 500  # keys per IN (...) list: far below every database's bound-parameter limit
SNAPSHOT_SKIP_DIRS = {".git", ".hg", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache",
                      ".pytest_cache", ".ruff_cache", ".haneul", ".ipynb_checkpoints"}
SNAPSHOT_MAX_FILE = 20 << 20
SNAPSHOT_MAX_TOTAL = 200 << 20


def snapshot_code(src: Path, dest: Path, *, exclude: tuple[Path, ...] = ()) -> int:
    """Copy the code folder ``src`` into ``dest`` so later edits cannot change a running session.

    Version-control and environment folders and files over 20 MB (data, weights) are left out;
    read those by absolute path or run in place. Returns the bytes copied.
    """
    total = 0
    skip = {p.resolve() for p in (*exclude, dest)}
    for root, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if d not in SNAPSHOT_SKIP_DIRS and (Path(root) / d).resolve() not in skip)
        rel = Path(root).relative_to(src)
        (dest / rel).mkdir(parents=True, exist_ok=True)
        for name in files:
            path = Path(root) / name
            try:
                size = path.stat().st_size
            except OSError:
                continue  # a dangling link
            if size > SNAPSHOT_MAX_FILE:
                continue
            total += size
            if total > SNAPSHOT_MAX_TOTAL:
                raise InvalidInput(
                    f"the code folder {src} holds over {SNAPSHOT_MAX_TOTAL >> 20} MB of small files; "
                    "move data out of it or run in place (haneul run --in-place)"
                )
            shutil.copy2(path, dest / rel / name)
    return total


# ---------------------------------------------------------------------- params, tags, git
MAX_PARAMS = 10_000  # per session: far above any real config, low enough to bound one request
MAX_TAG_LEN = 1024
GIT_TIMEOUT_S = 5.0
GIT_DIFF_MAX = 1 << 20  # the dirty diff kept in the session folder; larger diffs are cut here
_PROJECT = re.compile(r"[\w][\w.\-]{0,127}")


def _param_row(sid: int, key: str, value: Any) -> dict[str, Any]:
    number = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    text = None
    if number is None and value is not None:
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)[:1024]
    return {"session_id": sid, "key": key, "value": value, "num": number, "text": text}


def check_tags(tags: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for key, value in tags.items():
        if not key or len(key) > MAX_KEY_LEN:
            raise InvalidInput(f"tag key {str(key)[:40]!r} must be 1-{MAX_KEY_LEN} characters")
        text = str(value)
        if len(text) > MAX_TAG_LEN:
            raise InvalidInput(f"tag {key!r} is {len(text)} characters long; keep tags under {MAX_TAG_LEN}")
        out[str(key)] = text
    return out


def check_project(project: str) -> str:
    if not _PROJECT.fullmatch(project):
        raise InvalidInput(f"project {project[:60]!r} must be 1-128 letters, digits, '_', '-' or '.', "
                           "starting with a letter or digit, e.g. --project nsmc")
    return project


def project_name(folder: str | os.PathLike[str]) -> str:
    """The default project of code in ``folder``: the folder's name made into a valid project name."""
    name = re.sub(r"[^\w.\-]+", "-", Path(folder).resolve().name).strip("-.")[:128]
    return name if name and _PROJECT.fullmatch(name) else "default"


def _git(folder: Path, *args: str) -> bytes | None:
    try:
        done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, timeout=GIT_TIMEOUT_S,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None  # no git on this machine, or a repository too slow to ask: record nothing
    return done.stdout if done.returncode == 0 else None


def capture_git(folder: Path) -> tuple[dict[str, Any] | None, bytes]:
    """Commit, branch and dirtiness of the git work tree ``folder`` is in, and its uncommitted diff
    (at most :data:`GIT_DIFF_MAX` bytes); ``(None, b"")`` when it is not one or git is missing."""
    inside = _git(folder, "rev-parse", "--is-inside-work-tree")
    if inside is None or inside.strip() != b"true":
        return None, b""
    commit = _git(folder, "rev-parse", "HEAD")
    branch = _git(folder, "rev-parse", "--abbrev-ref", "HEAD")
    status = _git(folder, "status", "--porcelain")
    diff = (_git(folder, "diff", "HEAD", "--no-ext-diff", "--no-color") if commit else None) or b""
    info = {"commit": commit.decode().strip() if commit else None,
            "branch": branch.decode().strip() if branch else None,
            "dirty": bool(status and status.strip())}
    if len(diff) > GIT_DIFF_MAX:
        diff = diff[:GIT_DIFF_MAX] + b"\n[diff cut at 1 MB]\n"
    return info, diff


class HomeLock:
    """One server per HANEUL_HOME: an exclusive ``flock`` on ``server.lock``, released on exit."""

    def __init__(self, home: Path) -> None:
        self.path = home / "server.lock"
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")  # noqa: SIM115 - held for the life of the server
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "?"
            fh.close()
            raise Conflict(
                f"another haneul server (pid {holder}) already uses HANEUL_HOME={self.path.parent}; "
                "stop it, or set HANEUL_HOME to another folder"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def looks_secret(name: str) -> bool:
    upper = name.upper()
    return any(word in upper for word in SECRET_WORDS)


def mask_env(env: Mapping[str, str] | None) -> dict[str, str]:
    """``env`` as shown to people and API clients: values of secret-looking names replaced by a mask.
    The session's own process still receives the real values (see ``Platform._session_env``)."""
    return {k: MASK if looks_secret(k) else v for k, v in (env or {}).items()}


def _step_array(raw: list[Any]) -> np.ndarray:
    """Steps as sent: exact int64 when they are JSON integers (a float64 would round those above
    2^53), float64 when some are written as floats or are too wide for 64 bits."""
    arr = np.asarray(raw)
    return arr if arr.dtype.kind in "iu" else arr.astype(np.float64)


def _check_steps(key: str, steps: np.ndarray) -> None:
    if steps.dtype.kind == "f":
        if not np.isfinite(steps).all() or (steps != np.floor(steps)).any() or (steps < 0).any():
            raise InvalidInput(f"metric {key!r}: steps must be non-negative integers")
        wide = steps >= 2.0**63
    elif steps.size:
        if steps.min() < 0:
            raise InvalidInput(f"metric {key!r}: steps must be non-negative integers")
        wide = steps > INT64_MAX if steps.dtype.kind == "u" else np.zeros(len(steps), dtype=bool)
    else:
        return
    if wide.any():
        bad = int(steps[int(np.flatnonzero(wide)[0])])
        raise InvalidInput(f"metric {key!r}: step {bad} is out of range; steps must be integers from 0 to {INT64_MAX}")


@dataclass(frozen=True)
class _KeySummary:
    step_min: int
    step_max: int
    last_step: int  # of the last point among those with the newest time
    last_value: float
    last_time: float


def _summaries(batch: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> list[_KeySummary]:
    """Per key of a batch (in its order, none empty): step range and latest point, computed on the
    whole batch at once; a batch may hold tens of thousands of keys of a point or two each, where
    numpy calls per key would cost more than the database."""
    lengths = np.fromiter((len(g[1]) for g in batch.values()), dtype=np.int64, count=len(batch))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    steps = np.concatenate([g[0] for g in batch.values()]).astype(np.int64)
    values = np.concatenate([g[1] for g in batch.values()])
    times = np.concatenate([g[2] for g in batch.values()])
    newest = np.maximum.reduceat(times, starts)
    position = np.arange(len(times))
    at_newest = np.where(times == np.repeat(newest, lengths), position, -1)
    last = np.maximum.reduceat(at_newest, starts)
    rows = zip(np.minimum.reduceat(steps, starts).tolist(), np.maximum.reduceat(steps, starts).tolist(),
               steps[last].tolist(), values[last].tolist(), times[last].tolist(), strict=True)
    return [_KeySummary(*row) for row in rows]


def _check_numbers(batch: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
    """Finite values and times, non-negative int64 steps: checked on the whole batch at once (a batch
    may hold tens of thousands of keys) and reported for the first key that fails."""
    keys = list(batch)
    ends = np.cumsum([len(g[1]) for g in batch.values()])

    def first_bad(flags: np.ndarray) -> tuple[str, int] | None:
        if flags.all():
            return None
        at = int(np.flatnonzero(~flags)[0])
        k = int(np.searchsorted(ends, at, side="right"))
        return keys[k], at - (int(ends[k - 1]) if k else 0)

    groups = list(batch.values())
    if not groups:
        return
    values = np.concatenate([g[1] for g in groups])
    if bad := first_bad(np.isfinite(values)):
        key, pos = bad
        raise InvalidInput(f"metric {key!r}: value at position {pos} is {batch[key][1][pos]}; values must be finite")
    if bad := first_bad(np.isfinite(np.concatenate([g[2] for g in groups]))):
        raise InvalidInput(f"metric {bad[0]!r}: times must be finite unix seconds")
    steps = np.concatenate([g[0] if g[0].dtype == np.int64 else np.zeros(len(g[0]), np.int64) for g in groups])
    if bad := first_bad(steps >= 0):
        raise InvalidInput(f"metric {bad[0]!r}: steps must be non-negative integers")


def _executemany(conn: Any, statement: Any, rows: list[dict[str, Any]]) -> None:
    """Run ``statement`` once per row through the driver's ``executemany``, without SQLAlchemy's
    per-row parameter processing, which is most of the time of a batch of tens of thousands of keys.
    The rows hold plain ints, floats, strings and bytes, which every driver binds as they are."""
    compiled = statement.compile(dialect=conn.dialect, column_keys=list(rows[0]))
    if compiled.positional:  # e.g. SQLite's "?": values in the order the statement names them
        names = compiled.positiontup or []
        conn.exec_driver_sql(compiled.string, [tuple(row[name] for name in names) for row in rows])
    else:
        conn.exec_driver_sql(compiled.string, rows)


# One statement for the counts and latest values of every key in a batch. A late, older batch must
# not overwrite the latest value, so the latest columns change only where the batch is newer; every
# SET expression reads the row as it was, so the condition is the same for all three.
_NEWER = or_(MetricKey.updated_at.is_(None), MetricKey.updated_at <= bindparam("b_time", type_=Float))
_UPDATE_KEYS = (
    update(MetricKey)
    .where(MetricKey.id == bindparam("b_kid", type_=BigInteger))
    .values(
        count=MetricKey.count + bindparam("b_n", type_=BigInteger),
        last_step=case((_NEWER, bindparam("b_step", type_=BigInteger)), else_=MetricKey.last_step),
        last_value=case((_NEWER, bindparam("b_value", type_=Float)), else_=MetricKey.last_value),
        updated_at=case((_NEWER, bindparam("b_time", type_=Float)), else_=MetricKey.updated_at),
    )
)


def downsample(steps: np.ndarray, values: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep at most ``max_points`` points: the minimum and maximum of each bucket, in step order.

    Min/max buckets keep spikes visible, which averaging would hide.
    """
    n = len(steps)
    if max_points <= 0 or n <= max_points:
        return steps, values
    buckets = max(1, max_points // 2)
    width = -(-n // buckets)
    buckets = -(-n // width)  # every bucket holds at least one real point
    padded = np.full(buckets * width, np.nan)
    padded[:n] = values
    grid = padded.reshape(buckets, width)
    base = np.arange(buckets) * width
    keep = np.concatenate([base + np.nanargmin(grid, axis=1), base + np.nanargmax(grid, axis=1)])
    keep = np.unique(keep)
    return steps[keep], values[keep]


def _archived_mode(archived: str | bool | None) -> str:
    if archived is None or archived is False or str(archived).lower() in ("", "0", "false", "no"):
        return "active"
    if archived is True or str(archived).lower() in ("1", "true", "yes"):
        return "archived"
    if str(archived).lower() == "all":
        return "all"
    raise InvalidInput(f"archived={str(archived)[:40]!r} must be 0 (active sessions), 1 (archived ones) or all")


def _sort_column(sort: str) -> Any:
    """The column to order by: a session column, or the number of a param or the latest value of a
    metric (``params.lr``, ``metrics.loss``)."""
    scope, dot, key = sort.partition(".")
    if dot and key and scope == "params":
        return (select(SessionParam.num).where(SessionParam.session_id == Session.id, SessionParam.key == key)
                .scalar_subquery())
    if dot and key and scope == "metrics":
        return (select(MetricKey.last_value).where(MetricKey.session_id == Session.id, MetricKey.key == key)
                .scalar_subquery())
    if sort not in SORTABLE:
        raise InvalidInput(f"cannot sort by {sort!r}; choose one of: {', '.join(sorted(SORTABLE))}, "
                           "params.KEY or metrics.KEY")
    return getattr(Session, sort)


def _compare(column: Any, op: str, value: Any) -> Any:
    if op == "contains":
        return column.contains(value, autoescape=True)
    return {"=": column.__eq__, "!=": column.__ne__, "<": column.__lt__, "<=": column.__le__,
            ">": column.__gt__, ">=": column.__ge__}[op](value)


def _as_text(value: float | str) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return str(value)


def _to_sql(node: Node) -> Any:
    """A search tree as one SQL condition on ``sessions``. Each param, tag or metric comparison is an
    ``id IN (...)`` over its (key, value) index, so the database never reads every session's values."""
    if isinstance(node, And):
        return and_(*(_to_sql(part) for part in node.parts))
    if isinstance(node, Or):
        return or_(*(_to_sql(part) for part in node.parts))
    if isinstance(node, Not):
        return not_(_to_sql(node.part))
    assert isinstance(node, Compare)
    if node.scope == "session":
        column = getattr(Session, node.key)
        text_field = node.key in ("name", "owner", "status", "project", "notes")
        return _compare(column, node.op, _as_text(node.value) if text_field else node.value)
    if node.scope == "params":
        numeric = isinstance(node.value, float) and node.op != "contains"
        column = SessionParam.num if numeric else SessionParam.text
        inner = select(SessionParam.session_id).where(
            SessionParam.key == node.key, _compare(column, node.op, node.value if numeric else _as_text(node.value)))
    elif node.scope == "tags":
        inner = select(SessionTag.session_id).where(
            SessionTag.key == node.key, _compare(SessionTag.value, node.op, _as_text(node.value)))
    else:
        inner = select(MetricKey.session_id).where(
            MetricKey.key == node.key, _compare(MetricKey.last_value, node.op, node.value))
    return Session.id.in_(inner)


def _list_conditions(*, status: list[str] | None, owner: str | None, q: str | None, project: str | None,
                     filter: str | None, archived: str | bool | None, teams: Collection[int] | None = None) -> list[Any]:
    """The WHERE conditions on ``sessions`` shared by the list and its keys (see ``list_sessions``);
    ``teams`` limits them to those teams' sessions (None: every team's)."""
    for st in status or []:
        if st not in STATUSES:
            raise InvalidInput(f"status {st!r} is unknown; choose from: {', '.join(STATUSES)}")
    cond: list[Any] = [] if teams is None else [Session.team_id.in_(list(teams))]
    if status:
        cond.append(Session.status.in_(status))
    if owner:
        cond.append(Session.owner == owner)
    if q:
        cond.append(Session.name.contains(q, autoescape=True))
    if project:
        cond.append(Session.project == project)
    mode = _archived_mode(archived)
    if mode != "all":
        cond.append(Session.archived.is_(mode == "archived"))
    node = parse(filter) if filter else None
    if node is not None:
        cond.append(_to_sql(node))
    return cond


def _key_conditions(sid: int, q: str | None, exclude_prefix: str | None) -> list[Any]:
    cond = [MetricKey.session_id == sid]
    if q:
        cond.append(MetricKey.key.contains(q, autoescape=True))
    if exclude_prefix:
        cond.append(not_(MetricKey.key.startswith(exclude_prefix, autoescape=True)))
    return cond


def _view(row: Any) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "filter": row.filter, "columns": list(row.columns or []),
            "sort": row.sort, "desc": bool(row.desc), "created_at": row.created_at}


#: the flag file in a session's folder whose presence makes ``haneul.paused()`` true
PAUSE_FILE = "pause"
#: what a session's own process is given to reach the server as itself, and the server's own token:
#: never passed to the session's code when it runs in a mode (serve, submit) outside its session
SESSION_CREDENTIALS = ("HANEUL_SESSION", "HANEUL_TOKEN", "HANEUL_API_TOKEN", "HANEUL_SESSION_DIR", "HANEUL_PAUSE_FILE")
#: seconds between the SIGTERM and the SIGKILL of a session that ignored its pause request
PAUSE_KILL_S = 5.0
MAX_PAUSE_GRACE_S = 86_400


@dataclass
class _Pausing:
    deadline: float  # time.monotonic() after which the session is stopped
    grace: float
    then: str  # its status once the process has exited: "paused", or "queued" when preempted
    reason: str
    killed: bool = False


@dataclass(frozen=True)
class ForkOf:
    """Lineage of a forked session: the parent, the checkpoint it starts from, its git record."""

    parent_id: int
    checkpoint: str | None
    git: dict[str, Any] | None


class Platform:
    def __init__(
        self,
        settings: Settings,
        *,
        server_url: str | None = None,
        executor: Executor | None = None,
        poll_interval: float = 0.1,
    ) -> None:
        self.settings = settings
        self.server_url = server_url or settings.server_url
        self.home = settings.home
        self.home.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = make_engine(settings.database_url)
        self.executor = executor or get_executor(settings.executor, settings)
        # a cluster executor knows its own size; HANEUL_CAPACITY_CPUS, when set, overrides it
        total = self.executor.capacity() if settings.capacity_cpus is None else None
        if total is not None:
            capacity = Resources(total.get("cpus", 0.0), int(total.get("gpus", 0)), int(total.get("memory", 0)))
        else:
            cpus = settings.capacity_cpus if settings.capacity_cpus is not None else float(os.cpu_count() or 1)
            capacity = Resources(cpus, settings.capacity_gpus, parse_memory(settings.capacity_memory))
        self.scheduler = Scheduler(capacity)
        self.poll_interval = poll_interval
        self._lock = threading.RLock()  # scheduler + executor + session status transitions
        self._write_lock = threading.Lock()  # one writer for metric batches
        self._tokens: dict[int, str] = {}
        self._teams: dict[int, int | None] = {}  # session id -> team id (see session_team)
        self._stopping: set[int] = set()
        self._pausing: dict[int, _Pausing] = {}  # running sessions asked to pause, until they exit
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self._home_lock = HomeLock(self.home)
        self._migrations: dict[str, Path] = {}  # plugins' Alembic version folders by plugin name

    def add_migrations(self, folders: Mapping[str, Path]) -> None:
        """Apply plugins' migrations after the platform's own: now if started, else at :meth:`start`."""
        self._migrations.update(folders)
        if self._thread is not None:
            self._migrate_plugins(folders)

    def _migrate_plugins(self, folders: Mapping[str, Path]) -> None:
        for name, folder in folders.items():
            migrate(self.engine, folder, version_table=version_table(name))

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self._thread is not None:
            return
        self._home_lock.acquire()
        try:
            self.objects.check()  # an unreachable artifact store stops the start, in one line
            migrate(self.engine)
            self._migrate_plugins(self._migrations)
            self.recover()
        except BaseException:
            self._home_lock.release()
            raise
        self._thread = threading.Thread(target=self._supervise, name="haneul-supervisor", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closed.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.executor.shutdown()
        self.engine.dispose()
        self._home_lock.release()

    def recover(self) -> dict[str, int]:
        """After a restart: re-attach running sessions whose processes live, settle the rest."""
        counts = {"reattached": 0, "finished": 0, "lost": 0, "requeued": 0}
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(Session).where(Session.status.in_(ACTIVE)).order_by(Session.id)
            ).all()
            for row in rows:
                s = row._mapping
                need = Resources(s["cpus"], s["gpus"], s["memory"])
                if s["status"] == "queued":
                    self.scheduler.submit(s["id"], need, priority=s["priority"], preemptible=bool(s["preemptible"]))
                    counts["requeued"] += 1
                    continue
                workdir = Path(s["workdir"])
                handle = Handle(s["pid"] or 0, s["pid_start"] or "")
                if self.executor.reattach(s["id"], handle, workdir):
                    self.scheduler.adopt(s["id"], need, priority=s["priority"], preemptible=bool(s["preemptible"]))
                    self._resume_pausing(s["id"], workdir)
                    counts["reattached"] += 1
                    continue
                code_file = workdir / "exit_code"
                values: dict[str, Any] = {"ended_at": time.time()}
                try:
                    code = int(code_file.read_text().strip())
                    values.update(status="done" if code == 0 else "failed", exit_code=code,
                                  reason="finished while the server was down")
                    counts["finished"] += 1
                except (OSError, ValueError):
                    values.update(status="lost", reason="the process was gone when the server restarted "
                                  "and left no exit code")
                    counts["lost"] += 1
                conn.execute(update(Session).where(Session.id == s["id"]).values(**values))
        return counts

    def _supervise(self) -> None:
        while not self._closed.wait(self.poll_interval):
            try:
                self.tick()
            except Exception as exc:  # the supervisor must outlive any one bad session
                print(f"haneul: supervisor error: {exc!r}", flush=True)

    def tick(self) -> None:
        """One supervisor step: record ended sessions, then start what fits."""
        with self._lock:
            for sid in self.scheduler.running():
                ended = self.executor.poll(sid)
                if ended is not None:
                    self._finish(sid, ended)
            self._enforce_pause_grace()
            self._start_ready()
            self._preempt()

    def _finish(self, sid: int, ended: Exit) -> None:
        stopped = sid in self._stopping
        self._stopping.discard(sid)
        pausing = self._pausing.pop(sid, None)
        reason: str | None
        values: dict[str, Any] = {"exit_code": ended.code, "ended_at": time.time()}
        if stopped:
            status, reason = "stopped", "stopped by request"
        elif pausing is not None and (pausing.killed or (ended.code == 0 and self._pause_seen(sid))):
            # a pause ends the process, not the session: it is resumable from its last checkpoint (a
            # clean exit counts as the pause only when the code saw the request through haneul.paused();
            # one that finished its work just as the request came is done)
            status, reason = pausing.then, pausing.reason
            if pausing.killed:
                reason += f" (did not exit within {pausing.grace:g} s of the pause request and was stopped)"
            if status == "queued":
                values["ended_at"] = None
        elif ended.code is None:
            status, reason = "lost", ended.reason
        else:
            status, reason = ("done" if ended.code == 0 else "failed"), ended.reason
        with self.engine.begin() as conn:
            conn.execute(update(Session).where(Session.id == sid).values(status=status, reason=reason, **values))
        if status == "queued":
            self.scheduler.requeue(sid)  # its original place: it resumes as capacity frees
        else:
            self.scheduler.release(sid)

    def _pause_seen(self, sid: int) -> bool:
        workdir = self._row(sid)["workdir"]
        return bool(workdir) and (Path(workdir) / (PAUSE_FILE + ".ack")).exists()

    def _enforce_pause_grace(self) -> None:
        """Stop the sessions that did not exit within the grace period of their pause request."""
        now = time.monotonic()
        for sid, pausing in self._pausing.items():
            if not pausing.killed and now >= pausing.deadline:
                pausing.killed = True
                self.executor.stop(sid, grace=PAUSE_KILL_S)

    def _preempt(self) -> None:
        """Pause running preemptible sessions of lower priority when the queue's head cannot start."""
        leaving = set(self._pausing) | self._stopping
        plan = self.scheduler.preemption(leaving=leaving)
        if plan is None:
            return
        reason = f"preempted by session {plan.for_id}; resumes when capacity frees"
        for victim in plan.victims:
            self._request_pause(victim, grace=self.settings.pause_grace_s, then="queued", reason=reason,
                                intent=f"preempt {plan.for_id}")

    def _request_pause(self, sid: int, *, grace: float, then: str, reason: str, intent: str) -> None:
        """Ask a running session's code to save and exit (``haneul.paused()`` turns true); it is
        stopped when it has not exited after ``grace`` seconds. ``then`` is its status once gone."""
        s = self._row(sid)
        flag = Path(s["workdir"]) / PAUSE_FILE
        flag.parent.mkdir(parents=True, exist_ok=True)
        flag.write_text(intent)
        self._pausing[sid] = _Pausing(time.monotonic() + grace, grace, then, reason)
        with self.engine.begin() as conn:
            conn.execute(update(Session).where(Session.id == sid).values(
                reason=f"pausing ({reason})" if then == "queued" else "pausing: waiting for the code to save and exit"))

    def _resume_pausing(self, sid: int, workdir: Path) -> None:
        """After a restart, a re-attached session whose pause file is there is still on its way out."""
        try:
            intent = (workdir / PAUSE_FILE).read_text().split()
        except OSError:
            return
        grace = self.settings.pause_grace_s
        if intent[:1] == ["preempt"] and len(intent) == 2:
            reason = f"preempted by session {intent[1]}; resumes when capacity frees"
            self._pausing[sid] = _Pausing(time.monotonic() + grace, grace, "queued", reason)
        else:
            self._pausing[sid] = _Pausing(time.monotonic() + grace, grace, "paused", "paused by request")

    def _start_ready(self) -> None:
        for sid in self.scheduler.schedule():
            self._launch(sid)

    def _launch(self, sid: int) -> None:
        with self.engine.begin() as conn:
            s = conn.execute(select(Session).where(Session.id == sid)).one()._mapping
            workdir = Path(s["workdir"])
            (workdir / PAUSE_FILE).unlink(missing_ok=True)
            (workdir / (PAUSE_FILE + ".ack")).unlink(missing_ok=True)
            run = s["runs"] + 1
            if run > 1:  # a resumed session: its log goes on in the same file
                with open(s["log_path"], "a", encoding="utf-8") as log:
                    log.write(f"--- resumed (run {run}) ---\n")
            env = self._session_env(s)
            spec = LaunchSpec(sid, list(s["command"]), env, workdir, Path(s["log_path"]),
                              Path(s["cwd"]) if s["cwd"] else None,
                              resources={"cpus": s["cpus"], "gpus": s["gpus"], "memory": s["memory"] or 0})
            try:
                handle = self.executor.start(spec)
            except Exception as exc:
                conn.execute(update(Session).where(Session.id == sid).values(
                    status="failed", reason=f"could not start: {exc}", ended_at=time.time()))
                self.scheduler.release(sid)
                return
            conn.execute(update(Session).where(Session.id == sid).values(
                status="running", pid=handle.pid, pid_start=handle.pid_start, runs=run, exit_code=None,
                reason=None, ended_at=None, started_at=s["started_at"] or time.time()))

    def _session_env(self, s: Any) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("HANEUL_API_TOKEN", None)  # the server's own credentials never reach user code
        env.update(s["env"] or {})
        token = self._tokens.pop(s["id"], None)
        if token is None:  # requeued after a restart: the plain token is gone, mint a new one
            token = secrets.token_urlsafe(24)
            with self.engine.begin() as conn:
                conn.execute(update(Session).where(Session.id == s["id"]).values(token_hash=_hash_token(token)))
        env.update(
            HANEUL_SESSION=str(s["id"]),
            HANEUL_SERVER=self.server_url,
            HANEUL_TOKEN=token,
            HANEUL_HOME=str(self.home),
            HANEUL_PAUSE_FILE=str(Path(s["workdir"]) / PAUSE_FILE),
            PYTHONUNBUFFERED="1",
        )
        if s["parent_id"] is not None:  # a fork: haneul.load() falls back to the parent's checkpoint
            env.update(HANEUL_PARENT_SESSION=str(s["parent_id"]), HANEUL_PARENT_CHECKPOINT=s["parent_checkpoint"] or "")
        return env

    # ------------------------------------------------------------------ sessions
    def create_session(
        self,
        *,
        command: list[str],
        name: str | None = None,
        owner: str = "anonymous",
        cpus: float = 1.0,
        gpus: int = 0,
        memory: str | int | None = None,
        priority: int = 0,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        snapshot: bool = True,
        project: str | None = None,
        tags: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        preemptible: bool = False,
        fork_of: ForkOf | None = None,
        team_id: int | None = None,
        dataset: str | None = None,
        brief: bool = False,
    ) -> dict[str, Any]:
        """Queue a session (it starts at once when resources allow); returns its view (with ``brief``
        only its id and status, for a caller that starts many and needs no more).

        With ``cwd`` and ``snapshot`` the folder is copied into the session's own working directory
        and the command runs there; with ``snapshot=False`` it runs in ``cwd`` itself. The command
        line's ``--name value`` pairs become params (``params`` given here win on the same key), and
        when ``cwd`` is in a git work tree its commit, branch and dirtiness are recorded, with the
        uncommitted diff in ``git.diff`` of the session folder. A ``preemptible`` session may be paused
        (and resumed later) to make room for a queued one of higher priority. ``fork_of`` is set by
        :meth:`fork_session`. With ``dataset`` (``NAME[:VERSION]``) the session sees that version's
        train part read-only at ``HANEUL_DATASET_PATH`` and carries the tag ``dataset=NAME:VERSION``.
        """
        project = check_project(project) if project else (project_name(cwd) if cwd else "default")
        tags = check_tags(tags or {})
        all_params = {**command_params(command), **flatten_params(params or {})}
        if len(all_params) > MAX_PARAMS:
            raise InvalidInput(f"{len(all_params)} params is over the limit of {MAX_PARAMS} per session")
        if not command or not all(isinstance(c, str) for c in command):
            raise InvalidInput("command must be a non-empty list of strings, e.g. [\"python\", \"train.py\"]")
        env = {str(k): str(v) for k, v in (env or {}).items()}
        if cwd is not None and not Path(cwd).is_dir():
            raise InvalidInput(f"working directory {cwd} does not exist on the server")
        self.check_command(command[0], env, cwd)
        if dataset is not None:  # an unknown dataset is a 404 before anything is created
            from haneul.platform.datasets import dataset_store, session_principal

            ds_name, ds_version, mount = dataset_store(self).mount(
                principal=session_principal(owner, team_id), ref=dataset)
            env["HANEUL_DATASET_PATH"] = str(mount)
            tags = {**tags, "dataset": f"{ds_name}:{ds_version}"}
        need = Resources(float(cpus), int(gpus), self._memory_bytes(memory))
        self.scheduler.check(need)
        git, diff = capture_git(Path(cwd)) if cwd is not None else (None, b"")
        lineage: dict[str, Any] = {}
        if fork_of is not None:
            git = fork_of.git
            lineage = {"parent_id": fork_of.parent_id, "parent_checkpoint": fork_of.checkpoint}
        token = secrets.token_urlsafe(24)
        now = time.time()
        with self._lock:
            with self.engine.begin() as conn:
                sid = conn.execute(
                    insert(Session).values(
                        name=name or default_name(command),
                        owner=owner, status="queued", command=command, env=env, cwd=cwd,
                        cpus=need.cpus, gpus=need.gpus, memory=need.memory, priority=priority,
                        executor=self.executor.name, token_hash=_hash_token(token), created_at=now,
                        project=project, notes="", archived=False, git=git,
                        preemptible=bool(preemptible), runs=0, team_id=team_id, **lineage,
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
                if all_params:
                    conn.execute(insert(SessionParam), [_param_row(sid, k, v) for k, v in all_params.items()])
                if tags:
                    conn.execute(insert(SessionTag), [{"session_id": sid, "key": k, "value": v} for k, v in tags.items()])
                workdir = self.settings.sessions_dir / str(sid)
                if diff:
                    workdir.mkdir(parents=True, exist_ok=True)
                    (workdir / "git.diff").write_bytes(diff)
                run_in = cwd
                if cwd is not None and snapshot:
                    try:
                        snapshot_code(Path(cwd), workdir / "code", exclude=(self.home,))
                    except BaseException:
                        shutil.rmtree(workdir, ignore_errors=True)
                        raise
                    run_in = str(workdir / "code")
                conn.execute(update(Session).where(Session.id == sid).values(
                    workdir=str(workdir), log_path=str(workdir / "output.log"), cwd=run_in))
            self._tokens[sid] = token
            self.scheduler.submit(sid, need, priority=priority, preemptible=bool(preemptible))
            self._start_ready()
            self._preempt()
        return {"id": sid, "status": self.status(sid)} if brief else self.get_session(sid)

    @staticmethod
    def _memory_bytes(memory: str | int | None) -> int:
        try:
            size = parse_memory(memory)
        except OverflowError:  # more digits than a float holds
            size = INT64_MAX + 1
        if size > INT64_MAX:
            raise InvalidInput(f"memory {memory!r} is larger than any machine; write it like 512M, 4G or 16GiB")
        return size

    @staticmethod
    def check_command(program: str, env: dict[str, str], cwd: str | None) -> None:
        if os.sep in program:
            path = Path(program) if os.path.isabs(program) else Path(cwd or ".") / program
            if not path.exists():
                raise InvalidInput(f"command {program!r} does not exist; check the path")
            return
        search = env.get("PATH", os.environ.get("PATH", ""))
        if shutil.which(program, path=search) is None:
            raise InvalidInput(f"command {program!r} not found on PATH; install it or give its full path")

    def _row(self, sid: int) -> Any:
        with self.engine.connect() as conn:
            row = conn.execute(select(Session).where(Session.id == sid)).first()
        if row is None:
            raise NotFound(f"session {sid} not found; list sessions with `haneul ps`")
        return row._mapping

    def status(self, sid: int) -> str:
        """The session's status alone: what live streams poll, without the cost of :meth:`get_session`."""
        with self.engine.connect() as conn:
            status = conn.execute(select(Session.status).where(Session.id == sid)).scalar_one_or_none()
        if status is None:
            raise NotFound(f"session {sid} not found; list sessions with `haneul ps`")
        return status

    def session_state(self, sid: int) -> dict[str, Any]:
        """Where a session stands, in one light query: status, reason, exit code, run count and times."""
        with self.engine.connect() as conn:
            row = conn.execute(select(Session.status, Session.reason, Session.exit_code, Session.runs,
                                      Session.started_at, Session.ended_at).where(Session.id == sid)).first()
        if row is None:
            raise NotFound(f"session {sid} not found; list sessions with `haneul ps`")
        return dict(row._mapping)

    def get_session(self, sid: int) -> dict[str, Any]:
        """One session; ``metrics`` holds the latest values of its first :data:`SUMMARY_METRICS` keys and
        ``metric_count`` counts them all (:meth:`metric_keys` pages through every key)."""
        out = self._public(self._row(sid))
        self._attach_meta([out])
        out["metrics"] = self.latest_metrics([sid]).get(sid, {})
        out["metric_count"] = self._metric_counts([sid]).get(sid, 0)
        out["checkpoints"] = len(self.list_checkpoints(sid))
        if out["status"] == "queued":
            with contextlib.suppress(NotFound):
                out["queue_position"] = self.scheduler.position(sid)
        return out

    @staticmethod
    def _public(s: Any) -> dict[str, Any]:
        keys = ("id", "name", "owner", "status", "command", "env", "cwd", "cpus", "gpus", "memory",
                "priority", "executor", "pid", "exit_code", "reason", "created_at", "started_at",
                "ended_at", "log_path", "workdir", "project", "notes", "git", "parent_id",
                "parent_checkpoint", "runs", "team_id")
        out = {k: s[k] for k in keys}
        out["preemptible"] = bool(s["preemptible"])
        out["env"] = mask_env(out["env"])
        out["archived"] = bool(s["archived"])
        return out

    def _attach_meta(self, items: list[dict[str, Any]]) -> None:
        """Fill ``params`` and ``tags`` of session answers: two queries for a whole page."""
        sids = [item["id"] for item in items]
        params: dict[int, dict[str, Any]] = {sid: {} for sid in sids}
        tags: dict[int, dict[str, str]] = {sid: {} for sid in sids}
        with self.engine.connect() as conn:
            for i in range(0, len(sids), _IN_CHUNK):
                part = sids[i:i + _IN_CHUNK]
                for sid, key, value in conn.execute(select(SessionParam.session_id, SessionParam.key, SessionParam.value)
                                                    .where(SessionParam.session_id.in_(part)).order_by(SessionParam.key)):
                    params[sid][key] = value
                for sid, key, value in conn.execute(select(SessionTag.session_id, SessionTag.key, SessionTag.value)
                                                    .where(SessionTag.session_id.in_(part)).order_by(SessionTag.key)):
                    tags[sid][key] = value
        for item in items:
            item["params"] = params[item["id"]]
            item["tags"] = tags[item["id"]]

    def list_sessions(
        self,
        *,
        status: list[str] | None = None,
        owner: str | None = None,
        q: str | None = None,
        project: str | None = None,
        filter: str | None = None,
        archived: str | bool | None = None,
        sort: str = "id",
        desc: bool = True,
        limit: int = 50,
        offset: int = 0,
        with_metrics: bool = True,
        columns: list[str] | None = None,
        teams: Collection[int] | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """Sessions matching every filter given. ``filter`` is a search expression (see
        :mod:`haneul.platform.search`); ``archived`` is false (the default: active sessions only), true
        (archived ones only) or ``"all"``; ``sort`` is a column or ``params.KEY`` / ``metrics.KEY``
        (sessions without that key last). With ``columns`` (``params.KEY``, ``metrics.KEY``, ``tags.KEY``)
        each item also carries ``columns``: those values, None where a session has no such key."""
        if not 1 <= limit <= 1000 or offset < 0:
            raise InvalidInput("limit must be 1-1000 and offset non-negative")
        cond = _list_conditions(status=status, owner=owner, q=q, project=project, filter=filter, archived=archived,
                                teams=teams)
        sort_col = _sort_column(sort)
        order = [sort_col.desc() if desc else sort_col.asc(), Session.id.desc() if desc else Session.id.asc()]
        if "." in sort:
            # sessions without the param or metric go last; only for these, because an expression in
            # ORDER BY keeps SQLite from walking a column's index and makes it sort every row
            order.insert(0, sort_col.is_(None))
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(Session).where(*cond)).scalar_one()
            rows = conn.execute(select(Session).where(*cond).order_by(*order).limit(limit).offset(offset)).all()
        items = [self._public(r._mapping) for r in rows]
        if items:
            self._attach_meta(items)
        if with_metrics and items:
            sids = [i["id"] for i in items]
            latest, counts = self.latest_metrics(sids), self._metric_counts(sids)
            for item in items:
                item["metrics"] = latest.get(item["id"], {})
                item["metric_count"] = counts.get(item["id"], 0)
        if columns and items:
            self._attach_columns(items, columns)
        return items, total

    def session_keys(
        self,
        *,
        status: list[str] | None = None,
        owner: str | None = None,
        q: str | None = None,
        project: str | None = None,
        filter: str | None = None,
        archived: str | bool | None = None,
        limit: int = SESSION_KEYS,
        teams: Collection[int] | None = None,
    ) -> dict[str, list[str]]:
        """The distinct param, metric and tag keys over the sessions ``list_sessions`` would match with
        the same filters: the first ``limit`` of each in key order (what the column picker offers)."""
        if not 1 <= limit <= SESSION_KEYS:
            raise InvalidInput(f"limit must be 1-{SESSION_KEYS}")
        matching = select(Session.id).where(
            *_list_conditions(status=status, owner=owner, q=q, project=project, filter=filter, archived=archived,
                              teams=teams))
        out: dict[str, list[str]] = {}
        with self.engine.connect() as conn:
            for name, table in (("params", SessionParam), ("metrics", MetricKey), ("tags", SessionTag)):
                query = (select(table.key).where(table.session_id.in_(matching)).distinct()
                         .order_by(table.key).limit(limit))
                out[name] = list(conn.execute(query).scalars())
        return out

    def _attach_columns(self, items: list[dict[str, Any]], columns: list[str]) -> None:
        metric_keys = [c.partition(".")[2] for c in columns if c.startswith("metrics.")]
        values = self.metric_values([i["id"] for i in items], metric_keys)
        for item in items:
            row: dict[str, Any] = {}
            for col in columns:
                scope, _, key = col.partition(".")
                if scope == "metrics":
                    row[col] = values.get(item["id"], {}).get(key)
                elif scope in ("params", "tags"):
                    row[col] = item[scope].get(key)
                else:
                    raise InvalidInput(f"column {col[:60]!r} must be params.KEY, metrics.KEY or tags.KEY")
            item["columns"] = row

    def metric_values(self, sids: list[int], keys: list[str]) -> dict[int, dict[str, float | None]]:
        """The latest value of each of ``keys`` for each session (for columns picked on the list page)."""
        if not sids or not keys:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(select(MetricKey.session_id, MetricKey.key, MetricKey.last_value).where(
                MetricKey.session_id.in_(sids), MetricKey.key.in_(keys[:_IN_CHUNK]))).all()
        out: dict[int, dict[str, float | None]] = {}
        for sid, key, value in rows:
            out.setdefault(sid, {})[key] = value
        return out

    # ------------------------------------------------------------------ params, tags, notes
    def set_params(self, sid: int, params: Mapping[str, Any]) -> dict[str, Any]:
        """Record (or overwrite) params of a session; nested dicts are flattened with dots."""
        flat = flatten_params(params)
        self._row(sid)
        with self.engine.begin() as conn:
            held = conn.execute(select(func.count()).select_from(SessionParam).where(
                SessionParam.session_id == sid, SessionParam.key.not_in(list(flat)[:_IN_CHUNK]))).scalar_one()
            if held + len(flat) > MAX_PARAMS:
                raise InvalidInput(f"session {sid} would hold over {MAX_PARAMS} params; record fewer")
            for i in range(0, len(flat), _IN_CHUNK):
                part = list(flat)[i:i + _IN_CHUNK]
                conn.execute(delete(SessionParam).where(SessionParam.session_id == sid, SessionParam.key.in_(part)))
            if flat:
                conn.execute(insert(SessionParam), [_param_row(sid, k, v) for k, v in flat.items()])
        return self.get_session(sid)

    def update_session(self, sid: int, *, notes: str | None = None,
                       tags: Mapping[str, str | None] | None = None) -> dict[str, Any]:
        """Replace the notes and set tags (a tag given as None is removed)."""
        self._row(sid)
        with self.engine.begin() as conn:
            if notes is not None:
                conn.execute(update(Session).where(Session.id == sid).values(notes=notes))
            if tags:
                gone = [k for k, v in tags.items() if v is None]
                kept = check_tags({k: v for k, v in tags.items() if v is not None})
                conn.execute(delete(SessionTag).where(SessionTag.session_id == sid,
                                                      SessionTag.key.in_([*gone, *kept])))
                if kept:
                    conn.execute(insert(SessionTag), [{"session_id": sid, "key": k, "value": v}
                                                      for k, v in kept.items()])
        return self.get_session(sid)

    # ------------------------------------------------------------------ archive and delete
    def archive_session(self, sid: int, *, archived: bool = True) -> dict[str, Any]:
        """Hide a session from the default list (``archived=False`` restores it); nothing is deleted."""
        self._row(sid)
        with self.engine.begin() as conn:
            conn.execute(update(Session).where(Session.id == sid).values(archived=archived))
        return self.get_session(sid)

    def delete_session(self, sid: int) -> dict[str, Any]:
        """Remove a session for good: its rows, metrics, params, tags, checkpoints and working folder.
        A queued or running session is refused; stop it first."""
        with self._lock:
            s = self._row(sid)
            if s["status"] in ACTIVE:
                raise Conflict(f"session {sid} is {s['status']}; stop it first (haneul stop {sid}), then delete it")
            # its stored files first: a store that fails then leaves the session whole, to delete again
            self._session_objects(sid).remove()
            with self.engine.begin() as conn:
                key_ids = select(MetricKey.id).where(MetricKey.session_id == sid)
                conn.execute(delete(MetricChunk).where(MetricChunk.key_id.in_(key_ids)))
                for table in (MetricKey, Checkpoint, SessionParam, SessionTag):
                    conn.execute(delete(table).where(table.session_id == sid))
                conn.execute(delete(Session).where(Session.id == sid))
            self._teams.pop(sid, None)
        if s["workdir"]:
            shutil.rmtree(s["workdir"], ignore_errors=True)
        return {"id": sid, "deleted": True}

    # ------------------------------------------------------------------ projects and saved views
    def list_projects(self, *, teams: Collection[int] | None = None) -> list[dict[str, Any]]:
        """Every project (of ``teams``' sessions; None: every team's) with its session counts and latest
        activity, most recently active first."""
        latest = func.max(func.coalesce(Session.ended_at, Session.started_at, Session.created_at))
        running = func.sum(case((Session.status.in_(ACTIVE), 1), else_=0))
        archived = func.sum(case((Session.archived.is_(True), 1), else_=0))
        query = (select(Session.project, func.count(), running, archived, latest)
                 .group_by(Session.project).order_by(latest.desc()))
        if teams is not None:
            query = query.where(Session.team_id.in_(list(teams)))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [{"project": p, "sessions": int(n), "active": int(r or 0), "archived": int(a or 0),
                 "latest_activity": t} for p, n, r, a, t in rows]

    def list_views(self, *, teams: Collection[int] | None = None) -> list[dict[str, Any]]:
        query = select(SavedView).order_by(SavedView.name)
        if teams is not None:
            query = query.where(SavedView.team_id.in_(list(teams)))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [_view(r) for r in rows]

    def save_view(self, *, name: str, filter: str = "", columns: list[str] | None = None, sort: str = "id",
                  desc: bool = True, team_id: int | None = None) -> dict[str, Any]:
        """Store a named view of a team (its view of the same name is replaced); the filter and sort are
        checked now."""
        name = name.strip()
        if not name or len(name) > 128:
            raise InvalidInput(f"view name {name[:40]!r} must be 1-128 characters")
        parse(filter)
        _sort_column(sort)
        columns = [c for c in (columns or []) if c]
        for col in columns:
            if not col.startswith(("params.", "metrics.", "tags.")):
                raise InvalidInput(f"column {col[:60]!r} must be params.KEY, metrics.KEY or tags.KEY")
        with self.engine.begin() as conn:
            held = conn.execute(select(SavedView.team_id).where(SavedView.name == name)).first()
            if held is not None and held.team_id != team_id:
                raise Conflict(f"the view name {name!r} is taken; pick another name")
            conn.execute(delete(SavedView).where(SavedView.name == name))
            vid = conn.execute(insert(SavedView).values(name=name, filter=filter, columns=columns, sort=sort,
                                                         desc=desc, created_at=time.time(), team_id=team_id)
                               ).inserted_primary_key[0]  # type: ignore[index]
            row = conn.execute(select(SavedView).where(SavedView.id == vid)).one()
        return _view(row)

    def view_team(self, vid: int) -> int | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(SavedView.team_id).where(SavedView.id == vid)).first()
        if row is None:
            raise NotFound(f"saved view {vid} not found; list them at GET /api/v1/views")
        return row.team_id

    def delete_view(self, vid: int) -> None:
        with self.engine.begin() as conn:
            if conn.execute(delete(SavedView).where(SavedView.id == vid)).rowcount == 0:
                raise NotFound(f"saved view {vid} not found; list them at GET /api/v1/views")

    def mode_launch(self, sid: int, checkpoint: str, mode: str) -> tuple[list[str], str | None, dict[str, str]]:
        """How to run a session's code in a mode of :mod:`haneul.platform.serving` (``serve``,
        ``submit``): its command, its folder and an environment that holds no credential, with the
        checkpoint's verified file handed over (``HANEUL_SERVE_CHECKPOINT_FILE``) so the code needs none.
        NotFound when the session or the checkpoint is gone."""
        s = self._row(sid)
        record, path = self.checkpoint_file(sid, checkpoint)
        env = dict(os.environ)
        env.update(s["env"] or {})  # unmasked: the process needs the values
        for var in SESSION_CREDENTIALS:
            env.pop(var, None)
        env.update(HANEUL_MODE=mode, HANEUL_SERVE_SESSION=str(sid), HANEUL_SERVE_CHECKPOINT=checkpoint,
                   HANEUL_SERVE_CHECKPOINT_FILE=str(path), HANEUL_SERVE_CHECKPOINT_KIND=str(record["kind"]),
                   PYTHONUNBUFFERED="1")
        return list(s["command"]), s["cwd"] or s["workdir"], env

    def _end(self, sid: int, status: str, reason: str) -> None:
        """Record that a session without a process (queued or paused) has ended or paused."""
        with self.engine.begin() as conn:
            conn.execute(update(Session).where(Session.id == sid).values(
                status=status, reason=reason, ended_at=time.time()))

    def stop_session(self, sid: int, *, grace: float = 5.0, brief: bool = False) -> dict[str, Any]:
        with self._lock:
            s = self._row(sid)
            if s["status"] == "queued":
                self.scheduler.cancel(sid)
                self._end(sid, "stopped", "stopped before it started")
            elif s["status"] == "running":
                self._stopping.add(sid)
                self.executor.stop(sid, grace=grace)
            elif s["status"] == "paused":  # no process: it just cannot be resumed any more
                self._end(sid, "stopped", "stopped while paused")
            else:
                raise Conflict(f"session {sid} has already ended ({s['status']}); nothing to stop")
        return {"id": sid, "status": self.status(sid)} if brief else self.get_session(sid)

    # ------------------------------------------------------------------ pause, resume, fork
    def pause_session(self, sid: int, *, grace: float | None = None) -> dict[str, Any]:
        """Ask a running session to save and exit (``haneul.paused()`` turns true in its code); it is
        ``paused`` once its process has exited, and stopped if that takes longer than ``grace``
        seconds (default ``pause_grace_s``). A queued session is paused at once. Either way its
        slots are freed and :meth:`resume_session` starts it again under the same id."""
        grace = self.settings.pause_grace_s if grace is None else grace
        if not 0 <= grace <= MAX_PAUSE_GRACE_S:
            raise InvalidInput(f"grace {grace!r} must be 0-{MAX_PAUSE_GRACE_S} seconds")
        with self._lock:
            s = self._row(sid)
            if s["status"] == "queued":
                self.scheduler.cancel(sid)
                self._end(sid, "paused", "paused while queued")
            elif s["status"] == "running":
                pausing = self._pausing.get(sid)
                if pausing is None or pausing.then != "paused":
                    self._request_pause(sid, grace=grace, then="paused", reason="paused by request",
                                        intent="pause")
            elif s["status"] == "paused":
                raise Conflict(f"session {sid} is already paused; resume it with `haneul resume {sid}`")
            else:
                raise Conflict(f"session {sid} has ended ({s['status']}); only a queued or running session "
                               f"can be paused (fork it to go on: haneul fork {sid})")
        return self.get_session(sid)

    def resume_session(self, sid: int) -> dict[str, Any]:
        """Queue a paused session again with its priority: a new process under the same id, whose
        metrics go on under the same keys, log in the same file, and ``haneul.load()`` returns its
        latest checkpoint."""
        with self._lock:
            s = self._row(sid)
            if s["status"] in ACTIVE:
                what = "pausing" if sid in self._pausing else s["status"]
                raise Conflict(f"session {sid} is {what}; only a paused session can be resumed")
            if s["status"] != "paused":
                raise Conflict(f"session {sid} has ended ({s['status']}) and cannot be resumed; "
                               f"start a new session from its checkpoint with `haneul fork {sid}`")
            need = Resources(s["cpus"], s["gpus"], s["memory"])
            with self.engine.begin() as conn:
                conn.execute(update(Session).where(Session.id == sid).values(
                    status="queued", reason="resumed; waiting for resources", ended_at=None))
            self.scheduler.submit(sid, need, priority=s["priority"], preemptible=bool(s["preemptible"]))
            self._start_ready()
            self._preempt()
        return self.get_session(sid)

    def fork_session(self, sid: int, *, checkpoint: str | None = None, env: Mapping[str, str] | None = None,
                     args: Sequence[str] = (), name: str | None = None, priority: int | None = None,
                     preemptible: bool | None = None, command: Sequence[str] | None = None,
                     params: Mapping[str, Any] | None = None, tags: Mapping[str, str] | None = None,
                     brief: bool = False) -> dict[str, Any]:
        """Start a new session from session ``sid``: its command with ``args`` appended (so
        ``--lr 0.01`` overrides an argparse option), project, tags, resources, team and a copy of its
        code snapshot, with ``env`` added. ``checkpoint`` (default: the parent's latest, if any) is
        what ``haneul.load()`` in the child returns until the child saves its own. ``command`` replaces
        the parent's command line (the optimiser's PBT gives the child new hyper-parameters so), and
        ``params`` and ``tags`` are recorded on top of those the child gets from the parent."""
        parent = self._row(sid)
        names = [c["name"] for c in self.list_checkpoints(sid)]  # oldest first
        if checkpoint is not None and checkpoint not in names:
            raise NotFound(f"session {sid} has no checkpoint {checkpoint!r}; see `haneul checkpoints {sid}`")
        chosen = checkpoint if checkpoint is not None else (names[-1] if names else None)
        snapshot = Path(parent["workdir"] or "") / "code"
        in_snapshot = parent["cwd"] is not None and Path(parent["cwd"]) == snapshot
        if in_snapshot and not snapshot.is_dir():
            raise NotFound(f"the code snapshot of session {sid} is gone ({snapshot}); it cannot be forked")
        with self.engine.connect() as conn:
            inherited = dict(conn.execute(select(SessionTag.key, SessionTag.value).where(SessionTag.session_id == sid)).all())
        return self.create_session(
            command=[*(parent["command"] if command is None else command), *args], name=name or parent["name"],
            owner=parent["owner"], params=params,
            cpus=parent["cpus"], gpus=parent["gpus"], memory=parent["memory"],
            priority=parent["priority"] if priority is None else priority,
            env={**(parent["env"] or {}), **(env or {})}, cwd=parent["cwd"], snapshot=in_snapshot,
            project=parent["project"], tags={**inherited, **(tags or {})},
            preemptible=bool(parent["preemptible"]) if preemptible is None else preemptible,
            fork_of=ForkOf(sid, chosen, parent["git"]), team_id=parent["team_id"],  # the parent's team
            brief=brief,
        )

    def session_forks(self, sid: int) -> list[dict[str, Any]]:
        """The sessions forked from ``sid``: id, name, status and the checkpoint each started from."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(Session.id, Session.name, Session.status, Session.parent_checkpoint,
                                       Session.team_id).where(Session.parent_id == sid).order_by(Session.id)).all()
        return [{"id": r.id, "name": r.name, "status": r.status, "parent_checkpoint": r.parent_checkpoint,
                 "team_id": r.team_id} for r in rows]

    def session_team(self, sid: int) -> int | None:
        """The team a session belongs to (remembered: it never changes); NotFound for no such session."""
        try:
            return self._teams[sid]
        except KeyError:
            pass
        with self.engine.connect() as conn:
            row = conn.execute(select(Session.team_id).where(Session.id == sid)).first()
        if row is None:
            raise NotFound(f"session {sid} not found")
        self._teams[sid] = row.team_id
        return row.team_id

    # ------------------------------------------------------------------ metrics
    def parse_metric_batch(self, body: bytes) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Validate ``{"metrics": {key: {"steps": [...], "values": [...], "times": [...]}}}``."""
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            try:  # the slow parser accepts NaN/Infinity, so the error can name the bad value
                payload = json.loads(body)
            except (ValueError, UnicodeDecodeError) as exc:
                raise InvalidInput(f"metric batch is not valid JSON: {exc}") from None
        groups = payload.get("metrics") if isinstance(payload, dict) else None
        if not isinstance(groups, dict) or not groups:
            raise InvalidInput('metric batch must look like {"metrics": {"loss": {"steps": [..], "values": [..]}}}')
        out = {}
        total = 0
        now = time.time()
        for key, group in groups.items():
            if not key or len(key) > MAX_KEY_LEN:
                raise InvalidInput(f"metric key {key[:40]!r} must be 1-{MAX_KEY_LEN} characters")
            if not isinstance(group, dict) or not isinstance(group.get("values"), list):
                raise InvalidInput(f"metric {key!r}: expected an object with 'steps' and 'values' lists")
            raw_values, raw_steps = group["values"], group.get("steps")
            if not isinstance(raw_steps, list) or len(raw_steps) != len(raw_values):
                raise InvalidInput(f"metric {key!r}: 'steps' and 'values' must be lists of the same length")
            total += len(raw_values)
            if total > self.settings.max_metric_batch:
                raise PayloadTooLarge(
                    f"metric batch holds more than {self.settings.max_metric_batch} points; send smaller batches",
                    max_points=self.settings.max_metric_batch,
                )
            try:
                values = np.asarray(raw_values, dtype=np.float64)
                steps = _step_array(raw_steps)
                raw_times = group.get("times")
                times = np.full(len(values), now) if raw_times is None else np.asarray(raw_times, dtype=np.float64)
            except (TypeError, ValueError, OverflowError):
                raise InvalidInput(f"metric {key!r}: steps, values and times must all be numbers") from None
            if values.ndim != 1 or steps.ndim != 1 or times.shape != values.shape:
                raise InvalidInput(f"metric {key!r}: steps, values and times must be flat lists of one length")
            if steps.dtype != np.int64:  # floats or wider integers: rare, checked here; int64 in bulk below
                _check_steps(key, steps)
            out[key] = (steps, values, times)
        _check_numbers(out)
        return {key: (steps.astype(np.int64, copy=False), values, times) for key, (steps, values, times) in out.items()}

    def ingest_metrics(self, sid: int, batch: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> int:
        """Store a validated batch in one transaction; returns the number of points (durable on return).

        A batch costs a fixed handful of statements however many keys it holds (a batch of 30,000
        keys must not become 90,000 round trips). A batch that would take the session over
        ``HANEUL_MAX_METRIC_KEYS`` distinct keys is refused whole.
        """
        batch = {key: group for key, group in batch.items() if len(group[1])}
        if not batch:
            return 0
        summaries = dict(zip(batch, _summaries(batch), strict=True))
        with self._write_lock, self.engine.begin() as conn:
            known = self._key_ids(conn, sid, list(batch))
            new = [key for key in batch if key not in known]
            if new:
                self._check_key_limit(conn, sid, new)
                # a new key starts out with this batch's count and latest point: only held keys need updating
                _executemany(conn, insert(MetricKey), [
                    dict(session_id=sid, key=key, count=len(batch[key][1]), last_step=summaries[key].last_step,
                         last_value=summaries[key].last_value, updated_at=summaries[key].last_time)
                    for key in new
                ])
            held = [dict(b_kid=known[key], b_n=len(batch[key][1]), b_step=s.last_step, b_value=s.last_value,
                         b_time=s.last_time) for key, s in summaries.items() if key in known]
            if held:
                _executemany(conn, _UPDATE_KEYS, held)
            if new:
                known.update(self._key_ids(conn, sid, new))
            _executemany(conn, insert(MetricChunk), [
                dict(key_id=known[key], n=len(values), step_min=summaries[key].step_min,
                     step_max=summaries[key].step_max, steps=steps.astype("<i8").tobytes(),
                     values=values.astype("<f8").tobytes(), times=times.astype("<f8").tobytes())
                for key, (steps, values, times) in batch.items()
            ])
        return sum(len(group[1]) for group in batch.values())

    def _check_key_limit(self, conn: Any, sid: int, new: list[str]) -> None:
        held = conn.execute(select(func.count()).select_from(MetricKey).where(MetricKey.session_id == sid)).scalar_one()
        limit = self.settings.max_metric_keys
        if held + len(new) > limit:
            raise InvalidInput(
                f"session {sid} would hold {held + len(new)} metric keys, over the limit of {limit} "
                f"(new keys in this batch include {new[0][:60]!r}); report fewer distinct keys, "
                "or raise HANEUL_MAX_METRIC_KEYS on the server"
            )

    @staticmethod
    def _key_ids(conn: Any, sid: int, keys: list[str]) -> dict[str, int]:
        """Ids of those of ``keys`` the session holds. For many keys one read of all the session's
        keys beats dozens of IN (...) lists."""
        if len(keys) > _IN_CHUNK:
            wanted = set(keys)
            rows = conn.execute(select(MetricKey.key, MetricKey.id).where(MetricKey.session_id == sid))
            return {key: kid for key, kid in rows if key in wanted}
        found: dict[str, int] = {}
        for i in range(0, len(keys), _IN_CHUNK):
            part = keys[i:i + _IN_CHUNK]
            rows = conn.execute(select(MetricKey.key, MetricKey.id).where(
                MetricKey.session_id == sid, MetricKey.key.in_(part)))
            found.update((key, kid) for key, kid in rows)
        return found

    def metric_keys(self, sid: int, *, q: str | None = None, limit: int | None = None,
                    offset: int = 0, exclude_prefix: str | None = None) -> list[dict[str, Any]]:
        """The session's keys in key order; ``q`` keeps those containing it, ``exclude_prefix`` leaves out
        those starting with it (``"sys/"``: the system metrics), ``limit``/``offset`` page."""
        self._row(sid)
        query = select(MetricKey).where(*_key_conditions(sid, q, exclude_prefix))
        query = query.order_by(MetricKey.key).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [{"key": r.key, "count": r.count, "last_step": r.last_step, "last_value": r.last_value} for r in rows]

    def metric_key(self, sid: int, key: str) -> dict[str, Any] | None:
        """One key's summary (count, last step and value), or None when the session has no such key."""
        with self.engine.connect() as conn:
            r = conn.execute(select(MetricKey).where(MetricKey.session_id == sid, MetricKey.key == key)).first()
        return None if r is None else {"key": r.key, "count": r.count, "last_step": r.last_step,
                                       "last_value": r.last_value}

    def count_metric_keys(self, sid: int, *, q: str | None = None, exclude_prefix: str | None = None) -> int:
        query = select(func.count()).select_from(MetricKey).where(*_key_conditions(sid, q, exclude_prefix))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def latest_metrics(self, sids: list[int], *, per_session: int = SUMMARY_METRICS) -> dict[int, dict[str, float | None]]:
        """The latest value of the first ``per_session`` keys (in report order) of each session."""
        if not sids:
            return {}
        rank = func.row_number().over(partition_by=MetricKey.session_id, order_by=MetricKey.id).label("rank")
        ranked = select(MetricKey.session_id, MetricKey.key, MetricKey.last_value, rank).where(
            MetricKey.session_id.in_(sids)).subquery()
        query = (select(ranked.c.session_id, ranked.c.key, ranked.c.last_value)
                 .where(ranked.c.rank <= per_session).order_by(ranked.c.session_id, ranked.c.rank))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        out: dict[int, dict[str, float | None]] = {}
        for sid, key, value in rows:
            out.setdefault(sid, {})[key] = value
        return out

    def _metric_counts(self, sids: list[int]) -> dict[int, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(MetricKey.session_id, func.count()).where(
                MetricKey.session_id.in_(sids)).group_by(MetricKey.session_id)).all()
        return {sid: int(n) for sid, n in rows}

    def metric_updates(self, sid: int, *, after_id: int = 0, keys: list[str] | None = None,
                       max_points: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Points stored after the cursor ``after_id``, grouped by key (``{"key", "steps", "values"}`` in
        step order, each downsampled to ``max_points``), and the cursor to pass next time.

        One query whatever the number of keys, which is what lets a live page follow a session
        holding thousands of them; ``keys`` follows only those (keys not reported yet included).
        """
        query = (select(MetricChunk.id, MetricKey.key, MetricChunk.steps, MetricChunk.values)
                 .join(MetricKey, MetricChunk.key_id == MetricKey.id)
                 .where(MetricKey.session_id == sid, MetricChunk.id > after_id))
        if keys is not None:
            query = query.where(MetricKey.key.in_(keys))
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(MetricChunk.id)).all()
        if not rows:
            return [], after_id
        grouped: dict[str, list[Any]] = {}
        for row in rows:
            grouped.setdefault(row.key, []).append(row)
        out = []
        for key, chunks in grouped.items():
            steps = np.concatenate([np.frombuffer(r.steps, dtype="<i8") for r in chunks])
            values = np.concatenate([np.frombuffer(r.values, dtype="<f8") for r in chunks])
            order = np.argsort(steps, kind="stable")
            steps, values = downsample(steps[order], values[order], max_points)
            out.append({"key": key, "steps": steps.tolist(), "values": values.tolist()})
        return out, int(rows[-1].id)

    def query_metrics(
        self,
        sid: int,
        key: str,
        *,
        step_min: int | None = None,
        step_max: int | None = None,
        max_points: int = 0,
        after_id: int = 0,
    ) -> dict[str, Any]:
        """Points of one metric in step order; ``max_points`` > 0 downsamples on the server.

        ``after_id`` returns only points that arrived after that cursor (``last_id`` of an earlier
        answer), which is how live charts follow a running session.
        """
        points = self._read_points(sid, key, step_min=step_min, step_max=step_max, after_id=after_id)
        steps, values = downsample(points.steps, points.values, max_points)
        return {"key": key, "total": len(points.steps), "last_id": points.last_id,
                "steps": steps.tolist(), "values": values.tolist()}

    def _read_points(self, sid: int, key: str, *, step_min: int | None, step_max: int | None, after_id: int,
                     times: bool = False) -> _Points:
        """One metric's stored points after ``after_id`` within the step range, in step order (equal steps in
        arrival order); their times only when asked, so the plain history does not read them."""
        self._row(sid)
        with self.engine.connect() as conn:
            kid = conn.execute(
                select(MetricKey.id).where(MetricKey.session_id == sid, MetricKey.key == key)
            ).scalar_one_or_none()
            if kid is None:
                raise NotFound(f"session {sid} has no metric {key!r}; see `haneul metrics {sid}` for its keys")
            columns = [MetricChunk.id, MetricChunk.steps, MetricChunk.values, *([MetricChunk.times] if times else [])]
            query = select(*columns).where(MetricChunk.key_id == kid, MetricChunk.id > after_id)
            if step_min is not None:
                query = query.where(MetricChunk.step_max >= step_min)
            if step_max is not None:
                query = query.where(MetricChunk.step_min <= step_max)
            rows = conn.execute(query.order_by(MetricChunk.id)).all()
        steps = np.concatenate([np.frombuffer(r.steps, dtype="<i8") for r in rows] or [np.zeros(0, "<i8")])
        values = np.concatenate([np.frombuffer(r.values, dtype="<f8") for r in rows] or [np.zeros(0)])
        stamps = np.concatenate([np.frombuffer(r.times, dtype="<f8") for r in rows] or [np.zeros(0)]) if times else None
        keep = np.ones(len(steps), dtype=bool)
        if step_min is not None:
            keep &= steps >= step_min
        if step_max is not None:
            keep &= steps <= step_max
        order = np.flatnonzero(keep)[np.argsort(steps[keep], kind="stable")]
        return _Points(int(rows[-1].id) if rows else after_id, steps[order], values[order],
                       stamps[order] if stamps is not None else None)

    # ------------------------------------------------------------------ checkpoints
    @functools.cached_property
    def objects(self) -> Folder:
        """Where sessions' checkpoints and artifacts live: ``artifact_root``'s folder or object store."""
        return open_folder(self.settings.artifact_url or self.settings.artifacts,
                           self.settings.artifact_storage_options)

    def _session_objects(self, sid: int) -> Folder:
        return self.objects.child("sessions", str(sid))

    def _ckpt_store(self, sid: int) -> CheckpointStore:
        return CheckpointStore(self._session_objects(sid).child("checkpoints"))

    def save_checkpoint(self, sid: int, *, name: str, kind: str, chunks: Iterator[bytes]) -> dict[str, Any]:
        validate_name(name)
        self._row(sid)
        record = self._ckpt_store(sid).put_chunks(name, chunks, kind)
        with self.engine.begin() as conn:
            conn.execute(delete(Checkpoint).where(Checkpoint.session_id == sid, Checkpoint.name == name))
            conn.execute(insert(Checkpoint).values(session_id=sid, **record))
        return record

    def list_checkpoints(self, sid: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(Checkpoint).where(Checkpoint.session_id == sid).order_by(Checkpoint.created_at)
            ).all()
        return [{"name": r.name, "kind": r.kind, "size": r.size, "sha256": r.sha256, "created_at": r.created_at}
                for r in rows]

    def _checkpoint(self, sid: int, name: str) -> tuple[dict[str, Any], StoredFile]:
        """A checkpoint's database record and its data file (not yet verified)."""
        validate_name(name)
        self._row(sid)
        records = {r["name"]: r for r in self.list_checkpoints(sid)}
        if name not in records:
            raise NotFound(f"session {sid} has no checkpoint {name!r}; see `haneul checkpoints {sid}`")
        return records[name], self._ckpt_store(sid).stored(records[name])

    def checkpoint_file(self, sid: int, name: str) -> tuple[dict[str, Any], Path]:
        """The verified local file of a checkpoint (sha256 checked against the database record), for
        code that needs a path (deploy, serve); from an object store it is a copy cached by sha256."""
        record, stored = self._checkpoint(sid, name)
        return record, stored.local_copy(self.home / "cache" / "checkpoints")

    def checkpoint_download(self, sid: int, name: str) -> tuple[dict[str, Any], StoredFile]:
        """A checkpoint's record and verified data file, to send (a local file, or an object streamed)."""
        record, stored = self._checkpoint(sid, name)
        return record, stored.verify()

    # ------------------------------------------------------------------ artifacts
    def _artifact_store(self, sid: int) -> ArtifactStore:
        return ArtifactStore(self._session_objects(sid).child("artifacts"))

    def save_artifact(self, sid: int, *, path: str, chunks: Iterator[bytes]) -> dict[str, Any]:
        validate_artifact_path(path)
        self._row(sid)
        return self._artifact_store(sid).put_chunks(path, chunks)

    def list_artifacts(self, sid: int) -> list[dict[str, Any]]:
        self._row(sid)
        return self._artifact_store(sid).list()

    def artifact_file(self, sid: int, path: str) -> tuple[dict[str, Any], StoredFile]:
        """The record and verified file of an artifact (sha256 checked against the session's index)."""
        validate_artifact_path(path)
        self._row(sid)
        return self._artifact_store(sid).get(path)

    def artifact_preview(self, sid: int, path: str, *, lines: int = 50) -> dict[str, Any]:
        validate_artifact_path(path)
        self._row(sid)
        return self._artifact_store(sid).preview(path, lines=lines)

    # ------------------------------------------------------------------ logs
    def log_path(self, sid: int) -> Path:
        return Path(self._row(sid)["log_path"])

    def read_log(self, sid: int, *, offset: int = 0, limit: int = 1 << 20) -> tuple[bytes, int]:
        path = self.log_path(sid)
        if not path.exists() or offset >= path.stat().st_size:
            return b"", offset  # nothing new (and a seek far past the end fails on some file systems)
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read(limit)
        return data, offset + len(data)

    def tail_log(self, sid: int, *, lines: int = 100) -> tuple[list[str], int]:
        """The last ``lines`` lines and the byte offset where a follower should continue."""
        path = self.log_path(sid)
        if not path.exists():
            return [], 0
        size = path.stat().st_size
        block = 64 * 1024
        with open(path, "rb") as fh:
            start = size
            data = b""
            while start > 0 and data.count(b"\n") <= lines:
                start = max(0, start - block)
                fh.seek(start)
                data = fh.read(size - start)
        text = data.decode("utf-8", errors="replace").splitlines()
        return text[-lines:] if lines else [], size

    # ------------------------------------------------------------------ chart reads
    def metric_series(
        self,
        sid: int,
        key: str,
        *,
        step_min: int | None = None,
        step_max: int | None = None,
        max_points: int = 0,
        after_id: int = 0,
        times: bool = False,
        band: bool = False,
    ) -> dict[str, Any]:
        """:meth:`query_metrics` for charts that need more than steps and values (a separate read so
        the plain history does not pay for them).

        ``times`` adds each kept point's time (unix seconds). ``band`` adds, when the server
        downsampled, one entry per bucket — its first and last step (and time), lowest and highest
        value — so a chart can shade the range its min/max line stands for; ``None`` when every point
        was kept.
        """
        points = self._read_points(sid, key, step_min=step_min, step_max=step_max, after_id=after_id, times=times)
        steps, values, stamps = points.steps, points.values, points.times
        # downsample over positions, so the same kept points pick their times too
        kept, _ = downsample(np.arange(len(steps)), values, max_points)
        out: dict[str, Any] = {"key": key, "total": len(steps), "last_id": points.last_id,
                               "steps": steps[kept].tolist(), "values": values[kept].tolist()}
        if stamps is not None:
            out["times"] = stamps[kept].tolist()
        if band:
            out["band"] = _bucket_band(steps, values, stamps, max_points)
        return out


@dataclass(frozen=True)
class _Points:
    last_id: int  # the cursor for the next read (``after_id``)
    steps: np.ndarray
    values: np.ndarray
    times: np.ndarray | None


def _bucket_band(steps: np.ndarray, values: np.ndarray, times: np.ndarray | None,
                 max_points: int) -> dict[str, list[Any]] | None:
    """Each bucket's step (and time) span with its lowest and highest value, bucketed as :func:`downsample`
    buckets; ``None`` when nothing was dropped."""
    n = len(steps)
    if max_points <= 0 or n <= max_points:
        return None
    width = -(-n // max(1, max_points // 2))
    buckets = -(-n // width)
    padded = np.full(buckets * width, np.nan)
    padded[:n] = values
    grid = padded.reshape(buckets, width)
    first = np.arange(buckets) * width
    last = np.minimum(first + width, n) - 1
    out: dict[str, list[Any]] = {"step_first": steps[first].tolist(), "step_last": steps[last].tolist(),
                                 "min": np.nanmin(grid, axis=1).tolist(), "max": np.nanmax(grid, axis=1).tolist()}
    if times is not None:
        out["time_first"] = times[first].tolist()
        out["time_last"] = times[last].tolist()
    return out


def default_name(command: Sequence[str]) -> str:
    """A session's name when none is given: the script it runs (``python train.py --lr 3e-4`` and
    ``torchrun --nproc-per-node 2 train.py`` -> ``train.py``; ``python -m pkg.train`` -> ``pkg.train``),
    else the program (``nvidia-smi``)."""
    args = [str(a) for a in command]
    for prev, arg in zip(args, args[1:], strict=False):
        if prev == "-m":
            return arg[:128]
        if not arg.startswith("-") and Path(arg).suffix in SCRIPT_SUFFIXES:
            return Path(arg).name[:128]
    return Path(args[0]).name[:128] or "session"


SCRIPT_SUFFIXES = {".py", ".sh", ".bash", ".ipynb", ".R", ".r", ".jl", ".js", ".pl", ".rb", ".lua"}
