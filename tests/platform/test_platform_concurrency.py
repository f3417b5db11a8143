"""Many writers at once, on SQLite and (in ``make test-postgres``) PostgreSQL: no deadlock, no lost write."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

WRITERS = 100
SESSIONS = 5
POINTS = 50


def _write(api: TestClient, sids: list[int], i: int) -> list[int]:
    """One writer: a metric batch, a param, a tag and a saved view, each its own request."""
    sid = sids[i % SESSIONS]
    batch = {"metrics": {f"w{i}": {"steps": list(range(POINTS)), "values": [float(i)] * POINTS}}}
    return [
        api.post(f"/api/v1/sessions/{sid}/metrics", json=batch).status_code,
        api.post(f"/api/v1/sessions/{sid}/params", json={"params": {f"p{i}": i}}).status_code,
        api.patch(f"/api/v1/sessions/{sid}", json={"tags": {f"t{i}": str(i)}}).status_code,
        api.post("/api/v1/views", json={"name": f"view {i}", "filter": f"params.p{i} = {i}"}).status_code,
    ]


def test_a_hundred_concurrent_writers_neither_deadlock_nor_lose_a_write(api: TestClient) -> None:
    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
    sids = [api.post("/api/v1/sessions", json={"command": sleeper}).json()["id"] for _ in range(SESSIONS)]
    try:
        with ThreadPoolExecutor(WRITERS) as pool:
            codes = list(pool.map(lambda i: _write(api, sids, i), range(WRITERS)))
        assert [c for row in codes for c in row if not 200 <= c < 300] == []
        for n, sid in enumerate(sids):
            mine = range(n, WRITERS, SESSIONS)
            session = api.get(f"/api/v1/sessions/{sid}").json()
            assert {k: v for k, v in session["params"].items() if k.startswith("p")} == {f"p{i}": i for i in mine}
            assert {k: v for k, v in session["tags"].items() if k.startswith("t")} == {f"t{i}": str(i) for i in mine}
            keys = {k["key"]: k for k in api.get(f"/api/v1/sessions/{sid}/metrics").json()}
            assert {k for k in keys if k.startswith("w")} == {f"w{i}" for i in mine}
            assert all(keys[f"w{i}"]["count"] == POINTS for i in mine)
        views = {v["name"] for v in api.get("/api/v1/views").json()}
        assert {f"view {i}" for i in range(WRITERS)} <= views
    finally:
        for sid in sids:
            api.post(f"/api/v1/sessions/{sid}/stop")
