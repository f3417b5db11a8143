"""Accounts and access: the local admin, tokens stored hashed, teams that cannot see each other,
roles that may only read, session tokens, browser logins with CSRF, the CLI's login."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from platform_helpers import BIN, LiveServer, wait_for
from sqlalchemy import text

from haneul.platform.credentials import admin_token_path, credentials_path, local_admin_token
from haneul.settings import Settings

PY = sys.executable


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _user(api: Any, name: str, team: str | None, role: str = "member", password: str | None = None) -> dict:
    res = api.post("/api/v1/users", json={"name": name, "team": team, "role": role, "password": password})
    assert res.status_code == 201, res.text
    token = api.post(f"/api/v1/users/{name}/tokens", json={"name": "test"}).json()["token"]
    return _bearer(token)


@pytest.fixture
def live_api(live_server: LiveServer) -> Iterator[httpx.Client]:
    """The local admin's client of a real server (sessions report back to it)."""
    with live_server.http(timeout=30) as client:
        yield client


def _teams(api: Any) -> dict[str, dict[str, str]]:
    """Teams red and blue: a (red member), b (blue member), v (red viewer)."""
    for team in ("red", "blue"):
        assert api.post("/api/v1/teams", json={"name": team}).status_code == 201
    return {"a": _user(api, "a", "red"), "b": _user(api, "b", "blue"), "v": _user(api, "v", "red", "viewer")}


@pytest.fixture
def teams(api: TestClient) -> dict[str, dict[str, str]]:
    return _teams(api)


def _wait(api: Any, sid: int, headers: dict[str, str]) -> dict:
    return wait_for(lambda: (s := api.get(f"/api/v1/sessions/{sid}", headers=headers).json())["status"]
                    not in ("queued", "running") and s, timeout=60)


def test_first_start_makes_the_local_admin_and_a_0600_token_file(settings: Settings, api: TestClient) -> None:
    path = admin_token_path(settings.home)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    me = api.get("/api/v1/whoami").json()
    assert me == {"name": "admin", "admin": True, "teams": {"local": "owner"}, "default_team": "local",
                  "session": None}
    token = local_admin_token(settings.home)
    # the token is stored as an argon2id hash, never in clear
    engine = api.app.state.platform.engine
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT key, secret_hash FROM api_tokens")).all()
        rows = [tuple(r) for table in ("api_tokens", "users") for r in conn.execute(text(f"SELECT * FROM {table}"))]
    assert len(stored) == 1 and stored[0].secret_hash.startswith("$argon2id$")
    secret = token.split("_", 2)[2]
    assert secret not in repr(rows)
    if engine.dialect.name == "sqlite":  # nor anywhere in the file, free pages included
        assert secret not in (settings.home / "haneul.db").read_bytes().decode("latin-1")
    # a second start of the same home makes no second admin
    assert api.app.state.accounts.ensure_local_admin(settings.home) is None


