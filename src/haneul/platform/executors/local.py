"""The local executor: each session is a subprocess in its own process group and working folder.

Sessions are started through ``launcher.py`` in a new session (``setsid``), so a server restart
does not take them down; the launcher writes the exit code to ``<workdir>/exit_code`` and samples
the session's system metrics (see ``launcher.py``). A process is
identified by pid *and* its kernel start time, so a recycled pid is never mistaken for a session.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from haneul.errors import InvalidInput
from haneul.platform.executors._base import Executor, Exit, Handle, LaunchSpec

LAUNCHER = Path(__file__).with_name("launcher.py")


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None when it does not exist."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # the command name (field 2) may contain spaces and parentheses: split after the last ')'
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie has ended
        return None
    return fields[19]


def sys_metrics_interval(env: dict[str, str]) -> float:
    """Seconds between system-metric samples for a session with environment ``env``
    (``HANEUL_SYS_METRICS_INTERVAL``, which ``haneul run --env`` can set per session; 0 turns it off)."""
    from haneul.settings import Settings

    raw = env.get("HANEUL_SYS_METRICS_INTERVAL")
    if raw is None or not raw.strip():
        return float(Settings.model_fields["sys_metrics_interval"].default)
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not (value >= 0 and value != float("inf")):
        raise InvalidInput(f"HANEUL_SYS_METRICS_INTERVAL={raw!r} is invalid; use seconds >= 0 (0 turns "
                           "system metrics off)")
    return value


class LocalExecutor(Executor):
    name = "local"

    def __init__(self) -> None:
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._attached: dict[int, tuple[Handle, Path]] = {}
        self._workdirs: dict[int, Path] = {}
        self._lock = threading.Lock()

    def start(self, spec: LaunchSpec) -> Handle:
        if not spec.command:
            raise InvalidInput("the command is empty; pass it after --, e.g. haneul run -- python train.py")
        spec.workdir.mkdir(parents=True, exist_ok=True)
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        exit_file = spec.workdir / "exit_code"
        exit_file.unlink(missing_ok=True)
        interval = sys_metrics_interval(spec.env)
        with open(spec.log_path, "ab", buffering=0) as log:
            proc = subprocess.Popen(
                [sys.executable, "-S", str(LAUNCHER), str(exit_file), "--sys-interval", str(interval),
                 "--", *spec.command],
                cwd=str(spec.cwd or spec.workdir),
                env=spec.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        with self._lock:
            self._procs[spec.session_id] = proc
            self._workdirs[spec.session_id] = spec.workdir
        return Handle(pid=proc.pid, pid_start=process_start_time(proc.pid) or "")

    def poll(self, session_id: int) -> Exit | None:
        with self._lock:
            proc = self._procs.get(session_id)
            attached = self._attached.get(session_id)
            workdir = self._workdirs.get(session_id)
        if proc is not None:
            if proc.poll() is None:
                return None
            with self._lock:
                self._procs.pop(session_id, None)
            return self._exit_from(workdir, fallback=proc.returncode)
        if attached is not None:
            handle, workdir = attached
            if process_start_time(handle.pid) == handle.pid_start:
                return None
            with self._lock:
                self._attached.pop(session_id, None)
            return self._exit_from(workdir, fallback=None)
        return Exit(None, "the executor has no record of this session")

    @staticmethod
    def _exit_from(workdir: Path | None, fallback: int | None) -> Exit:
        if workdir is not None:
            try:
                return Exit(int((workdir / "exit_code").read_text().strip()))
            except (OSError, ValueError):
                pass
        if fallback is not None and fallback < 0:
            return Exit(fallback, f"killed by signal {-fallback}")
        if fallback is not None:
            return Exit(fallback)
        return Exit(None, "the process ended without recording an exit code")

    def _pid(self, session_id: int) -> int | None:
        with self._lock:
            if session_id in self._procs:
                return self._procs[session_id].pid
            if session_id in self._attached:
                return self._attached[session_id][0].pid
        return None

    def stop(self, session_id: int, *, grace: float = 5.0) -> None:
        pid = self._pid(session_id)
        if pid is None:
            return
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        threading.Thread(target=self._kill_later, args=(session_id, pid, grace), daemon=True).start()

    def _kill_later(self, session_id: int, pid: int, grace: float) -> None:
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if self._pid(session_id) is None or self.poll_alive(session_id) is False:
                return
            time.sleep(0.05)
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def poll_alive(self, session_id: int) -> bool:
        with self._lock:
            proc = self._procs.get(session_id)
            attached = self._attached.get(session_id)
        if proc is not None:
            return proc.poll() is None
        if attached is not None:
            return process_start_time(attached[0].pid) == attached[0].pid_start
        return False

    def reattach(self, session_id: int, handle: Handle, workdir: Path) -> bool:
        if not handle.pid_start or process_start_time(handle.pid) != handle.pid_start:
            return False
        with self._lock:
            self._attached[session_id] = (handle, workdir)
            self._workdirs[session_id] = workdir
        return True
