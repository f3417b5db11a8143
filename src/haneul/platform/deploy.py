"""Deployments and the model registry: a session's checkpoint served over HTTP by replica processes.

:class:`DeployManager` starts each replica as the session's own command in the session's code
snapshot with ``HANEUL_MODE=serve`` (``haneul.bind`` then serves the bound ``infer``, see
:mod:`haneul.platform.serving`), each in its own process group so that a server crash leaves it
running. Deployments and their replicas (pid, kernel start time of the pid, port) are rows in the
database: on start the manager re-attaches to live replicas and restarts dead ones, and its
supervision thread restarts a replica that dies (with a backoff; the deployment is ``degraded``
meanwhile). Predictions are forwarded round robin over pooled keep-alive connections to the replicas
(:class:`ReplicaConnections`), and each deployment keeps request metrics over a recent window.

A checkpoint that is a language model (a folder with a Llama-family ``config.json`` and its
``tokenizer.json``, see :func:`haneul.platform.models.holds_lm`) is deployed with kind ``lm`` instead:
no replica starts, the checkpoint is unpacked once under ``HANEUL_HOME/deployments/.lm``, and the
``lm`` plugin serves it at ``/v1/completions`` and ``/v1/chat/completions`` under the deployment's
name (:class:`DeployedLMs` is what the plugin reads).

:class:`ModelRegistry` names checkpoints: model ``NAME`` has versions 1, 2, ... each pointing at a
session's checkpoint, and aliases (``production``) that point at a version and can be moved.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import delete, insert, select, update

from haneul.errors import Conflict, InvalidInput, NotFound, ServerUnavailable
from haneul.platform.db.deployments import Deployment, Model, ModelAlias, ModelVersion, Replica
from haneul.platform.executors.local import process_start_time
from haneul.platform.models import holds_lm, unpack_lm
from haneul.platform.plugins import Principal
from haneul.platform.service import Platform
from haneul.platform.serving import EXIT_NO_INFER, PredictionFailed

ACTIVE = ("starting", "running", "degraded")
NAME = re.compile(r"[A-Za-z0-9][\w.\-]{0,127}")
ALIAS = re.compile(r"[A-Za-z][\w\-]{0,63}")
MAX_REPLICAS = 16
MAX_BATCH = 4096
#: request latencies kept per deployment for p50/p99, and the window requests/s is measured over
METRIC_WINDOW = 2048
RATE_WINDOW_S = 10.0
STOP_GRACE_S = 5.0
SUPERVISE_EVERY_S = 0.25
BACKOFF_S = (1.0, 30.0)  # first and longest wait before a dead replica is started again
HEALTH_TIMEOUT_S = 1.0
#: where language-model checkpoints are unpacked, by sha256, under HANEUL_HOME/deployments (a
#: deployment's own folder cannot clash: its name never starts with a dot)
LM_CACHE = ".lm"


def check_name(name: str, what: str = "deployment name") -> str:
    if not NAME.fullmatch(name):
        raise InvalidInput(f"{what} {name[:60]!r} must be 1-128 letters, digits, '_', '-' or '.', starting "
                           "with a letter or digit")
    return name


def default_name(session: dict[str, Any]) -> str:
    base = re.sub(r"[^\w.\-]+", "-", str(session.get("name") or "session")).strip("-._")[:100] or "session"
    return f"{base}-{session['id']}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tail(path: Path, lines: int = 50) -> list[str]:
    """The last ``lines`` lines of a log file (read from its last 64 KiB)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - (64 << 10)))
            data = fh.read()
    except OSError:
        return []
    return data.decode("utf-8", "replace").splitlines()[-lines:]


def _one_line(lines: list[str], keep: int = 3) -> str:
    text = " | ".join(line.strip() for line in lines[-keep:] if line.strip())
    return text[-600:] if text else "(the log is empty)"


# --------------------------------------------------------------------------------------------------
# request metrics


class RequestMetrics:
    """Counts and latencies of one deployment's predictions (since this server started)."""

    def __init__(self) -> None:
        self.count = 0
        self.errors = 0
        self._recent: deque[tuple[float, float]] = deque(maxlen=METRIC_WINDOW)  # (time, latency ms)
        self._since = time.monotonic()

    def record(self, latency_ms: float, ok: bool) -> None:
        self.count += 1
        if not ok:
            self.errors += 1
        self._recent.append((time.monotonic(), latency_ms))

    def snapshot(self) -> dict[str, Any]:
        recent = list(self._recent)
        latencies = sorted(ms for _, ms in recent)
        now = time.monotonic()
        window = min(RATE_WINDOW_S, max(now - self._since, 1e-3))
        in_window = sum(1 for t, _ in recent if now - t <= window)

        def pct(q: float) -> float | None:
            if not latencies:
                return None
            return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 3)

        return {"requests": self.count, "errors": self.errors, "p50_ms": pct(0.50), "p99_ms": pct(0.99),
                "requests_per_s": round(in_window / window, 2), "window": len(latencies)}


