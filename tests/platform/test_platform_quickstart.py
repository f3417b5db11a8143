"""The README's quick start, run as written from a plain shell (no virtual environment active)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

from platform_helpers import BIN, LiveServer

REPO = Path(__file__).resolve().parents[2]


def _readme_command(program: str) -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    quick = text.split("## Quick start", 1)[1].split("```", 2)[1]
    (line,) = [ln for ln in quick.splitlines() if ln.startswith(f".venv/bin/haneul {program}")]
    return shlex.split(line.split("#", 1)[0])


def test_quick_start_runs_as_written(live_server: LiveServer) -> None:
    run = _readme_command("run")
    assert run[-1] == "examples/quickstart/train.py" and (REPO / run[-1]).is_file()
    env = {k: v for k, v in live_server.env().items() if k not in ("VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONPATH")}
    env["PATH"] = "/usr/bin:/bin"  # the venv is not activated: `python` must still find haneul
    argv = [str(BIN / "haneul"), *run[1:], "--epochs", "3"]
    res = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert re.search(r"done: \d+ steps, validation accuracy 0\.\d+", res.stdout)
    page = re.search(rf"{re.escape(live_server.url)}/sessions/(\d+)", res.stderr)
    assert page, res.stderr

    ps = subprocess.run([str(BIN / "haneul"), *_readme_command("ps")[1:], "--json"], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=60)
    (session,) = json.loads(ps.stdout)["items"]
    assert session["id"] == int(page.group(1)) and session["status"] == "done"
    assert session["metrics"]["val_acc"] > 0.8 and session["metrics"]["epoch"] == 2
    table = subprocess.run([str(BIN / "haneul"), "ps"], cwd=REPO, env=env, capture_output=True, text=True)
    assert f"{live_server.url}/sessions/" in table.stderr


def test_ps_says_why_a_session_failed(live_server: LiveServer, tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("raise SystemExit(3)\n")
    assert live_server.cli("run", "-f", "--", "python", "bad.py", cwd=tmp_path).returncode == 1
    table = live_server.cli("ps").stdout
    assert "why" in table and "exit 3" in table


def test_server_banner_names_the_real_address_and_warns_off_loopback(tmp_path: Path) -> None:
    from haneul.platform.accounts import Accounts
    from haneul.platform.service import Platform
    from haneul.settings import Settings

    platform = Platform(Settings(home=tmp_path / "h"))
    platform.start()  # the schema, then a user who can log in from elsewhere: other interfaces are allowed
    Accounts(platform.engine).create_user("kim", password="long-enough", team="local")
    platform.close()
    env = dict(os.environ, HANEUL_HOME=str(tmp_path / "h"))
    proc = subprocess.Popen([str(BIN / "haneul"), "server", "--host", "0.0.0.0", "--port", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = proc.stdout.readline()  # type: ignore[union-attr]
        warning = proc.stderr.readline()  # type: ignore[union-attr]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    match = re.search(r"listening on 0\.0\.0\.0:(\d+); open http://127\.0\.0\.1:(\d+)", banner)
    assert match and match.group(1) == match.group(2) and int(match.group(1)) > 0, banner
    assert "warning: listening on 0.0.0.0, reachable from other machines" in warning and "HTTPS" in warning
