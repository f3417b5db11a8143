from __future__ import annotations

import json
import sys
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from haneul.platform.service import downsample

PY = sys.executable


def _wait_status(api: TestClient, sid: int, statuses: tuple[str, ...], timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = api.get(f"/api/v1/sessions/{sid}").json()
        if s["status"] in statuses:
            return s
        time.sleep(0.05)
    raise AssertionError(f"session {sid} stayed {s['status']}")


def _token(api: TestClient, sid: int) -> str:
    """Session tokens are only handed to the session itself; tests ask it to print its env."""
    platform = api.app.state.platform
    import secrets

    from haneul.platform.db import Session
    from haneul.platform.service import _hash_token

    token = secrets.token_urlsafe(8)
    with platform.engine.begin() as conn:
        conn.execute(Session.__table__.update().where(Session.id == sid).values(token_hash=_hash_token(token)))
    return token


def _session(api: TestClient, code: str = "print('hi')", headers: dict | None = None, **kw) -> dict:
    res = api.post("/api/v1/sessions", json={"command": [PY, "-c", code], **kw}, headers=headers)
    assert res.status_code == 201, res.text
    return res.json()


def _member(api: TestClient, name: str, team: str = "local") -> dict[str, str]:
    """Headers of a new member of ``team``."""
    assert api.post("/api/v1/users", json={"name": name, "team": team}).status_code == 201
    token = api.post(f"/api/v1/users/{name}/tokens", json={}).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def test_openapi_and_health(api: TestClient) -> None:
    spec = api.get("/api/v1/openapi.json").json()
    for path in ("/api/v1/sessions", "/api/v1/sessions/{sid}/metrics", "/api/v1/sessions/{sid}/checkpoints/{name}",
                 "/api/v1/sessions/{sid}/logs", "/api/v1/sessions/{sid}/stream/logs"):
        assert path in spec["paths"]
    assert api.get("/api/v1/health").json()["status"] == "ok"


def test_session_lifecycle_exit_codes_and_env(api: TestClient, tmp_path) -> None:
    code = "import os,sys; print(os.environ['HANEUL_SESSION'], os.environ['HANEUL_SERVER'], os.environ['FOO']); sys.exit(0)"
    ok = _session(api, code, env={"FOO": "bar"}, name="ok-run")
    bad = _session(api, "import sys; print('boom', file=sys.stderr); sys.exit(3)")
    done = _wait_status(api, ok["id"], ("done", "failed"))
    failed = _wait_status(api, bad["id"], ("done", "failed"))
    assert done["status"] == "done" and done["exit_code"] == 0
    assert failed["status"] == "failed" and failed["exit_code"] == 3
    lines = api.get(f"/api/v1/sessions/{ok['id']}/logs").json()["lines"]
    assert lines == [f"{ok['id']} http://testserver bar"]
    assert api.get(f"/api/v1/sessions/{bad['id']}/logs").json()["lines"] == ["boom"]
    assert done["name"] == "ok-run" and done["started_at"] >= done["created_at"]


def test_session_runs_in_its_own_working_directory_snapshot(api: TestClient, tmp_path) -> None:
    (tmp_path / "train.py").write_text("import os; print(os.getcwd()); open('out.txt','w').write('x')")
    s = api.post("/api/v1/sessions", json={"command": [PY, "train.py"], "cwd": str(tmp_path)}).json()
    s = _wait_status(api, s["id"], ("done", "failed"))
    assert s["status"] == "done"
    printed = api.get(f"/api/v1/sessions/{s['id']}/logs").json()["lines"][0]
    assert printed.startswith(s["workdir"]) and not (tmp_path / "out.txt").exists()


def test_list_filters_sort_pagination(api: TestClient) -> None:
    as_user = {"kim": _member(api, "kim"), "lee": _member(api, "lee")}
    ids = [_session(api, name=f"job-{i}", headers=as_user["kim" if i % 2 else "lee"])["id"] for i in range(5)]
    for sid in ids:
        _wait_status(api, sid, ("done",))
    page = api.get("/api/v1/sessions", params={"limit": 2, "offset": 1}).json()
    assert page["total"] == 5 and [s["id"] for s in page["items"]] == [ids[3], ids[2]]
    kim = api.get("/api/v1/sessions", params={"owner": "kim", "sort": "name", "desc": "false"}).json()
    assert [s["name"] for s in kim["items"]] == ["job-1", "job-3"]
    assert api.get("/api/v1/sessions", params={"q": "job-4"}).json()["total"] == 1
    assert api.get("/api/v1/sessions", params={"status": "running"}).json()["total"] == 0
    bad = api.get("/api/v1/sessions", params={"sort": "password"})
    assert bad.status_code == 400 and "cannot sort" in bad.json()["error"]["message"]


def test_unknown_ids_and_bad_commands_are_4xx_json(api: TestClient) -> None:
    for path in ("/api/v1/sessions/999", "/api/v1/sessions/999/metrics", "/api/v1/sessions/999/logs"):
        res = api.get(path)
        assert res.status_code == 404 and res.json()["error"]["code"] == "not_found"
    res = api.post("/api/v1/sessions", json={"command": ["definitely-not-a-program-xyz"]})
    assert res.status_code == 400 and "not found on PATH" in res.json()["error"]["message"]
    res = api.post("/api/v1/sessions", json={"command": []})
    assert res.status_code == 400 and res.json()["error"]["code"] == "invalid_input"
    res = api.post("/api/v1/sessions", json={"command": [PY], "cpus": 64})
    assert res.status_code == 400 and "cluster has only" in res.json()["error"]["message"]


def test_queueing_priority_and_stop(api: TestClient) -> None:
    long = "import time; time.sleep(60)"
    a = _session(api, long, cpus=4)
    b = _session(api, long, cpus=4)
    assert _wait_status(api, a["id"], ("running",))["status"] == "running"
    assert api.get(f"/api/v1/sessions/{b['id']}").json()["status"] == "queued"
    stopped = api.post(f"/api/v1/sessions/{b['id']}/stop").json()
    assert stopped["status"] == "stopped"
    api.post(f"/api/v1/sessions/{a['id']}/stop")
    assert _wait_status(api, a["id"], ("stopped",), timeout=15)["reason"] == "stopped by request"
    again = api.post(f"/api/v1/sessions/{a['id']}/stop")
    assert again.status_code == 409


def test_metric_ingest_query_and_downsampling(api: TestClient) -> None:
    sid = _session(api)["id"]
    token = _token(api, sid)
    n = 10_000
    body = {"metrics": {"loss": {"steps": list(range(n)), "values": [1.0 / (i + 1) for i in range(n)]},
                        "eval/acc": {"steps": [0, 5000], "values": [0.1, 0.9], "times": [1.0, 2.0]}}}
    res = api.post(f"/api/v1/sessions/{sid}/metrics", content=json.dumps(body),
                   headers={"Authorization": f"Bearer {token}"})
    assert res.status_code == 200 and res.json() == {"accepted": n + 2}
    keys = {k["key"]: k for k in api.get(f"/api/v1/sessions/{sid}/metrics").json()}
    assert keys["loss"]["count"] == n and keys["loss"]["last_step"] == n - 1
    assert keys["eval/acc"]["last_value"] == 0.9
    full = api.get(f"/api/v1/sessions/{sid}/metrics/loss").json()
    assert full["total"] == n and full["steps"][:3] == [0, 1, 2] and full["values"][1] == 0.5
    window = api.get(f"/api/v1/sessions/{sid}/metrics/loss", params={"step_min": 10, "step_max": 19}).json()
    assert window["steps"] == list(range(10, 20))
    small = api.get(f"/api/v1/sessions/{sid}/metrics/loss", params={"max_points": 100}).json()
    assert len(small["steps"]) <= 100 and small["steps"][0] == 0 and max(small["values"]) == 1.0
    nested = api.get(f"/api/v1/sessions/{sid}/metrics/eval/acc").json()
    assert nested["values"] == [0.1, 0.9]
    assert api.get(f"/api/v1/sessions/{sid}").json()["metrics"] == {"loss": 1.0 / n, "eval/acc": 0.9}


@pytest.mark.parametrize("payload,status,fragment", [
    ('{"metrics": {"loss": {"steps": [0], "values": ["x"]}}}', 400, "numbers"),
    ('{"metrics": {"loss": {"steps": [0], "values": [NaN]}}}', 400, "finite"),
    ('{"metrics": {"loss": {"steps": [0, 1], "values": [Infinity, 1]}}}', 400, "finite"),
    ('{"metrics": {"loss": {"steps": [0, 1], "values": [1]}}}', 400, "same length"),
    ('{"metrics": {"loss": {"steps": [-1], "values": [1]}}}', 400, "non-negative"),
    ('{"metrics": {"loss": {"steps": [0.5], "values": [1]}}}', 400, "integers"),
    ('{"metrics": {}}', 400, "must look like"),
    ("not json", 400, "not valid JSON"),
])
def test_malformed_metric_batches_are_rejected_whole(api: TestClient, payload: str, status: int, fragment: str) -> None:
    sid = _session(api)["id"]
    token = _token(api, sid)
    res = api.post(f"/api/v1/sessions/{sid}/metrics", content=payload, headers={"Authorization": f"Bearer {token}"})
    assert res.status_code == status and fragment in res.json()["error"]["message"]
    assert api.get(f"/api/v1/sessions/{sid}/metrics").json() == []


def test_oversize_batches_and_missing_token(api: TestClient) -> None:
    sid = _session(api)["id"]
    token = _token(api, sid)
    api.app.state.platform.settings.max_metric_batch = 100
    body = json.dumps({"metrics": {"x": {"steps": list(range(101)), "values": [0] * 101}}})
    res = api.post(f"/api/v1/sessions/{sid}/metrics", content=body, headers={"Authorization": f"Bearer {token}"})
    assert res.status_code == 413 and "smaller batches" in res.json()["error"]["message"]
    ok = json.dumps({"metrics": {"x": {"steps": [0], "values": [1]}}})
    assert api.post(f"/api/v1/sessions/{sid}/metrics", content=ok, headers={"Authorization": ""}).status_code == 401
    wrong = api.post(f"/api/v1/sessions/{sid}/metrics", content=ok, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    other = _session(api)["id"]  # a session's token writes its own session only
    res = api.post(f"/api/v1/sessions/{other}/metrics", content=ok, headers={"Authorization": f"Bearer {token}"})
    assert res.status_code == 403 and "own token" in res.json()["error"]["message"]


def test_checkpoint_upload_download_and_corruption(api: TestClient) -> None:
    sid = _session(api)["id"]
    token = _token(api, sid)
    blob = bytes(range(256)) * 1000
    res = api.put(f"/api/v1/sessions/{sid}/checkpoints/epoch-1", params={"kind": "file"}, content=blob,
                  headers={"Authorization": f"Bearer {token}"})
    assert res.status_code == 201 and res.json()["size"] == len(blob)
    listed = api.get(f"/api/v1/sessions/{sid}/checkpoints").json()
    assert [c["name"] for c in listed] == ["epoch-1"]
    got = api.get(f"/api/v1/sessions/{sid}/checkpoints/epoch-1")
    assert got.content == blob and got.headers["x-haneul-sha256"] == listed[0]["sha256"]
    assert api.put(f"/api/v1/sessions/{sid}/checkpoints/x", content=b"1", headers={"Authorization": ""}).status_code == 401
    bad_name = api.put(f"/api/v1/sessions/{sid}/checkpoints/.evil", content=b"1",
                       headers={"Authorization": f"Bearer {token}"})
    assert bad_name.status_code == 400
    path = api.app.state.platform._ckpt_store(sid).root / "epoch-1"
    path.write_bytes(b"tampered")
    res = api.get(f"/api/v1/sessions/{sid}/checkpoints/epoch-1")
    assert res.status_code == 500 and res.json()["error"]["code"] == "integrity_error"


def test_log_stream_sse_ends_with_session(api: TestClient) -> None:
    code = "import time\nfor i in range(3):\n    print('line', i, flush=True); time.sleep(0.2)"
    sid = _session(api, code)["id"]
    events = []
    with api.stream("GET", f"/api/v1/sessions/{sid}/stream/logs") as res:
        event = None
        for line in res.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                events.append((event, json.loads(line[5:])))
                if event == "end":
                    break
    lines = [x for ev, data in events if ev == "lines" for x in data]
    assert lines == ["line 0", "line 1", "line 2"] and events[-1][0] == "end"


def test_downsample_keeps_extremes() -> None:
    steps = np.arange(1000)
    values = np.sin(steps / 50.0)
    values[500] = 10.0  # a spike averaging would hide
    s, v = downsample(steps, values, 50)
    assert len(s) <= 50 and 10.0 in v and list(s) == sorted(s)
    s2, v2 = downsample(steps[:10], values[:10], 50)
    assert len(s2) == 10


@pytest.mark.parametrize("command, name", [
    (["python", "train.py", "--lr", "3e-4"], "train.py"),
    (["torchrun", "--nproc-per-node", "2", "src/train.py", "--epochs", "3"], "train.py"),
    (["python", "-m", "pkg.train", "--x", "1"], "pkg.train"),
    (["python", "-c", "print(1)"], "python"),
    (["nvidia-smi"], "nvidia-smi"),
])
def test_a_session_is_named_after_its_script(command: list[str], name: str) -> None:
    from haneul.platform.service import default_name

    assert default_name(command) == name
