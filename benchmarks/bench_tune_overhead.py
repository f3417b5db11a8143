"""The optimiser's own cost per trial, beyond the process launch: target <= 50 ms.

A :class:`~haneul.tune.controller.Tuner` drives a TPE + median-pruner study in-process against a real
:class:`~haneul.platform.service.Platform` (SQLite in a temporary ``HANEUL_HOME``, the platform's and
the optimiser's migrations) whose executor starts nothing: a session "runs" from the moment it is
started and ends (exit 0) when the benchmark says so. So what is timed is the controller's work and
nothing of a process: per trial, the tick that asks Optuna and creates the trial's session (rows,
token, scheduler), one tick per reported step that reads the new value from the metric store, hands
it to Optuna as an intermediate value and asks the pruner, and the tick that settles the ended
session and tells Optuna the value.

The baseline, in the same run and on the same storage (Optuna's journal kept in the same database,
:func:`haneul.tune.journal.open_storage`), is plain Optuna: ``ask``, ``report`` + ``should_prune``
per step, ``tell`` with the same sampler, pruner and space. The two studies advance in lockstep
(one controller trial, then one baseline trial), so both pay for the same journal size. Storing
the trial's metric points (the platform's tracking, which happens with or without a study) and the
platform recording the process exit are timed apart and not counted as the optimiser's overhead.

Run: .venv/bin/python benchmarks/bench_tune_overhead.py [--trials 200] [--steps 10]
Writes benchmarks/results/tune_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from haneul.io import atomic_write_text
from haneul.platform.executors import Executor, Exit, Handle, LaunchSpec

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "tune_overhead.json"
TARGET_MS = 50.0


class InstantExecutor(Executor):
    """Starts nothing: a session runs until :meth:`finish` is called, then exits 0 at the next poll."""

    name = "instant"

    def __init__(self) -> None:
        self._running: set[int] = set()
        self._ended: set[int] = set()
        self._lock = threading.Lock()

    def start(self, spec: LaunchSpec) -> Handle:
        with self._lock:
            self._running.add(spec.session_id)
        return Handle(pid=os.getpid(), pid_start="instant")

    def finish(self, session_id: int) -> None:
        with self._lock:
            self._ended.add(session_id)

    def ended(self, session_id: int) -> bool:
        with self._lock:
            return session_id in self._ended

    def poll(self, session_id: int) -> Exit | None:
        with self._lock:
            if session_id in self._ended:
                self._running.discard(session_id)
                return Exit(0)
            return None if session_id in self._running else Exit(None, "unknown session")

    def stop(self, session_id: int, *, grace: float = 5.0) -> None:
        self.finish(session_id)

    def reattach(self, session_id: int, handle: Handle, workdir: Path) -> bool:
        return False


def objective(x: float, y: float, step: int) -> float:
    """The deterministic "loss" both studies report: a quadratic bowl approached over the steps."""
    return (x - 0.3) ** 2 + (y + 0.1) ** 2 + 1.0 / step


SPACE = {"x": {"type": "float", "low": -1.0, "high": 1.0}, "y": {"type": "float", "low": -1.0, "high": 1.0}}


def study_spec(trials: int) -> dict[str, Any]:
    return {
        "name": "overhead",
        "command": [sys.executable, "-c", "pass", "--x", "{x}", "--y", "{y}"],
        "objective": {"metric": "loss", "direction": "minimize"},
        "space": SPACE,
        "budget": {"trials": trials, "concurrent": 1, "cpus": 1, "max_failures": trials},
        "algorithm": {"sampler": "tpe", "pruner": "median", "seed": 0},
    }


def _point(step: int, value: float) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    return {"loss": (np.array([step], dtype=np.int64), np.array([value]), np.array([time.time()]))}


class Commits:
    """Counts the transactions committed on an engine (on SQLite each one waits for an fsync)."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.n = 0
        event.listen(engine, "commit", self._count)

    def _count(self, conn: Any) -> None:
        self.n += 1


class Clock:
    """Sums the wall time of the blocks run under it, and the transactions they committed."""

    def __init__(self, commits: Commits) -> None:
        self.commits = commits
        self.total = 0.0
        self.committed = 0

    def __enter__(self) -> Clock:
        self._t0, self._n0 = time.perf_counter(), self.commits.n
        return self

    def __exit__(self, *exc: object) -> None:
        self.total += time.perf_counter() - self._t0
        self.committed += self.commits.n - self._n0


def plain_trial(study: Any, steps: int) -> None:
    """The baseline: one trial of plain Optuna with the same space, reports and pruner calls."""
    import optuna

    trial = study.ask()
    x, y = trial.suggest_float("x", -1.0, 1.0), trial.suggest_float("y", -1.0, 1.0)
    for step in range(1, steps + 1):
        trial.report(objective(x, y, step), step)
        if trial.should_prune():
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            return
    study.tell(trial, objective(x, y, steps))


