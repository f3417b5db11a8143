"""Stop-and-go in a study: trials preempted by higher-priority work resume and end as if never stopped."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

from haneul.platform.testing import LiveServer, wait_for

STEPS = 16

# A deterministic "training run" with state carried from step to step (a running average), saved when
# the platform asks it to pause and picked up again from haneul.load() on start.
RESUMABLE = textwrap.dedent("""
    import argparse, sys, time
    import haneul

    p = argparse.ArgumentParser()
    p.add_argument("--x", type=float, required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--sleep", type=float, default=0.2)
    a = p.parse_args()
    state = haneul.load() or {"step": 0, "avg": 1.0}
    print(f"start at step {state['step']}", flush=True)
    step, avg = state["step"], state["avg"]
    while step < a.steps:
        step += 1
        avg = 0.5 * avg + 0.5 * (a.x - 0.3) ** 2
        haneul.report(step=step, loss=avg + 1.0 / step)
        if haneul.paused():
            haneul.save("state", {"step": step, "avg": avg})
            print(f"paused at step {step}", flush=True)
            sys.exit(0)
        time.sleep(a.sleep)
    haneul.flush()
""")


def uninterrupted(x: float, steps: int = STEPS) -> float:
    """The final loss of the script above run from start to end without a pause."""
    avg = 1.0
    for _ in range(steps):
        avg = 0.5 * avg + 0.5 * (x - 0.3) ** 2
    return avg + 1.0 / steps


def points(http: Any, sid: int) -> int:
    keys = http.get(f"/api/v1/sessions/{sid}/metrics").json()
    return next((k["count"] for k in keys if k["key"] == "loss"), 0)


def test_preempted_trials_resume_and_finish_with_the_uninterrupted_values(tune_server: LiveServer,
                                                                           tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text(RESUMABLE)
    spec = {
        "name": "stopgo",
        "command": [sys.executable, "train.py", "--x", "{x}", "--steps", str(STEPS)],
        "cwd": str(code),
        "objective": {"metric": "loss", "direction": "minimize"},
        "space": {"x": {"type": "float", "low": -1.0, "high": 1.0}},
        "budget": {"trials": 2, "concurrent": 2, "cpus": 1},
        "algorithm": {"sampler": "random", "seed": 0},
    }
    with tune_server.http() as http:
        assert http.post("/api/v1/tune/studies", json={"spec": spec}).status_code == 201

        def both_running() -> list[dict[str, Any]] | None:
            trials = http.get("/api/v1/tune/studies/stopgo/trials").json()
            return trials if len(trials) == 2 and all(points(http, t["session_id"]) >= 3 for t in trials) else None

        trials = wait_for(both_running, timeout=30, interval=0.1)
        sessions = [t["session_id"] for t in trials]

        # a session of higher priority needing the whole capacity (2 CPUs) arrives mid-study
        res = http.post("/api/v1/sessions", json={"command": [sys.executable, "-c", "import time; time.sleep(2)"],
                                                  "cpus": 2, "priority": 10, "name": "urgent"})
        assert res.status_code == 201, res.text
        urgent = res.json()["id"]

        def preempted() -> list[dict[str, Any]] | None:
            got = [http.get(f"/api/v1/sessions/{sid}").json() for sid in sessions]
            return got if all(s["status"] == "queued" for s in got) else None

        for s in wait_for(preempted, timeout=20, interval=0.05):
            assert s["reason"] == f"preempted by session {urgent}; resumes when capacity frees", s
        during = http.get("/api/v1/tune/studies/stopgo").json()
        assert during["status"] == "running" and during["launched"] == 2, during
        assert during["trials"] == {"running": 2}  # a paused trial is still the study's, not a new one

        wait_for(lambda: http.get(f"/api/v1/sessions/{urgent}").json()["status"] == "done", timeout=20)
        study = wait_for(lambda: (s := http.get("/api/v1/tune/studies/stopgo").json())["status"] != "running" and s,
                         timeout=40, interval=0.2)
        assert study["status"] == "done" and study["launched"] == 2, study

        urgent_end = http.get(f"/api/v1/sessions/{urgent}").json()["ended_at"]
        trials = http.get("/api/v1/tune/studies/stopgo/trials").json()
        assert [t["number"] for t in trials] == [0, 1]
        for t in trials:
            assert t["state"] == "complete", t
            assert abs(t["value"] - uninterrupted(t["params"]["x"])) < 1e-12, t
            session = http.get(f"/api/v1/sessions/{t['session_id']}").json()
            assert session["status"] == "done" and session["runs"] == 2, session
            assert session["ended_at"] > urgent_end
            # it went on from its checkpoint: every step reported once, and the second run did not start at 0
            history = http.get(f"/api/v1/sessions/{t['session_id']}/metrics/loss").json()
            assert history["steps"] == list(range(1, STEPS + 1))
            log = http.get(f"/api/v1/sessions/{t['session_id']}/logs", params={"tail": 100}).json()["lines"]
            paused_at = int(next(line for line in log if line.startswith("paused at step")).split()[-1])
            assert 3 <= paused_at < STEPS and f"start at step {paused_at}" in log
