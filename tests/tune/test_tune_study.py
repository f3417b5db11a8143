"""Studies end to end on a live server: trials are sessions, the server feeds the pruner."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from haneul.platform.testing import LiveServer, wait_for


def study(folder: Path, **over: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "quad",
        "command": [sys.executable, "train.py", "--x", "{x}"],
        "cwd": str(folder),
        "objective": {"metric": "loss", "direction": "minimize"},
        "space": {"x": {"type": "float", "low": -1.0, "high": 1.0}},
        "budget": {"trials": 6, "concurrent": 2, "cpus": 1},
        "algorithm": {"sampler": "tpe", "seed": 0},
    }
    spec.update(over)
    return spec


def finished(http: Any, name: str, timeout: float = 120) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        s = http.get(f"/api/v1/tune/studies/{name}").json()
        return s if s["status"] != "running" else None

    return wait_for(done, timeout=timeout, interval=0.3)


def test_a_study_runs_its_trials_as_sessions_and_tells_optuna(tune_server: LiveServer, quadratic: Path) -> None:
    with tune_server.http() as http:
        res = http.post("/api/v1/tune/studies", json={"spec": study(quadratic)})
        assert res.status_code == 201, res.text
        s = finished(http, "quad")
        assert s["status"] == "done", s
        trials = http.get("/api/v1/tune/studies/quad/trials").json()
        assert [t["number"] for t in trials] == list(range(6))
        assert all(t["state"] == "complete" for t in trials), trials
        for t in trials:  # the trial's value is the last reported loss of its own session
            x = t["params"]["x"]
            assert abs(t["value"] - ((x - 0.3) ** 2 + 1 / 6)) < 1e-9
            session = http.get(f"/api/v1/sessions/{t['session_id']}").json()
            assert session["status"] == "done" and session["preemptible"]
        best = http.get("/api/v1/tune/studies/quad/best").json()
        assert best["value"] == min(t["value"] for t in trials)
        assert s["best_value"] == best["value"]
