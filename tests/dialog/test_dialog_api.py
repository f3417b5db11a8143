from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from haneul.dialog.api import create_router, plugin
from haneul.dialog.stores import DIALOG_MIGRATIONS, MemoryStore
from haneul.errors import HaneulError


def client(store: MemoryStore) -> TestClient:
    app = FastAPI()

    @app.exception_handler(HaneulError)
    async def _err(_request: Request, exc: HaneulError) -> JSONResponse:  # what the haneul server does
        return JSONResponse({"error": exc.to_dict()}, status_code=exc.http_status)

    app.include_router(create_router(store))
    return TestClient(app)


def test_rest_memory_round_trip(tmp_path):
    c = client(MemoryStore(f"sqlite:///{tmp_path / 'memory.db'}"))
    assert c.get("/api/v1/dialog/memory/kim").json() == {"person": "kim", "version": 0, "sentences": []}
    r = c.post("/api/v1/dialog/memory/kim/update", json={"summary": ["이가 아파서 치과에 다니심"], "operator": "lexical"})
    assert r.status_code == 200 and r.json()["version"] == 1
    r = c.post("/api/v1/dialog/memory/kim/update", json={"summary": ["이가 아팠으나 다 나음"], "operator": "lexical"})
    assert r.json()["new_memory"] == ["이가 아팠으나 다 나음"] and r.json()["ops"][0]["op"] == "REPLACE"
    assert [v["version"] for v in c.get("/api/v1/dialog/memory/kim/history").json()] == [1, 2]
    assert c.post("/api/v1/dialog/memory/kim/revert", json={"version": 1}).json()["sentences"] == ["이가 아파서 치과에 다니심"]
    r = c.post("/api/v1/dialog/respond/kim", json={"dialogue": [{"role": "user", "text": "치과에 가요"}]})
    assert r.json()["used_memory"] == ["이가 아파서 치과에 다니심"]
    assert c.get("/api/v1/dialog/memory").json() == {"people": ["kim"]}


def test_rest_errors_are_one_line_with_status(tmp_path):
    c = client(MemoryStore(f"sqlite:///{tmp_path / 'memory.db'}"))
    r = c.post("/api/v1/dialog/memory/kim/update", json={"summary": [], "operator": "lexical"})
    assert r.status_code == 400 and "no sentences" in r.json()["error"]["message"]
    r = c.post("/api/v1/dialog/memory/kim/revert", json={"version": 4})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = c.post("/api/v1/dialog/memory/kim/update", json={"summary": ["노인정에 다니심"], "expected_version": 3})
    assert r.status_code == 409 and "reload" in r.json()["error"]["message"]


def test_the_plugin_keeps_memory_in_the_server_database_and_reads_no_global_settings(tmp_path, monkeypatch):
    import torch
    from sqlalchemy import create_engine, text

    from haneul.dialog.model import PairClassifier, PairClassifierConfig, save_classifier
    from haneul.dialog.testing import dialog_app

    home = tmp_path / "server-home"
    torch.manual_seed(0)
    save_classifier(PairClassifier(PairClassifierConfig.from_name("tiny")), "default", home=home)

    def no_globals():
        raise AssertionError("the dialog plugin read the global settings")

    with monkeypatch.context() as patch:  # undone before the home fixture reloads the settings
        patch.setattr("haneul.settings.get_settings", no_globals)
        app = dialog_app(home)
        with TestClient(app) as c:
            for operator in ("auto", "classifier"):  # both find the classifier under the server's home
                r = c.post("/api/v1/dialog/memory/kim/update", json={"summary": ["노인정에 다니심"], "operator": operator})
                assert r.status_code == 200 and r.json()["operator"] == "classifier"
            assert c.get("/api/v1/dialog/memory/kim").json()["version"] == 2
    app.state.engine.dispose()
    from haneul.settings import Settings

    with create_engine(Settings(home=home).database_url).connect() as conn:  # SQLite, or the run's PostgreSQL
        assert conn.execute(text("SELECT count(*) FROM dialog_memory_versions")).scalar() == 2


def test_the_plugin_gives_routes_and_migrations_only(tmp_path):
    from sqlalchemy.orm import sessionmaker

    from haneul.platform.db import make_engine
    from haneul.platform.plugins import Plugin, ServerContext
    from haneul.settings import Settings

    engine = make_engine(f"sqlite:///{tmp_path / 'haneul.db'}")
    ctx = ServerContext(name="dialog", settings=Settings(home=tmp_path), engine=engine,
                        sessions=sessionmaker(engine), artifacts=tmp_path / "a")
    got = plugin(ctx)
    assert isinstance(got, Plugin) and got.migrations == DIALOG_MIGRATIONS
    assert sorted(p.name for p in Path(got.migrations).glob("*.py")) == ["0001_dialog_memory.py"]
    assert got.router is not None and {r.path for r in got.router.routes} >= {
        "/api/v1/dialog/memory", "/api/v1/dialog/memory/{person}/update", "/api/v1/dialog/summarize"}
    assert (got.templates, got.static, tuple(got.nav)) == (None, None, ())
    engine.dispose()


DIALOG = Path(__import__("haneul.dialog", fromlist=["_"]).__file__).parent


def dialog_source(name: str) -> Path:
    path = DIALOG.joinpath(*name.split("."))
    return path.with_suffix(".py") if path.with_suffix(".py").exists() else path / "__init__.py"


def dialog_modules() -> list[str]:
    found = []
    for f in sorted(DIALOG.rglob("*.py")):
        rel = f.relative_to(DIALOG).with_suffix("")
        if rel.parts[0] not in ("migrations", "data") and rel.parts != ("__init__",):
            found.append(".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts))
    return found


@pytest.mark.parametrize("module", dialog_modules())
def test_no_dialog_module_imports_one_that_imports_it_back(module):
    import ast

    def imports(name: str) -> set[str]:
        """haneul.dialog modules ``name`` imports anywhere in its file (also inside functions)."""
        found = set()
        for node in ast.walk(ast.parse(dialog_source(name).read_text(encoding="utf-8"))):
            targets = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found |= {t.removeprefix("haneul.dialog.") for t in targets if t.startswith("haneul.dialog.")}
        return {m for m in found if dialog_source(m).exists()}

    seen, todo = set(), [module]
    while todo:  # everything reachable from `module`
        for dep in imports(todo.pop()):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    assert module not in seen, f"haneul.dialog.{module} imports itself back through {sorted(seen)}"


def test_an_unusable_endpoint_url_is_a_400_not_a_server_error(tmp_path):
    c = client(MemoryStore(f"sqlite:///{tmp_path / 'memory.db'}"))
    r = c.post("/api/v1/dialog/respond/kim", json={"dialogue": [{"role": "user", "text": "안녕하세요"}],
                                                   "endpoint": "http://bad\x01host/v1"})
    assert r.status_code == 400 and "is not a usable URL" in r.json()["error"]["message"]
