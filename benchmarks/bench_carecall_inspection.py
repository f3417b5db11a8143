"""Proactive inspection: does ranking people by their call answers find the infected first?

For each seed, a simulated population (``population(N, seed, infected=P)``, whose infection is the
ground truth) is phoned through the text channel for D days, two calls a day, with the covid
monitoring scenario, once with the rule-based understander (``understand(method="rules")``) reading the
Korean answers and once with the oracle (each answer understood exactly as meant). Four rankings of
the last day's state are compared (``haneul.carecall.inspection``): the transparent points rule, a
logistic regression fitted on a cohort of another seed (seed + 1000, same size, same understander),
"fever today" and random order. Reported per understander and method, mean and std over seeds:

- cases in the top 10 % of the ranking on the last day (count, recall, precision) and the top-k curve;
- testing the top 10 % of people not yet tested each day: the share of cases found by each day's end
  and the mean day (0-based) on which a found case is found.

    .venv/bin/python benchmarks/bench_carecall_inspection.py            # 1,000 people, 7 days, 3 seeds
    .venv/bin/python benchmarks/bench_carecall_inspection.py --people 300 --seeds 1

Writes benchmarks/results/carecall_inspection.json atomically.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
OUT = ROOT / "benchmarks" / "results" / "carecall_inspection.json"


def cohort(n: int, seed: int, days: int, infected: float, understander: str) -> tuple[list, dict, float]:
    from haneul.carecall.channels.text import simulate_campaign
    from haneul.carecall.inspection import observe
    from haneul.carecall.simulate import population
    from haneul.carecall.understand import understand

    people = population(n, seed=seed, infected=infected)
    kwargs: dict = {"oracle": True} if understander == "oracle" else {
        "understander": functools.partial(understand, method="rules")}
    start = time.perf_counter()
    records = simulate_campaign(people, "covid", days=days, calls_per_day=2, seed=seed, **kwargs)
    took = time.perf_counter() - start
    return [observe(r) for r in records], {p.id: p.infected for p in people}, took


def summarise(values: list) -> dict:
    if isinstance(values[0], list):
        return {"mean": [round(statistics.fmean(v), 4) for v in zip(*values, strict=True)],
                "std": [round(statistics.pstdev(v), 4) for v in zip(*values, strict=True)]}
    if isinstance(values[0], dict):
        return {k: summarise([v[k] for v in values]) for k in values[0]}
    clean = [v for v in values if v is not None]
    if not clean:
        return {"mean": None, "std": None}
    return {"mean": round(statistics.fmean(clean), 4), "std": round(statistics.pstdev(clean), 4)}


def main() -> None:
    from haneul.carecall.inspection import FEATURES, METHODS, evaluate, fit_logistic, training_set

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=1000)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--infected", type=float, default=0.1, help="share of the population that falls ill")
    ap.add_argument("--budget", type=float, default=0.1, help="share of the population tested a day")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    result: dict = {"config": {**{k: v for k, v in vars(args).items() if k != "out"}, "calls_per_day": 2,
                               "scenario": "covid", "features": list(FEATURES)},
                    "machine": {"python": platform.python_version(), "cpus": os.cpu_count()}, "understanders": {}}
    for understander in ("rules", "oracle"):
        runs: dict[str, list] = {m: [] for m in METHODS}
        models, seconds = [], []
        for seed in range(args.seeds):
            train_calls, train_truth, took_train = cohort(args.people, seed + 1000, args.days, args.infected,
                                                          understander)
            rows, labels = training_set(train_calls, train_truth, range(args.days))
            model = fit_logistic(rows, labels)
            models.append(model.to_dict())
            calls, truth, took = cohort(args.people, seed, args.days, args.infected, understander)
            seconds.append(took + took_train)
            scored = evaluate(calls, truth, args.days, model=model, budget=args.budget, seed=seed)
            for m in METHODS:
                runs[m].append(scored[m])
            line = "  ".join(f"{m} {scored[m]['found_top10']}/{scored[m]['cases']}" for m in METHODS)
            print(f"{understander} seed {seed}: {line}  ({took:.1f} s a campaign)", flush=True)
        result["understanders"][understander] = {
            "methods": {m: {"per_seed": runs[m], **summarise([
                {k: r[k] for k in ("found_top10", "recall_top10", "precision_top10", "mean_day_found", "cases")}
                | {"found_by_day": r["found_by_day"], "recall_at": r["recall_at"]} for r in runs[m]])}
                for m in METHODS},
            "models": models, "campaign_seconds": [round(s, 2) for s in seconds]}

    args.out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=args.out.parent, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(result, fh, ensure_ascii=False, indent=1)
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")
    for understander, res in result["understanders"].items():
        for m in METHODS:
            s = res["methods"][m]
            print(f"{understander:7s} {m:12s} top10 {s['found_top10']['mean']:6.1f}±{s['found_top10']['std']:<5.1f} "
                  f"recall {s['recall_top10']['mean']:.3f}±{s['recall_top10']['std']:.3f} "
                  f"mean day {s['mean_day_found']['mean']}")


if __name__ == "__main__":
    main()
