"""``haneul backup`` of a running server and ``haneul restore-backup`` into a fresh home (on SQLite; under
``make test-postgres`` from PostgreSQL into SQLite and into a new PostgreSQL database), compared
through the API."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
from platform_helpers import BIN, LiveServer, start_server, wait_for

from haneul.platform.testing import POSTGRES_URL_VAR, postgres_database

TRAIN = textwrap.dedent("""
    import math, pathlib, haneul
    haneul.config({"lr": 0.001, "opt": {"name": "adamw"}})
    for i in range(1000):
        haneul.report(step=i, loss=math.exp(-i / 500), acc=i / 1000)
    haneul.save("best", b"weights of the best epoch")
    pathlib.Path("preds.txt").write_text("가 1\\n나 0\\n")
    haneul.log_artifact("preds.txt")
""")

# reports until the test writes the file STOP: it is mid-run when the backup is taken
LIVE = textwrap.dedent("""
    import pathlib, sys, time, haneul
    i = 0
    while not pathlib.Path(sys.argv[1]).exists() and i < 3000:
        haneul.report(step=i, value=float(i))
        haneul.flush()
        i += 1
        time.sleep(0.01)
""")


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "haneul"), *args], env=env, capture_output=True, text=True, timeout=120)


def _home_env(home: Path) -> dict[str, str]:
    """The environment of a CLI working on ``home`` with its own SQLite database."""
    return dict(os.environ, HANEUL_HOME=str(home), HANEUL_DB_URL=f"sqlite:///{home / 'haneul.db'}")


def _one_line_error(res: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert res.returncode == 1, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], res.stderr


def _state(http: httpx.Client) -> dict[int, dict[str, Any]]:
    """Every session with its params, tags, metric histories, checkpoints (with the sha256 of what the
    download gives) and artifacts."""
    out = {}
    for s in http.get("/api/v1/sessions").json()["items"]:
        sid = s["id"]
        metrics = {}
        for key in http.get(f"/api/v1/sessions/{sid}/metrics").json():
            hist = http.get(f"/api/v1/sessions/{sid}/metrics/{key['key']}").json()
            metrics[key["key"]] = (hist["steps"], hist["values"])
        checkpoints = {}
        for ck in http.get(f"/api/v1/sessions/{sid}/checkpoints").json():
            body = http.get(f"/api/v1/sessions/{sid}/checkpoints/{ck['name']}").content
            checkpoints[ck["name"]] = (ck["sha256"], hashlib.sha256(body).hexdigest())
        artifacts = {a["path"]: http.get(f"/api/v1/sessions/{sid}/artifacts/{a['path']}").content
                     for a in http.get(f"/api/v1/sessions/{sid}/artifacts").json()}
        out[sid] = {"name": s["name"], "status": s["status"], "params": s["params"], "tags": s["tags"],
                    "metrics": metrics, "checkpoints": checkpoints, "artifacts": artifacts}
    return out


@pytest.mark.slow
def test_backup_of_a_running_server_restores_into_a_fresh_home(live_server: LiveServer, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    http = live_server.http(timeout=30)
    assert http.post("/api/v1/teams", json={"name": "nlp"}).status_code == 201
    assert http.post("/api/v1/users", json={"name": "alice", "team": "nlp"}).status_code == 201
    alice = http.post("/api/v1/users/alice/tokens", json={"name": "laptop"}).json()["token"]
    (tmp_path / "train.py").write_text(TRAIN)
    (tmp_path / "live.py").write_text(LIVE)
    res = live_server.cli("run", "--follow", "--name", "toy", "--tag", "model=bert", "--", "python", "train.py",
                          cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    live = int(live_server.cli("run", "--name", "live", "--", "python", "live.py", str(tmp_path / "stop"),
                                   cwd=tmp_path).stdout)
    wait_for(lambda: http.get(f"/api/v1/sessions/{live}/metrics").json(), timeout=60)

    dest = tmp_path / "backup"
    res = live_server.cli("backup", str(dest))
    assert res.returncode == 0, res.stderr
    assert "rows" in res.stdout and len(res.stdout.strip().splitlines()) == 1
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["tables"]["sessions"] == 2 and manifest["tables"]["users"] == 2
    assert manifest["revisions"]["alembic_version"] and manifest["missing_checkpoints"] == []
    assert "@" not in manifest["database"]  # its kind, never a URL with a password
    _one_line_error(live_server.cli("backup", str(dest)), "not an empty folder")
    # restore is refused while a server runs on the home
    _one_line_error(live_server.cli("restore-backup", str(dest)), "already uses HANEUL_HOME")

    (tmp_path / "stop").write_text("")
    wait_for(lambda: http.get(f"/api/v1/sessions/{live}").json()["status"] == "done", timeout=60)
    before = _state(http)
    live_server.stop()

    with contextlib.ExitStack() as stack:
        targets = {"sqlite": None}
        admin_url = os.environ.get(POSTGRES_URL_VAR)
        if admin_url:
            targets["postgresql"] = stack.enter_context(postgres_database(admin_url))
        for kind, db_url in targets.items():
            fresh = tmp_path / f"fresh-{kind}"
            env = dict(_home_env(fresh), **({"HANEUL_DB_URL": db_url} if db_url else {}))
            res = _cli(env, "restore-backup", str(dest))
            assert res.returncode == 0, res.stderr
            _one_line_error(_cli(env, "restore-backup", str(dest)), "already holds data")
            monkeypatch.setenv("HANEUL_DB_URL", env["HANEUL_DB_URL"])
            restored = start_server(fresh)
            try:
                _check_restored(restored, alice, before, live)
            finally:
                restored.stop()


def _check_restored(restored: LiveServer, alice: str, before: dict[int, dict[str, Any]], live: int) -> None:
    """The restored server answers as the original did (the live session: a prefix of its history)."""
    after = _state(restored.http(timeout=30))
    whoami = httpx.get(f"{restored.url}/api/v1/whoami", headers={"Authorization": f"Bearer {alice}"}).json()
    assert whoami["name"] == "alice" and whoami["teams"] == {"nlp": "member"}
    assert sorted(after) == sorted(before)
    toy = next(sid for sid in before if sid != live)
    assert after[toy] == before[toy]  # a finished session comes back whole
    assert before[toy]["params"] == {"lr": 0.001, "opt.name": "adamw"} and before[toy]["tags"] == {"model": "bert"}
    assert len(before[toy]["metrics"]["loss"][0]) == 1000
    ((digest, got),) = after[toy]["checkpoints"].values()
    assert digest == got and after[toy]["artifacts"] == {"preds.txt": "가 1\n나 0\n".encode()}
    # the session that was reporting comes back as it was at the snapshot: a prefix of its history
    steps, values = after[live]["metrics"]["value"]
    full_steps, full_values = before[live]["metrics"]["value"]
    assert 0 < len(steps) <= len(full_steps) and steps == full_steps[:len(steps)]
    assert values == full_values[:len(values)] and after[live]["name"] == "live"
    # new rows take fresh ids after the restored ones (PostgreSQL's sequences were moved past them)
    with restored.http(timeout=30) as http:
        assert http.post("/api/v1/teams", json={"name": "after-restore"}).status_code == 201


@pytest.fixture(scope="module")
def empty_backup(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A backup of a home whose database was migrated but never used."""
    from haneul.platform.db.engine import make_engine, migrate

    home = tmp_path_factory.mktemp("source")
    engine = make_engine(f"sqlite:///{home / 'haneul.db'}")
    migrate(engine)
    engine.dispose()
    dest = home.parent / "empty-backup"
    with pytest.MonkeyPatch.context() as monkeypatch:
        res = _here(monkeypatch, home, "backup", str(dest))
    assert res.returncode == 0, res.stderr
    return dest


