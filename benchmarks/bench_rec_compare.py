"""HGP against LightGCN with the same tuning budget, on LastFM, FilmTrust and Yelp2.

For each data set:

1. tune HGP and LightGCN separately with Optuna (TPE sampler, median pruner on the per-epoch
   validation Recall@10), the same number of trials, the same epoch cap and the same early-stopping
   patience for both; every trial trains on the seed-0 split and is scored by its best validation
   Recall@10 only (test metrics are computed by the runner but never read here);
2. train the chosen settings with 3 seeds (each seed: its own split, initialisation and groups) and
   evaluate the best validation epoch on test; BPR-MF reuses LightGCN's chosen lr / reg, the social
   variant (HGP over the raw user-user graph) HGP's chosen lr / reg / K / alpha, and popularity
   needs nothing;
3. record mean +- std of AUC, F1 (and whether F1 beat calling every pair positive), Recall@10,
   NDCG@10, the chosen epochs, the group statistics and HGP's attention fusion weights.

HGP's search covers the remedies for over-smoothing its personalised-PageRank propagation has (the
teleport probability alpha and the number of steps K up to APPNP's 10) and the Leiden resolution.
Embedding size is 64 for every model (the RecBole-GNN protocol).

    .venv/bin/python benchmarks/bench_rec_compare.py                 # all three, the default budget
    .venv/bin/python benchmarks/bench_rec_compare.py --quick         # FilmTrust, 2 trials, seconds
    .venv/bin/python benchmarks/bench_rec_compare.py --tables        # print the tables of the JSON

The tables in docs/rec.md come from runs sized for a shared 2-core CPU:

    .venv/bin/python benchmarks/bench_rec_compare.py --datasets lastfm,filmtrust --trials 6 \
        --tune-epochs 30 --epochs 60 --jobs 1
    .venv/bin/python benchmarks/bench_rec_compare.py --datasets yelp2 --trials 4 --tune-epochs 20 \
        --epochs 40 --jobs 1 --out benchmarks/results/rec_compare_yelp2.json

Yelp2's tuning stage is recorded in benchmarks/results/rec_compare_yelp2_tuning.json; its final
seeds were run from those settings, seeds 0-1 and seed 2 in two processes, then joined:

    ... --datasets yelp2 --given benchmarks/results/rec_compare_yelp2_tuning.json --epochs 40 \
        --jobs 1 --out benchmarks/results/rec_compare_yelp2.json      # stopped after seed 1
    ... --datasets yelp2 --given benchmarks/results/rec_compare_yelp2_tuning.json --epochs 40 \
        --jobs 1 --first-seed 2 --seeds 1 --out benchmarks/results/rec_compare_yelp2_seed2.json
    ... --merge benchmarks/results/rec_compare_yelp2.yelp2.partial.json \
        benchmarks/results/rec_compare_yelp2_seed2.json --out benchmarks/results/rec_compare_yelp2.json

Data sets run in parallel processes (``--jobs``, one torch thread each). Writes
benchmarks/results/rec_compare.json (atomically).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

METRICS = ["auc", "f1", "recall@10", "ndcg@10"]
ROWS = ["pop", "bpr", "lightgcn", "social", "hgp"]
LABELS = {"pop": "popularity", "bpr": "BPR-MF", "lightgcn": "LightGCN", "social": "social (raw user graph)", "hgp": "HGP"}
PUBLISHED_LASTFM = {"lightgcn": {"recall@10": 0.2064, "ndcg@10": 0.1972}}  # RecBole-GNN, 8:1:1, embedding 64
RESOLUTIONS = [1.0, 2.0, 4.0, 8.0]


def search_space(model: str, trial) -> dict[str, Any]:
    """The tuned settings of one trial; lr and reg share their ranges across the two models."""
    params: dict[str, Any] = {
        "lr": trial.suggest_float("lr", 1e-3, 5e-2, log=True),
        "reg": trial.suggest_float("reg", 1e-6, 1e-2, log=True),
    }
    if model == "lightgcn":
        params["k"] = trial.suggest_int("k", 1, 4)
    else:
        params["k"] = trial.suggest_categorical("k", [1, 2, 3, 5, 10])
        params["alpha"] = trial.suggest_float("alpha", 0.05, 0.5)
        params["resolution"] = trial.suggest_categorical("resolution", RESOLUTIONS)
    return params


def default_data() -> Path:
    base = Path(os.environ.get("HANEUL_TEST_DATA", ROOT.parent / "shared" / "data"))
    return base / "social"


class Runner:
    """Trains one data set's models, reusing the split and groups of each (seed, resolution)."""

    def __init__(self, data, common: dict[str, Any]) -> None:
        self.data, self.common = data, common
        self._prepared: dict[tuple[int, float], Any] = {}

    def fit(self, model: str, seed: int, params: dict[str, Any], progress=None):
        from haneul.rec.train import TrainConfig, fit, prepare

        config = TrainConfig(model=model, seed=seed, **self.common, **params)
        key = (seed, float(config.resolution))
        if key not in self._prepared:
            self._prepared[key] = prepare(self.data, config)
        return fit(self.data, config, prep=self._prepared[key], report=False, progress=progress)


