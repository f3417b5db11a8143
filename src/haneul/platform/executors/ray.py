"""The Ray executor: each session runs in its own detached, named Ray actor on the node Ray picks.

``HANEUL_EXECUTOR=ray`` sends sessions to a Ray cluster (``HANEUL_RAY_ADDRESS``: ``"auto"``,
``"host:6379"`` or ``"ray://host:10001"``; unset starts a private local Ray that lives as long as the
server). A session's cpus / gpus / memory become the actor's ``num_cpus`` / ``num_gpus`` / ``memory``
and any other key of :attr:`LaunchSpec.resources` a Ray custom resource, so Ray places the session on
a node that has what it asks for. On that node the actor is a :class:`LocalExecutor` for exactly one
session: the command runs through the same ``launcher.py`` as on one machine, so exit codes, logs,
system metrics and the working-folder files (``exit_code``, the pause file) behave the same.

The actor is detached and named ``haneul-session-<id>`` in the ``haneul`` namespace, so it outlives
the server; a restarted server finds it again by name (:meth:`RayExecutor.reattach`). The session's
working folder and log are written by the node and read by the server, so they must lie on a
filesystem every node mounts at the same path (``HANEUL_HOME`` on NFS or a shared volume, as on
NSML or a KubeRay cluster; on one machine this holds trivially), and every node needs haneul
installed in the Python that runs its Ray workers.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from haneul.errors import HaneulError, InvalidInput
from haneul.platform.executors._base import Executor, Exit, Handle, LaunchSpec
from haneul.platform.executors.local import LocalExecutor

if TYPE_CHECKING:
    from haneul.settings import Settings

NAMESPACE = "haneul"
START_TIMEOUT_S = 60.0  # how long start() waits for Ray to place the session and its process to begin
CALL_TIMEOUT_S = 30.0  # one poll / stop / reattach round trip to a session's actor
PROBE_TIMEOUT_S = 3.0  # the TCP check that the cluster's address answers at all

MISSING_RAY = "HANEUL_EXECUTOR=ray needs Ray: pip install 'haneul[ray]'"


def actor_name(session_id: int) -> str:
    return f"haneul-session-{session_id}"


def actor_options(resources: dict[str, float] | None) -> dict[str, Any]:
    """Ray actor options for a session's resources: ``cpus`` / ``gpus`` / ``memory`` (bytes) become
    ``num_cpus`` / ``num_gpus`` / ``memory``, every other key a custom resource. A spec without
    resources reserves nothing and may land on any node."""
    need = dict(resources or {})
    options: dict[str, Any] = {"num_cpus": float(need.pop("cpus", 0.0)), "num_gpus": float(need.pop("gpus", 0.0))}
    memory = int(need.pop("memory", 0) or 0)
    if memory > 0:
        options["memory"] = memory
    custom = {key: float(amount) for key, amount in need.items() if amount}
    if custom:
        options["resources"] = custom
    return options


class SessionActor:
    """The body of a session's Ray actor: a local executor for one session on the node it landed on.

    Made a Ray actor class by :func:`_actor_class` (Ray is imported only once it is needed). Its
    exit, once seen, is kept, so every executor that asks (the server that started it and one that
    re-attached) learns the same exit code.
    """

    def __init__(self) -> None:
        self._local = LocalExecutor()
        self._session_id: int | None = None
        self._handle: Handle | None = None
        self._ended: Exit | None = None

    def launch(self, spec: LaunchSpec) -> Handle:
        import ray

        # the session sees the GPUs Ray gave this actor (none when it asked for none), not the ones the
        # server's environment named: a node's GPUs are Ray's to hand out
        gpus = ",".join(map(str, ray.get_gpu_ids()))
        spec = dataclasses.replace(spec, env={**spec.env, "CUDA_VISIBLE_DEVICES": gpus})
        self._handle = self._local.start(spec)
        self._session_id = spec.session_id
        return self._handle

    def handle(self) -> Handle | None:
        return self._handle

    def node(self) -> str:
        """The Ray node id of the node the session runs on."""
        import ray

        return str(ray.get_runtime_context().get_node_id())

    def poll(self) -> Exit | None:
        if self._ended is None and self._session_id is not None:
            self._ended = self._local.poll(self._session_id)
        return self._ended

    def stop(self, grace: float) -> None:
        if self._session_id is not None:
            self._local.stop(self._session_id, grace=grace)


_ACTOR_CLASS: Any = None


def _actor_class() -> Any:
    """``ray.remote(SessionActor)``, made once. Ray's defaults are what it needs: one call at a time,
    and no restart (a restarted actor would not know the process its predecessor started)."""
    global _ACTOR_CLASS
    if _ACTOR_CLASS is None:
        import ray

        _ACTOR_CLASS = ray.remote(SessionActor)
    return _ACTOR_CLASS


def _probe(address: str) -> None:
    """Fail fast, in one line, when ``host:port`` (or ``ray://host:port``) does not answer: Ray itself
    would keep retrying the connection for minutes."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise InvalidInput(f"HANEUL_RAY_ADDRESS={address!r} is not an address; write host:port, "
                           "ray://host:10001 or auto")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_TIMEOUT_S):
            pass
    except OSError as exc:
        raise InvalidInput(f"no Ray cluster answers at {address} ({exc.strerror or exc}); start one with "
                           "`ray start --head` or set HANEUL_RAY_ADDRESS to its address") from None


