"""The API's contract as published: OpenAPI error statuses, the error shape of routing misses, the HTML
error page, and a schemathesis run over the whole document."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from haneul.platform.credentials import local_admin_token
from haneul.platform.executors import Executor, Exit, Handle, LaunchSpec
from haneul.settings import Settings

PY = sys.executable


def test_openapi_documents_400_with_the_error_schema_and_never_422(api: TestClient) -> None:
    spec = api.get("/api/v1/openapi.json").json()
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    checked = 0
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            responses = op["responses"]
            assert "422" not in responses, f"{method.upper()} {path}"
            if op.get("parameters") or op.get("requestBody"):
                checked += 1
                assert responses["400"]["content"]["application/json"]["schema"] == error_ref, f"{method} {path}"
    assert checked >= 20
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    detail = spec["components"]["schemas"]["ErrorDetail"]
    assert set(detail["required"]) == {"code", "message"}
    ingest = spec["paths"]["/api/v1/sessions/{sid}/metrics"]["post"]["responses"]
    assert {"400", "401", "404", "413"} <= set(ingest)
    upload = spec["paths"]["/api/v1/sessions/{sid}/checkpoints/{name}"]["put"]["responses"]
    assert "413" not in upload  # streamed to disk, not bound by the body limit


def test_routing_misses_on_the_api_use_the_error_format(api: TestClient) -> None:
    for path in ("/api/v1/nope", "/api/v1/sessions/1/nope", "/v1/nope"):
        res = api.get(path)
        assert res.status_code == 404 and res.json()["error"]["code"] == "not_found", path
        assert path in res.json()["error"]["message"]
    res = api.delete("/api/v1/sessions")
    assert res.status_code == 405 and res.json()["error"]["code"] == "method_not_allowed"
    assert "DELETE /api/v1/sessions is not allowed" in res.json()["error"]["message"]
    bad = api.get("/api/v1/sessions/abc")
    assert bad.status_code == 400 and "path parameter sid='abc'" in bad.json()["error"]["message"]


def test_page_errors_are_html_pages_in_the_sites_layout(api: TestClient) -> None:
    for path, status, text in [("/sessions/999", 404, "session 999 not found"),
                               ("/no-such-page", 404, "there is no page at /no-such-page"),
                               ("/sessions/abc", 400, "path parameter sid"),
                               ("/compare?ids=1,x", 400, "session numbers separated by commas")]:
        res = api.get(path)
        assert res.status_code == status and res.headers["content-type"].startswith("text/html"), path
        assert text in res.text and 'class="brand"' in res.text and '{"error"' not in res.text, path
    assert api.get("/static/nope.js").json()["error"]["code"] == "not_found"


# -------------------------------------------------------------------------------------- schemathesis


class _NoProcesses(Executor):
    """Sessions that end the moment they start: the fuzzer must not run whatever command it invents."""

    name = "none"

    def start(self, spec: LaunchSpec) -> Handle:
        return Handle(0, "")

    def poll(self, session_id: int) -> Exit | None:
        return Exit(0)

    def stop(self, session_id: int, *, grace: float = 5.0) -> None:
        pass

    def reattach(self, session_id: int, handle: Handle, workdir: Path) -> bool:
        return False


# Operations not fuzzed: they load a language model or call the endpoint named in their body.
NOT_FUZZED = {"POST /v1/completions", "POST /v1/chat/completions", "POST /api/v1/dialog/summarize",
              "POST /api/v1/dialog/respond/{person}", "POST /api/v1/studio/tokens", "POST /api/v1/studio/run",
              "POST /v1/presets/{name}/chat/completions"}


@pytest.fixture
def fuzzed_app(haneul_home: Path, tmp_path: Path) -> Iterator[tuple[Any, int, str]]:
    """The whole app (platform and installed plugins) with one session holding metrics, a checkpoint
    and a log, so that fuzzed requests reach real data as well as 404s; requests carry the local
    admin's token (what it may not do is the accounts tests' business)."""
    from schemathesis.python import asgi

    from haneul.platform.db import Session
    from haneul.platform.server import create_app
    from haneul.platform.service import Platform, _hash_token

    settings = Settings(home=haneul_home, capacity_cpus=4)
    app = create_app(settings, platform=Platform(settings, executor=_NoProcesses()), server_url="http://testserver")
    try:
        with asgi.get_client(app) as client:
            admin = {"Authorization": f"Bearer {local_admin_token(haneul_home)}"}
            sid = client.post("/api/v1/sessions", json={"command": [PY, "-c", "pass"]}, headers=admin).json()["id"]
            with app.state.platform.engine.begin() as conn:
                conn.execute(Session.__table__.update().where(Session.id == sid).values(token_hash=_hash_token("t")))
            auth = {"Authorization": "Bearer t"}
            batch = {"metrics": {"loss": {"steps": [0, 1], "values": [1.0, 0.5]}, "a/b": {"steps": [0], "values": [2.0]}}}
            assert client.post(f"/api/v1/sessions/{sid}/metrics", data=json.dumps(batch), headers=auth).ok
            assert client.put(f"/api/v1/sessions/{sid}/checkpoints/ck", data=b"abc", headers=auth).ok
            assert client.put(f"/api/v1/sessions/{sid}/artifacts/preds/a.csv", data=b"x,y\n1,2\n",
                              headers=auth).ok
            log = Path(app.state.platform.log_path(sid))
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text("one\ntwo\n")
        yield app, sid, admin["Authorization"]
    finally:
        asgi.shutdown_lifespans()  # schemathesis keeps an app's lifespan open until asked


@pytest.mark.filterwarnings("ignore:summary")  # the dialog plugin's note on the blank summaries fuzzed into it
def test_schemathesis_finds_no_server_errors_or_undocumented_statuses(fuzzed_app: tuple[Any, int, str],
                                                                     tmp_path: Path) -> None:
    import schemathesis
    from hypothesis import strategies as st
    from schemathesis import GenerationMode

    app, sid, token = fuzzed_app
    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text("print('hi')\n")
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    problems: list[str] = []
    fuzzed = 0
    for result in schema.get_all_operations():
        op = result.ok()
        if op.label in NOT_FUZZED:
            continue
        fuzzed += 1
        modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        strategies = [op.as_strategy(mode, headers={"Authorization": token}) for mode in modes]
        if "{sid}" in op.path:  # also aim at the session that exists
            strategies += [op.as_strategy(mode, path_parameters={"sid": sid}, headers={"Authorization": token})
                           for mode in modes]
        problems += _fuzz(op.label, st.one_of(strategies), code=code)
    assert fuzzed >= 20
    assert not problems, "\n".join(problems[:20])


def _fuzz(label: str, cases: Any, *, code: Path) -> list[str]:
    """Run one operation's cases; the problems found (5xx, a raised error, an undocumented status)."""
    import hypothesis
    from hypothesis import HealthCheck, Phase
    from schemathesis.checks import not_a_server_error, status_code_conformance

    problems: list[str] = []

    @hypothesis.settings(max_examples=25, deadline=None, derandomize=True, database=None,
                         phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @hypothesis.given(case=cases)
    def check(case: Any) -> None:
        if isinstance(case.body, dict) and case.body.get("cwd") is not None:
            case.body["cwd"] = str(code)  # never snapshot whatever folder the fuzzer names
        try:
            response = case.call(timeout=20)
        except Exception as exc:  # the server raised past its error handlers
            problems.append(f"{label}: {exc.__class__.__name__}: {exc}"[:300])
            return
        try:
            case.validate_response(response, checks=[not_a_server_error, status_code_conformance])
        except BaseExceptionGroup as failures:
            problems.append(f"{label} {response.status_code}: {failures}"[:300] + f" <- {response.text[:200]}")

    check()
    return problems
