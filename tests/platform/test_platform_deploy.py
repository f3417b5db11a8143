"""Deployments end to end: a training session's checkpoint served by real replica processes, request
metrics, micro-batching, undeploy, restart survival, the bad inputs and the model registry."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from platform_helpers import LiveServer, start_server, wait_for

from haneul.platform.executors.local import process_start_time

# y = a*x + b fitted by least squares on five points; binds save/load/infer before training
TRAIN = textwrap.dedent("""
    import json, os
    import haneul

    state = {}

    def save(folder):
        with open(os.path.join(folder, "model.json"), "w") as fh:
            json.dump(state, fh)

    def load(folder):
        with open(os.path.join(folder, "model.json")) as fh:
            state.update(json.load(fh))

    def infer(inputs):
        with open(os.environ["BATCH_LOG"], "a") as fh:
            fh.write(f"{len(inputs)}\\n")
        if "boom" in inputs:
            raise ValueError("cannot read boom")
        if "short" in inputs:
            return []
        return [state["a"] * x + state["b"] for x in inputs]

    haneul.bind(save=save, load=load, infer=infer)

    xs, ys = [0.0, 1.0, 2.0, 3.0, 4.0], [1.0, 3.1, 4.9, 7.2, 8.8]
    mx, my = sum(xs) / 5, sum(ys) / 5
    a = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    state.update(a=a, b=my - a * mx)
    haneul.save("fit")
    open("trained.marker", "w").write("training ran")
""")

NO_INFER = textwrap.dedent("""
    import haneul
    haneul.bind(save=lambda d: open(d + "/w", "w").write("1"), load=lambda d: None)
    haneul.save("w")
