"""Search expressions: the parser (grammar and one-line errors) and filters through the API and CLI."""

from __future__ import annotations

import secrets
import sys
import time

import pytest
from fastapi.testclient import TestClient
from platform_helpers import LiveServer

from haneul.errors import InvalidInput
from haneul.platform.search import And, Compare, Not, Or, parse

PY = sys.executable


# ---------------------------------------------------------------------- parser
def test_precedence_and_binds_tighter_than_or_and_not_tighter_than_and() -> None:
    tree = parse('params.lr < 1e-3 or not tags.model = "bert" and status = "done"')
    assert tree == Or((
        Compare("params", "lr", "<", 0.001),
        And((Not(Compare("tags", "model", "=", "bert")), Compare("session", "status", "=", "done"))),
    ))


def test_parentheses_dotted_keys_quotes_and_keywords_in_any_case() -> None:
    tree = parse("(params.opt.lr >= -2.5E-3 OR metrics.eval/loss<=.5) AND params.`my key` contains 'a\\'b'")
    assert tree == And((
        Or((Compare("params", "opt.lr", ">=", -0.0025), Compare("metrics", "eval/loss", "<=", 0.5))),
        Compare("params", "my key", "contains", "a'b"),
    ))
    assert parse("project == 'nsmc'") == Compare("session", "project", "=", "nsmc")
    assert parse("params.fp16 = true") == Compare("params", "fp16", "=", "true")
    assert parse("   ") is None