def _here(monkeypatch: pytest.MonkeyPatch, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``haneul ARGS`` run in this process (faster than a new one) on ``home`` with its own SQLite database."""
    import contextlib
    import io

    from haneul.cli.main import run
    from haneul.settings import reload_settings

    for name, value in _home_env(home).items():
        if name.startswith("HANEUL_"):
            monkeypatch.setenv(name, value)
    reload_settings()
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(list(args))
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def test_backup_refuses_a_folder_that_is_not_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / "notes.txt").write_text("mine")
    _one_line_error(_here(monkeypatch, tmp_path / "home", "backup", str(tmp_path / "dest")), "not an empty folder")
    assert [p.name for p in (tmp_path / "dest").iterdir()] == ["notes.txt"]


def test_restore_refuses_an_incomplete_backup_and_writes_nothing(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "incomplete"
    src.mkdir()
    (src / "haneul.db").write_bytes(b"")
    home = tmp_path / "home"
    _one_line_error(_here(monkeypatch, home, "restore-backup", str(src)), "not a complete backup")
    assert not home.exists()


def test_restore_refuses_a_backup_newer_than_this_haneul(tmp_path: Path, empty_backup: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "newer"
    shutil.copytree(empty_backup, src)
    manifest = json.loads((src / "manifest.json").read_text())
    manifest["revisions"]["alembic_version"] = "0999"
    (src / "manifest.json").write_text(json.dumps(manifest))
    home = tmp_path / "home"
    _one_line_error(_here(monkeypatch, home, "restore-backup", str(src)), "newer than this haneul knows")
    assert not (home / "haneul.db").exists()


def test_a_restore_that_fails_midway_leaves_the_database_empty(tmp_path: Path, empty_backup: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "broken"
    shutil.copytree(empty_backup, src)
    with sqlite3.connect(src / "haneul.db") as db:  # foreign keys off: a tag of a session that is not there
        db.execute("INSERT INTO users (name, admin, disabled, created_at) VALUES ('bob', 0, 0, 0)")
        db.execute("INSERT INTO session_tags (session_id, key, value) VALUES (7, 'k', 'v')")
    home = tmp_path / "home"
    _one_line_error(_here(monkeypatch, home, "restore-backup", str(src)), "the database was left empty")
    with sqlite3.connect(home / "haneul.db") as db:
        assert db.execute("SELECT count(*) FROM users").fetchone() == (0,)
        assert db.execute("SELECT version_num FROM alembic_version").fetchone() is not None
    assert not (home / "artifacts").exists()
