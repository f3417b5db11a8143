from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from haneul.dialog.api import create_router
from haneul.errors import HaneulError


def client() -> TestClient:
    app = FastAPI()

    @app.exception_handler(HaneulError)
    async def _err(_request: Request, exc: HaneulError) -> JSONResponse:  # what the haneul server does
        return JSONResponse({"error": exc.to_dict()}, status_code=exc.http_status)

    app.include_router(create_router())
    return TestClient(app)


def test_rest_memory_round_trip():
    c = client()
    assert c.get("/api/v1/dialog/memory/kim").json() == {"person": "kim", "version": 0, "sentences": []}
    r = c.post("/api/v1/dialog/memory/kim/update", json={"summary": ["이가 아파서 치과에 다니심"], "operator": "lexical"})
    assert r.status_code == 200 and r.json()["version"] == 1
    r = c.post("/api/v1/dialog/memory/kim/update", json={"summary": ["이가 아팠으나 다 나음"], "operator": "lexical"})
    assert r.json()["new_memory"] == ["이가 아팠으나 다 나음"] and r.json()["ops"][0]["op"] == "REPLACE"
    assert [v["version"] for v in c.get("/api/v1/dialog/memory/kim/history").json()] == [1, 2]
    assert c.post("/api/v1/dialog/memory/kim/revert", json={"version": 1}).json()["sentences"] == ["이가 아파서 치과에 다니심"]
    r = c.post("/api/v1/dialog/respond/kim", json={"dialogue": [{"role": "user", "text": "치과에 가요"}]})
    assert r.json()["used_memory"] == ["이가 아파서 치과에 다니심"]


def test_rest_errors_are_one_line_with_status():
    c = client()
    r = c.post("/api/v1/dialog/memory/kim/update", json={"summary": [], "operator": "lexical"})
    assert r.status_code == 400 and "no sentences" in r.json()["error"]["message"]
    r = c.post("/api/v1/dialog/memory/kim/revert", json={"version": 4})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