""")


def fitted(x: float) -> float:
    """The same least-squares fit computed here, in process."""
    xs, ys = [0.0, 1.0, 2.0, 3.0, 4.0], [1.0, 3.1, 4.9, 7.2, 8.8]
    mx, my = sum(xs) / 5, sum(ys) / 5
    a = sum((u - mx) * (v - my) for u, v in zip(xs, ys, strict=True)) / sum((u - mx) ** 2 for u in xs)
    return a * x + (my - a * mx)


def run_session(server: LiveServer, folder: Path, script: str, *env: str) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.py").write_text(script)
    args = [arg for pair in env for arg in ("--env", pair)]
    done = server.cli("run", "-f", "--name", "lin", *args, "--", "python", "train.py", cwd=folder)
    assert done.returncode == 0, done.stdout + done.stderr
    return int(json.loads(server.cli("ps", "--json").stdout)["items"][0]["id"])  # the newest first


def deploy(server: LiveServer, *args: str) -> dict:
    done = server.cli("deploy", *args, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def batch_sizes(log: Path) -> list[int]:
    return [int(line) for line in log.read_text().split()] if log.exists() else []


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("deploy-home"))
    try:
        yield live
    finally:
        with live.http() as http:
            for d in http.get("/api/v1/deployments").json():
                if d["status"] in ("starting", "running", "degraded"):
                    http.delete(f"/api/v1/deployments/{d['name']}")
        live.stop()


@pytest.fixture(scope="module")
def trained(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path]:
    folder = tmp_path_factory.mktemp("lin")
    log = folder / "batches.log"
    sid = run_session(server, folder / "code", TRAIN, f"BATCH_LOG={log}")
    return sid, log


def test_deploy_predicts_like_the_fit_in_process_and_records_metrics(server: LiveServer, trained: tuple[int, Path]) -> None:
    sid, _ = trained
    d = deploy(server, str(sid), "--name", "lin", "--replicas", "2")
    assert d["status"] == "running" and d["replicas_ready"] == 2 and d["checkpoint"] == "fit"
    with server.http() as http:
        res = http.post("/api/v1/deployments/lin/predict", json={"inputs": [0.5, 2, -3]})
        assert res.status_code == 200
        assert res.json()["predictions"] == pytest.approx([fitted(0.5), fitted(2), fitted(-3)])
        assert http.post("/api/v1/deployments/lin/predict", json={"input": 10}).json() == \
            {"prediction": pytest.approx(fitted(10))}
        for _ in range(6):
            assert http.post("/api/v1/deployments/lin/predict", json={"inputs": [1]}).status_code == 200
        metrics = http.get("/api/v1/deployments/lin").json()["metrics"]
        assert metrics["requests"] == 8 and metrics["errors"] == 0
        assert 0 < metrics["p50_ms"] <= metrics["p99_ms"]
        page = http.get("/deployments/lin")
        assert page.status_code == 200 and "p99" in page.text and f"/sessions/{sid}" in page.text
        assert "serving checkpoint" in page.text  # a replica's log tail
        assert "lin" in http.get("/deployments").text
    # training code after bind never ran in the replicas: only the session's own run left the marker
    listed = json.loads(server.cli("deployments", "--json").stdout)
    assert [x["name"] for x in listed if x["name"] == "lin"] == ["lin"]


def test_bad_inputs_answer_one_line_errors_and_the_replica_keeps_serving(
        server: LiveServer, trained: tuple[int, Path]) -> None:
    sid, _ = trained
    deploy(server, str(sid), "--name", "lin-bad")
    with server.http() as http:
        url = "/api/v1/deployments/lin-bad/predict"
        boom = http.post(url, json={"inputs": [1, "boom"]})
        assert boom.status_code == 502
        assert "ValueError: cannot read boom" in boom.json()["error"]["message"]
        short = http.post(url, json={"inputs": [1, "short"]})
        assert short.status_code == 502 and "0 predictions for 2 inputs" in short.json()["error"]["message"]
        for body in ({"inputs": 3}, {"x": [1]}, [1, 2]):
            assert http.post(url, json=body).status_code == 400
        assert http.post(url, content=b"not json").status_code == 400
        assert http.post(url, json={"inputs": [2]}).json()["predictions"] == pytest.approx([fitted(2)])
        assert http.get("/api/v1/deployments/lin-bad").json()["metrics"]["errors"] == 2
        assert http.post("/api/v1/deployments/nope/predict", json={"inputs": [1]}).status_code == 404
    again = server.cli("deploy", str(sid), "--name", "lin-bad")
    assert again.returncode != 0 and "already running" in again.stderr
    missing = server.cli("deploy", "999")
    assert missing.returncode != 0 and "session 999 not found" in missing.stderr
    ckpt = server.cli("deploy", str(sid), "--checkpoint", "nope")
    assert ckpt.returncode != 0 and "no checkpoint 'nope'" in ckpt.stderr
    assert server.cli("undeploy", "nope").returncode != 0


def test_a_replica_that_is_down_answers_503_while_others_serve(server: LiveServer, trained: tuple[int, Path]) -> None:
    sid, _ = trained
    d = deploy(server, str(sid), "--name", "lin-down", "--replicas", "2")
    first, second = (r["pid"] for r in d["replicas"])
    with server.http() as http:
        url = "/api/v1/deployments/lin-down/predict"
        os.killpg(first, signal.SIGKILL)
        wait_for(lambda: process_start_time(first) is None, timeout=10)
        for _ in range(4):  # the dead one is skipped
            assert http.post(url, json={"inputs": [1]}).status_code == 200
        os.killpg(second, signal.SIGKILL)
        wait_for(lambda: process_start_time(second) is None, timeout=10)
        down = http.post(url, json={"inputs": [1]})
        assert down.status_code == 503 and "lin-down" in down.json()["error"]["message"]
        # the supervisor starts both again after its backoff
        def restarted() -> dict | None:
            x = http.get("/api/v1/deployments/lin-down").json()
            return x if x["status"] == "running" and all(r["restarts"] == 1 for r in x["replicas"]) else None

        back = wait_for(restarted, timeout=30)
        assert {r["pid"] for r in back["replicas"]}.isdisjoint({first, second})
        assert http.post(url, json={"inputs": [1]}).status_code == 200


def test_micro_batching_gathers_concurrent_requests(server: LiveServer, trained: tuple[int, Path]) -> None:
    sid, log = trained
    deploy(server, str(sid), "--name", "lin-batch", "--batch", "4", "--batch-wait-ms", "300")
    log.unlink(missing_ok=True)
    results: dict[int, float] = {}
    with server.http() as http:
        def call(i: int) -> None:
            res = http.post("/api/v1/deployments/lin-batch/predict", json={"input": i})
            results[i] = res.json()["prediction"]

        threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert results == {i: pytest.approx(fitted(i)) for i in range(8)}
    sizes = batch_sizes(log)
    assert sum(sizes) == 8 and max(sizes) <= 4 and len(sizes) < 8


def test_undeploy_stops_the_processes(server: LiveServer, trained: tuple[int, Path]) -> None:
    sid, _ = trained
    d = deploy(server, str(sid), "--name", "lin-stop", "--replicas", "2")
    pids = [r["pid"] for r in d["replicas"]]
    assert all(process_start_time(p) is not None for p in pids)
    done = server.cli("undeploy", "lin-stop")
    assert done.returncode == 0 and "stopped" in done.stdout
    assert all(process_start_time(p) is None for p in pids)
    with server.http() as http:
        assert http.get("/api/v1/deployments/lin-stop").json()["status"] == "stopped"
        res = http.post("/api/v1/deployments/lin-stop/predict", json={"inputs": [1]})
        assert res.status_code == 503 and "stopped" in res.json()["error"]["message"]
    assert server.cli("undeploy", "lin-stop").returncode != 0  # nothing left to stop
    deploy(server, str(sid), "--name", "lin-stop")  # the name of a stopped deployment is free again
    assert server.cli("undeploy", "lin-stop").returncode == 0


def test_a_script_without_infer_fails_the_deploy_in_one_line(server: LiveServer, tmp_path: Path) -> None:
    sid = run_session(server, tmp_path / "code", NO_INFER)
    done = server.cli("deploy", str(sid), "--name", "no-infer")
    assert done.returncode != 0
    line = done.stderr.strip().splitlines()[-1]
    assert f"session {sid}'s code never called haneul.bind(infer=...); bind load and infer before training" in line
    with server.http() as http:
        assert http.get("/api/v1/deployments/no-infer").json()["status"] == "failed"


def test_models_register_alias_and_deploy_by_name(server: LiveServer, trained: tuple[int, Path]) -> None:
    sid, _ = trained
    assert "model lin-model version 1" in server.cli("model", "register", "lin-model", f"{sid}:fit").stdout
    second = server.cli("model", "register", "lin-model", f"{sid}:fit", "--alias", "production")
    assert "version 2 (production)" in second.stdout
    info = json.loads(server.cli("model", "info", "lin-model", "--json").stdout)
    assert [v["version"] for v in info["versions"]] == [1, 2] and info["aliases"] == {"production": 2}
    moved = json.loads(server.cli("model", "alias", "lin-model", "1", "production", "--json").stdout)
    assert moved["aliases"] == {"production": 1}
    listed = json.loads(server.cli("model", "ls", "--json").stdout)
    assert [(m["name"], m["versions"], m["latest"]) for m in listed] == [("lin-model", 2, 2)]
    missing = server.cli("model", "register", "lin-model", f"{sid}:nope")
    assert missing.returncode != 0 and "no checkpoint 'nope'" in missing.stderr
    assert server.cli("model", "alias", "lin-model", "9", "production").returncode != 0
    d = deploy(server, "model:lin-model@production", "--name", "by-model")
    assert (d["session_id"], d["checkpoint"], d["model"]) == (sid, "fit", "lin-model:1")
    with server.http() as http:
        assert http.post("/api/v1/deployments/by-model/predict", json={"input": 1}).json()["prediction"] == \
            pytest.approx(fitted(1))
        assert http.get("/api/v1/models/nope").status_code == 404
    unknown_alias = server.cli("deploy", "model:lin-model@staging")
    assert unknown_alias.returncode != 0 and "no alias 'staging'" in unknown_alias.stderr
    assert server.cli("undeploy", "by-model").returncode == 0


@pytest.mark.slow
def test_a_deployment_survives_a_server_kill(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = start_server(home)
    try:
        sid = run_session(first, tmp_path / "code", TRAIN, f"BATCH_LOG={tmp_path / 'b.log'}")
        d = deploy(first, str(sid), "--name", "survivor")
        pid = d["replicas"][0]["pid"]
    finally:
        first.kill()  # SIGKILL: no shutdown code runs
    second = start_server(home)
    try:
        with second.http() as http:
            after = http.get("/api/v1/deployments/survivor").json()
            assert after["status"] == "running" and after["replicas"][0]["pid"] == pid  # re-attached, not restarted
            res = http.post("/api/v1/deployments/survivor/predict", json={"inputs": [3]})
            assert res.json()["predictions"] == pytest.approx([fitted(3)])
        assert second.cli("undeploy", "survivor").returncode == 0
        assert process_start_time(pid) is None
    finally:
        second.stop()


def test_predict_needs_a_known_deployment_and_checks_the_body_first(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url, headers=server.headers()) as http:
        assert http.get("/api/v1/deployments/none-such").status_code == 404
        assert http.delete("/api/v1/deployments/none-such").status_code == 404
        assert http.post("/api/v1/deployments", json={}).status_code == 400  # neither session nor model


@pytest.mark.browser
def test_the_deployment_page_refreshes_its_request_metrics(server: LiveServer, trained: tuple[int, Path],
                                                           page: object) -> None:
    sid, _ = trained
    deploy(server, str(sid), "--name", "lin-page")
    page.goto(server.login_url("/deployments/lin-page"))  # type: ignore[attr-defined]
    assert page.text_content("#m-requests") == "0"  # type: ignore[attr-defined]
    with server.http() as http:
        for x in range(3):
            assert http.post("/api/v1/deployments/lin-page/predict", json={"input": x}).status_code == 200
    page.wait_for_function("document.getElementById('m-requests').textContent === '3'",  # type: ignore[attr-defined]
                           timeout=10_000)
    assert page.text_content("#m-p50") != "-"  # type: ignore[attr-defined]
    assert "1 / 1 ready" in page.text_content("#ready")  # type: ignore[attr-defined]
    assert server.cli("undeploy", "lin-page").returncode == 0


def test_another_team_cannot_see_and_a_viewer_may_only_predict(server: LiveServer, trained: tuple[int, Path]) -> None:
    sid, _ = trained
    deploy(server, str(sid), "--name", "lin-acl")
    assert server.cli("model", "register", "lin-acl-model", f"{sid}:fit").returncode == 0
    with server.http() as admin:
        team = admin.get(f"/api/v1/sessions/{sid}").json()["team_id"]
        team_name = next(t["name"] for t in admin.get("/api/v1/teams").json() if t["id"] == team)
        assert admin.post("/api/v1/teams", json={"name": "other"}).status_code == 201

        def user(name: str, team: str, role: str) -> dict[str, str]:
            assert admin.post("/api/v1/users", json={"name": name, "team": team, "role": role}).status_code == 201
            token = admin.post(f"/api/v1/users/{name}/tokens", json={"name": "t"}).json()["token"]
            return {"Authorization": f"Bearer {token}"}

        stranger, viewer = user("eve", "other", "member"), user("val", team_name, "viewer")
    with httpx.Client(base_url=server.url, headers=stranger) as http:
        assert http.get("/api/v1/deployments/lin-acl").status_code == 404
        assert http.post("/api/v1/deployments/lin-acl/predict", json={"input": 1}).status_code == 404
        assert http.delete("/api/v1/deployments/lin-acl").status_code == 404
        assert "lin-acl" not in http.get("/api/v1/deployments").text
        assert http.get("/api/v1/models/lin-acl-model").status_code == 404
        assert http.post("/api/v1/deployments", json={"session": sid, "name": "x"}).status_code == 404
    with httpx.Client(base_url=server.url, headers=viewer) as http:
        assert http.post("/api/v1/deployments/lin-acl/predict", json={"input": 1}).status_code == 200
        assert http.delete("/api/v1/deployments/lin-acl").status_code == 403
        assert http.post("/api/v1/models/lin-acl-model/aliases", json={"version": 1, "alias": "prod"}).status_code == 403
        assert http.post("/api/v1/deployments", json={"session": sid, "name": "x"}).status_code == 403
    assert server.cli("undeploy", "lin-acl").returncode == 0