def tune(runner: Runner, model: str, trials: int, log) -> dict[str, Any]:
    """An Optuna study on validation Recall@10; returns the chosen settings and every trial."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=0, n_startup_trials=min(4, trials))
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=5)
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)

    def objective(trial) -> float:
        params = search_space(model, trial)
        best = 0.0

        def progress(epoch: int, row: dict[str, float]) -> None:
            nonlocal best
            if "valid_recall_10" in row:
                best = max(best, row["valid_recall_10"])
                trial.report(row["valid_recall_10"], epoch)
                if trial.should_prune():
                    trial.set_user_attr("epochs_run", epoch)
                    log(f"  {model} trial {trial.number}: pruned at epoch {epoch} (valid R@10 {best:.4f}) {params}")
                    raise optuna.TrialPruned()

        result = runner.fit(model, 0, params, progress)
        trial.set_user_attr("best_epoch", result.best_epoch)
        trial.set_user_attr("epochs_run", result.epochs_run)
        log(f"  {model} trial {trial.number}: valid R@10 {best:.4f} at epoch {result.best_epoch} {params}")
        return best

    t0 = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    finished = [t for t in study.trials if t.value is not None]
    return {
        "chosen": study.best_params,
        "best_valid_recall@10": study.best_value,
        "seconds": round(time.perf_counter() - t0, 1),
        "trials": [{"number": t.number, "state": t.state.name, "params": t.params, "value": t.value,
                    **t.user_attrs} for t in study.trials],
        "completed": len(finished),
    }


def run_dataset(name: str, folder: str, args_dict: dict[str, Any], partial: str) -> dict[str, Any]:
    """Tune, then train every model with 3 seeds, on one data set (runs in its own process).

    After each seed the entry so far is written to ``partial``, so a run cut short keeps its
    finished seeds."""
    import torch

    from haneul.io import atomic_write_text
    from haneul.rec.data import load_recbole

    torch.set_num_threads(args_dict["threads"])
    t0 = time.perf_counter()

    def log(text: str) -> None:
        print(f"[{name} {time.perf_counter() - t0:6.0f}s] {text}", flush=True)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = load_recbole(folder)
    tuning_common = {"epochs": args_dict["tune_epochs"], "patience": args_dict["patience"],
                     "batch_size": args_dict["batch_size"], "dim": 64}
    if args_dict["given"]:
        # settings chosen by an earlier tuning run (e.g. one cut short in its final seeds)
        given = json.loads(Path(args_dict["given"]).read_text())
        tuning = {m: {"chosen": given[m], "given": args_dict["given"]} for m in ("lightgcn", "hgp")}
    else:
        tuning = {m: tune(Runner(data, tuning_common), m, args_dict["trials"], log) for m in ("lightgcn", "hgp")}
    chosen = {m: dict(t["chosen"]) for m, t in tuning.items()}
    settings = {
        "pop": {},
        "lightgcn": chosen["lightgcn"],
        "bpr": {"lr": chosen["lightgcn"]["lr"], "reg": chosen["lightgcn"]["reg"]},
        "hgp": chosen["hgp"],
        "social": {k: v for k, v in chosen["hgp"].items() if k != "resolution"},
    }
    final = Runner(data, {"epochs": args_dict["epochs"], "patience": args_dict["patience"],
                          "batch_size": args_dict["batch_size"], "dim": 64})
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in ROWS}
    for seed in range(args_dict["first_seed"], args_dict["first_seed"] + args_dict["seeds"]):
        for model in ROWS:
            result = final.fit(model, seed, settings[model])
            row = {k: result.metrics[k] for k in [*METRICS, "f1_trivial"]}
            row |= {"best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
                    "seconds": round(result.seconds, 1), **result.fusion}
            if model == "hgp" and result.group_stats is not None:
                row["groups"] = result.group_stats.as_dict() | {"resolution": result.resolution}
            runs[model].append(row)
            log(f"seed {seed} {model:8s} " + "  ".join(f"{k} {row[k]:.4f}" for k in METRICS)
                + f"  best epoch {row['best_epoch']}/{row['epochs_run']}")
        entry = make_entry(name, data.describe(), settings, tuning, runs, time.perf_counter() - t0)
        atomic_write_text(partial, json.dumps(entry, indent=2))
    return entry


def make_entry(name: str, describe: dict[str, int], settings: dict[str, Any], tuning: dict[str, Any],
               runs: dict[str, list[dict[str, Any]]], seconds: float) -> dict[str, Any]:
    """One data set's results: the settings, the tuning record, every run and their summary."""
    diffs = {k: [h[k] - g[k] for h, g in zip(runs["hgp"], runs["lightgcn"], strict=True)] for k in ("recall@10", "auc")}
    entry = {
        "describe": describe,
        "settings": settings,
        "tuning": tuning,
        "table": {m: summarise(rs) for m, rs in runs.items()},
        "runs": runs,
        "seeds_done": len(runs["hgp"]),
        "hgp_minus_lightgcn": {k: {"mean": float(np.mean(v)), "per_seed": v} for k, v in diffs.items()},
        "seconds": round(seconds, 1),
    }
    if name == "lastfm":
        entry["published"] = PUBLISHED_LASTFM
    return entry


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {k: {"mean": float(np.mean([r[k] for r in rows])), "std": float(np.std([r[k] for r in rows]))}
                           for k in METRICS}
    out["f1_trivial_runs"] = int(sum(r["f1_trivial"] for r in rows))
    out["best_epochs"] = [r["best_epoch"] for r in rows]
    for key in ("fusion_social", "fusion_collapsed_users"):
        if key in rows[0]:
            out[key] = float(np.mean([r[key] for r in rows]))
    return out


