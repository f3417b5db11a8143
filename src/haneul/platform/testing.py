"""Conformance suite every executor must pass (local today, a Ray cluster executor next).

Subclass :class:`ExecutorConformance` in a test module and implement ``make_executor``; pytest then
runs every check against that executor::

    class TestLocalExecutor(ExecutorConformance):
        def make_executor(self):
            return get_executor("local")
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from haneul.platform.executors import Executor, Handle, LaunchSpec
from haneul.platform.executors.local import process_start_time


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def python_spec(tmp_path: Path, code: str, sid: int = 1) -> LaunchSpec:
    work = tmp_path / f"s{sid}"
    return LaunchSpec(sid, [sys.executable, "-c", code], dict(os.environ), work, work / "output.log")


class ExecutorConformance:
    def make_executor(self) -> Executor:
        raise NotImplementedError

    def test_exit_code_and_log(self, tmp_path: Path) -> None:
        ex = self.make_executor()
        spec = python_spec(tmp_path, "import sys; print('out'); print('err', file=sys.stderr); sys.exit(7)")
        handle = ex.start(spec)
        assert handle.pid > 0 and handle.pid_start
        ended = wait_for(lambda: ex.poll(1))
        assert ended.code == 7
        assert sorted(spec.log_path.read_text().split()) == ["err", "out"]

    def test_environment_and_working_directory(self, tmp_path: Path) -> None:
        ex = self.make_executor()
        spec = python_spec(tmp_path, "import os; print(os.getcwd()); print(os.environ['HANEUL_PROBE'])")
        spec.env["HANEUL_PROBE"] = "visible"
        ex.start(spec)
        assert wait_for(lambda: ex.poll(1)).code == 0
        assert spec.log_path.read_text().split() == [str(spec.workdir), "visible"]

    def test_stop_kills_the_whole_process_group(self, tmp_path: Path) -> None:
        ex = self.make_executor()
        pidfile = tmp_path / "grandchild.pid"
        code = (
            "import subprocess, sys, time\n"
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
            f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
            "time.sleep(120)\n"
        )
        ex.start(python_spec(tmp_path, code))
        wait_for(lambda: pidfile.exists() and pidfile.read_text())
        grandchild = int(pidfile.read_text())
        ex.stop(1, grace=1.0)
        assert wait_for(lambda: ex.poll(1), timeout=10) is not None
        wait_for(lambda: process_start_time(grandchild) is None, timeout=10)

    def test_stop_escalates_when_sigterm_is_ignored(self, tmp_path: Path) -> None:
        ex = self.make_executor()
        code = ("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                "print('ready', flush=True)\ntime.sleep(120)")
        spec = python_spec(tmp_path, code)
        ex.start(spec)
        wait_for(lambda: "ready" in spec.log_path.read_text())
        t0 = time.monotonic()
        ex.stop(1, grace=0.5)
        wait_for(lambda: ex.poll(1), timeout=10)
        assert time.monotonic() - t0 < 8

    def test_reattach_after_restart(self, tmp_path: Path) -> None:
        first = self.make_executor()
        spec = python_spec(tmp_path, "import time; time.sleep(1.0)")
        handle = first.start(spec)
        second = self.make_executor()  # a new server process knows only the database record
        assert second.reattach(1, Handle(handle.pid, "1"), spec.workdir) is False  # a recycled pid
        assert second.reattach(1, handle, spec.workdir) is True
        assert second.poll(1) is None
        ended = wait_for(lambda: second.poll(1) or (first.poll(1) and None), timeout=10)
        assert ended.code == 0

    def test_missing_program_exits_127(self, tmp_path: Path) -> None:
        ex = self.make_executor()
        work = tmp_path / "w"
        spec = LaunchSpec(1, ["/nonexistent/program"], dict(os.environ), work, work / "output.log")
        ex.start(spec)
        assert wait_for(lambda: ex.poll(1)).code == 127
        assert "cannot start" in spec.log_path.read_text()


__all__ = ["ExecutorConformance", "python_spec", "wait_for"]
