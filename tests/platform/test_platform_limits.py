"""The server's data path at its limits: 64-bit integers, the request body limit, many metric keys,
secrets in session environments, and the session page's empty and refreshed states."""

from __future__ import annotations

import json
import re
import secrets
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from platform_helpers import LiveServer

from haneul.platform.testing import as_admin
from haneul.settings import Settings

PY = sys.executable
BIG = 1 << 63  # one past the largest signed 64-bit integer


def _session(api: TestClient, code: str = "print('hi')", **kw: object) -> dict:
    res = api.post("/api/v1/sessions", json={"command": [PY, "-c", code], **kw})
    assert res.status_code == 201, res.text
    return res.json()


def _wait_done(api: TestClient, sid: int, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = api.get(f"/api/v1/sessions/{sid}").json()
        if s["status"] not in ("queued", "running"):
            return s
        time.sleep(0.05)
    raise AssertionError(f"session {sid} did not end")


def _auth(api: TestClient, sid: int) -> dict[str, str]:
    """Session tokens only reach the session itself; give the test one of its own."""
    from haneul.platform.db import Session
    from haneul.platform.service import _hash_token

    token = secrets.token_urlsafe(8)
    with api.app.state.platform.engine.begin() as conn:
        conn.execute(Session.__table__.update().where(Session.id == sid).values(token_hash=_hash_token(token)))
    return {"Authorization": f"Bearer {token}"}


def _post_batch(api: TestClient, sid: int, headers: dict[str, str], metrics: dict) -> object:
    return api.post(f"/api/v1/sessions/{sid}/metrics", content=json.dumps({"metrics": metrics}), headers=headers)


@pytest.fixture
def small_body_api(haneul_home: Path) -> Iterator[TestClient]:
    from haneul.platform.server import create_app

    settings = Settings(home=haneul_home, capacity_cpus=4, max_request_bytes=10_000)
    with TestClient(create_app(settings, server_url="http://testserver")) as client:
        as_admin(client)
        yield client


# -------------------------------------------------------------------------------------- 64-bit integers


@pytest.mark.parametrize("method,path,name", [
    ("GET", f"/api/v1/sessions/{BIG}", "sid"),
    ("GET", f"/api/v1/sessions/{-BIG - 1}", "sid"),
    ("POST", f"/api/v1/sessions/{BIG}/stop", "sid"),
    ("GET", f"/api/v1/sessions/{BIG}/checkpoints", "sid"),
    ("GET", f"/api/v1/sessions/{BIG}/stream/logs", "sid"),
    ("GET", f"/api/v1/sessions?offset={BIG}", "offset"),
    ("GET", f"/api/v1/sessions/1/metrics?offset={BIG}", "offset"),
    ("GET", f"/api/v1/sessions/1/metrics/loss?step_min={BIG}", "step_min"),
    ("GET", f"/api/v1/sessions/1/metrics/loss?step_max={-BIG - 1}", "step_max"),
    ("GET", f"/api/v1/sessions/1/metrics/loss?after_id={BIG}", "after_id"),
    ("GET", f"/api/v1/sessions/1/logs?offset={BIG}", "offset"),
])
def test_integers_outside_64_bits_are_400_naming_the_parameter(api: TestClient, method: str, path: str,
                                                               name: str) -> None:
    if "/sessions/1/" in path:
        _session(api)  # session 1 exists: the parameter, not the session, is what is wrong
    res = api.request(method, path)
    assert res.status_code == 400, res.text
    error = res.json()["error"]
    assert error["code"] == "invalid_input" and f"parameter {name}=" in error["message"]


def test_integers_at_the_64_bit_edges_are_ordinary(api: TestClient) -> None:
    sid = _session(api)["id"]
    headers = _auth(api, sid)
    assert _post_batch(api, sid, headers, {"loss": {"steps": [5], "values": [1.0]}}).status_code == 200
    assert api.get(f"/api/v1/sessions/{BIG - 1}").status_code == 404
    got = api.get(f"/api/v1/sessions/{sid}/metrics/loss", params={"step_min": -BIG, "step_max": BIG - 1}).json()
    assert got["steps"] == [5]
    assert api.get(f"/api/v1/sessions/{sid}/logs", params={"offset": BIG - 1}).json()["text"] == ""
    page = api.get(f"/sessions/{BIG}")
    assert page.status_code == 400 and "text/html" in page.headers["content-type"]


def test_metric_steps_must_fit_in_64_bits_and_are_stored_exactly(api: TestClient) -> None:
    sid = _session(api)["id"]
    headers = _auth(api, sid)
    res = _post_batch(api, sid, headers, {"loss": {"steps": [1, BIG], "values": [1.0, 2.0]}})
    assert res.status_code == 400 and f"step {BIG} is out of range" in res.json()["error"]["message"]
    res = _post_batch(api, sid, headers, {"loss": {"steps": [1e19], "values": [1.0]}})
    assert res.status_code == 400 and "out of range" in res.json()["error"]["message"]
    assert api.get(f"/api/v1/sessions/{sid}/metrics").json() == []  # refused whole
    # above 2^53 a float64 can no longer hold every integer; the steps come back as sent
    steps = [(1 << 53) + 1, BIG - 1]
    assert _post_batch(api, sid, headers, {"loss": {"steps": steps, "values": [1.0, 2.0]}}).status_code == 200
    assert api.get(f"/api/v1/sessions/{sid}/metrics/loss").json()["steps"] == steps


# -------------------------------------------------------------------------------------- request body limit


def test_request_body_limit_refuses_a_padded_batch_before_reading_it(api: TestClient) -> None:
    sid = _session(api)["id"]
    headers = _auth(api, sid)
    one_point = b'{"metrics": {"loss": {"steps": [0], "values": [1.0]}}}'
    res = api.post(f"/api/v1/sessions/{sid}/metrics", content=one_point + b" " * 50_000_000, headers=headers)
    assert res.status_code == 413
    error = res.json()["error"]
    assert error["code"] == "payload_too_large" and "HANEUL_MAX_REQUEST_BYTES" in error["message"]
    assert api.get(f"/api/v1/sessions/{sid}/metrics").json() == []
    assert api.post(f"/api/v1/sessions/{sid}/metrics", content=one_point, headers=headers).json() == {"accepted": 1}


def test_request_body_limit_also_counts_a_body_without_length(small_body_api: TestClient) -> None:
    api = small_body_api
    sid = _session(api)["id"]
    headers = _auth(api, sid)

    def chunks() -> Iterator[bytes]:  # chunked transfer: no Content-Length to refuse it by
        yield b'{"metrics": {"loss": {"steps": [0], "values": [1.0]}}}'
        for _ in range(20):
            yield b" " * 1000

    res = api.post(f"/api/v1/sessions/{sid}/metrics", content=chunks(), headers=headers)
    assert res.status_code == 413 and res.json()["error"]["code"] == "payload_too_large"
    too_big = api.post("/api/v1/sessions", json={"command": [PY, "-c", "pass"], "name": "x" * 20_000})
    assert too_big.status_code == 413


def test_checkpoint_uploads_are_not_bound_by_the_body_limit(small_body_api: TestClient) -> None:
    api = small_body_api
    sid = _session(api)["id"]
    blob = bytes(range(256)) * 200  # 51,200 bytes, five times the body limit
    res = api.put(f"/api/v1/sessions/{sid}/checkpoints/big", content=blob, headers=_auth(api, sid))
    assert res.status_code == 201 and res.json()["size"] == len(blob)
    assert api.get(f"/api/v1/sessions/{sid}/checkpoints/big").content == blob


# -------------------------------------------------------------------------------------- many metric keys


def test_metric_key_limit_refuses_a_batch_whole(api: TestClient) -> None:
    api.app.state.platform.settings.max_metric_keys = 5
    sid = _session(api)["id"]
    headers = _auth(api, sid)
    six = {f"k{i}": {"steps": [0], "values": [float(i)]} for i in range(6)}
    res = _post_batch(api, sid, headers, six)
    assert res.status_code == 400
    assert "over the limit of 5" in res.json()["error"]["message"]
    assert "HANEUL_MAX_METRIC_KEYS" in res.json()["error"]["message"]
    assert api.get(f"/api/v1/sessions/{sid}/metrics").json() == []
    four = {f"k{i}": {"steps": [0], "values": [float(i)]} for i in range(4)}
    assert _post_batch(api, sid, headers, four).status_code == 200
    # old keys plus one new one fit; a second new one does not, and takes none of the batch with it
    assert _post_batch(api, sid, headers, {**four, "k4": {"steps": [1], "values": [4.0]}}).status_code == 200
    res = _post_batch(api, sid, headers, {"k0": {"steps": [2], "values": [9.0]}, "k5": {"steps": [2], "values": [5.0]}})
    assert res.status_code == 400
    keys = {k["key"]: k for k in api.get(f"/api/v1/sessions/{sid}/metrics").json()}
    assert sorted(keys) == ["k0", "k1", "k2", "k3", "k4"] and keys["k0"]["count"] == 2
    assert keys["k0"]["last_value"] == 0.0  # the refused point at step 2 was not stored


def test_a_batch_of_many_keys_is_stored_and_shown_a_page_at_a_time(api: TestClient) -> None:
    sid = _session(api)["id"]
    _wait_done(api, sid)
    headers = _auth(api, sid)
    n = 3000
    batch = {f"k{i:04d}": {"steps": [0, 1], "values": [float(i), float(i) + 0.5]} for i in range(n)}
    assert _post_batch(api, sid, headers, batch).json() == {"accepted": 2 * n}
    keys = api.get(f"/api/v1/sessions/{sid}/metrics").json()
    assert len(keys) == n and keys[1234] == {"key": "k1234", "count": 2, "last_step": 1, "last_value": 1234.5}
    assert [k["key"] for k in api.get(f"/api/v1/sessions/{sid}/metrics",
                                      params={"q": "k29", "limit": 3, "offset": 2}).json()] == ["k2902", "k2903", "k2904"]
    # summaries carry the first keys reported and say how many there are
    (item,) = api.get("/api/v1/sessions").json()["items"]
    assert list(item["metrics"]) == [f"k{i:04d}" for i in range(20)] and item["metric_count"] == n
    assert api.get(f"/api/v1/sessions/{sid}").json()["metric_count"] == n
    row = re.search(rf'<tr data-id="{sid}">.*?</tr>', api.get("/").text, re.S).group(0)
    assert row.count('class="metric"') == 4 and f"+{n - 4} more" in row
    # the session page draws one page of charts and pages through the rest
    page = api.get(f"/sessions/{sid}").text
    assert re.findall(r'class="chart" data-key="([^"]+)"', page) == [f"k{i:04d}" for i in range(24)]
    assert f"{n} keys" in page and "page 1 / 125" in page and 'data-follow-all="false"' in page
    last = api.get(f"/sessions/{sid}", params={"mpage": 125}).text
    assert re.findall(r'class="chart" data-key="([^"]+)"', last) == [f"k{i:04d}" for i in range(2976, 3000)]
    found = api.get(f"/sessions/{sid}", params={"mq": "k001"}).text
    assert re.findall(r'class="chart" data-key="([^"]+)"', found) == [f"k{i:04d}" for i in range(10, 20)]
    assert "keys 1–10 of 10" in found


def test_a_late_older_batch_leaves_each_keys_latest_value(api: TestClient) -> None:
    sid = _session(api)["id"]
    headers = _auth(api, sid)
    first = {"a": {"steps": [10], "values": [1.0], "times": [200.0]},
             "b": {"steps": [10], "values": [1.0], "times": [200.0]}}
    late = {"a": {"steps": [5], "values": [9.0], "times": [100.0]},  # older than what "a" holds
            "b": {"steps": [20], "values": [2.0], "times": [300.0]},
            "c": {"steps": [3, 4], "values": [7.0, 8.0], "times": [50.0, 40.0]}}  # newest is the first point
    assert _post_batch(api, sid, headers, first).status_code == 200
    assert _post_batch(api, sid, headers, late).status_code == 200
    keys = {k.pop("key"): k for k in api.get(f"/api/v1/sessions/{sid}/metrics").json()}
    assert keys == {"a": {"count": 2, "last_step": 10, "last_value": 1.0},
                    "b": {"count": 2, "last_step": 20, "last_value": 2.0},
                    "c": {"count": 2, "last_step": 3, "last_value": 7.0}}


def test_metric_stream_follows_only_the_keys_asked_for(api: TestClient) -> None:
    sid = _session(api)["id"]
    _wait_done(api, sid)
    headers = _auth(api, sid)
    _post_batch(api, sid, headers, {"a": {"steps": [0, 1], "values": [1.0, 2.0]}, "b": {"steps": [0], "values": [3.0]},
                                    "c": {"steps": [0], "values": [4.0]}})
    _post_batch(api, sid, headers, {"a": {"steps": [2], "values": [5.0]}})
    events = []
    with api.stream("GET", f"/api/v1/sessions/{sid}/stream/metrics", params={"key": ["a", "c"]}) as res:
        event = None
        for line in res.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                events.append((event, json.loads(line[5:])))
                if event == "end":
                    break
    points = {data["key"]: data for ev, data in events if ev == "points"}
    assert sorted(points) == ["a", "c"] and points["a"]["steps"] == [0, 1, 2]
    assert points["a"]["values"] == [1.0, 2.0, 5.0] and events[-1][0] == "end"


# -------------------------------------------------------------------------------------- secrets


def test_secret_environment_values_are_masked_everywhere_but_reach_the_session(api: TestClient) -> None:
    env = {"API_KEY": "s3cret-value", "hf_token": "t0ken-value", "DB_Passwd": "pw-value",
           "GITHUB_AUTH_HEADER": "auth-value", "FOO": "bar"}
    created = _session(api, "import os; print(os.environ['API_KEY'], os.environ['hf_token'])", env=env)
    masked = {**{k: "••••••" for k in env}, "FOO": "bar"}
    assert created["env"] == masked
    done = _wait_done(api, created["id"])
    assert done["env"] == masked
    assert api.get("/api/v1/sessions").json()["items"][0]["env"] == masked
    assert api.get(f"/api/v1/sessions/{created['id']}/logs").json()["lines"] == ["s3cret-value t0ken-value"]
    page = api.get(f"/sessions/{created['id']}").text
    assert "API_KEY=••••••" in page and "FOO=bar" in page
    assert not any(value in page for value in ("s3cret", "t0ken", "pw-value", "auth-value"))


# -------------------------------------------------------------------------------------- the session page


def test_session_page_says_no_output_yet_in_an_empty_log(api: TestClient) -> None:
    sid = _session(api, "pass")["id"]
    page = api.get(f"/sessions/{sid}").text
    log = re.search(r'<pre id="log"[^>]*>(.*?)</pre>', page, re.S).group(1)
    assert "no output yet" in log


@pytest.mark.browser
def test_checkpoint_age_and_log_placeholder_survive_live_updates(live_server: LiveServer, tmp_path: Path,
                                                                 page) -> None:  # type: ignore[no-untyped-def]
    gate = tmp_path / "go"
    (tmp_path / "quiet.py").write_text(textwrap.dedent(f"""
        import os, time, haneul
        while not os.path.exists({str(gate)!r}):  # silent until the page has been looked at
            time.sleep(0.05)
        haneul.save("epoch-1", b"weights")
        print("saved", flush=True)
        time.sleep(6)  # long enough for the page's 2 s refresh to redraw the checkpoints
    """))
    sid = live_server.cli("run", "--", "python", "quiet.py", cwd=tmp_path).stdout.strip()
    page.goto(live_server.login_url(f"/sessions/{sid}"))
    page.wait_for_selector("#status.running", timeout=20_000)
    assert page.text_content("#log").strip() == "no output yet"
    gate.touch()
    page.wait_for_function("document.getElementById('log').textContent.includes('saved')", timeout=20_000)
    assert "no output yet" not in page.text_content("#log")
    # the row below comes from the live refresh (the page was drawn before the checkpoint existed)
    page.wait_for_selector("#checkpoints tbody tr:not(.empty)", timeout=20_000)
    page.wait_for_timeout(2500)
    cells = page.locator("#checkpoints tbody tr").first.locator("td").all_text_contents()
    assert cells[0] == "epoch-1" and re.fullmatch(r"\d+[smhd]", cells[4]), cells


def test_a_nul_character_in_text_is_the_callers_error_on_every_database(api: TestClient) -> None:
    # PostgreSQL's text columns refuse NUL where SQLite's store it; a plugin route that stores text as
    # sent must then answer 400 with the fix, not 500, and store nothing
    res = api.post("/api/v1/dialog/memory/kim%00/update", json={"summary": ["치과에 다니심"], "operator": "lexical"})
    backend = api.app.state.platform.engine.dialect.name  # type: ignore[attr-defined]
    if backend == "postgresql":
        assert res.status_code == 400, res.text
        assert res.json()["error"] == {"code": "invalid_input", "message": (
            "invalid request: text must not contain a NUL character (\\u0000); remove it and send again")}
        assert api.get("/api/v1/dialog/memory").json() == {"people": []}
    else:
        assert res.status_code == 200 and api.get("/api/v1/dialog/memory").json() == {"people": ["kim\x00"]}