def tables(result: dict[str, Any]) -> str:
    """Markdown tables for docs/rec.md from a results file."""
    lines = []
    for name, entry in result["datasets"].items():
        d = entry["describe"]
        lines += [f"**{name}** ({d['users']:,} users, {d['items']:,} items, {d['interactions']:,} interactions, "
                  f"{d['social_links']:,} links; {d['users_without_friends']:,} users without friends)", "",
                  "| model | AUC | F1 | Recall@10 | NDCG@10 | best epochs | settings (tuned on validation) |",
                  "|---|---|---|---|---|---|---|"]
        for model in ROWS:
            row = entry["table"][model]
            cells = [f"{row[k]['mean']:.4f} ± {row[k]['std']:.4f}" for k in METRICS]
            if row["f1_trivial_runs"]:
                cells[1] += f" (trivial in {row['f1_trivial_runs']})"
            settings = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in entry["settings"][model].items())
            epochs = ", ".join(str(e) for e in row["best_epochs"]) if model != "pop" else "–"
            lines.append(f"| {LABELS[model]} | " + " | ".join(cells) + f" | {epochs} | {settings or '–'} |")
        for model, ref in entry.get("published", {}).items():
            lines.append(f"| {LABELS[model]}, published (RecBole-GNN) | – | – | {ref['recall@10']:.4f} | {ref['ndcg@10']:.4f} | – | – |")
        gap = entry["hgp_minus_lightgcn"]
        groups = entry["runs"]["hgp"][0]["groups"]
        hgp = entry["table"]["hgp"]
        lines += ["", f"HGP − LightGCN: Recall@10 {gap['recall@10']['mean']:+.4f} (per seed "
                  + ", ".join(f"{v:+.4f}" for v in gap["recall@10"]["per_seed"]) + f"), AUC {gap['auc']['mean']:+.4f}. "
                  f"Groups (seed 0, resolution {groups['resolution']}): {groups['groups']} groups of "
                  f"{groups['group_size_min']}–{groups['group_size_max']} users (median {groups['group_size_median']:g}), "
                  f"{groups['users_in_no_group']:,} users in no group, "
                  f"{groups['social_edges_inside_groups']:.0%} of links inside groups. "
                  f"Fusion: mean social-view weight {hgp['fusion_social']:.3f}, "
                  f"{hgp['fusion_collapsed_users']:.0%} of users above 0.95 on one view. " + tuning_note(entry), ""]
    return "\n".join(lines)


def tuning_note(entry: dict[str, Any]) -> str:
    tuning = entry["tuning"]
    seeds = f"{entry['seeds_done']} seed(s). " if "seeds_done" in entry else ""
    if "given" in tuning["hgp"]:
        return seeds + f"Settings from {tuning['hgp']['given']} (an earlier tuning run)."
    return seeds + (f"Tuning: {tuning['hgp']['completed']}/{len(tuning['hgp']['trials'])} HGP and "
                    f"{tuning['lightgcn']['completed']}/{len(tuning['lightgcn']['trials'])} LightGCN trials ran to "
                    "the end (the rest were pruned).")