# --------------------------------------------------------------------------------------------------
# the manager


@dataclass
class _Replica:
    index: int
    pid: int | None = None
    pid_start: str | None = None
    port: int | None = None
    started_at: float | None = None
    restarts: int = 0
    ready: bool = False
    proc: subprocess.Popen[bytes] | None = None  # only for replicas this server process started
    ready_by: float = 0.0  # when a replica not yet ready is given up on
    retry_at: float = 0.0  # when a dead replica is started again

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        return self.pid is not None and bool(self.pid_start) and process_start_time(self.pid) == self.pid_start

    def public(self, log: Path) -> dict[str, Any]:
        return {"index": self.index, "pid": self.pid, "port": self.port, "ready": self.ready,
                "alive": self.alive(), "started_at": self.started_at, "restarts": self.restarts,
                "log": str(log)}


@dataclass
class _Live:
    id: int
    name: str
    team_id: int | None
    session_id: int
    checkpoint: str
    options: dict[str, Any]
    status: str
    reason: str | None
    created_at: float
    wanted: int
    replicas: list[_Replica]
    folder: Path
    metrics: RequestMetrics = field(default_factory=RequestMetrics)
    turn: int = 0

    def log(self, index: int) -> Path:
        return self.folder / f"replica-{index}.log"


class DeployManager:
    """Starts, supervises, re-attaches and stops deployments; forwards predictions to replicas."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.settings = platform.settings
        self.engine = platform.engine
        self.folder = self.settings.home / "deployments"
        self._live: dict[str, _Live] = {}
        self._lock = threading.RLock()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._health = httpx.Client(timeout=HEALTH_TIMEOUT_S)
        self._pools: dict[int, ReplicaConnections] = {}  # by replica port
        self.lms = deployed_lms(platform)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Re-attach to the replicas of active deployments (restarting dead ones) and start supervising."""
        if self._thread is not None:
            return
        self.recover()
        self._thread = threading.Thread(target=self._supervise, name="haneul-deployments", daemon=True)
        self._thread.start()

    def recover(self) -> None:
        with self.engine.connect() as conn:
            rows = conn.execute(select(Deployment).where(Deployment.status.in_(ACTIVE))).all()
            replicas = conn.execute(select(Replica).order_by(Replica.index)).all()
        by_deployment: dict[int, list[Any]] = {}
        for r in replicas:
            by_deployment.setdefault(r.deployment_id, []).append(r)
        now = time.time()
        for d in rows:
            live = self._from_row(d)
            found = {r.index: r for r in by_deployment.get(d.id, [])}
            live.replicas = []
            for i in range(d.replicas):
                row = found.get(i)
                rep = _Replica(i) if row is None else _Replica(i, row.pid, row.pid_start, row.port, row.started_at,
                                                               row.restarts)
                rep.ready_by = now + self.settings.deploy_ready_timeout_s
                if rep.alive() and self._healthy(rep):
                    rep.ready = True
                live.replicas.append(rep)
            with self._lock:
                self._live[live.name] = live
                for rep in live.replicas:
                    if not rep.alive():
                        self._start_replica(live, rep)  # dead while the server was down: start again
                self._settle(live)

    def close(self) -> None:
        """Stop supervising; the replicas keep running for the next server process to re-attach."""
        self._closed.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._health.close()

    async def aclose(self) -> None:
        pools, self._pools = self._pools, {}
        for pool in pools.values():
            pool.close()

    def _from_row(self, d: Any) -> _Live:
        options = dict(d.options or {})
        live = _Live(id=d.id, name=d.name, team_id=d.team_id, session_id=d.session_id, checkpoint=d.checkpoint,
                     options=options, status=d.status, reason=d.reason, created_at=d.created_at,
                     wanted=d.replicas, replicas=[], folder=self.folder / d.name)
        if options.get("kind") == "lm":
            live.metrics = self.lms.metrics(d.name)  # recorded by the lm plugin's routes
        return live

    # ------------------------------------------------------------------ deploy / undeploy
    def deploy(self, *, principal: Principal, session_id: int | None = None, model: str | None = None,
               checkpoint: str | None = None, name: str | None = None, replicas: int = 1, batch: int = 1,
               batch_wait_ms: float = 0.0) -> dict[str, Any]:
        """Start ``replicas`` serving processes of a session's checkpoint (or of a model version);
        answers at once with status ``starting`` (:meth:`get` tells when they are ready). A language
        model checkpoint is unpacked and served by the server itself (kind ``lm``, status ``running``,
        no replicas: ``replicas`` and the batching options do not apply)."""
        if (session_id is None) == (model is None):
            raise InvalidInput("deploy needs a session id or a model reference (model:NAME[@ALIAS|:VERSION]), "
                               "not both")
        options: dict[str, Any] = {}
        if model is not None:
            resolved = ModelRegistry(self.platform).resolve(model, principal=principal)
            session_id, checkpoint = resolved["session_id"], resolved["checkpoint"]
            options["model"] = f"{resolved['model']}:{resolved['version']}"
        assert session_id is not None
        if not 1 <= replicas <= MAX_REPLICAS:
            raise InvalidInput(f"replicas={replicas} must be 1-{MAX_REPLICAS}")
        if not 1 <= batch <= MAX_BATCH:
            raise InvalidInput(f"batch={batch} must be 1-{MAX_BATCH}")
        if not 0 <= batch_wait_ms <= 10_000:
            raise InvalidInput(f"batch_wait_ms={batch_wait_ms} must be 0-10000 milliseconds")
        session = self.platform.get_session(session_id)
        principal.check_write(session.get("team_id"), f"session {session_id}")
        checkpoint = self._checkpoint(session_id, checkpoint)
        name = check_name(name) if name else default_name(session)
        self._check_free(name)  # before the unpacking below, which can take a while
        sha256 = self.lms.prepare(session_id, checkpoint)
        if sha256 is not None:
            options.update(kind="lm", sha256=sha256)
            replicas, status = 0, "running"
        else:
            options.update(batch=batch, batch_wait_ms=batch_wait_ms)
            status = "starting"
        now = time.time()
        with self._lock:
            self._check_free(name)
            with self.engine.begin() as conn:
                conn.execute(delete(Deployment).where(Deployment.name == name))  # a stopped or failed one
                did = conn.execute(insert(Deployment).values(
                    name=name, team_id=session.get("team_id"), session_id=session_id, checkpoint=checkpoint,
                    replicas=replicas, options=options, status=status, reason=None, created_at=now,
                )).inserted_primary_key[0]  # type: ignore[index]
            live = _Live(id=did, name=name, team_id=session.get("team_id"), session_id=session_id,
                         checkpoint=checkpoint, options=options, status=status, reason=None, created_at=now,
                         wanted=replicas, replicas=[_Replica(i) for i in range(replicas)], folder=self.folder / name)
            if sha256 is not None:
                live.metrics = self.lms.metrics(name, fresh=True)
            self._live[name] = live
            try:
                for rep in live.replicas:
                    self._start_replica(live, rep)
            except Exception as exc:
                self._fail(live, f"could not start replica: {exc}")
            self._save(live)
        return self.get(name, principal=principal)

    def _check_free(self, name: str) -> None:
        live = self._live.get(name)
        if live is not None:
            raise Conflict(f"deployment {name!r} is already {live.status}; undeploy it first "
                           f"(haneul undeploy {name}) or pick another --name")

    def _checkpoint(self, sid: int, name: str | None) -> str:
        names = [c["name"] for c in self.platform.list_checkpoints(sid)]
        if name is None or name == "latest":
            if not names:
                raise NotFound(f"session {sid} has no checkpoint to deploy; call haneul.save(name) in its "
                               "code first")
            return names[-1]
        if name not in names:
            raise NotFound(f"session {sid} has no checkpoint {name!r}; see `haneul checkpoints {sid}`")
        return name

    def undeploy(self, name: str, *, principal: Principal) -> dict[str, Any]:
        with self._lock:
            live = self._live.get(name)
            if live is None:
                row = self._row(name)
                principal.check_write(row.team_id, f"deployment {name!r}")
                raise Conflict(f"deployment {name!r} is already {row.status}; nothing to stop")
            principal.check_write(live.team_id, f"deployment {name!r}")
            self._live.pop(name)
        self._stop_replicas(live)
        live.status, live.reason = "stopped", "stopped by request"
        with self.engine.begin() as conn:
            conn.execute(update(Deployment).where(Deployment.id == live.id).values(
                status="stopped", reason=live.reason, stopped_at=time.time()))
        if live.options.get("kind") == "lm":
            self.lms.discard(str(live.options.get("sha256", "")))
        return self.get(name, principal=principal)

    def _stop_replicas(self, live: _Live) -> None:
        for rep in live.replicas:
            rep.ready = False
            if rep.pid is not None and rep.alive():
                try:
                    os.killpg(rep.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline and any(rep.alive() for rep in live.replicas):
            time.sleep(0.02)
        for rep in live.replicas:
            if rep.pid is not None and rep.alive():
                try:
                    os.killpg(rep.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if rep.proc is not None:
                try:
                    rep.proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass

    # ------------------------------------------------------------------ replicas
    def _start_replica(self, live: _Live, rep: _Replica) -> None:
        command, cwd, env = self.platform.mode_launch(live.session_id, live.checkpoint, "serve")
        rep.port = free_port()
        env.update(
            HANEUL_SERVE_PORT=str(rep.port),
            HANEUL_SERVE_BATCH=str(live.options.get("batch", 1)),
            HANEUL_SERVE_BATCH_WAIT_MS=str(live.options.get("batch_wait_ms", 0)),
            HANEUL_SERVER=self.platform.server_url,
            HANEUL_HOME=str(self.settings.home),
        )
        live.folder.mkdir(parents=True, exist_ok=True)
        with open(live.log(rep.index), "ab", buffering=0) as log:
            log.write(f"--- replica {rep.index} starting on port {rep.port} at {time.ctime()}\n".encode())
            proc = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        rep.proc, rep.pid, rep.pid_start = proc, proc.pid, process_start_time(proc.pid) or ""
        rep.started_at = time.time()
        rep.ready = False
        rep.ready_by = time.time() + self.settings.deploy_ready_timeout_s

    def _healthy(self, rep: _Replica) -> bool:
        if rep.port is None:
            return False
        try:
            return self._health.get(f"http://127.0.0.1:{rep.port}/health").status_code == 200
        except httpx.HTTPError:
            return False

    def _supervise(self) -> None:
        while not self._closed.wait(SUPERVISE_EVERY_S):
            try:
                self.tick()
            except Exception as exc:  # one broken deployment must not stop the supervision of the others
                print(f"haneul: deployment supervisor error: {exc!r}", flush=True)

    def tick(self) -> None:
        """One supervision step: mark replicas ready, fail deploys that cannot start, restart dead ones."""
        with self._lock:
            lives = list(self._live.values())
        for live in lives:
            with self._lock:
                if self._live.get(live.name) is not live:
                    continue  # undeployed meanwhile
                before = (live.status, [(r.ready, r.pid) for r in live.replicas])
                self._check(live)
                if live.status != "failed":
                    self._settle(live)
                if (live.status, [(r.ready, r.pid) for r in live.replicas]) != before:
                    self._save(live)

    def _check(self, live: _Live) -> None:
        now = time.time()
        for rep in live.replicas:
            if not rep.alive():
                rep.ready = False
                code = rep.proc.returncode if rep.proc is not None else None
                if live.status == "starting":
                    self._fail(live, self._exit_reason(live, rep, code))
                    return
                if rep.retry_at == 0.0:
                    wait = min(BACKOFF_S[0] * 2 ** min(rep.restarts, 10), BACKOFF_S[1])
                    rep.retry_at = now + wait
                    live.reason = f"replica {rep.index} exited ({self._exit_reason(live, rep, code)}); " \
                                  f"restarting in {wait:.0f} s"
                elif now >= rep.retry_at:
                    rep.retry_at = 0.0
                    rep.restarts += 1
                    self._start_replica(live, rep)
            elif not rep.ready:
                if self._healthy(rep):
                    rep.ready = True
                elif now > rep.ready_by:
                    reason = (f"replica {rep.index} was not ready after {self.settings.deploy_ready_timeout_s:g} s "
                              f"(HANEUL_DEPLOY_READY_TIMEOUT_S); its log ends: {_one_line(tail(live.log(rep.index)))}")
                    if live.status == "starting":
                        self._fail(live, reason)
                        return
                    self._kill(rep)  # the next tick sees it dead and restarts it after the backoff
                    live.reason = reason

    def _exit_reason(self, live: _Live, rep: _Replica, code: int | None) -> str:
        if code == EXIT_NO_INFER:
            return (f"session {live.session_id}'s code never called haneul.bind(infer=...); bind load and infer "
                    "before training")
        how = f"exited with code {code}" if code is not None and code >= 0 else \
            f"was killed by signal {-code}" if code is not None else "ended"
        return f"replica {rep.index} {how}; its log ends: {_one_line(tail(live.log(rep.index)))}"

    def _fail(self, live: _Live, reason: str) -> None:
        live.status, live.reason = "failed", reason
        self._live.pop(live.name, None)
        self._stop_replicas(live)
        self._save(live)

    @staticmethod
    def _kill(rep: _Replica) -> None:
        if rep.pid is not None:
            try:
                os.killpg(rep.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    @staticmethod
    def _settle(live: _Live) -> None:
        ready = sum(r.ready for r in live.replicas)
        if ready == len(live.replicas):
            live.status, live.reason = "running", None
        elif live.status != "starting":
            live.status = "degraded"

    def _save(self, live: _Live) -> None:
        with self.engine.begin() as conn:
            values: dict[str, Any] = {"status": live.status, "reason": live.reason}
            if live.status in ("failed", "stopped"):
                values["stopped_at"] = time.time()
            conn.execute(update(Deployment).where(Deployment.id == live.id).values(**values))
            conn.execute(delete(Replica).where(Replica.deployment_id == live.id))
            if not live.replicas:
                return  # a language model: the server itself serves it
            conn.execute(insert(Replica), [
                {"deployment_id": live.id, "index": r.index, "pid": r.pid, "pid_start": r.pid_start,
                 "port": r.port, "started_at": r.started_at, "restarts": r.restarts} for r in live.replicas])

    # ------------------------------------------------------------------ reading
    def _row(self, name: str) -> Any:
        with self.engine.connect() as conn:
            row = conn.execute(select(Deployment).where(Deployment.name == name)).first()
        if row is None:
            raise NotFound(f"deployment {name!r} not found; list deployments with `haneul deployments`")
        return row

    def get(self, name: str, *, principal: Principal) -> dict[str, Any]:
        live = self._live.get(name)
        if live is None:
            row = self._row(name)
            principal.check_read(row.team_id, f"deployment {name!r}")
            return self._public(self._from_row(row), replicas=[])
        principal.check_read(live.team_id, f"deployment {name!r}")
        return self._public(live, replicas=live.replicas)

    def list_all(self, *, principal: Principal) -> list[dict[str, Any]]:
        teams = principal.readable_teams()
        with self.engine.connect() as conn:
            query = select(Deployment).order_by(Deployment.created_at.desc())
            if teams is not None:
                query = query.where(Deployment.team_id.in_(teams))
            rows = conn.execute(query).all()
        out = []
        for row in rows:
            live = self._live.get(row.name)
            out.append(self._public(live, replicas=live.replicas) if live is not None else
                       self._public(self._from_row(row), replicas=[]))
        return out

    def logs(self, name: str, *, principal: Principal, lines: int = 50) -> dict[str, list[str]]:
        """The last ``lines`` of each replica's log, by replica index."""
        item = self.get(name, principal=principal)
        folder = self.folder / name
        count = max(item["replicas_wanted"], len(list(folder.glob("replica-*.log"))) if folder.is_dir() else 0)
        return {str(i): tail(folder / f"replica-{i}.log", lines) for i in range(count)}

    @staticmethod
    def _public(live: _Live, *, replicas: list[_Replica]) -> dict[str, Any]:
        kind = live.options.get("kind", "infer")
        return {
            "name": live.name, "kind": kind,
            # the path to call on this server: a language model answers under its deployment's name there
            "url": "/v1/chat/completions" if kind == "lm" else f"/api/v1/deployments/{live.name}/predict",
            "status": live.status, "reason": live.reason, "team_id": live.team_id,
            "session_id": live.session_id, "checkpoint": live.checkpoint, "model": live.options.get("model"),
            "batch": live.options.get("batch", 1), "batch_wait_ms": live.options.get("batch_wait_ms", 0),
            "replicas_wanted": live.wanted, "replicas_ready": sum(r.ready for r in replicas),
            "replicas": [r.public(live.log(r.index)) for r in replicas], "created_at": live.created_at,
            "metrics": live.metrics.snapshot(),
        }

    # ------------------------------------------------------------------ predictions
    async def predict(self, name: str, body: bytes, *, principal: Principal) -> bytes:
        """Forward a ``{"inputs": [...]}`` or ``{"input": x}`` body to a ready replica; the answer's JSON."""
        live = self._live.get(name)
        if live is None:
            row = self._row(name)
            principal.check_read(row.team_id, f"deployment {name!r}")
            raise ServerUnavailable(f"deployment {name!r} is {row.status}; deploy it again with `haneul deploy`")
        principal.check_read(live.team_id, f"deployment {name!r}")
        if live.options.get("kind") == "lm":
            raise InvalidInput(f"deployment {name!r} serves a language model; call POST /v1/chat/completions or "
                               f'/v1/completions with "model": "{name}"')
        single, payload = _parse_body(body)
        started = time.perf_counter()
        ok = False
        try:
            answer = await self._forward(live, payload)
            ok = True
        finally:
            live.metrics.record((time.perf_counter() - started) * 1000, ok)
        if single:
            return orjson.dumps({"prediction": orjson.loads(answer)["predictions"][0]})
        return answer

    async def _forward(self, live: _Live, payload: bytes) -> bytes:
        tried: set[int] = set()
        while True:
            ready = [r for r in live.replicas if r.ready and r.index not in tried]
            if not ready:
                down = len(live.replicas) - sum(r.ready for r in live.replicas)
                raise ServerUnavailable(f"deployment {live.name!r} has no ready replica ({down} of "
                                        f"{len(live.replicas)} down, status {live.status}); see `haneul deployments`")
            live.turn += 1
            rep = ready[live.turn % len(ready)]
            port = rep.port or 0
            pool = self._pools.get(port)
            if pool is None:
                pool = self._pools[port] = ReplicaConnections(port)
            try:
                status, answer = await pool.post("/predict", payload)
            except (TimeoutError, OSError, EOFError, asyncio.IncompleteReadError, ValueError):
                rep.ready = False  # the supervisor restarts it, or finds it healthy again
                self._pools.pop(port, None)
                pool.close()
                tried.add(rep.index)
                continue
            if status == 200:
                return answer
            try:
                message = str(orjson.loads(answer)["error"]["message"])
            except (ValueError, KeyError, TypeError):
                message = f"replica {rep.index} answered {status}: {answer[:200]!r}"
            if status == 400:
                raise InvalidInput(message)
            raise PredictionFailed(f"deployment {live.name!r}: {message}")


class ReplicaConnections:
    """Keep-alive HTTP/1.1 connections to one replica, reused across requests.

    The replica is our own server (:mod:`haneul.platform.serving`), which always answers with a
    Content-Length, so a few lines of asyncio streams suffice. Measured on one machine, a forward
    through these costs 0.17 ms against 1.1 ms through ``httpx.AsyncClient``'s pool, which was most of
    the latency a deployment added and the limit of its throughput.
    """

    MAX_IDLE = 64

    def __init__(self, port: int, *, timeout: float = 300.0) -> None:
        self.port = port
        self.timeout = timeout
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """``(status, body)`` of a POST; a connection that went stale while idle is replaced once."""
        while self._idle:
            conn = self._idle.pop()
            try:
                return await self._exchange(conn, path, body)
            except (OSError, EOFError, asyncio.IncompleteReadError):
                conn[1].close()  # the replica closed it meanwhile: try the next one
            except BaseException:  # a timeout or a cancelled request: the answer is still on the way
                conn[1].close()
                raise
        conn = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.port), 2.0)
        try:
            return await self._exchange(conn, path, body)
        except BaseException:
            conn[1].close()
            raise

    async def _exchange(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], path: str,
                        body: bytes) -> tuple[int, bytes]:
        reader, writer = conn
        writer.write(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (path.encode(), len(body), body))
        status, data = await asyncio.wait_for(self._read(reader), self.timeout)
        if len(self._idle) < self.MAX_IDLE:
            self._idle.append(conn)
        else:
            writer.close()
        return status, data

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> tuple[int, bytes]:
        line = await reader.readline()
        if not line:
            raise EOFError("the replica closed the connection")
        status = int(line.split(b" ", 2)[1])
        length = 0
        while True:
            header = await reader.readline()
            if header in (b"\r\n", b"\n"):
                break
            if not header:
                raise EOFError("the replica closed the connection")
            name, _, value = header.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await reader.readexactly(length)

    def close(self) -> None:
        idle, self._idle = self._idle, []
        for _, writer in idle:
            writer.close()


