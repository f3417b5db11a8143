"""Projects, params, tags, notes, git capture, archive and delete, and the 0001 -> 0002 migration."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from platform_helpers import LiveServer

from haneul.errors import InvalidInput
from haneul.platform.params import command_params, flatten_params

PY = sys.executable


def _run(api: TestClient, *args: str, code: str = "pass", **body: object) -> dict:
    res = api.post("/api/v1/sessions", json={"command": [PY, "-c", code, *args], **body})
    assert res.status_code == 201, res.text
    return res.json()


def _wait(api: TestClient, sid: int, statuses: tuple[str, ...] = ("done", "failed"), timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = api.get(f"/api/v1/sessions/{sid}").json()
        if s["status"] in statuses:
            return s
        time.sleep(0.05)
    raise AssertionError(f"session {sid} stayed {s['status']}")


def _token(api: TestClient, sid: int) -> str:
    import secrets

    from haneul.platform.db import Session
    from haneul.platform.service import _hash_token

    token = secrets.token_urlsafe(8)
    with api.app.state.platform.engine.begin() as conn:
        conn.execute(Session.__table__.update().where(Session.id == sid).values(token_hash=_hash_token(token)))
    return token


# ---------------------------------------------------------------------- params
def test_flatten_and_command_line_params() -> None:
    assert flatten_params({"opt": {"lr": 1e-3, "betas": [0.9, 0.99]}, "fp16": True, "name": "bert"}) == {
        "opt.lr": 1e-3, "opt.betas": "[0.9, 0.99]", "fp16": True, "name": "bert"}
    command = ["python", "train.py", "--lr", "3e-4", "--batch-size=32", "--model", "bert", "--fp16",
               "--warmup", "-5", "--verbose", "--seed", "7", "-x", "1"]
    assert command_params(command) == {"lr": 3e-4, "batch_size": 32, "model": "bert", "warmup": -5, "seed": 7}
    assert isinstance(command_params(["p", "--n", "3"])["n"], int)


def test_session_answers_carry_project_params_tags_notes_git_archived(api: TestClient, tmp_path: Path) -> None:
    s = _run(api, "--lr", "3e-4", "--layers=12", project="nsmc", tags={"model": "bert"},
             params={"opt": {"name": "adamw"}, "lr": 1e-3})
    assert s["project"] == "nsmc" and s["tags"] == {"model": "bert"} and s["notes"] == "" and s["archived"] is False
    # an explicit param wins over the command line's on the same key
    assert s["params"] == {"layers": 12, "lr": 1e-3, "opt.name": "adamw"}
    assert s["git"] is None  # no cwd given
    listed = api.get("/api/v1/sessions").json()["items"][0]
    assert {k: listed[k] for k in ("project", "params", "tags", "notes", "git", "archived")} == {
        "project": "nsmc", "params": s["params"], "tags": {"model": "bert"}, "notes": "", "git": None,
        "archived": False}
    # the default project is the name of the code folder
    folder = tmp_path / "my-exp"
    folder.mkdir()
    assert _run(api, cwd=str(folder))["project"] == "my-exp"
    assert _run(api)["project"] == "default"
    bad = api.post("/api/v1/sessions", json={"command": [PY, "-c", "pass"], "project": "a b"})
    assert bad.status_code == 400 and "'a b'" in bad.json()["error"]["message"]


def test_config_inside_a_session_wins_over_the_command_line(live_server: LiveServer, tmp_path: Path) -> None:
    import httpx

    (tmp_path / "train.py").write_text(textwrap.dedent("""
        import argparse, haneul
        ap = argparse.ArgumentParser()
        ap.add_argument("--lr", type=float)
        ap.add_argument("--batch-size", type=int, default=16)
        haneul.config(ap.parse_args())
        haneul.config({"opt": {"lr": 1e-3, "name": "adamw"}, "lr": 0.5})
    """))
    out = live_server.cli("run", "-f", "--", PY, "train.py", "--lr", "3e-4", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    s = httpx.get(f"{live_server.url}/api/v1/sessions", headers=live_server.headers()).json()["items"][0]
    assert s["params"] == {"batch_size": 16, "lr": 0.5, "opt.lr": 1e-3, "opt.name": "adamw"}
    # writing params needs a token: the session's own or a member's of its team
    res = httpx.post(f"{live_server.url}/api/v1/sessions/{s['id']}/params", json={"params": {"lr": 1}})
    assert res.status_code == 401


def test_config_outside_a_session_is_kept_locally(haneul_home: Path) -> None:
    import haneul

    assert haneul.config(argparse.Namespace(lr=0.1, model="bert")) == {"lr": 0.1, "model": "bert"}
    haneul.config({"opt": {"lr": 0.2}, "lr": 0.3})
    stored = json.loads((haneul_home / "local" / "default" / "params.json").read_text())
    assert stored == {"lr": 0.3, "model": "bert", "opt.lr": 0.2}
    with pytest.raises(InvalidInput, match="finite"):
        haneul.config({"lr": float("nan")})


# ---------------------------------------------------------------------- tags and notes
def test_patch_notes_and_tags_and_the_page_escapes_notes(api: TestClient) -> None:
    sid = _run(api, tags={"model": "bert", "stage": "dev"})["id"]
    notes = "# Result\n- **best** so far\n- `lr` sweep\n<script>alert(1)</script>"
    res = api.patch(f"/api/v1/sessions/{sid}", json={"notes": notes, "tags": {"stage": None, "data": "nsmc"}})
    assert res.status_code == 200, res.text
    assert res.json()["notes"] == notes and res.json()["tags"] == {"data": "nsmc", "model": "bert"}
    page = api.get(f"/sessions/{sid}").text
    assert "<h3>Result</h3>" in page and "<li><strong>best</strong> so far</li>" in page
    assert "<code>lr</code>" in page
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert api.patch("/api/v1/sessions/999", json={"notes": "x"}).status_code == 404


# ---------------------------------------------------------------------- git
def _git_repo(folder: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(folder), "-c", "user.email=t@t", "-c", "user.name=t", *args],
                       check=True, capture_output=True)

    folder.mkdir()
    git("init", "-q", "-b", "exp")
    (folder / "train.py").write_text("print('v1')\n")
    git("add", "train.py")
    git("commit", "-q", "-m", "one")


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git CLI")
def test_git_commit_branch_dirty_and_diff_are_captured(api: TestClient, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _git_repo(repo)
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    clean = _run(api, cwd=str(repo))
    assert clean["git"] == {"commit": commit, "branch": "exp", "dirty": False}
    assert not (Path(clean["workdir"]) / "git.diff").exists()
    (repo / "train.py").write_text("print('v2')\n")
    dirty = _run(api, cwd=str(repo))
    assert dirty["git"] == {"commit": commit, "branch": "exp", "dirty": True}
    diff = (Path(dirty["workdir"]) / "git.diff").read_text()
    assert "-print('v1')" in diff and "+print('v2')" in diff
    assert f"<code>{commit[:12]}</code>" in api.get(f"/sessions/{dirty['id']}").text


def test_no_git_on_the_machine_captures_nothing(api: TestClient, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    repo = tmp_path / "repo"
    repo.mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert _run(api, cwd=str(repo))["git"] is None


# ---------------------------------------------------------------------- projects
def test_projects_list_and_pages(api: TestClient) -> None:
    for project in ("nsmc", "nsmc", "klue"):
        _wait(api, _run(api, project=project)["id"])
    projects = api.get("/api/v1/projects").json()
    assert sorted((p["project"], p["sessions"], p["active"]) for p in projects) == [("klue", 1, 0), ("nsmc", 2, 0)]
    assert projects[0]["project"] == "klue"  # the latest activity first
    page = api.get("/projects").text
    assert '<a href="/projects">Projects</a>' in page
    assert '<tr data-project="nsmc">' in page and "<td>2</td>" in page
    project_page = api.get("/projects/klue").text
    assert "Project klue" in project_page and "1 sessions" in project_page
    assert api.get("/api/v1/sessions", params={"project": "nsmc"}).json()["total"] == 2


# ---------------------------------------------------------------------- archive and delete
def test_archive_restore_and_delete(api: TestClient) -> None:
    keep = _run(api)
    gone = _run(api)
    _wait(api, keep["id"])
    assert _wait(api, gone["id"])["status"] == "done"
    token = _token(api, gone["id"])
    res = api.put(f"/api/v1/sessions/{gone['id']}/checkpoints/ckpt", params={"kind": "bytes"}, content=b"x" * 10,
                  headers={"Authorization": f"Bearer {token}"})
    assert res.status_code in (200, 201), res.text
    assert api.post(f"/api/v1/sessions/{keep['id']}/archive").json()["archived"] is True
    assert [i["id"] for i in api.get("/api/v1/sessions").json()["items"]] == [gone["id"]]
    assert [i["id"] for i in api.get("/api/v1/sessions", params={"archived": 1}).json()["items"]] == [keep["id"]]
    assert api.get("/api/v1/sessions", params={"archived": "all"}).json()["total"] == 2
    assert api.get("/api/v1/sessions", params={"archived": "maybe"}).status_code == 400
    assert api.post(f"/api/v1/sessions/{keep['id']}/restore").json()["archived"] is False
    assert api.get("/api/v1/sessions").json()["total"] == 2

    platform = api.app.state.platform
    ckpt_dir = platform.settings.artifacts / "sessions" / str(gone["id"])
    assert ckpt_dir.exists() and Path(gone["workdir"]).exists()
    assert api.delete(f"/api/v1/sessions/{gone['id']}").json() == {"id": gone["id"], "deleted": True}
    assert api.get(f"/api/v1/sessions/{gone['id']}").status_code == 404
    assert not ckpt_dir.exists() and not Path(gone["workdir"]).exists()
    assert api.get("/api/v1/sessions").json()["total"] == 1


def test_delete_refuses_a_running_session(api: TestClient) -> None:
    s = _run(api, code="import time; time.sleep(30)")
    _wait(api, s["id"], ("running",))
    res = api.delete(f"/api/v1/sessions/{s['id']}")
    assert res.status_code == 409
    assert res.json()["error"]["message"] == (f"session {s['id']} is running; stop it first "
                                              f"(haneul stop {s['id']}), then delete it")
    api.post(f"/api/v1/sessions/{s['id']}/stop")
    _wait(api, s["id"], ("stopped",))
    assert api.delete(f"/api/v1/sessions/{s['id']}").status_code == 200


def test_cli_project_tags_archive_restore_delete(live_server: LiveServer, tmp_path: Path) -> None:
    run = live_server.cli("run", "--project", "nsmc", "--tag", "model=bert", "--tag", "seed=1", "--json", "--",
                          PY, "-c", "pass", "--lr", "0.1", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    s = json.loads(run.stdout)
    assert s["project"] == "nsmc" and s["tags"] == {"model": "bert", "seed": "1"} and s["params"] == {"lr": 0.1}
    sid = str(s["id"])
    bad = live_server.cli("run", "--tag", "oops", "--", PY, "-c", "pass", cwd=tmp_path)
    assert bad.returncode == 1 and "--tag 'oops' must look like KEY=VALUE" in bad.stderr
    assert live_server.cli("archive", sid).stdout.strip() == f"session {sid}: archived"
    assert "0 sessions" in live_server.cli("ps").stdout
    assert sid in live_server.cli("ps", "--archived").stdout
    assert live_server.cli("restore", sid).stdout.strip() == f"session {sid}: restored"
    refused = live_server.cli("delete", sid)
    assert refused.returncode == 1 and "add --yes to confirm" in refused.stderr
    deadline = time.monotonic() + 30
    while json.loads(live_server.cli("ps", "--json").stdout)["items"][0]["status"] != "done":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert live_server.cli("delete", sid, "--yes").stdout.strip() == f"session {sid}: deleted"
    assert "0 sessions" in live_server.cli("ps").stdout


# ---------------------------------------------------------------------- migration
def test_a_database_at_0001_upgrades_and_keeps_its_sessions(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import inspect, text

    from haneul.platform.db import make_engine, migrate
    from haneul.platform.db.engine import MIGRATIONS

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.execute(text(
            "INSERT INTO sessions (name, owner, status, command, env, cpus, gpus, memory, priority, executor, "
            "token_hash, created_at) VALUES ('old', 'kim', 'done', '[\"python\"]', '{}', 1, 0, 0, 0, 'local', 'x', 1.0)"))
    assert "project" not in {c["name"] for c in inspect(engine).get_columns("sessions")}
    migrate(engine)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT name, owner, project, notes, archived, git FROM sessions")).one()
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    assert tuple(row) == ("old", "kim", "default", "", 0, None)
    assert version == sorted(p.stem[:4] for p in (MIGRATIONS / "versions").glob("0*.py"))[-1]  # the newest
    assert {"session_params", "session_tags", "saved_views"} <= set(inspect(engine).get_table_names())
    indexes = {i["name"]: i["column_names"] for i in inspect(engine).get_indexes("session_params")}
    assert indexes["ix_session_params_key_num"] == ["key", "num"]
    engine.dispose()


# ---------------------------------------------------------------------- browser
@pytest.mark.browser
def test_filter_box_narrows_the_table(live_server: LiveServer, tmp_path: Path, page) -> None:  # type: ignore[no-untyped-def]
    ids = {}
    for project, lr, model in (("nsmc", "0.1", "bert"), ("nsmc", "0.0001", "bert"), ("klue", "0.0001", "gpt")):
        out = live_server.cli("run", "--project", project, "--tag", f"model={model}", "--", PY, "-c", "pass",
                              "--lr", lr, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        ids[(project, lr)] = out.stdout.strip()
    page.goto(live_server.login_url("/"))
    page.wait_for_selector(f"tr[data-id='{ids[('klue', '0.0001')]}']")
    assert page.locator("#sessions tbody tr").count() == 3
    page.fill("#filter", 'params.lr < 1e-3 and tags.model = "bert"')
    page.click("#filter-btn")
    page.wait_for_load_state()
    rows = page.locator("#sessions tbody tr")
    assert rows.count() == 1 and rows.first.get_attribute("data-id") == ids[("nsmc", "0.0001")]
    assert page.text_content("#total") == "1 sessions"
    # after a refresh tick the live rows still honour the filter
    page.wait_for_timeout(2500)
    assert page.locator("#sessions tbody tr").count() == 1
    page.goto(live_server.login_url("/projects"))
    assert page.locator("#projects tbody tr").count() == 2