def run(trials: int, steps: int, root: Path | None = None) -> dict[str, Any]:
    import optuna

    from haneul.platform.accounts import LOCAL_TEAM, Accounts
    from haneul.platform.plugins import Principal
    from haneul.platform.service import Platform
    from haneul.settings import Settings
    from haneul.tune.controller import Tuner
    from haneul.tune.db import MIGRATIONS
    from haneul.tune.spec import StudySpec

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    home = Path(tempfile.mkdtemp(prefix="haneul-bench-tune-overhead-", dir=root))
    executor = InstantExecutor()
    # the supervisor thread never ticks on its own (one-hour interval): the benchmark ticks it
    platform = Platform(Settings(home=home, capacity_cpus=2), executor=executor, poll_interval=3600)
    platform.add_migrations({"tune": MIGRATIONS})
    platform.start()
    tuner = Tuner(platform.engine, platform)
    spec = StudySpec.from_dict(study_spec(trials))
    try:
        accounts = Accounts(platform.engine)
        accounts.ensure_local_admin(home)
        team = accounts.get_team(LOCAL_TEAM)["id"]
        admin = Principal(name="admin", roles={team: "owner"}, team_id=team)
        study_id = tuner.create(spec, principal=admin)["id"]
        baseline = optuna.create_study(study_name="baseline", storage=tuner.storage, direction="minimize",
                                       sampler=spec.sampler(), pruner=spec.pruner())
        commits = Commits(platform.engine)
        launch, feed, idle, plain = Clock(commits), Clock(commits), Clock(commits), Clock(commits)
        ingest, exits = Clock(commits), Clock(commits)
        per_trial: list[float] = []
        per_trial_plain: list[float] = []
        for number in range(trials + 1):
            before = launch.total + feed.total
            with launch:  # tells the previous trial its value, asks for this one and starts its session
                tuner.tick()
            if number == trials:
                break
            row = tuner.trials(study_id, limit=1, offset=number)[0]
            sid, params = row["session_id"], row["params"]
            for step in range(1, steps + 1):
                with ingest:
                    platform.ingest_metrics(sid, _point(step, objective(params["x"], params["y"], step)))
                with feed:
                    tuner.tick()
                if executor.ended(sid):  # pruned: the controller stopped its session
                    break
            if number % 10 == 0:  # what a tick costs when nothing happened (the loop runs every 0.5 s)
                with idle:
                    tuner.tick()
            executor.finish(sid)
            with exits:
                platform.tick()
            per_trial.append(launch.total + feed.total - before)

            t0 = time.perf_counter()
            with plain:
                plain_trial(baseline, steps)
            per_trial_plain.append(time.perf_counter() - t0)
        summary = tuner.get(study_id)
        assert summary["status"] == "done" and summary["launched"] == trials, summary
    finally:
        tuner.close()
        platform.close()
        shutil.rmtree(home, ignore_errors=True)
    ms = 1000.0
    controller_ms = (launch.total + feed.total) / trials * ms
    plain_ms = plain.total / trials * ms
    idle_ticks = (trials + 9) // 10
    return {
        "trials": trials, "steps_per_trial": steps,
        "controller_ms_per_trial": controller_ms,
        "plain_optuna_ms_per_trial": plain_ms,
        "overhead_ms_per_trial": controller_ms - plain_ms,
        "target_ms": TARGET_MS,
        "meets_target": controller_ms - plain_ms <= TARGET_MS,
        "controller_median_ms": statistics.median(per_trial) * ms,
        "controller_p95_ms": float(np.percentile(per_trial, 95)) * ms,
        "plain_optuna_median_ms": statistics.median(per_trial_plain) * ms,
        "plain_optuna_p95_ms": float(np.percentile(per_trial_plain, 95)) * ms,
        "first_20_trials_overhead_ms": (sum(per_trial[:20]) - sum(per_trial_plain[:20])) / 20 * ms,
        "last_20_trials_overhead_ms": (sum(per_trial[-20:]) - sum(per_trial_plain[-20:])) / 20 * ms,
        "commits_per_trial": {"controller": (launch.committed + feed.committed) / trials,
                              "plain_optuna": plain.committed / trials},
        "parts_ms_per_trial": {
            "launch_tick (tell the previous trial, ask, create the session)": launch.total / trials * ms,
            "feed_ticks (read the metric, intermediate value, pruner)": feed.total / trials * ms,
        },
        "feed_tick_ms": feed.total / (trials * steps) * ms,
        "idle_tick_ms": idle.total / idle_ticks * ms,
        "not_counted_ms_per_trial": {
            "storing the metric points (platform tracking)": ingest.total / trials * ms,
            "recording the exit (platform supervisor)": exits.total / trials * ms,
        },
        "trial_states": summary["trials"],
        "storage": "Optuna JournalStorage in the platform's SQLite database (tune_journal), both studies",
        "database_folder": str(home.parent),
        "sampler": "tpe (seed 0), pruner median, 2 float parameters",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=200, help="trials in each study")
    ap.add_argument("--steps", type=int, default=10, help="intermediate values each trial reports")
    ap.add_argument("--out", type=Path, default=RESULTS, help="where to write the results JSON")
    ap.add_argument("--tmpfs", action="store_true",
                    help="also run with the database on /dev/shm, where a commit costs no fsync")
    args = ap.parse_args()
    out = run(args.trials, args.steps)
    if args.tmpfs:
        out["on_tmpfs"] = run(args.trials, args.steps, root=Path("/dev/shm"))
    out["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                      "load_average_1m": os.getloadavg()[0]}
    atomic_write_text(args.out, json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