def read_entries(path: Path) -> dict[str, dict[str, Any]]:
    """The data set entries of a result file, or of a partial file ``<out>.<name>.partial.json``."""
    saved = json.loads(path.read_text())
    return saved["datasets"] if "datasets" in saved else {path.name.split(".")[-3]: saved}


def merge(paths: list[Path], out: Path) -> None:
    """Join the seeds of one data set run in several processes (same settings) into ``out``."""
    from haneul.io import atomic_write_text

    entries = [entry for path in paths for entry in read_entries(path).items()]
    names = {name for name, _ in entries}
    if len(names) != 1 or len({json.dumps(e["settings"], sort_keys=True) for _, e in entries}) != 1:
        raise SystemExit(f"--merge needs files of one data set with the same settings; got {sorted(names)}")
    name, first = entries[0]
    runs = {m: [row for _, e in entries for row in e["runs"][m]] for m in ROWS}
    entry = make_entry(name, first["describe"], first["settings"], first["tuning"], runs,
                       sum(e["seconds"] for _, e in entries))
    atomic_write_text(out, json.dumps({"datasets": {name: entry}, "merged_from": [str(p) for p in paths],
                                       "complete": True}, indent=2))
    print(tables({"datasets": {name: entry}}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data(), help="folder holding lastfm/, filmtrust/, yelp2/")
    parser.add_argument("--datasets", default="yelp2,lastfm,filmtrust", help="comma-separated data sets (longest first)")
    parser.add_argument("--trials", type=int, default=8, help="tuning trials per model and data set")
    parser.add_argument("--tune-epochs", type=int, default=40, help="epoch cap of a tuning trial")
    parser.add_argument("--epochs", type=int, default=100, help="epoch cap of a final run")
    parser.add_argument("--patience", type=int, default=5, help="early-stopping patience (evaluations)")
    parser.add_argument("--batch-size", type=int, default=8192, help="interactions per step, every model")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the chosen settings")
    parser.add_argument("--first-seed", type=int, default=0, help="the first seed (runs split over processes)")
    parser.add_argument("--merge", type=Path, nargs="+", default=None,
                        help="result or partial files of one data set's seeds (same settings) to join into --out")
    parser.add_argument("--jobs", type=int, default=2, help="data sets run in parallel")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per job")
    parser.add_argument("--given", default=None, help="JSON file of chosen settings {lightgcn: {...}, hgp: {...}}: "
                        "skip tuning (one data set)")
    parser.add_argument("--quick", action="store_true", help="FilmTrust only, 2 trials, 1 seed, 5 epochs")
    parser.add_argument("--tables", action="store_true", help="only print the markdown tables of --out")
    parser.add_argument("--out", type=Path, default=None, help="result file (default benchmarks/results/rec_compare[_quick].json)")
    args = parser.parse_args()
    if args.quick:
        args.datasets, args.trials, args.seeds, args.tune_epochs, args.epochs = "filmtrust", 2, 1, 5, 5
    out = args.out or ROOT / "benchmarks" / "results" / ("rec_compare_quick.json" if args.quick else "rec_compare.json")
    if args.merge:
        merge(args.merge, out)
        return
    if args.tables:
        print(tables({"datasets": read_entries(out)}))
        return

    from haneul.io import atomic_write_text

    names = args.datasets.split(",")
    options = {k: getattr(args, k) for k in ("trials", "tune_epochs", "epochs", "patience", "batch_size", "seeds", "first_seed", "threads", "given")}
    t0 = time.perf_counter()
    result: dict[str, Any] = {"settings": options | {"jobs": args.jobs, "dim": 64, "sampler": "tpe (seed 0)", "pruner": "median"},
                              "datasets": {}, "complete": False}
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        partials = {n: out.with_suffix(f".{n}.partial.json") for n in names}
        futures = {pool.submit(run_dataset, n, str(args.data / n), options, str(partials[n])): n for n in names}
        for future in as_completed(futures):
            # each finished data set is saved at once, so a run cut short keeps what it finished
            name = futures[future]
            result["datasets"][name] = future.result()
            result["datasets"] = {n: result["datasets"][n] for n in names if n in result["datasets"]}
            atomic_write_text(out, json.dumps(result, indent=2))
            partials[name].unlink(missing_ok=True)
    result |= {"complete": True, "total_seconds": round(time.perf_counter() - t0, 1)}
    atomic_write_text(out, json.dumps(result, indent=2))
    print(tables(result))
    print(f"total {result['total_seconds']}s -> {out}")


if __name__ == "__main__":
    main()