def _parse_body(body: bytes) -> tuple[bool, bytes]:
    """``(single, replica body)`` from a predict request body; a 400 for anything else."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("inputs"), list) and "input" not in data:
        return False, body if len(data) == 1 else orjson.dumps({"inputs": data["inputs"]})
    if isinstance(data, dict) and "input" in data and "inputs" not in data:
        return True, orjson.dumps({"inputs": [data["input"]]})
    raise InvalidInput('the body must be {"inputs": [x1, x2, ...]} or {"input": x}')


# --------------------------------------------------------------------------------------------------
# language models served by the server itself


@dataclass(frozen=True)
class DeployedLM:
    """A running deployment of kind ``lm``: the model ``name`` of the OpenAI-compatible routes."""

    name: str
    team_id: int | None
    session_id: int
    checkpoint: str
    folder: Path  # the unpacked checkpoint: config.json, *.safetensors, tokenizer.json


class DeployedLMs:
    """The language-model deployments of one platform, as the ``lm`` plugin serves them.

    :meth:`prepare` (at deploy) recognises a language-model checkpoint by its content and unpacks it,
    checked, once per content under ``HANEUL_HOME/deployments/.lm/<sha256>``; :meth:`readable` and
    :meth:`get` answer from the deployments table, so an undeployed model is gone at the next request.
    The request metrics of these deployments live here: the plugin records them and
    :class:`DeployManager` shows them. :func:`deployed_lms` gives the one instance of a platform.
    """

    def __init__(self, platform: Platform) -> None:
        # weakly: the instance is the value of a weak-keyed map whose key is this platform
        self._platform = weakref.ref(platform)
        self.engine = platform.engine
        self.cache = platform.settings.home / "deployments" / LM_CACHE
        self._metrics: dict[str, RequestMetrics] = {}
        self._lock = threading.Lock()

    def prepare(self, session_id: int, checkpoint: str) -> str | None:
        """The sha256 of a language-model checkpoint, unpacked and checked (a damaged one is a one-line
        InvalidInput); ``None`` for any other checkpoint, which replicas of the session's code serve."""
        platform = self._platform()
        if platform is None:
            raise ServerUnavailable("the server is shutting down; deploy again once it is back")
        record, path = platform.checkpoint_file(session_id, checkpoint)  # sha256-verified
        what = f"checkpoint {checkpoint!r} of session {session_id}"
        if record["kind"] != "dir" or not holds_lm(path, what=what):
            return None
        unpack_lm(path, self.cache / record["sha256"], what=what)
        return str(record["sha256"])

    def running(self) -> list[DeployedLM]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(Deployment).where(Deployment.status.in_(ACTIVE))
                                .order_by(Deployment.created_at)).all()
        return [DeployedLM(name=r.name, team_id=r.team_id, session_id=r.session_id, checkpoint=r.checkpoint,
                           folder=self.cache / str(r.options.get("sha256", "")))
                for r in rows if (r.options or {}).get("kind") == "lm"]

    def readable(self, principal: Principal) -> list[DeployedLM]:
        return [d for d in self.running() if principal.can_read(d.team_id)]

    def get(self, name: str, *, principal: Principal) -> DeployedLM | None:
        """The running language-model deployment ``name`` when ``principal`` may read it (else ``None``,
        as if there were none), its folder unpacked again if it went missing."""
        found = next((d for d in self.readable(principal) if d.name == name), None)
        if found is None or found.folder.is_dir():
            return found
        sha256 = self.prepare(found.session_id, found.checkpoint)
        if sha256 is None:
            return None
        return DeployedLM(found.name, found.team_id, found.session_id, found.checkpoint, self.cache / sha256)

    def discard(self, sha256: str) -> None:
        """Remove an unpacked checkpoint no running deployment serves any more."""
        folder = self.cache / sha256
        if sha256 and folder.is_dir() and all(d.folder != folder for d in self.running()):
            shutil.rmtree(folder, ignore_errors=True)

    def metrics(self, name: str, *, fresh: bool = False) -> RequestMetrics:
        with self._lock:
            if fresh or name not in self._metrics:
                self._metrics[name] = RequestMetrics()
            return self._metrics[name]

    def record(self, name: str, latency_ms: float, ok: bool) -> None:
        self.metrics(name).record(latency_ms, ok)


