from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from conftest import wait_for
from haneul.platform.executors import Handle, LaunchSpec, get_executor
from haneul.platform.executors.local import process_start_time


def _spec(tmp_path: Path, code: str, sid: int = 1) -> LaunchSpec:
    work = tmp_path / f"s{sid}"
    return LaunchSpec(sid, [sys.executable, "-c", code], dict(os.environ), work, work / "output.log")


def test_exit_code_log_and_exit_file(tmp_path: Path) -> None:
    ex = get_executor("local")
    spec = _spec(tmp_path, "import sys; print('out'); print('err', file=sys.stderr); sys.exit(7)")
    handle = ex.start(spec)
    assert handle.pid > 0 and handle.pid_start
    ended = wait_for(lambda: ex.poll(1))
    assert ended.code == 7
    assert sorted(spec.log_path.read_text().split()) == ["err", "out"]
    assert (spec.workdir / "exit_code").read_text() == "7"


def test_stop_kills_the_whole_process_group(tmp_path: Path) -> None:
    ex = get_executor("local")
    pidfile = tmp_path / "grandchild.pid"
    code = (
        "import subprocess, sys, time\n"
        f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(120)\n"
    )
    ex.start(_spec(tmp_path, code))
    wait_for(lambda: pidfile.exists() and pidfile.read_text())
    grandchild = int(pidfile.read_text())
    ex.stop(1, grace=1.0)
    assert wait_for(lambda: ex.poll(1), timeout=10) is not None
    wait_for(lambda: process_start_time(grandchild) is None, timeout=10)


def test_stop_escalates_to_sigkill_when_sigterm_is_ignored(tmp_path: Path) -> None:
    ex = get_executor("local")
    code = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\ntime.sleep(120)"
    spec = _spec(tmp_path, code)
    ex.start(spec)
    wait_for(lambda: "ready" in spec.log_path.read_text())
    t0 = time.monotonic()
    ex.stop(1, grace=0.5)
    wait_for(lambda: ex.poll(1), timeout=10)
    assert time.monotonic() - t0 < 8


def test_reattach_checks_pid_start_time(tmp_path: Path) -> None:
    first = get_executor("local")
    spec = _spec(tmp_path, "import time; time.sleep(1.0)")
    handle = first.start(spec)
    second = get_executor("local")  # a new server process knows only the database record
    assert second.reattach(1, Handle(handle.pid, "1"), spec.workdir) is False  # pid reused by another process
    assert second.reattach(1, handle, spec.workdir) is True
    assert second.poll(1) is None
    ended = wait_for(lambda: second.poll(1) or (first.poll(1) and None), timeout=10)
    assert ended.code == 0  # read from the exit file the launcher wrote


def test_missing_program_is_recorded_as_127(tmp_path: Path) -> None:
    ex = get_executor("local")
    work = tmp_path / "w"
    spec = LaunchSpec(1, ["/nonexistent/program"], dict(os.environ), work, work / "output.log")
    ex.start(spec)
    assert wait_for(lambda: ex.poll(1)).code == 127
    assert "cannot start" in spec.log_path.read_text()
