"""The controller on a live server: pruning fed by the server, failures, stop/resume, restarts,
define-by-run, PBT lineage and access."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from tune_helpers import QUADRATIC

from haneul.platform.testing import LiveServer, start_server, wait_for

#: the quadratic task, slow enough to be seen running: 8 steps of 0.3 s
SLOW_ARGS = ("--steps", "8", "--sleep", "0.3")


#: PBT's toy task: a weight grows by lr per step; the score is the weight. Saves every 2 steps and
#: starts from haneul.load() (its own checkpoint after a resume, the parent's after a fork).
GROW = '''
import argparse, time
import haneul
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, required=True)
a = p.parse_args()
state = haneul.load() or {"step": 0, "w": 0.0}
step, w = state["step"], state["w"]
while step < 12:
    step += 1
    w += a.lr
    haneul.report(step=step, score=w)
    if step % 2 == 0:
        haneul.save("s%d" % step, {"step": step, "w": w})
    haneul.flush()
    time.sleep(0.25)
'''


def write(folder: Path, name: str, code: str) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(code)
    return folder


def spec(folder: Path, script: str = "train.py", **over: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": "s", "command": [sys.executable, script, "--x", "{x}", *SLOW_ARGS], "cwd": str(folder),
        "objective": {"metric": "loss", "direction": "minimize"},
        "space": {"x": {"type": "float", "low": -1.0, "high": 1.0}},
        "budget": {"trials": 4, "concurrent": 2, "cpus": 1},
        "algorithm": {"sampler": "random", "seed": 0},
    }
    raw.update(over)
    return raw


def create(http: httpx.Client, raw: dict[str, Any]) -> dict[str, Any]:
    res = http.post("/api/v1/tune/studies", json={"spec": raw})
    assert res.status_code == 201, res.text
    return res.json()


def ended(http: httpx.Client, name: str, timeout: float = 120) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        s = http.get(f"/api/v1/tune/studies/{name}").json()
        return s if s["status"] != "running" else None

    return wait_for(check, timeout=timeout, interval=0.3)


def trials(http: httpx.Client, name: str) -> list[dict[str, Any]]:
    return http.get(f"/api/v1/tune/studies/{name}/trials").json()


def test_the_server_feeds_the_pruner_and_a_pruned_trial_frees_its_slot(tune_server: LiveServer, tmp_path: Path) -> None:
    code = write(tmp_path / "c", "train.py", QUADRATIC)
    raw = spec(code, budget={"trials": 4, "concurrent": 1, "cpus": 1},
               algorithm={"sampler": "random", "pruner": "median", "seed": 0,
                          "pruner_args": {"n_startup_trials": 2, "n_warmup_steps": 1}},
               enqueue=[{"x": 0.3}, {"x": 0.35}, {"x": -1.0}, {"x": 1.0}])
    with tune_server.http() as http:
        create(http, raw)
        s = ended(http, "s")
        assert s["status"] == "done", s
        rows = trials(http, "s")
        assert [r["params"]["x"] for r in rows] == [0.3, 0.35, -1.0, 1.0]  # hand-written trials, in order
        assert [r["state"] for r in rows] == ["complete", "complete", "pruned", "pruned"], rows
        for r in rows[2:]:
            assert r["last_step"] < 8 and r["reason"].startswith("pruned at step")
            session = http.get(f"/api/v1/sessions/{r['session_id']}").json()
            assert session["status"] == "stopped"  # stopped by the server, not by the trial itself
        inter = http.get("/api/v1/tune/studies/s/intermediate").json()
        assert inter[0]["steps"] == list(range(1, 9)) and inter[0]["values"][-1] == pytest.approx(1 / 8)


def test_trials_that_fail_stop_the_study_with_the_reason(tune_server: LiveServer, tmp_path: Path) -> None:
    code = write(tmp_path / "c", "crash.py", "import sys; sys.exit(3)\n")
    write(code, "silent.py", "print('trained, reported nothing')\n")
    with tune_server.http() as http:
        for name in ("crash", "silent"):
            create(http, spec(code, f"{name}.py", name=name, command=[sys.executable, f"{name}.py"],
                              budget={"trials": 10, "concurrent": 1, "max_failures": 2}))
        crash, silent = ended(http, "crash"), ended(http, "silent")
        assert crash["status"] == "failed" and "2 trials in a row failed" in crash["reason"]
        assert "failed" in crash["reason"] and "haneul logs" in crash["reason"]
        assert crash["launched"] == 2
        assert silent["status"] == "failed"
        assert "finished without reporting the objective 'loss'" in silent["reason"]


def test_stop_pauses_the_trials_and_resume_finishes_them(tune_server: LiveServer, tmp_path: Path) -> None:
    code = write(tmp_path / "c", "train.py", QUADRATIC)
    with tune_server.http() as http:
        create(http, spec(code, budget={"trials": 2, "concurrent": 2, "cpus": 1}))
        wait_for(lambda: len([r for r in trials(http, "s") if (r["last_step"] or 0) >= 2]) == 2, timeout=60)
        stopped = http.post("/api/v1/tune/studies/s/stop").json()
        assert stopped["status"] == "stopped"
        sids = [r["session_id"] for r in trials(http, "s")]
        wait_for(lambda: all(http.get(f"/api/v1/sessions/{sid}").json()["status"] == "paused" for sid in sids),
                 timeout=30)
        assert http.post("/api/v1/tune/studies/s/stop").status_code == 409
        assert http.post("/api/v1/tune/studies/s/resume").json()["status"] == "running"
        s = ended(http, "s")
        assert s["status"] == "done" and s["launched"] == 2  # the paused trials counted once
        for r in trials(http, "s"):
            assert r["state"] == "complete" and r["value"] == pytest.approx((r["params"]["x"] - 0.3) ** 2 + 1 / 8)


def test_a_killed_server_resumes_its_study(haneul_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANEUL_CAPACITY_CPUS", "2")
    code = write(tmp_path / "c", "train.py", QUADRATIC)
    server = start_server(haneul_home)
    try:
        with server.http() as http:
            create(http, spec(code, budget={"trials": 3, "concurrent": 2, "cpus": 1}))
            wait_for(lambda: any((r["last_step"] or 0) >= 1 for r in trials(http, "s")), timeout=60)
        server.kill()
        time.sleep(0.5)
        server = start_server(haneul_home, port=server.port)  # the trials report to the same address
        with server.http() as http:
            s = ended(http, "s")
            assert s["status"] == "done", s
            rows = trials(http, "s")
            assert len(rows) == 3 and all(r["state"] == "complete" for r in rows), rows
    finally:
        server.stop()


def test_define_by_run_params_come_from_the_studys_sampler(tune_server: LiveServer, tmp_path: Path) -> None:
    code = write(tmp_path / "c", "train.py", (
        "import haneul\n"
        "x = haneul.param('x', -1.0, 1.0)\n"
        "y = haneul.param('y', 0.0, 1.0)\n"
        "assert haneul.param('y', 0.0, 1.0) == y\n"  # asked twice: the same value
        "n = haneul.param('n', 1, 4)\n"
        "assert isinstance(n, int)\n"
        "haneul.report(step=1, loss=y + n)\n"))
    raw = spec(code, budget={"trials": 3, "concurrent": 1}, command=[sys.executable, "train.py"])
    raw["pass"] = "env"
    with tune_server.http() as http:
        create(http, raw)
        assert ended(http, "s")["status"] == "done"
        for r in trials(http, "s"):
            assert set(r["params"]) == {"x", "y", "n"}, r
            assert 0 <= r["params"]["y"] <= 1 and r["value"] == pytest.approx(r["params"]["y"] + r["params"]["n"])
    import haneul

    assert haneul.param("lr", 1e-4, 1e-2, log=True) == pytest.approx(1e-3)  # outside a study: the middle
    assert haneul.param("opt", choices=["adamw", "sgd"]) == "adamw"


def test_pbt_forks_the_better_trial_and_records_lineage(tune_server: LiveServer, tmp_path: Path) -> None:
    """lr 0.01 is the worst at any boundary, so it is replaced whoever it is ranked against; on a busy
    machine the other two may meet at step 4 before it gets there, and one of them is replaced first
    (asynchronous PBT ranks the trials that got as far), hence a budget for two replacements."""
    code = write(tmp_path / "c", "grow.py", GROW)
    raw = spec(code, "grow.py", name="pbt", command=[sys.executable, "grow.py"],
               objective={"metric": "score", "direction": "maximize"},
               space={"lr": {"type": "float", "low": 0.01, "high": 1.0, "log": True}},
               budget={"trials": 5, "concurrent": 3, "cpus": 0.5},
               algorithm={"sampler": "pbt", "seed": 0},
               pbt={"population": 3, "interval": 4, "quantile": 0.34, "resample": 0.0},
               enqueue=[{"lr": 1.0}, {"lr": 0.5}, {"lr": 0.01}])
    with tune_server.http() as http:
        create(http, raw)
        s = ended(http, "pbt", timeout=120)
        assert s["status"] == "done", s
        rows = {r["number"]: r for r in trials(http, "pbt")}
        assert rows[2]["state"] == "replaced", rows  # lr 0.01 is the worst wherever it is judged
        assert rows[0]["state"] == "complete"  # the best is never replaced
        children = [r for r in rows.values() if r["parent_trial"] is not None]
        assert 1 <= len(children) <= 2 and len(children) == sum(r["state"] == "replaced" for r in rows.values())
        inter = {t["number"]: t for t in http.get("/api/v1/tune/studies/pbt/intermediate").json()}
        for child in children:
            parent = rows[child["parent_trial"]]
            assert parent["params"]["lr"] > rows[2]["params"]["lr"]
            assert child["params"]["lr"] == pytest.approx(parent["params"]["lr"] * 0.8) or \
                child["params"]["lr"] == pytest.approx(min(1.0, parent["params"]["lr"] * 1.2))
            session = http.get(f"/api/v1/sessions/{child['session_id']}").json()
            assert session["parent_id"] == parent["session_id"]
            assert inter[child["number"]]["steps"][0] > 4  # it went on from the parent's checkpoint


def test_another_teams_study_is_404_and_edits_apply_to_new_trials(tune_server: LiveServer, tmp_path: Path) -> None:
    code = write(tmp_path / "c", "train.py", QUADRATIC)
    with tune_server.http() as http:
        assert http.post("/api/v1/teams", json={"name": "blue"}).status_code == 201
        assert http.post("/api/v1/users", json={"name": "b", "team": "blue", "role": "member"}).status_code == 201
        token = http.post("/api/v1/users/b/tokens", json={"name": "t"}).json()["token"]
        raw = spec(code, budget={"trials": 4, "concurrent": 1}, command=[sys.executable, "train.py", "--x", "{x}",
                                                                      "--steps", "2", "--sleep", "0.1"])
        study = create(http, raw)
        edited = http.patch(f"/api/v1/tune/studies/{study['id']}",
                            json={"space": {"x": {"type": "float", "low": 0.9, "high": 1.0}}})
        assert edited.status_code == 200, edited.text
        bad = http.patch("/api/v1/tune/studies/s", json={"space": {"x": {"type": "float", "low": 1, "high": 0}}})
        assert bad.status_code == 400 and "empty range" in bad.json()["error"]["message"]
        assert ended(http, "s")["status"] == "done"
        rows = trials(http, "s")
        assert all(0.9 <= r["params"]["x"] <= 1.0 for r in rows[1:]), rows  # trial 0 may predate the edit
    with httpx.Client(base_url=tune_server.url, headers={"Authorization": f"Bearer {token}"}) as other:
        assert other.get("/api/v1/tune/studies").json() == []
        for path in ("/api/v1/tune/studies/s", f"/api/v1/tune/studies/{study['id']}/trials", "/tune/s"):
            assert other.get(path).status_code == 404
        assert other.post("/api/v1/tune/studies/s/stop").status_code == 404
        assert other.post("/api/v1/tune/suggest", json={"name": "x", "distribution": {}}).status_code == 403


def test_a_nan_objective_fails_its_study_and_other_studies_keep_running(tune_server: LiveServer, tmp_path: Path) -> None:
    code = write(tmp_path / "c", "nan.py", "import haneul\nhaneul.report(step=1, loss=float('nan'))\n")
    write(code, "train.py", QUADRATIC)
    with tune_server.http() as http:
        create(http, spec(code, "nan.py", name="nan", command=[sys.executable, "nan.py"],
                          budget={"trials": 5, "concurrent": 1, "cpus": 1, "max_failures": 2}))
        create(http, spec(code, name="good", budget={"trials": 2, "concurrent": 1, "cpus": 1},
                          command=[sys.executable, "train.py", "--x", "{x}", "--steps", "3", "--sleep", "0.05"]))
        nan, good = ended(http, "nan"), ended(http, "good")
        assert nan["status"] == "failed" and "must be finite" in nan["reason"], nan["reason"]
        assert good["status"] == "done" and good["trials"] == {"complete": 2}


def test_a_study_runs_its_trials_as_sessions_and_tells_optuna(tune_server: LiveServer, quadratic: Path) -> None:
    raw = spec(quadratic, name="quad", command=[sys.executable, "train.py", "--x", "{x}"],
               budget={"trials": 6, "concurrent": 2, "cpus": 1}, algorithm={"sampler": "tpe", "seed": 0})
    with tune_server.http() as http:
        create(http, raw)
        s = ended(http, "quad")
        assert s["status"] == "done", s
        rows = trials(http, "quad")
        assert [t["number"] for t in rows] == list(range(6))
        assert all(t["state"] == "complete" for t in rows), rows
        for t in rows:  # the trial's value is the last reported loss of its own session
            x = t["params"]["x"]
            assert abs(t["value"] - ((x - 0.3) ** 2 + 1 / 6)) < 1e-9
            session = http.get(f"/api/v1/sessions/{t['session_id']}").json()
            assert session["status"] == "done" and session["preemptible"]
        best = http.get("/api/v1/tune/studies/quad/best").json()
        assert best["value"] == min(t["value"] for t in rows)
        assert s["best_value"] == best["value"]