def connect(address: str | None) -> bool:
    """Connect this process to the Ray cluster at ``address`` (None: start a local one); True when
    this call made the connection, False when the process was already connected."""
    try:
        import ray
    except ImportError:
        raise InvalidInput(MISSING_RAY) from None
    if ray.is_initialized():
        return False
    if address not in (None, "auto"):
        _probe(address)
    try:
        ray.init(address=address, namespace=NAMESPACE, log_to_driver=False, include_dashboard=False,
                 configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise InvalidInput(f"cannot connect to the Ray cluster at {address or 'a new local Ray'} ({_first_line(exc)}); "
                           "start one with `ray start --head` or fix HANEUL_RAY_ADDRESS") from None
    return True


class RayExecutor(Executor):
    """Runs each session in a detached Ray actor (see the module docstring)."""

    name = "ray"

    def __init__(self, address: str | None = None, *, start_timeout: float = START_TIMEOUT_S) -> None:
        self.address = address
        self.start_timeout = start_timeout
        self._owns_connection = connect(address)
        self._actors: dict[int, Any] = {}  # session id -> actor handle
        self._workdirs: dict[int, Path] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> RayExecutor:
        return cls(settings.ray_address)

    def capacity(self) -> dict[str, float]:
        import ray

        total = ray.cluster_resources()
        return {"cpus": float(total.get("CPU", 0.0)), "gpus": float(total.get("GPU", 0.0)),
                "memory": float(total.get("memory", 0.0))}

    def start(self, spec: LaunchSpec) -> Handle:
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

        self._evict(spec.session_id)
        actor = _actor_class().options(
            name=actor_name(spec.session_id), namespace=NAMESPACE, lifetime="detached",
            **actor_options(spec.resources),
        ).remote()
        try:
            handle: Handle = ray.get(actor.launch.remote(spec), timeout=self.start_timeout)
        except GetTimeoutError:
            ray.kill(actor, no_restart=True)
            raise HaneulError(f"no node of the Ray cluster had room for session {spec.session_id} "
                              f"({_describe(spec.resources)}) within {self.start_timeout:g} s; see `ray status`") from None
        except RayTaskError as exc:  # the launch raised on the node (an empty command...): pass its error on
            ray.kill(actor, no_restart=True)
            if isinstance(exc.cause, Exception):
                raise exc.cause from None
            raise HaneulError(f"session {spec.session_id} could not start on its Ray node: {_first_line(exc)}") from None
        except RayActorError as exc:
            raise HaneulError(f"the Ray actor of session {spec.session_id} died while starting: {_first_line(exc)}") from None
        with self._lock:
            self._actors[spec.session_id] = actor
            self._workdirs[spec.session_id] = spec.workdir
        return handle

    def _evict(self, session_id: int) -> None:
        """Remove a finished run's actor that still holds the session's name (Ray frees a killed
        actor's name a moment after ``ray.kill``), so the new run can take it."""
        import ray

        for _ in range(100):
            try:
                leftover = ray.get_actor(actor_name(session_id), namespace=NAMESPACE)
            except ValueError:
                return
            ray.kill(leftover, no_restart=True)
            time.sleep(0.05)
        raise HaneulError(f"the Ray actor {actor_name(session_id)!r} of an earlier run does not go away; "
                          "remove it with `ray kill` or restart the cluster")

    def poll(self, session_id: int) -> Exit | None:
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError

        with self._lock:
            actor = self._actors.get(session_id)
            workdir = self._workdirs.get(session_id)
        if actor is None:
            return Exit(None, "the executor has no record of this session")
        try:
            ended: Exit | None = ray.get(actor.poll.remote(), timeout=CALL_TIMEOUT_S)
        except GetTimeoutError:  # a busy node: ask again on the next tick
            return None
        except RayActorError:  # killed after another executor saw it end, or its node went away
            ended = _recorded_exit(workdir, "the session's Ray actor died and left no exit code")
        if ended is None:
            return None
        with self._lock:
            self._actors.pop(session_id, None)
            self._workdirs.pop(session_id, None)
        ray.kill(actor, no_restart=True)  # its job is done: give its resources back to the cluster
        return ended

    def stop(self, session_id: int, *, grace: float = 5.0) -> None:
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError

        with self._lock:
            actor = self._actors.get(session_id)
        if actor is None:
            return
        try:
            ray.get(actor.stop.remote(grace), timeout=CALL_TIMEOUT_S)
        except (GetTimeoutError, RayActorError):  # gone already, or unreachable: poll() settles it
            pass

    def reattach(self, session_id: int, handle: Handle, workdir: Path) -> bool:
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError

        try:
            actor: Any = ray.get_actor(actor_name(session_id), namespace=NAMESPACE)
            running: Handle | None = ray.get(actor.handle.remote(), timeout=CALL_TIMEOUT_S)
        except (ValueError, GetTimeoutError, RayActorError):
            return False
        if running != handle:  # another run of the session (or another cluster's): not ours to watch
            return False
        with self._lock:
            self._actors[session_id] = actor
            self._workdirs[session_id] = workdir
        return True

    def node(self, session_id: int) -> str | None:
        """The Ray node id a running session was placed on, or None when it is not running here."""
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError

        with self._lock:
            actor = self._actors.get(session_id)
        if actor is None:
            return None
        try:
            return str(ray.get(actor.node.remote(), timeout=CALL_TIMEOUT_S))
        except (GetTimeoutError, RayActorError):
            return None

    def shutdown(self) -> None:
        """Disconnect from the cluster (sessions keep running in their detached actors); a local Ray
        that this executor started ends with it, and its sessions with it."""
        import ray

        if self._owns_connection:
            ray.shutdown()


def _recorded_exit(workdir: Path | None, reason: str) -> Exit:
    """The exit code the launcher wrote to the shared working folder, or ``Exit(None, reason)``."""
    try:
        return Exit(int((workdir / "exit_code").read_text().strip())) if workdir else Exit(None, reason)
    except (OSError, ValueError):
        return Exit(None, reason)


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message (Ray's carry whole tracebacks), or its class name."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


def _describe(resources: dict[str, float] | None) -> str:
    return ", ".join(f"{key}={amount:g}" for key, amount in sorted((resources or {}).items())) or "no resources"


__all__ = ["MISSING_RAY", "NAMESPACE", "RayExecutor", "SessionActor", "actor_name", "actor_options", "connect"]