def test_no_token_is_401_on_the_api_and_the_login_page_for_browsers(api: TestClient) -> None:
    bare = {"Authorization": ""}
    res = api.get("/api/v1/sessions", headers=bare)
    assert res.status_code == 401 and "haneul login" in res.json()["error"]["message"]
    assert res.headers["www-authenticate"].startswith("Bearer")
    assert api.get("/api/v1/health", headers=bare).status_code == 200
    page = api.get("/sessions/1?x=1", headers=bare, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login?next=%2Fsessions%2F1%3Fx%3D1"
    assert "Log in to haneul" in api.get("/login", headers=bare).text
    wrong = api.get("/api/v1/sessions", headers=_bearer("hn_0000_nope"))
    assert wrong.status_code == 401 and "not valid" in wrong.json()["error"]["message"]


def test_another_teams_session_is_404_everywhere_and_viewers_only_read(live_api: httpx.Client) -> None:
    api = live_api
    teams = _teams(api)
    a, b, v = teams["a"], teams["b"], teams["v"]
    code = "import haneul; haneul.report(step=0, loss=1.0); haneul.save('best', b'w'); print('secret log')"
    made = api.post("/api/v1/sessions", json={"command": [PY, "-c", code], "name": "red-run"}, headers=a)
    assert made.status_code == 201 and made.json()["owner"] == "a"
    sid = made.json()["id"]
    assert _wait(api, sid, a)["status"] == "done"
    for path in (f"/api/v1/sessions/{sid}", f"/api/v1/sessions/{sid}/logs", f"/api/v1/sessions/{sid}/metrics",
                 f"/api/v1/sessions/{sid}/metrics/loss", f"/api/v1/sessions/{sid}/checkpoints",
                 f"/api/v1/sessions/{sid}/checkpoints/best", f"/api/v1/sessions/{sid}/artifacts"):
        assert api.get(path, headers=a).status_code == 200, path
        assert api.get(path, headers=v).status_code == 200, path
        hidden = api.get(path, headers=b)
        assert hidden.status_code == 404 and hidden.json()["error"]["message"] == f"session {sid} not found", path
    # the same answer as a session that does not exist: nothing is leaked
    assert api.get("/api/v1/sessions/999999", headers=b).json()["error"]["message"] == "session 999999 not found"
    assert api.get("/api/v1/sessions", headers=b).json()["total"] == 0
    assert [s["name"] for s in api.get("/api/v1/sessions", headers=v).json()["items"]] == ["red-run"]
    assert api.get("/api/v1/projects", headers=b).json() == []
    assert api.post(f"/api/v1/sessions/{sid}/archive", headers=b).status_code == 404
    # a viewer reads but may not change
    denied = api.post(f"/api/v1/sessions/{sid}/archive", headers=v)
    assert denied.status_code == 403 and "may only read" in denied.json()["error"]["message"]
    assert api.delete(f"/api/v1/sessions/{sid}", headers=v).status_code == 403
    assert api.post("/api/v1/sessions", json={"command": [PY, "-c", "1"]}, headers=v).status_code == 403
    # pages too: b's list does not show it and its page is a 404 page
    assert "red-run" not in api.get("/", headers=b).text
    assert api.get(f"/sessions/{sid}", headers=b).status_code == 404
    assert api.get(f"/compare?ids={sid}", headers=b).status_code == 404
    assert "red-run" in api.get("/", headers=v).text
    # the admin sees every team's
    assert api.get(f"/api/v1/sessions/{sid}").status_code == 200


def test_a_session_token_reads_its_team_and_writes_only_itself(live_api: httpx.Client) -> None:
    api = live_api
    teams = _teams(api)
    a, b = teams["a"], teams["b"]
    red = api.post("/api/v1/sessions", json={"command": [PY, "-c", "1"]}, headers=a).json()["id"]
    blue = api.post("/api/v1/sessions", json={"command": [PY, "-c", "1"]}, headers=b).json()["id"]
    code = f"""
import json, os, httpx
url, h = os.environ["HANEUL_SERVER"], {{"Authorization": "Bearer " + os.environ["HANEUL_TOKEN"]}}
me = int(os.environ["HANEUL_SESSION"])
body = {{"metrics": {{"x": {{"steps": [0], "values": [1]}}}}}}
print(json.dumps({{
  "whoami": httpx.get(url + "/api/v1/whoami", headers=h).json()["session"],
  "own": httpx.post(url + f"/api/v1/sessions/{{me}}/metrics", json=body, headers=h).status_code,
  "team_read": httpx.get(url + "/api/v1/sessions/{red}", headers=h).status_code,
  "team_write": httpx.post(url + "/api/v1/sessions/{red}/metrics", json=body, headers=h).status_code,
  "other_team": httpx.get(url + "/api/v1/sessions/{blue}", headers=h).status_code,
  "stop_sibling": httpx.post(url + "/api/v1/sessions/{red}/stop", headers=h).status_code,
}}))
"""
    sid = api.post("/api/v1/sessions", json={"command": [PY, "-c", code]}, headers=a).json()["id"]
    assert _wait(api, sid, a)["status"] == "done"
    got = json.loads(api.get(f"/api/v1/sessions/{sid}/logs", headers=a).json()["lines"][-1])
    assert got == {"whoami": sid, "own": 200, "team_read": 200, "team_write": 403, "other_team": 404,
                   "stop_sibling": 403}


def test_tokens_revoke_expire_and_disabled_users(api: TestClient, teams: dict[str, dict[str, str]]) -> None:
    made = api.post("/api/v1/users/a/tokens", json={"name": "laptop", "expires_in": 1}).json()
    assert api.get("/api/v1/whoami", headers=_bearer(made["token"])).json()["name"] == "a"
    keys = [t["key"] for t in api.get("/api/v1/users/a/tokens").json()]
    assert made["key"] in keys and "token" not in api.get("/api/v1/users/a/tokens").text
    api.app.state.accounts._cache.clear()  # the cache would hold it for a minute; expiry is checked on a miss
    time.sleep(1.1)
    expired = api.get("/api/v1/whoami", headers=_bearer(made["token"]))
    assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]
    second = api.post("/api/v1/users/a/tokens", json={}).json()
    assert api.delete(f"/api/v1/users/a/tokens/{second['key']}").status_code == 204
    assert api.get("/api/v1/whoami", headers=_bearer(second["token"])).status_code == 401
    assert api.patch("/api/v1/users/b", json={"disabled": True}).status_code == 200
    gone = api.get("/api/v1/whoami", headers=teams["b"])
    assert gone.status_code == 401 and "disabled" in gone.json()["error"]["message"]
    # users manage their own tokens only; admins manage users
    assert api.get("/api/v1/users/v/tokens", headers=teams["a"]).status_code == 404
    assert api.post("/api/v1/users", json={"name": "x"}, headers=teams["a"]).status_code == 403
    assert api.patch("/api/v1/users/a", json={"admin": True}, headers=teams["a"]).status_code == 403
    # the last admin cannot take itself away
    assert api.patch("/api/v1/users/admin", json={"admin": False}).status_code == 409