@pytest.mark.parametrize(("text", "message"), [
    ("params.lr <", "expected a number or a quoted string at position 12, found the end of the filter"),
    ("params.lr < 1 and", "expected a field such as params.lr"),
    ("params.lr 1", "expected a comparison (= != < <= > >= contains) at position 11, found '1'"),
    ("(status = 'done'", "expected ')' at position 17"),
    ("status = 'done' status", "expected 'and', 'or' or the end of the filter at position 17, found 'status'"),
    ("colour = 'red'", "unknown field 'colour' at position 1"),
    ("foo.bar = 1", "unknown field 'foo.bar' at position 1"),
    ("metrics.loss = 'low'", "metrics.loss at position 1 holds numbers"),
    ("params.x contains 3", "'contains' at position 10 takes a quoted string"),
    ("params.lr < 1 & x", "unexpected '& x' at position 15"),
    ('name = "open', "unexpected '\"open' at position 8"),
])
def test_errors_name_the_position_and_the_bad_token(text: str, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse(text)
    assert message in info.value.message
    assert "\n" not in info.value.message


# ---------------------------------------------------------------------- through the API
def _token(api: TestClient, sid: int) -> str:
    from haneul.platform.db import Session
    from haneul.platform.service import _hash_token

    token = secrets.token_urlsafe(8)
    with api.app.state.platform.engine.begin() as conn:
        conn.execute(Session.__table__.update().where(Session.id == sid).values(token_hash=_hash_token(token)))
    return token


def _run(api: TestClient, *args: str, **body: object) -> int:
    res = api.post("/api/v1/sessions", json={"command": [PY, "-c", "pass", *args], **body})
    assert res.status_code == 201, res.text
    return res.json()["id"]


def _report(api: TestClient, sid: int, **values: float) -> None:
    body = {"metrics": {k: {"steps": [0], "values": [v]} for k, v in values.items()}}
    res = api.post(f"/api/v1/sessions/{sid}/metrics", json=body, headers={"Authorization": f"Bearer {_token(api, sid)}"})
    assert res.status_code == 200, res.text


def _wait_done(api: TestClient, sids: list[int]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if all(api.get(f"/api/v1/sessions/{sid}").json()["status"] == "done" for sid in sids):
            return
        time.sleep(0.05)
    raise AssertionError("sessions did not finish")


@pytest.fixture
def grid(api: TestClient) -> dict[str, int]:
    """Four sessions in two projects: lr 1e-4 / 1e-2, bert / gpt, and a val_acc each."""
    sids = {
        "a": _run(api, "--lr", "1e-4", project="nsmc", tags={"model": "bert"}),
        "b": _run(api, "--lr=0.01", project="nsmc", tags={"model": "bert"}),
        "c": _run(api, "--lr", "1e-4", "--opt", "adamw", project="klue", tags={"model": "gpt"}),
        "d": _run(api, "--epochs", "3", project="klue", tags={"model": "gpt", "note": "baseline run"}),
    }
    _wait_done(api, list(sids.values()))
    for name, acc in zip("abcd", (0.9, 0.95, 0.7, 0.85), strict=True):
        _report(api, sids[name], val_acc=acc, loss=1 - acc)
    return sids


def _ids(api: TestClient, expr: str, **params: object) -> set[int]:
    res = api.get("/api/v1/sessions", params={"filter": expr, **params})
    assert res.status_code == 200, res.text
    return {item["id"] for item in res.json()["items"]}


def test_filters_over_params_metrics_tags_and_columns(api: TestClient, grid: dict[str, int]) -> None:
    a, b, c, d = (grid[k] for k in "abcd")
    assert _ids(api, "params.lr < 1e-3") == {a, c}
    assert _ids(api, "params.lr < 1e-3 and metrics.val_acc > 0.8") == {a}
    assert _ids(api, 'tags.model = "bert" and metrics.val_acc > 0.92 and status = "done" and project = "nsmc"') == {b}
    assert _ids(api, 'project = "klue" or params.lr = 0.01') == {b, c, d}
    assert _ids(api, "not params.lr < 1e-3") == {b, d}  # d has no lr at all
    assert _ids(api, "params.lr != 0.01") == {a, c}  # only sessions that have the key
    assert _ids(api, 'params.opt = "adamw"') == {c}
    assert _ids(api, 'tags.note contains "base"') == {d}
    assert _ids(api, "(metrics.loss <= 0.08 or metrics.val_acc < 0.75) and id > 0") == {b, c}
    assert _ids(api, "params.epochs >= 3 and params.epochs <= 3") == {d}
    # sort by a metric; sessions without a param sort last whichever the direction
    res = api.get("/api/v1/sessions", params={"sort": "metrics.val_acc", "desc": "false"}).json()
    assert [i["id"] for i in res["items"]] == [c, d, a, b]
    res = api.get("/api/v1/sessions", params={"sort": "params.lr", "desc": "true"}).json()
    assert [i["id"] for i in res["items"]][:3] == [b, c, a] and res["items"][3]["id"] == d
    # picked columns come back with their values
    res = api.get("/api/v1/sessions", params={"filter": "params.lr < 1", "columns": "params.lr,metrics.val_acc,tags.model",
                                              "sort": "id", "desc": "false"}).json()
    assert [i["columns"] for i in res["items"]] == [
        {"params.lr": 1e-4, "metrics.val_acc": 0.9, "tags.model": "bert"},
        {"params.lr": 0.01, "metrics.val_acc": 0.95, "tags.model": "bert"},
        {"params.lr": 1e-4, "metrics.val_acc": 0.7, "tags.model": "gpt"},
    ]


def test_a_bad_filter_is_a_400_naming_the_position(api: TestClient) -> None:
    res = api.get("/api/v1/sessions", params={"filter": "params.lr <> 3"})
    assert res.status_code == 400
    assert res.json()["error"]["message"].startswith("filter: expected a number or a quoted string at position 12")
    res = api.get("/api/v1/sessions", params={"sort": "colour"})
    assert res.status_code == 400 and "params.KEY or metrics.KEY" in res.json()["error"]["message"]


def test_saved_views_round_trip_and_are_checked(api: TestClient, grid: dict[str, int]) -> None:
    res = api.post("/api/v1/views", json={"name": "good bert", "filter": 'tags.model = "bert"',
                                          "columns": ["params.lr", "metrics.val_acc"], "sort": "metrics.val_acc"})
    assert res.status_code == 201, res.text
    assert res.json()["columns"] == ["params.lr", "metrics.val_acc"]
    again = api.post("/api/v1/views", json={"name": "good bert", "filter": "params.lr > 0"}).json()  # replaces
    assert [v["name"] for v in api.get("/api/v1/views").json()] == ["good bert"]
    assert api.get("/api/v1/views").json()[0]["filter"] == "params.lr > 0"
    bad = api.post("/api/v1/views", json={"name": "x", "filter": "params.lr <"})
    assert bad.status_code == 400 and "position" in bad.json()["error"]["message"]
    page = api.get("/").text
    assert "good bert" in page and "filter=params.lr+%3E+0" in page
    assert api.delete(f"/api/v1/views/{again['id']}").status_code == 204
    assert api.delete(f"/api/v1/views/{again['id']}").status_code == 404


def test_the_sessions_page_filters_and_shows_picked_columns(api: TestClient, grid: dict[str, int]) -> None:
    page = api.get("/", params={"filter": "params.lr < 1e-3", "cols": "params.lr,metrics.val_acc"}).text
    assert "2 sessions" in page
    assert f'<tr data-id="{grid["a"]}">' in page and f'<tr data-id="{grid["b"]}">' not in page
    assert '<th class="col-extra"><a' in page and ">0.9</td>" in page
    bad = api.get("/", params={"filter": "params.lr <"})
    assert bad.status_code == 200 and 'id="filter-error"' in bad.text and "position 12" in bad.text


def test_cli_ps_filter(live_server: LiveServer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    ids = []
    for lr in ("0.1", "0.001"):
        out = live_server.cli("run", "--project", "cli", "--tag", "kind=sweep", "--", PY, "-c", "pass", "--lr", lr,
                              cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        ids.append(int(out.stdout.strip()))
    res = live_server.cli("ps", "--filter", 'params.lr < 0.01 and tags.kind = "sweep"', "--json")
    assert res.returncode == 0, res.stderr
    assert [s["id"] for s in json.loads(res.stdout)["items"]] == [ids[1]]
    table = live_server.cli("ps", "--project", "cli")
    assert "2 sessions" in table.stdout and "cli" in table.stdout
    bad = live_server.cli("ps", "--filter", "params.lr <")
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == [bad.stderr.strip()] and "position 12" in bad.stderr
