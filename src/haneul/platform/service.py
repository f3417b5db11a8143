"""The platform's service layer: sessions, metrics, checkpoints and logs over the DB and executors.

One :class:`Platform` per server process. Routes call its keyword-only methods and never touch the
database directly; methods raise :class:`~haneul.errors.HaneulError` subclasses only. A supervisor
thread polls running sessions, records how they ended and starts queued ones as resources free up.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson
from sqlalchemy import Engine, delete, func, insert, select, update

from haneul.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge, Unauthorized
from haneul.platform.db import (
    Checkpoint,
    MetricChunk,
    MetricKey,
    Session,
    make_engine,
    migrate,
    version_table,
)
from haneul.platform.executors import Executor, Exit, Handle, LaunchSpec, get_executor
from haneul.platform.scheduler import Resources, Scheduler, parse_memory
from haneul.platform.store import CheckpointStore, validate_name
from haneul.settings import Settings

STATUSES = ("queued", "running", "done", "failed", "stopped", "lost")
ACTIVE = ("queued", "running")
SORTABLE = {"id", "name", "owner", "status", "created_at", "started_at", "ended_at", "priority"}
MAX_KEY_LEN = 256
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
        self.executor = executor or get_executor("local")
        cpus = settings.capacity_cpus if settings.capacity_cpus is not None else float(os.cpu_count() or 1)
        self.scheduler = Scheduler(
            Resources(cpus, settings.capacity_gpus, parse_memory(settings.capacity_memory))
        )
        self.poll_interval = poll_interval
        self._lock = threading.RLock()  # scheduler + executor + session status transitions
        self._write_lock = threading.Lock()  # one writer for metric batches
        self._tokens: dict[int, str] = {}
        self._stopping: set[int] = set()
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
                    self.scheduler.submit(s["id"], need, priority=s["priority"])
                    counts["requeued"] += 1
                    continue
                workdir = Path(s["workdir"])
                handle = Handle(s["pid"] or 0, s["pid_start"] or "")
                if self.executor.reattach(s["id"], handle, workdir):
                    self.scheduler.adopt(s["id"], need)
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
            self._start_ready()

    def _finish(self, sid: int, ended: Exit) -> None:
        stopped = sid in self._stopping
        self._stopping.discard(sid)
        reason: str | None
        if stopped:
            status, reason = "stopped", "stopped by request"
        elif ended.code is None:
            status, reason = "lost", ended.reason
        else:
            status, reason = ("done" if ended.code == 0 else "failed"), ended.reason
        with self.engine.begin() as conn:
            conn.execute(
                update(Session)
                .where(Session.id == sid)
                .values(status=status, exit_code=ended.code, reason=reason, ended_at=time.time())
            )
        self.scheduler.release(sid)

    def _start_ready(self) -> None:
        for sid in self.scheduler.schedule():
            self._launch(sid)

    def _launch(self, sid: int) -> None:
        with self.engine.begin() as conn:
            s = conn.execute(select(Session).where(Session.id == sid)).one()._mapping
            workdir = Path(s["workdir"])
            env = self._session_env(s)
            spec = LaunchSpec(sid, list(s["command"]), env, workdir, Path(s["log_path"]),
                              Path(s["cwd"]) if s["cwd"] else None)
            try:
                handle = self.executor.start(spec)
            except Exception as exc:
                conn.execute(update(Session).where(Session.id == sid).values(
                    status="failed", reason=f"could not start: {exc}", ended_at=time.time()))
                self.scheduler.release(sid)
                return
            conn.execute(update(Session).where(Session.id == sid).values(
                status="running", pid=handle.pid, pid_start=handle.pid_start, started_at=time.time()))

    def _session_env(self, s: Any) -> dict[str, str]:
        env = dict(os.environ)
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
            PYTHONUNBUFFERED="1",
        )
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
    ) -> dict[str, Any]:
        """Queue a session (it starts at once when resources allow).

        With ``cwd`` and ``snapshot`` the folder is copied into the session's own working directory
        and the command runs there; with ``snapshot=False`` it runs in ``cwd`` itself.
        """
        if not command or not all(isinstance(c, str) for c in command):
            raise InvalidInput("command must be a non-empty list of strings, e.g. [\"python\", \"train.py\"]")
        env = {str(k): str(v) for k, v in (env or {}).items()}
        if cwd is not None and not Path(cwd).is_dir():
            raise InvalidInput(f"working directory {cwd} does not exist on the server")
        self._check_command(command[0], env, cwd)
        need = Resources(float(cpus), int(gpus), parse_memory(memory))
        self.scheduler.check(need)
        token = secrets.token_urlsafe(24)
        now = time.time()
        with self._lock:
            with self.engine.begin() as conn:
                sid = conn.execute(
                    insert(Session).values(
                        name=name or Path(command[-1] if len(command) > 1 else command[0]).name[:128],
                        owner=owner, status="queued", command=command, env=env, cwd=cwd,
                        cpus=need.cpus, gpus=need.gpus, memory=need.memory, priority=priority,
                        executor=self.executor.name, token_hash=_hash_token(token), created_at=now,
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
                workdir = self.settings.sessions_dir / str(sid)
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
            self.scheduler.submit(sid, need, priority=priority)
            self._start_ready()
        return self.get_session(sid)

    @staticmethod
    def _check_command(program: str, env: dict[str, str], cwd: str | None) -> None:
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

    def get_session(self, sid: int) -> dict[str, Any]:
        out = self._public(self._row(sid))
        out["metrics"] = self.latest_metrics([sid]).get(sid, {})
        out["checkpoints"] = len(self.list_checkpoints(sid))
        if out["status"] == "queued":
            with contextlib.suppress(NotFound):
                out["queue_position"] = self.scheduler.position(sid)
        return out

    @staticmethod
    def _public(s: Any) -> dict[str, Any]:
        keys = ("id", "name", "owner", "status", "command", "env", "cwd", "cpus", "gpus", "memory",
                "priority", "executor", "pid", "exit_code", "reason", "created_at", "started_at",
                "ended_at", "log_path", "workdir")
        return {k: s[k] for k in keys}

    def list_sessions(
        self,
        *,
        status: list[str] | None = None,
        owner: str | None = None,
        q: str | None = None,
        sort: str = "id",
        desc: bool = True,
        limit: int = 50,
        offset: int = 0,
        with_metrics: bool = True,
    ) -> tuple[list[dict[str, Any]], int]:
        if sort not in SORTABLE:
            raise InvalidInput(f"cannot sort by {sort!r}; choose one of: {', '.join(sorted(SORTABLE))}")
        for st in status or []:
            if st not in STATUSES:
                raise InvalidInput(f"status {st!r} is unknown; choose from: {', '.join(STATUSES)}")
        if not 1 <= limit <= 1000 or offset < 0:
            raise InvalidInput("limit must be 1-1000 and offset non-negative")
        cond: list[Any] = []
        if status:
            cond.append(Session.status.in_(status))
        if owner:
            cond.append(Session.owner == owner)
        if q:
            cond.append(Session.name.contains(q, autoescape=True))
        col = getattr(Session, sort)
        order = [col.desc() if desc else col.asc(), Session.id.desc() if desc else Session.id.asc()]
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(Session).where(*cond)).scalar_one()
            rows = conn.execute(select(Session).where(*cond).order_by(*order).limit(limit).offset(offset)).all()
        items = [self._public(r._mapping) for r in rows]
        if with_metrics and items:
            latest = self.latest_metrics([i["id"] for i in items])
            for item in items:
                item["metrics"] = latest.get(item["id"], {})
        return items, total

    def stop_session(self, sid: int, *, grace: float = 5.0) -> dict[str, Any]:
        with self._lock:
            s = self._row(sid)
            if s["status"] == "queued":
                self.scheduler.cancel(sid)
                with self.engine.begin() as conn:
                    conn.execute(update(Session).where(Session.id == sid).values(
                        status="stopped", reason="stopped before it started", ended_at=time.time()))
            elif s["status"] == "running":
                self._stopping.add(sid)
                self.executor.stop(sid, grace=grace)
            else:
                raise Conflict(f"session {sid} has already ended ({s['status']}); nothing to stop")
        return self.get_session(sid)

    def authenticate(self, sid: int, token: str | None) -> None:
        s = self._row(sid)
        if not token or not secrets.compare_digest(_hash_token(token), s["token_hash"]):
            raise Unauthorized(f"a valid session token is required to write to session {sid}")

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
                    f"metric batch holds more than {self.settings.max_metric_batch} points; send smaller batches"
                )
            try:
                values = np.asarray(raw_values, dtype=np.float64)
                steps_f = np.asarray(raw_steps, dtype=np.float64)
                raw_times = group.get("times")
                times = np.full(len(values), now) if raw_times is None else np.asarray(raw_times, dtype=np.float64)
            except (TypeError, ValueError):
                raise InvalidInput(f"metric {key!r}: steps, values and times must all be numbers") from None
            if values.ndim != 1 or steps_f.ndim != 1 or times.shape != values.shape:
                raise InvalidInput(f"metric {key!r}: steps, values and times must be flat lists of one length")
            if not np.isfinite(values).all():
                bad = int(np.flatnonzero(~np.isfinite(values))[0])
                raise InvalidInput(f"metric {key!r}: value at position {bad} is {values[bad]}; values must be finite")
            if (steps_f < 0).any() or (steps_f != np.floor(steps_f)).any() or not np.isfinite(steps_f).all():
                raise InvalidInput(f"metric {key!r}: steps must be non-negative integers")
            out[key] = (steps_f.astype(np.int64), values, times)
        return out

    def ingest_metrics(self, sid: int, batch: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> int:
        """Store a validated batch in one transaction; returns the number of points (durable on return)."""
        total = 0
        with self._write_lock, self.engine.begin() as conn:
            known = dict(conn.execute(  # type: ignore[arg-type]
                select(MetricKey.key, MetricKey.id).where(MetricKey.session_id == sid, MetricKey.key.in_(list(batch)))
            ).all())
            chunks = []
            for key, (steps, values, times) in batch.items():
                n = len(values)
                if n == 0:
                    continue
                if key not in known:
                    known[key] = conn.execute(insert(MetricKey).values(
                        session_id=sid, key=key, count=0)).inserted_primary_key[0]  # type: ignore[index]
                kid = known[key]
                chunks.append(dict(key_id=kid, n=n, step_min=int(steps.min()), step_max=int(steps.max()),
                                   steps=steps.astype("<i8").tobytes(), values=values.astype("<f8").tobytes(),
                                   times=times.astype("<f8").tobytes()))
                last = n - 1 - int(np.argmax(times[::-1]))  # the last point among the newest
                newest = float(times[last])
                conn.execute(update(MetricKey).where(MetricKey.id == kid).values(count=MetricKey.count + n))
                # a late, older batch must not overwrite the latest value
                conn.execute(update(MetricKey).where(
                    MetricKey.id == kid, (MetricKey.updated_at.is_(None)) | (MetricKey.updated_at <= newest)
                ).values(last_step=int(steps[last]), last_value=float(values[last]), updated_at=newest))
                total += n
            if chunks:
                conn.execute(insert(MetricChunk), chunks)
        return total

    def metric_keys(self, sid: int) -> list[dict[str, Any]]:
        self._row(sid)
        with self.engine.connect() as conn:
            rows = conn.execute(select(MetricKey).where(MetricKey.session_id == sid).order_by(MetricKey.key)).all()
        return [{"key": r.key, "count": r.count, "last_step": r.last_step, "last_value": r.last_value} for r in rows]

    def latest_metrics(self, sids: list[int]) -> dict[int, dict[str, float | None]]:
        if not sids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(MetricKey.session_id, MetricKey.key, MetricKey.last_value).where(MetricKey.session_id.in_(sids))
            ).all()
        out: dict[int, dict[str, float | None]] = {}
        for sid, key, value in rows:
            out.setdefault(sid, {})[key] = value
        return out

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
        self._row(sid)
        with self.engine.connect() as conn:
            kid = conn.execute(
                select(MetricKey.id).where(MetricKey.session_id == sid, MetricKey.key == key)
            ).scalar_one_or_none()
            if kid is None:
                raise NotFound(f"session {sid} has no metric {key!r}; see `haneul metrics {sid}` for its keys")
            query = select(MetricChunk.id, MetricChunk.steps, MetricChunk.values).where(
                MetricChunk.key_id == kid, MetricChunk.id > after_id)
            if step_min is not None:
                query = query.where(MetricChunk.step_max >= step_min)
            if step_max is not None:
                query = query.where(MetricChunk.step_min <= step_max)
            rows = conn.execute(query.order_by(MetricChunk.id)).all()
        if not rows:
            return {"key": key, "total": 0, "last_id": after_id, "steps": [], "values": []}
        steps = np.concatenate([np.frombuffer(r.steps, dtype="<i8") for r in rows])
        values = np.concatenate([np.frombuffer(r.values, dtype="<f8") for r in rows])
        keep = np.ones(len(steps), dtype=bool)
        if step_min is not None:
            keep &= steps >= step_min
        if step_max is not None:
            keep &= steps <= step_max
        if not keep.all():
            steps, values = steps[keep], values[keep]
        order = np.argsort(steps, kind="stable")  # equal steps stay in arrival order
        steps, values = downsample(steps[order], values[order], max_points)
        return {"key": key, "total": int(keep.sum()), "last_id": int(rows[-1].id),
                "steps": steps.tolist(), "values": values.tolist()}

    # ------------------------------------------------------------------ checkpoints
    def _ckpt_store(self, sid: int) -> CheckpointStore:
        return CheckpointStore(self.settings.artifacts / "sessions" / str(sid) / "checkpoints")

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

    def checkpoint_file(self, sid: int, name: str) -> tuple[dict[str, Any], Path]:
        """The verified file of a checkpoint (sha256 checked against the database record)."""
        validate_name(name)
        self._row(sid)
        records = {r["name"]: r for r in self.list_checkpoints(sid)}
        if name not in records:
            raise NotFound(f"session {sid} has no checkpoint {name!r}; see `haneul checkpoints {sid}`")
        record = records[name]
        path = self._ckpt_store(sid).root / name
        CheckpointStore.verify(record, path)
        return record, path

    # ------------------------------------------------------------------ logs
    def log_path(self, sid: int) -> Path:
        return Path(self._row(sid)["log_path"])

    def read_log(self, sid: int, *, offset: int = 0, limit: int = 1 << 20) -> tuple[bytes, int]:
        path = self.log_path(sid)
        if not path.exists():
            return b"", offset
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