def test_team_owners_manage_members_and_roles_are_checked(api: TestClient) -> None:
    assert api.post("/api/v1/teams", json={"name": "red"}).status_code == 201
    owner = _user(api, "o", "red", "owner")
    member = _user(api, "m", None)
    assert api.put("/api/v1/teams/red/members/m", json={"role": "member"}, headers=owner).status_code == 200
    assert api.get("/api/v1/whoami", headers=member).json()["teams"] == {"red": "member"}
    assert api.put("/api/v1/teams/red/members/o", json={"role": "viewer"}, headers=member).status_code == 403
    assert api.put("/api/v1/teams/red/members/m", json={"role": "boss"}, headers=owner).status_code == 400
    last = api.put("/api/v1/teams/red/members/o", json={"role": "member"}, headers=owner)
    assert last.status_code == 409 and "last owner" in last.json()["error"]["message"]
    assert api.get("/api/v1/teams/local", headers=member).status_code == 404
    assert [t["name"] for t in api.get("/api/v1/teams", headers=member).json()] == ["red"]
    bad = api.post("/api/v1/users", json={"name": "Bad Name"})
    assert bad.status_code == 400 and "lower-case" in bad.json()["error"]["message"]
    assert api.post("/api/v1/users", json={"name": "m"}).status_code == 409
    short = api.post("/api/v1/users", json={"name": "p", "password": "short"})
    assert short.status_code == 400 and "at least 8" in short.json()["error"]["message"]


