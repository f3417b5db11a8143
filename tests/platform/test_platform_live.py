"""End to end: a real server process, the real CLI, real sessions; restart and recovery."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
from pathlib import Path

import httpx
import pytest
from platform_helpers import LiveServer, start_server, wait_for

TRAIN = textwrap.dedent("""
    import math, haneul
    print("first line of user code", flush=True)
    for i in range(10_000):
        haneul.report(step=i, loss=math.exp(-i / 3000), acc=1 - math.exp(-i / 2000))
    haneul.save("epoch-1", {"step": 5000})
    haneul.save("epoch-2", b"final weights")
    assert haneul.load("epoch-1") == {"step": 5000}
    print("trained", flush=True)
""")


def test_run_train_script_and_inspect_with_cli(live_server: LiveServer, tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(TRAIN)
    res = live_server.cli("run", "--follow", "--name", "toy", "--", "python", "train.py", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "first line of user code" in res.stdout and "trained" in res.stdout
    ps = json.loads(live_server.cli("ps", "--json").stdout)
    (s,) = ps["items"]
    assert s["name"] == "toy" and s["status"] == "done"
    assert s["metrics"]["loss"] == pytest.approx(__import__("math").exp(-9999 / 3000))
    keys = json.loads(live_server.cli("metrics", str(s["id"]), "--json").stdout)
    assert {k["key"]: k["count"] for k in keys} == {"acc": 10_000, "loss": 10_000}
    hist = json.loads(live_server.cli("metrics", str(s["id"]), "--key", "loss", "--json").stdout)
    assert hist["steps"] == list(range(10_000))
    table = live_server.cli("ps").stdout
    assert "toy" in table and "done" in table
    ck = json.loads(live_server.cli("checkpoints", str(s["id"]), "--json").stdout)
    assert [c["name"] for c in ck] == ["epoch-1", "epoch-2"]
    got = live_server.cli("checkpoints", str(s["id"]), "--get", "epoch-2", "-o", str(tmp_path / "w.bin"))
    assert got.returncode == 0 and (tmp_path / "w.bin").read_bytes() == b"final weights"
    png = tmp_path / "plot.png"
    assert live_server.cli("plot", str(s["id"]), "-o", str(png)).returncode == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    page = httpx.get(f"{live_server.url}/sessions/{s['id']}", headers=live_server.headers()).text
    assert "epoch-2" in page and "python train.py" in page
    assert "toy" in httpx.get(f"{live_server.url}/", headers=live_server.headers()).text


def test_cli_errors_are_one_line_and_non_zero(live_server: LiveServer, tmp_path: Path) -> None:
    for args, fragment in [(("logs", "424242"), "session 424242 not found"),
                           (("run", "--", "no-such-program-xyz"), "not found on PATH"),
                           (("stop", "424242"), "not found"),
                           (("run", "--env", "oops", "--", "true"), "KEY=VALUE")]:
        res = live_server.cli(*args, cwd=tmp_path)
        assert res.returncode == 1
        assert res.stderr.strip().count("\n") == 0 and fragment in res.stderr, res.stderr


def test_cli_without_server_says_how_to_start_it(tmp_path: Path) -> None:
    import subprocess

    from platform_helpers import BIN, free_port

    env = dict(os.environ, HANEUL_SERVER=f"http://127.0.0.1:{free_port()}")
    res = subprocess.run([str(BIN / "haneul"), "ps"], env=env, capture_output=True, text=True)
    assert res.returncode == 1 and "haneul server" in res.stderr and "Traceback" not in res.stderr


def test_second_server_on_same_home_is_refused(live_server: LiveServer) -> None:
    from platform_helpers import free_port

    res = live_server.cli("server", "--port", str(free_port()), timeout=60)
    assert res.returncode == 1 and "already uses HANEUL_HOME" in res.stderr
    busy = live_server.cli("server", "--port", str(live_server.port), timeout=60)
    assert busy.returncode == 1 and "pick another --port" in busy.stderr


@pytest.mark.slow
def test_server_restart_reattaches_running_sessions_and_marks_vanished_ones_lost(haneul_home: Path,
                                                                                 tmp_path: Path) -> None:
    server = start_server(haneul_home)
    script = tmp_path / "slow.py"
    script.write_text(textwrap.dedent("""
        import time, haneul, os
        print("pid", os.getpid(), flush=True)
        for i in range(40):
            haneul.report(step=i, x=float(i))
            time.sleep(0.1)
        haneul.flush()
        print("finished", flush=True)
    """))
    try:
        sid = int(server.cli("run", "--", "python", "slow.py", cwd=tmp_path).stdout)
        victim = int(server.cli("run", "--", "python", "-c", "import time; time.sleep(60)", cwd=tmp_path).stdout)
        wait_for(lambda: httpx.get(f"{server.url}/api/v1/sessions/{victim}", headers=server.headers()).json()["status"] == "running")
        wait_for(lambda: "pid" in server.cli("logs", str(sid)).stdout)
        victim_pid = httpx.get(f"{server.url}/api/v1/sessions/{victim}", headers=server.headers()).json()["pid"]
    finally:
        server.kill()  # the server dies; its sessions keep running
    os.killpg(victim_pid, signal.SIGKILL)  # this one dies while nobody watches
    time.sleep(0.5)
    server = start_server(haneul_home, port=server.port)
    try:
        lost = httpx.get(f"{server.url}/api/v1/sessions/{victim}", headers=server.headers()).json()
        assert lost["status"] == "lost" and "exit code" in lost["reason"]
        s = wait_for(lambda: (r := httpx.get(f"{server.url}/api/v1/sessions/{sid}", headers=server.headers()).json())["status"] != "running"
                     and r, timeout=60)
        assert s["status"] == "done" and s["exit_code"] == 0
        # points sent while the server was down were retried, none lost; delivery is at least once, so a
        # batch stored just before the kill, whose answer never came back, may be stored twice
        got = httpx.get(f"{server.url}/api/v1/sessions/{sid}/metrics/x", headers=server.headers()).json()
        assert sorted(set(got["steps"])) == list(range(40)) and got["total"] >= 40
        assert "finished" in server.cli("logs", str(sid)).stdout
    finally:
        server.stop()


def test_every_command_has_complete_help() -> None:
    import typer.main

    from haneul.cli.main import app

    root = typer.main.get_command(app)
    commands = []

    def walk(cmd, path: str) -> None:  # type: ignore[no-untyped-def]
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, f"{path} {name}")
        else:
            commands.append((path, cmd))

    walk(root, "haneul")
    platform_cmds = {p for p, _ in commands}
    for name in ("run", "ps", "logs", "stop", "metrics", "plot", "checkpoints", "server"):
        assert f"haneul {name}" in platform_cmds
    for path, cmd in commands:
        assert cmd.help and cmd.help.strip(), f"{path} has no help"
        for param in cmd.params:
            if param.name in ("help", "install_completion", "show_completion"):
                continue
            assert getattr(param, "help", None), f"{path} {param.param_type_name} {param.name} has no help"