_LMS: weakref.WeakKeyDictionary[Platform, DeployedLMs] = weakref.WeakKeyDictionary()
_LMS_LOCK = threading.Lock()


def deployed_lms(platform: Platform) -> DeployedLMs:
    """The one :class:`DeployedLMs` of ``platform``, shared by its :class:`DeployManager` and the ``lm``
    plugin (which reaches it through ``ServerContext.platform``)."""
    with _LMS_LOCK:
        found = _LMS.get(platform)
        if found is None:
            found = _LMS[platform] = DeployedLMs(platform)
        return found


# --------------------------------------------------------------------------------------------------
# the model registry


_REF = re.compile(r"(?P<name>[^@:]+)(?:@(?P<alias>[^@:]+)|:(?P<version>\d+))?")


class ModelRegistry:
    """Named, numbered versions of checkpoints, with movable aliases."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.engine = platform.engine

    def _model(self, name: str, principal: Principal) -> Any:
        with self.engine.connect() as conn:
            row = conn.execute(select(Model).where(Model.name == name)).first()
        if row is None:
            raise NotFound(f"model {name!r} not found; list models with `haneul model ls`")
        principal.check_read(row.team_id, f"model {name!r}")
        return row

    def register(self, *, name: str, session_id: int, checkpoint: str, alias: str | None = None,
                 principal: Principal) -> dict[str, Any]:
        check_name(name, "model name")
        if alias is not None:
            _check_alias(alias)
        session = self.platform.get_session(session_id)
        team = session.get("team_id")
        principal.check_write(team, f"session {session_id}")
        self.platform.checkpoint_file(session_id, checkpoint)  # 404 for a missing one, 500 for a damaged one
        now = time.time()
        with self.engine.begin() as conn:
            model = conn.execute(select(Model).where(Model.name == name)).first()
            if model is None:
                mid = conn.execute(insert(Model).values(name=name, team_id=team, created_at=now)
                                   ).inserted_primary_key[0]  # type: ignore[index]
            else:
                principal.check_write(model.team_id, f"model {name!r}")
                mid = model.id
            last = conn.execute(select(ModelVersion.version).where(ModelVersion.model_id == mid)
                                .order_by(ModelVersion.version.desc()).limit(1)).scalar()
            version = (last or 0) + 1
            conn.execute(insert(ModelVersion).values(model_id=mid, version=version, session_id=session_id,
                                                     checkpoint=checkpoint, created_at=now))
            if alias is not None:
                _move_alias(conn, mid, alias, version)
        return self.info(name, principal=principal)

    def set_alias(self, name: str, *, version: int, alias: str, principal: Principal) -> dict[str, Any]:
        _check_alias(alias)
        model = self._model(name, principal)
        principal.check_write(model.team_id, f"model {name!r}")
        with self.engine.begin() as conn:
            exists = conn.execute(select(ModelVersion.id).where(
                ModelVersion.model_id == model.id, ModelVersion.version == version)).first()
            if exists is None:
                raise NotFound(f"model {name!r} has no version {version}; see `haneul model info {name}`")
            _move_alias(conn, model.id, alias, version)
        return self.info(name, principal=principal)

    def info(self, name: str, *, principal: Principal) -> dict[str, Any]:
        model = self._model(name, principal)
        with self.engine.connect() as conn:
            versions = conn.execute(select(ModelVersion).where(ModelVersion.model_id == model.id)
                                    .order_by(ModelVersion.version)).all()
            aliases = conn.execute(select(ModelAlias).where(ModelAlias.model_id == model.id)
                                   .order_by(ModelAlias.alias)).all()
        by_version: dict[int, list[str]] = {}
        for a in aliases:
            by_version.setdefault(a.version, []).append(a.alias)
        return {"name": model.name, "team_id": model.team_id, "created_at": model.created_at,
                "aliases": {a.alias: a.version for a in aliases},
                "versions": [{"version": v.version, "session_id": v.session_id, "checkpoint": v.checkpoint,
                              "created_at": v.created_at, "aliases": by_version.get(v.version, [])}
                             for v in versions]}

    def list_all(self, *, principal: Principal) -> list[dict[str, Any]]:
        teams = principal.readable_teams()
        query = select(Model).order_by(Model.name)
        if teams is not None:
            query = query.where(Model.team_id.in_(teams))
        with self.engine.connect() as conn:
            names = [row.name for row in conn.execute(query).all()]
        out = []
        for name in names:
            info = self.info(name, principal=principal)
            latest = info["versions"][-1] if info["versions"] else {}
            out.append({"name": name, "versions": len(info["versions"]), "latest": latest.get("version"),
                        "aliases": info["aliases"], "created_at": info["created_at"]})
        return out

    def resolve(self, ref: str, *, principal: Principal) -> dict[str, Any]:
        """``NAME`` (the latest version), ``NAME@ALIAS`` or ``NAME:VERSION`` -> its session and checkpoint."""
        match = _REF.fullmatch(ref)
        if match is None:
            raise InvalidInput(f"model reference {ref[:80]!r} must look like NAME, NAME@ALIAS or NAME:VERSION")
        info = self.info(match["name"], principal=principal)
        if match["alias"]:
            if match["alias"] not in info["aliases"]:
                raise NotFound(f"model {info['name']!r} has no alias {match['alias']!r}; its aliases: "
                               f"{', '.join(info['aliases']) or 'none'}")
            version = info["aliases"][match["alias"]]
        elif match["version"]:
            version = int(match["version"])
        elif info["versions"]:
            version = info["versions"][-1]["version"]
        else:
            raise NotFound(f"model {info['name']!r} has no versions")
        for v in info["versions"]:
            if v["version"] == version:
                return {"model": info["name"], "version": version, "session_id": v["session_id"],
                        "checkpoint": v["checkpoint"]}
        raise NotFound(f"model {info['name']!r} has no version {version}; see `haneul model info {info['name']}`")


def _check_alias(alias: str) -> None:
    if not ALIAS.fullmatch(alias):
        raise InvalidInput(f"alias {alias[:60]!r} must be 1-64 letters, digits, '_' or '-', starting with a "
                           "letter (e.g. production)")


def _move_alias(conn: Any, model_id: int, alias: str, version: int) -> None:
    conn.execute(delete(ModelAlias).where(ModelAlias.model_id == model_id, ModelAlias.alias == alias))
    conn.execute(insert(ModelAlias).values(model_id=model_id, alias=alias, version=version))


__all__ = ["DeployManager", "DeployedLM", "DeployedLMs", "ModelRegistry", "RequestMetrics", "check_name",
           "deployed_lms"]