def test_browser_login_sets_a_cookie_and_writes_need_the_csrf_token(api: TestClient) -> None:
    _user(api, "kim", "local", password="correct horse")
    bare = {"Authorization": ""}
    wrong = api.post("/login", data={"name": "kim", "password": "nope", "next": "/"}, headers=bare,
                     follow_redirects=False)
    assert wrong.status_code == 401 and "wrong user name or password" in wrong.text
    ok = api.post("/login", data={"name": "kim", "password": "correct horse", "next": "//evil.example"},
                  headers=bare, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/"  # never off-site
    cookie = ok.cookies["haneul_login"]
    assert "HttpOnly" in ok.headers["set-cookie"] and "samesite=lax" in ok.headers["set-cookie"].lower()
    browser = TestClient(api.app)
    browser.cookies.set("haneul_login", cookie)
    page = browser.get("/")
    assert page.status_code == 200 and "kim" in page.text
    csrf = page.text.split('name="csrf-token" content="')[1].split('"')[0]
    body = {"command": [PY, "-c", "1"]}
    refused = browser.post("/api/v1/sessions", json=body)
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]["message"]
    assert browser.post("/api/v1/sessions", json=body, headers={"X-CSRF-Token": csrf}).status_code == 201
    out = browser.post(f"/logout?csrf={csrf}", follow_redirects=False)
    assert out.status_code == 303
    assert browser.get("/api/v1/whoami").status_code == 401  # the login is gone on the server too


def test_login_link_trades_the_token_for_a_cookie(api: TestClient, settings: Settings) -> None:
    browser = TestClient(api.app)
    res = browser.get(f"/projects?token={local_admin_token(settings.home)}", follow_redirects=False)
    assert res.status_code == 303 and res.headers["location"] == "/projects"
    assert browser.get("/projects").status_code == 200
    assert TestClient(api.app).get("/projects?token=hn_x_y", follow_redirects=False).status_code == 303


def test_a_home_from_before_accounts_keeps_its_sessions_under_the_local_admin(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from haneul.platform.db import make_engine, migrate
    from haneul.platform.server import create_app

    home = tmp_path / "old-home"
    home.mkdir()
    engine = make_engine(Settings(home=home).database_url)  # SQLite, or the run's PostgreSQL database
    from alembic import command
    from alembic.config import Config

    from haneul.platform.db.engine import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
        conn.execute(text(
            "INSERT INTO sessions (name, owner, status, command, env, cpus, gpus, memory, priority, executor, "
            "token_hash, created_at, project, notes, archived) VALUES ('old', 'kim', 'done', '[\"python\"]', '{}', "
            "1, 0, 0, 0, 'local', 'x', 1.0, 'default', '', FALSE)"))
    migrate(engine)
    engine.dispose()
    with TestClient(create_app(Settings(home=home, capacity_cpus=1))) as client:
        client.headers["Authorization"] = f"Bearer {local_admin_token(home)}"
        items = client.get("/api/v1/sessions").json()["items"]
        assert [(s["name"], s["owner"]) for s in items] == [("old", "kim")]
        team = client.get("/api/v1/whoami").json()["default_team"]
        assert team == "local" and client.get("/api/v1/teams/local").json()["members"] == {"admin": "owner"}


def _cli(home: Path, *args: str, env: dict[str, str] | None = None, input: str | None = None,
         ) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "HANEUL_HOME": str(home), **(env or {})}
    return subprocess.run([str(BIN / "haneul"), *args], env=full, capture_output=True, text=True, timeout=120,
                          input=input)


