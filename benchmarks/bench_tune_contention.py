"""A study under contention: stop-and-go against kill-and-rerun.

A live ``haneul server`` with 2 CPUs of capacity runs a study of ``--trials`` trials, two at a time,
1 CPU each; every trial is the same deterministic script doing ``--steps`` steps of ``--step-s``
seconds of work. While the study runs, a fixed trace of high-priority sessions (priority 10, 1 CPU
each, a fixed duration) arrives at fixed times after the study's start; each one that finds no free
CPU makes the scheduler preempt a trial. The two policies, each run with and without the trace on a
fresh server:

- ``stop_and_go``: the trials are preemptible sessions (the optimiser's default): a preempted trial
  saves its step with ``haneul.save`` when ``haneul.paused()`` turns true, exits, and its session
  resumes from ``haneul.load()`` once the high-priority session has ended;
- ``kill_and_rerun``: the script ignores its checkpoint: a preempted trial loses its progress and
  its session starts again from step 0 (what a scheduler that kills and reruns jobs gives, the
  process start included).

A trial that finishes its last step just as a preemption asks it to pause exits 0 while the pause
is pending, which the platform takes for a pause: its session is queued and started again. The
script then finds its own "finished" line in the ledger and exits at once (both policies alike;
counted as ``reruns_after_finish``), as a training script that saves its final state would.

Each run of a trial's process appends a line to a ledger (start, end, first and last step), from
which the benchmark counts compute: trial process-seconds, steps executed against the steps the
study needs (``wasted_work_s`` = steps done twice x step time), and process-seconds beyond the
same policy's run without the trace (``wasted_compute_s``, which also counts restarts, checkpoint
saves and loads). Completion time is the study's end less its creation, from the server's own record.

Run: .venv/bin/python benchmarks/bench_tune_contention.py [--trials 6] [--steps 40] [--step-s 0.2]
Writes benchmarks/results/tune_contention.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from haneul.io import atomic_write_text
from haneul.platform.testing import start_server, wait_for

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "tune_contention.json"

#: (arrival seconds after the study starts, duration seconds): each a 1-CPU session of priority 10
TRACE = [(3.0, 4.0), (9.0, 4.0), (15.0, 4.0), (15.0, 4.0), (24.0, 4.0), (31.0, 4.0)]

TRIAL = textwrap.dedent("""
    import time
    started = time.time()
    import argparse, json, os, sys
    import haneul

    p = argparse.ArgumentParser()
    p.add_argument("--x", type=float, required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--step-s", type=float, required=True)
    p.add_argument("--resume", type=int, required=True)
    a = p.parse_args()
    ledger = os.environ["BENCH_LEDGER"]
    me = os.environ.get("HANEUL_SESSION")
    with open(ledger) as fh:
        done = any(json.loads(line)["session"] == me and json.loads(line)["how"] == "finished" for line in fh)
    if done:  # a finished run whose exit raced a preemption is started again: nothing is left to do
        with open(ledger, "a") as fh:
            fh.write(json.dumps({"session": me, "start": started, "end": time.time(), "from_step": 0,
                                 "to_step": 0, "how": "rerun_after_finish", "load_s": 0.0, "save_s": 0.0}) + "\\n")
        sys.exit(0)
    t0 = time.time()
    state = haneul.load() if a.resume else None
    load_s, save_s = time.time() - t0, 0.0
    step, avg = (state["step"], state["avg"]) if state else (0, 1.0)
    first = step


    def record(how):
        line = {"session": me, "start": started, "end": time.time(),
                "from_step": first, "to_step": step, "how": how, "load_s": load_s, "save_s": save_s}
        with open(ledger, "a") as fh:
            fh.write(json.dumps(line) + "\\n")


    while step < a.steps:
        time.sleep(a.step_s)  # the step's work
        step += 1
        avg = 0.5 * avg + 0.5 * (a.x - 0.3) ** 2
        haneul.report(step=step, loss=avg + 1.0 / step)
        if haneul.paused():
            if a.resume:
                t0 = time.time()
                haneul.save("state", {"step": step, "avg": avg})
                save_s = time.time() - t0
            record("paused")
            sys.exit(0)
    haneul.flush()
    record("finished")
""")


def _study(code: Path, ledger: Path, args: argparse.Namespace, *, resume: bool) -> dict[str, Any]:
    return {
        "name": "contention",
        "command": [sys.executable, "trial.py", "--x", "{x}", "--steps", str(args.steps),
                    "--step-s", str(args.step_s), "--resume", "1" if resume else "0"],
        "cwd": str(code),
        "env": {"BENCH_LEDGER": str(ledger), "HANEUL_SYS_METRICS_INTERVAL": "0"},
        "objective": {"metric": "loss", "direction": "minimize"},
        "space": {"x": {"type": "float", "low": -1.0, "high": 1.0}},
        "budget": {"trials": args.trials, "concurrent": 2, "cpus": 1},
        "algorithm": {"sampler": "random", "seed": 0},
    }


def _fire_trace(http: Any, t0: float, trace: list[tuple[float, float]]) -> list[int]:
    """Create the trace's sessions at their arrival times (seconds after ``t0``); their ids."""
    ids = []
    for arrival, duration in sorted(trace):
        delay = t0 + arrival - time.time()
        if delay > 0:
            time.sleep(delay)
        res = http.post("/api/v1/sessions", json={
            "command": [sys.executable, "-c", f"import time; time.sleep({duration})"], "cpus": 1,
            "priority": 10, "name": f"urgent@{arrival:g}s", "env": {"HANEUL_SYS_METRICS_INTERVAL": "0"}})
        res.raise_for_status()
        ids.append(res.json()["id"])
    return ids


def run_mode(mode: str, args: argparse.Namespace, *, resume: bool, contended: bool) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix=f"haneul-bench-contention-{mode}-"))
    code = home / "code"
    code.mkdir()
    (code / "trial.py").write_text(TRIAL)
    ledger = home / "ledger.jsonl"
    ledger.touch()
    os.environ.update(HANEUL_HOME=str(home), HANEUL_CAPACITY_CPUS="2", HANEUL_SYS_METRICS_INTERVAL="0")
    os.environ.pop("HANEUL_SESSION", None)
    server = start_server(home)
    trace = TRACE if contended else []
    try:
        with server.http(timeout=30) as http:
            res = http.post("/api/v1/tune/studies", json={"spec": _study(code, ledger, args, resume=resume)})
            res.raise_for_status()
            created = res.json()["created_at"]
            urgent = _fire_trace(http, created, trace)
            study = wait_for(lambda: (s := http.get("/api/v1/tune/studies/contention").json())["status"]
                             != "running" and s, timeout=args.timeout, interval=0.2)
            trials = http.get("/api/v1/tune/studies/contention/trials").json()
            sessions = [http.get(f"/api/v1/sessions/{t['session_id']}").json() for t in trials]
            wait_for(lambda: all(http.get(f"/api/v1/sessions/{u}").json()["status"] == "done" for u in urgent),
                     timeout=60, interval=0.2)
            urgent_rows = [http.get(f"/api/v1/sessions/{u}").json() for u in urgent]
    finally:
        server.stop()
    runs = [json.loads(line) for line in ledger.read_text().splitlines() if line.strip()]
    shutil.rmtree(home, ignore_errors=True)
    steps_done = sum(r["to_step"] - r["from_step"] for r in runs)
    steps_needed = args.trials * args.steps
    return {
        "study_status": study["status"],
        "trial_states": study["trials"],
        "launched": study["launched"],
        "completion_s": study["ended_at"] - study["created_at"],
        "trial_process_s": sum(r["end"] - r["start"] for r in runs),
        "trial_runs": len(runs),
        "preemptions": sum(1 for r in runs if r["how"] == "paused"),
        "reruns_after_finish": sum(1 for r in runs if r["how"] == "rerun_after_finish"),
        "session_runs": [s["runs"] for s in sessions],
        "steps_done": steps_done,
        "steps_needed": steps_needed,
        "wasted_work_s": (steps_done - steps_needed) * args.step_s,
        "checkpoint_load_s": sum(r["load_s"] for r in runs),
        "checkpoint_save_s": sum(r["save_s"] for r in runs),
        "values": [t["value"] for t in trials],
        "urgent_sessions": len(urgent_rows),
        "urgent_wait_s": [round(u["started_at"] - u["created_at"], 3) for u in urgent_rows],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=6, help="trials in the study (two run at a time)")
    ap.add_argument("--steps", type=int, default=40, help="steps each trial does")
    ap.add_argument("--step-s", type=float, default=0.2, help="seconds of work per step")
    ap.add_argument("--timeout", type=float, default=180, help="seconds to wait for one study to finish")
    ap.add_argument("--out", type=Path, default=RESULTS, help="where to write the results JSON")
    args = ap.parse_args()
    # (mode, the trial script resumes from its checkpoint, the trace runs); each contended mode is
    # compared with the same script run without the trace, so restarts and checkpoints are counted
    plan = [("stop_and_go", True, True), ("stop_and_go_alone", True, False),
            ("kill_and_rerun", False, True), ("kill_and_rerun_alone", False, False)]
    modes = {mode: run_mode(mode, args, resume=resume, contended=contended) for mode, resume, contended in plan}
    for mode in ("stop_and_go", "kill_and_rerun"):
        result, alone = modes[mode], modes[f"{mode}_alone"]
        result["wasted_compute_s"] = result["trial_process_s"] - alone["trial_process_s"]
        result["completion_vs_alone_s"] = result["completion_s"] - alone["completion_s"]
    sg, kr = modes["stop_and_go"], modes["kill_and_rerun"]
    out = {
        "what": "a study of 2-at-a-time trials on 2 CPUs while high-priority 1-CPU sessions arrive: "
                "stop-and-go (preempted trials save and resume) against kill-and-rerun (they start over); "
                "wasted_compute_s is trial process-seconds beyond the same script's run without the trace",
        "trials": args.trials, "steps": args.steps, "step_s": args.step_s,
        "work_per_trial_s": args.steps * args.step_s,
        "trace": [{"arrival_s": a, "duration_s": d, "cpus": 1, "priority": 10} for a, d in TRACE],
        "summary": {
            "stop_and_go": {k: sg[k] for k in ("completion_s", "trial_process_s", "wasted_compute_s",
                                               "wasted_work_s", "preemptions")},
            "kill_and_rerun": {k: kr[k] for k in ("completion_s", "trial_process_s", "wasted_compute_s",
                                                  "wasted_work_s", "preemptions")},
            "same_final_values": sg["values"] == kr["values"] == modes["stop_and_go_alone"]["values"],
        },
        "modes": modes,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                    "load_average_1m": os.getloadavg()[0]},
    }
    atomic_write_text(args.out, json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
