"""A study page over 10,000 finished trials: target <= 500 ms server time.

A fresh server (the app in-process, served by FastAPI's TestClient: SQLite in a temporary
``HANEUL_HOME``, the platform's and the optimiser's migrations) gets one finished study of N trials
written straight into its database, as the controller would have left it: the ``tune_studies`` row,
one ``tune_trials`` row per trial (mostly complete, some pruned, a few failed, with compute times
and wall-clock ends), and Optuna's journal holding the same trials with their intermediate values,
which is what the intermediate-values and importances routes read. No process runs behind them.

Then each route the study page needs is asked ``--repeats`` times and the median time of a request
(in-process, so server time plus a negligible transport) is reported: the page itself
(``GET /tune/{id}``), the trial table JSON (every trial, as the page's first load; and ``after=`` the
last trial, as a poll of a study that runs), the study, the intermediate values (the page asks for
the newest 300 trials) and the importances (PED-ANOVA over every complete trial, asked at most every
10 s while a study runs). The first request of each route is reported apart (the journal's replay
into memory happens there once per server). Baselines in the same run: ``GET /api/v1/health`` and
the platform's own sessions page.

Run: .venv/bin/python benchmarks/bench_tune_page.py [--trials 10000] [--repeats 20]
Writes benchmarks/results/tune_page.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, insert, select

from haneul.io import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "tune_page.json"
TARGET_MS = 500.0

#: the seeded study's file: four parameters of the three kinds, minimising a loss
SPEC: dict[str, Any] = {
    "name": "big",
    "command": ["python", "train.py"],
    "objective": {"metric": "loss", "direction": "minimize"},
    "space": {
        "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
        "dim": {"type": "int", "low": 16, "high": 256, "step": 16},
        "dropout": {"type": "float", "low": 0.0, "high": 0.5},
        "opt": {"type": "categorical", "choices": ["adamw", "sgd", "lion"]},
    },
    "budget": {"trials": 10_000, "concurrent": 8, "cpus": 1},
    "algorithm": {"sampler": "tpe", "pruner": "median", "seed": 0},
}


def seed_finished_study(engine: Engine, n: int, *, spec: dict[str, Any] | None = None, team_id: int | None = None,
                        steps: int = 6, seed: int = 0, parents: bool = False) -> int:
    """A finished study of ``n`` trials written into an empty optimiser's tables; its id.

    Trials are numbered 0..n-1: every 10th is pruned halfway, every 50th failed, the rest complete,
    each with ``steps`` intermediate values of a loss that falls towards a function of the
    parameters. With ``parents`` every trial after the fourth names an earlier one as its parent
    (a PBT lineage). The journal must be empty (Optuna numbers studies and trials from its start).
    """
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import BaseJournalBackend
    from optuna.trial import TrialState, create_trial

    from haneul.tune.db import journal, studies, trials
    from haneul.tune.spec import StudySpec

    spec_obj = StudySpec.from_dict(spec or SPEC)
    with engine.connect() as conn:
        if conn.execute(select(func.count()).select_from(journal)).scalar_one():
            raise RuntimeError("seed_finished_study needs an empty journal (a fresh server)")

    class Collect(BaseJournalBackend):
        """Optuna's journal kept in a list, then written to ``tune_journal`` in one statement."""

        def __init__(self) -> None:
            self.logs: list[dict[str, Any]] = []

        def read_logs(self, log_number_from: int) -> list[dict[str, Any]]:
            return self.logs[log_number_from:]

        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            self.logs.extend(logs)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    backend = Collect()
    study = optuna.create_study(storage=JournalStorage(backend), study_name=f"{spec_obj.name}.seeded",
                                direction="maximize" if spec_obj.objective.direction == "maximize" else "minimize")
    rng = random.Random(seed)
    dists = {name: p.distribution() for name, p in spec_obj.space.items()}
    created = time.time() - 2 * n
    rows = []
    for number in range(n):
        chosen = {name: _draw(rng, p) for name, p in spec_obj.space.items()}
        target = sum(_unit(p, chosen[name]) ** 2 for name, p in spec_obj.space.items())
        curve = {s: target + 1.0 / s for s in range(1, steps + 1)}
        state, ours = TrialState.COMPLETE, "complete"
        if number % 50 == 49:
            state, ours, curve = TrialState.FAIL, "failed", dict(list(curve.items())[:1])
        elif number % 10 == 9:
            state, ours, curve = TrialState.PRUNED, "pruned", dict(list(curve.items())[: max(1, steps // 2)])
        value = curve[max(curve)] if state == TrialState.COMPLETE else None
        study.add_trial(create_trial(state=state, params=chosen, distributions=dists, value=value,
                                     intermediate_values=curve))
        start = created + 2 * number
        rows.append(dict(number=number, optuna_trial_id=number, session_id=None, state=ours, params=chosen,
                         value=value, last_step=max(curve), steps=len(curve),
                         parent_trial=rng.randrange(number) if parents and number >= 4 else None,
                         reason={"pruned": f"pruned at step {max(curve)}",
                                 "failed": "session failed: exit 1"}.get(ours),
                         created_at=start, ended_at=start + 1.5, compute_s=1.5))
    now = time.time()
    with engine.begin() as conn:
        conn.execute(insert(journal), [{"id": i + 1, "log": json.dumps(log, separators=(",", ":")).encode()}
                                       for i, log in enumerate(backend.logs)])
        sid = conn.execute(insert(studies).values(
            name=spec_obj.name, team_id=team_id, owner="admin", spec=spec_obj.to_dict(), status="done",
            reason=f"{n} trials run; the budget is spent", optuna_id=study._study_id, created_at=created,
            updated_at=now, ended_at=now, elapsed=now - created, resumed_at=created,
        )).inserted_primary_key[0]  # type: ignore[index]
        conn.execute(insert(trials), [{**r, "study_id": sid} for r in rows])
    return int(sid)


def _draw(rng: random.Random, p: Any) -> Any:
    if p.type == "categorical":
        return rng.choice(p.choices)
    if p.type == "int":
        return rng.randrange(int(p.low), int(p.high) + 1, int(p.step or 1))
    if p.log:
        return math.exp(rng.uniform(math.log(p.low), math.log(p.high)))
    return rng.uniform(p.low, p.high)


def _unit(p: Any, value: Any) -> float:
    """``value`` mapped to [0, 1] over its parameter's range (a categorical by its choice's index)."""
    if p.type == "categorical":
        return p.choices.index(value) / max(1, len(p.choices) - 1)
    if p.log:
        return (math.log(value) - math.log(p.low)) / (math.log(p.high) - math.log(p.low))
    return (value - p.low) / (p.high - p.low)


def time_route(client: Any, path: str, repeats: int) -> dict[str, Any]:
    """The first and the median of ``repeats`` more requests of ``path``, in milliseconds."""
    times = []
    size = 0
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        res = client.get(path)
        times.append((time.perf_counter() - t0) * 1000)
        if res.status_code != 200:
            raise RuntimeError(f"GET {path} answered {res.status_code}: {res.text[:300]}")
        size = len(res.content)
    return {"path": path, "first_ms": round(times[0], 2), "median_ms": round(statistics.median(times[1:]), 2),
            "bytes": size}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=10_000, help="finished trials in the study")
    ap.add_argument("--repeats", type=int, default=20, help="timed requests per route (after the first)")
    ap.add_argument("--importance-repeats", type=int, default=3, help="timed importances requests")
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="haneul-bench-tune-page-"))
    os.environ["HANEUL_HOME"] = str(home)
    os.environ["HANEUL_SYS_METRICS_INTERVAL"] = "0"
    from fastapi.testclient import TestClient

    from haneul.platform.server import create_app
    from haneul.platform.testing import as_admin
    from haneul.settings import Settings

    app = create_app(Settings(home=home), server_url="http://testserver")
    with TestClient(app) as client:
        as_admin(client)
        t0 = time.perf_counter()
        sid = seed_finished_study(app.state.platform.engine, args.trials)
        seeded_s = time.perf_counter() - t0
        api = f"/api/v1/tune/studies/{sid}"
        routes = {
            "health (baseline)": time_route(client, "/api/v1/health", args.repeats),
            "sessions page (baseline)": time_route(client, "/", args.repeats),
            "study page": time_route(client, f"/tune/{sid}", args.repeats),
            "studies page": time_route(client, "/tune", args.repeats),
            "study": time_route(client, api, args.repeats),
            "trial table (every trial)": time_route(client, f"{api}/table", args.repeats),
            "trial table (a poll: after the last)": time_route(client, f"{api}/table?after={args.trials - 1}",
                                                               args.repeats),
            "intermediate (newest 300)": time_route(client, f"{api}/intermediate?limit=300", args.repeats),
            "importances (PED-ANOVA)": time_route(client, f"{api}/importances", args.importance_repeats),
        }
    page = routes["study page"]["median_ms"]
    result = {
        "benchmark": "the study page over a study of finished trials: server time per request",
        "command": f"benchmarks/bench_tune_page.py --trials {args.trials} --repeats {args.repeats}",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average_1m": round(os.getloadavg()[0], 2)},
        "trials": args.trials,
        "seed_seconds": round(seeded_s, 2),
        "routes": routes,
        "study_page_median_ms": page,
        "page_load_ms": round(page + routes["trial table (every trial)"]["median_ms"], 2),
        "target_ms": TARGET_MS,
        "met": page <= TARGET_MS,
    }
    atomic_write_text(RESULTS, json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
