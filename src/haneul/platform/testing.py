"""Test support: a live ``haneul server`` subprocess, polling, and the conformance suite every
executor must pass (local today, a Ray cluster executor next).

Subclass :class:`ExecutorConformance` in a test module and implement ``make_executor``; pytest then
runs every check against that executor::

    class TestLocalExecutor(ExecutorConformance):
        def make_executor(self):
            return get_executor("local")
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from haneul.platform.executors import Executor, Handle, LaunchSpec
from haneul.platform.executors.local import process_start_time

BIN = Path(sys.executable).parent


def auth_headers(url: str) -> dict[str, str]:
    """The ``Authorization`` header the CLI would send to ``url`` (on a test's own loopback server: the
    local admin's token from HANEUL_HOME)."""
    from haneul.platform.credentials import find_token

    token = find_token(url)
    return {"Authorization": f"Bearer {token}"} if token else {}


def as_admin(client: Any) -> Any:
    """Give a started ``TestClient`` of a haneul app the local admin's token (written when it started)."""
    from haneul.platform.credentials import local_admin_token

    home = client.app.state.platform.settings.home
    client.headers["Authorization"] = f"Bearer {local_admin_token(home)}"
    return client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    url: str
    home: Path
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def token(self) -> str:
        """The local admin's token, which the server wrote on its first start."""
        from haneul.platform.credentials import local_admin_token

        token = local_admin_token(self.home)
        if token is None:
            raise RuntimeError(f"the server wrote no admin token in {self.home}")
        return token

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def http(self, **kwargs: Any) -> httpx.Client:
        """An HTTP client of this server carrying the local admin's token."""
        return httpx.Client(base_url=self.url, headers=self.headers(), **kwargs)

    def login_url(self, path: str = "/") -> str:
        """A URL that logs a browser in as the local admin and lands on ``path``."""
        sep = "&" if "?" in path else "?"
        return f"{self.url}{path}{sep}token={self.token}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(HANEUL_HOME=str(self.home), HANEUL_SERVER=self.url, HANEUL_PORT=str(self.port))
        env.pop("HANEUL_SESSION", None)
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        return env

    def cli(self, *args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "haneul"), *args], env=self.env(), cwd=cwd, capture_output=True,
                              text=True, timeout=timeout)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def start_server(home: Path, port: int | None = None) -> LiveServer:
    port = port or free_port()
    env = dict(os.environ, HANEUL_HOME=str(home), HANEUL_PORT=str(port))
    env.pop("HANEUL_SESSION", None)
    log = home / f"server-{port}-{time.time_ns()}.log"
    home.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as fh:
        proc = subprocess.Popen([str(BIN / "haneul"), "server"], env=env, stdout=fh, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    server = LiveServer(url, home, port, proc, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()}")
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"server did not start: {log.read_text()}")


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


#: names a PostgreSQL server for the tests (``scripts/with-postgres.sh`` starts one and sets it)
POSTGRES_URL_VAR = "HANEUL_TEST_POSTGRES_URL"


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A new, empty database on the PostgreSQL server of ``admin_url`` (e.g.
    ``postgresql+psycopg://haneul@127.0.0.1:5432/postgres``, a role that may create databases);
    yields its URL and drops it afterwards, closing whatever connections are left."""
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"haneul_test_{uuid.uuid4().hex[:12]}"
    # no pool: a test that restarted the server must not leave the drop a dead pooled connection
    from sqlalchemy.pool import NullPool

    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


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