def test_cli_admin_commands_login_and_whoami(live_server: LiveServer, tmp_path: Path) -> None:
    home = live_server.home
    env = {"HANEUL_SERVER": live_server.url}
    assert _cli(home, "whoami", "--json", env=env).returncode == 0  # the local admin, found by itself
    assert _cli(home, "team", "add", "red", env=env).returncode == 0
    added = _cli(home, "user", "add", "kim", "--team", "red", "--password", env={**env, "HANEUL_PASSWORD": "s3cret-pass"})
    assert added.returncode == 0, added.stderr
    # kim logs in from "another machine": no admin token file there, a config folder of its own
    elsewhere = tmp_path / "laptop"
    kim_env = {"HANEUL_SERVER": live_server.url, "XDG_CONFIG_HOME": str(elsewhere / "config"),
               "HANEUL_PASSWORD": "s3cret-pass"}
    before = _cli(elsewhere, "ps", env=kim_env)
    assert before.returncode != 0 and "haneul login" in before.stderr
    login = _cli(elsewhere, "login", "--user", "kim", env=kim_env)
    assert login.returncode == 0, login.stderr
    stored = elsewhere / "config" / "haneul" / "credentials.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    me = json.loads(_cli(elsewhere, "whoami", "--json", env=kim_env).stdout)
    assert me["name"] == "kim" and me["teams"] == {"red": "member"}
    assert _cli(elsewhere, "user", "ls", env=kim_env).returncode != 0  # not an admin
    wrong = _cli(elsewhere, "login", "--user", "kim", env={**kim_env, "HANEUL_PASSWORD": "wrong-pass"})
    assert wrong.returncode != 0 and "wrong user name or password" in wrong.stderr
    assert _cli(elsewhere, "logout", env=kim_env).returncode == 0
    assert _cli(elsewhere, "whoami", env=kim_env).returncode != 0
    assert credentials_path() != stored  # the test's own config folder was never touched


def test_server_refuses_other_interfaces_without_accounts(tmp_path: Path) -> None:
    env = {**os.environ, "HANEUL_HOME": str(tmp_path / "h")}
    res = subprocess.run([str(BIN / "haneul"), "server", "--host", "0.0.0.0", "--port", "0"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode != 0
    assert "refusing to listen on 0.0.0.0 without accounts" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert local_admin_token(tmp_path / "h")  # the local admin was still made, for the loopback start


@pytest.mark.browser
def test_two_teams_in_the_browser(live_server: LiveServer, page) -> None:  # type: ignore[no-untyped-def]
    http = live_server.http()
    for team in ("red", "blue"):
        http.post("/api/v1/teams", json={"name": team}).raise_for_status()
    for name, team in (("alice", "red"), ("bob", "blue")):
        http.post("/api/v1/users", json={"name": name, "team": team, "password": f"{name}-password"}).raise_for_status()
    token = http.post("/api/v1/users/alice/tokens", json={}).json()["token"]
    sid = httpx.post(f"{live_server.url}/api/v1/sessions", headers=_bearer(token),
                     json={"command": [PY, "-c", "print('alice only')"], "name": "alice-run"}).json()["id"]
    page.goto(f"{live_server.url}/sessions/{sid}")
    assert page.url.startswith(f"{live_server.url}/login")
    page.fill("input[name=name]", "bob")
    page.fill("input[name=password]", "bob-password")
    page.click("form.login-form button")
    assert page.locator("h1").first.text_content() != "Log in to haneul"
    assert "not found" in page.content()  # the page it was going to: a 404 for bob
    page.goto(f"{live_server.url}/")
    assert page.locator("header .me a").text_content() == "bob"
    assert "alice-run" not in page.content()
    page.click("header .me button")  # log out
    page.wait_for_url(f"{live_server.url}/login")
    page.fill("input[name=name]", "alice")
    page.fill("input[name=password]", "alice-password")
    page.click("form.login-form button")
    page.goto(f"{live_server.url}/")
    page.wait_for_selector("text=alice-run")


def test_the_servers_own_token_never_reaches_a_session(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from haneul.platform.server import create_app

    monkeypatch.setenv("HANEUL_API_TOKEN", "hn_server_secret")
    with TestClient(create_app(settings, server_url="http://testserver")) as api:
        api.headers["Authorization"] = f"Bearer {local_admin_token(settings.home)}"
        code = "import os; print(os.environ.get('HANEUL_API_TOKEN'), bool(os.environ.get('HANEUL_TOKEN')))"
        sid = api.post("/api/v1/sessions", json={"command": [PY, "-c", code]}).json()["id"]
        assert _wait(api, sid, {})["status"] == "done"
        assert api.get(f"/api/v1/sessions/{sid}/logs").json()["lines"] == ["None True"]
