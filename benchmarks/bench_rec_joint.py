"""HGP's joint tripartite propagation against LightGCN, trained to convergence with the same settings.

Every model of a data set trains with one shared optimiser setting (the RecBole-GNN protocol: per-user
8:1:1 split, full ranking, embedding 64, validation every epoch, stop after 10 epochs without a better
validation Recall@10, test the best epoch) and the same K = 3 layers, so neither side gets a tuning
budget the other lacks. Rows:

- ``lightgcn``: LightGCN (K = 3);
- ``hgp``: HGP with ``propagation="joint"``: LightGCN's filter over the whole group-user-item graph
  (Leiden groups at resolution 1);
- ``social``: the same joint propagation over users and items plus the raw user-user links;
- ``hgp-split``: HGP as the paper propagates (APPNP per sub-graph, attention fusion), K = 1, the
  reference run's settings (optional, ``--models``).

Each (data set, model, seed) run is written to ``--runs`` as its own JSON file as soon as it ends and
is skipped when that file is there, so a long run can be stopped and started again, or split over
processes (``--seeds 1``, ``--first-seed 2``); the table is rebuilt from whatever runs exist.

    .venv/bin/python benchmarks/bench_rec_joint.py --datasets lastfm,filmtrust --jobs 2
    .venv/bin/python benchmarks/bench_rec_joint.py --datasets yelp2 --jobs 3
    .venv/bin/python benchmarks/bench_rec_joint.py --tables          # only rebuild the JSON and tables

Writes benchmarks/results/rec_joint.json (atomically).
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

METRICS = ["auc", "recall@10", "ndcg@10", "recall@20"]
LABELS = {"lightgcn": "LightGCN", "hgp": "HGP, joint propagation", "social": "joint, raw user links",
          "hgp-split": "HGP, split propagation (paper)"}
# one optimiser setting per data set, shared by every model: Yelp2 is twice LastFM, so larger batches
SETTINGS = {
    "lastfm": {"lr": 5e-3, "batch_size": 2048},
    "filmtrust": {"lr": 5e-3, "batch_size": 2048},
    "yelp2": {"lr": 1e-2, "batch_size": 8192},
}
MODELS = {
    "lightgcn": {"model": "lightgcn", "k": 3},
    "hgp": {"model": "hgp", "k": 3, "propagation": "joint"},
    "social": {"model": "social", "k": 3, "propagation": "joint"},
    "hgp-split": {"model": "hgp", "k": 1, "propagation": "split"},
}


def default_data() -> Path:
    return Path(os.environ.get("HANEUL_TEST_DATA", ROOT.parent / "shared" / "data")) / "social"


def run_one(data_dir: str, dataset: str, model: str, seed: int, out: str, epochs: int, patience: int) -> str:
    """Train one (data set, model, seed) and write its result file; returns a one-line summary."""
    import torch

    from haneul.io import atomic_write_text
    from haneul.rec.data import load_recbole
    from haneul.rec.train import TrainConfig, fit

    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = load_recbole(Path(data_dir) / dataset)
    config = TrainConfig(seed=seed, epochs=epochs, patience=patience, threads=1, **SETTINGS[dataset], **MODELS[model])
    t0 = time.perf_counter()
    result = fit(data, config, report=False)
    row = {"dataset": dataset, "model": model, "seed": seed, "config": {k: v for k, v in vars(config).items()},
           "test": result.metrics, "best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
           "fusion": result.fusion, "groups": result.group_stats.as_dict() if result.group_stats else None,
           "seconds": round(time.perf_counter() - t0, 1)}
    atomic_write_text(Path(out), json.dumps(row, indent=1))
    return (f"{dataset} {model} seed {seed}: R@10 {result.metrics['recall@10']:.4f} AUC {result.metrics['auc']:.4f} "
            f"best epoch {result.best_epoch} ({row['seconds']} s)")


def collect(runs: Path) -> dict[str, Any]:
    """Mean and std over seeds of every (data set, model) found in ``runs``, and paired differences."""
    found: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for path in sorted(runs.glob("*.json")):
        row = json.loads(path.read_text())
        found.setdefault(row["dataset"], {}).setdefault(row["model"], []).append(row)
    table: dict[str, Any] = {}
    for dataset, models in found.items():
        table[dataset] = {}
        for model, rows in models.items():
            rows.sort(key=lambda r: r["seed"])
            table[dataset][model] = {
                m: {"mean": float(np.mean([r["test"][m] for r in rows])), "std": float(np.std([r["test"][m] for r in rows]))}
                for m in METRICS
            } | {"seeds": [r["seed"] for r in rows], "best_epochs": [r["best_epoch"] for r in rows],
                 "seconds": [r["seconds"] for r in rows]}
        base = {r["seed"]: r for r in models.get("lightgcn", [])}
        for model, rows in models.items():
            if model == "lightgcn":
                continue
            paired = [(r, base[r["seed"]]) for r in rows if r["seed"] in base]
            if paired:
                table[dataset][model]["vs_lightgcn"] = {
                    m: {"diffs": [round(a["test"][m] - b["test"][m], 5) for a, b in paired],
                        "wins": sum(a["test"][m] >= b["test"][m] for a, b in paired), "pairs": len(paired)}
                    for m in ("recall@10", "auc")
                }
    return table


def markdown(table: dict[str, Any]) -> str:
    lines = []
    for dataset in sorted(table):
        lines += [f"**{dataset}**", "", "| model | seeds | Recall@10 | AUC | NDCG@10 | best epochs | vs LightGCN (R@10 / AUC wins) |",
                  "|---|---|---|---|---|---|---|"]
        for model in [m for m in MODELS if m in table[dataset]]:
            row = table[dataset][model]
            cell = {m: f"{row[m]['mean']:.4f} ± {row[m]['std']:.4f}" for m in METRICS}
            vs = row.get("vs_lightgcn")
            wins = (f"{vs['recall@10']['wins']}/{vs['recall@10']['pairs']} · {vs['auc']['wins']}/{vs['auc']['pairs']}"
                    if vs else "—")
            lines.append(f"| {LABELS[model]} | {len(row['seeds'])} | {cell['recall@10']} | {cell['auc']} | "
                         f"{cell['ndcg@10']} | {', '.join(map(str, row['best_epochs']))} | {wins} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data(), help="folder holding lastfm/, filmtrust/, yelp2/")
    parser.add_argument("--datasets", default="lastfm,filmtrust,yelp2", help="comma-separated data sets")
    parser.add_argument("--models", default="lightgcn,hgp,social", help=f"comma-separated, of {', '.join(MODELS)}")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per model")
    parser.add_argument("--first-seed", type=int, default=0, help="the first seed")
    parser.add_argument("--epochs", type=int, default=400, help="epoch cap (early stopping ends runs sooner)")
    parser.add_argument("--patience", type=int, default=10, help="early-stopping patience (epochs)")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (one torch thread each)")
    parser.add_argument("--runs", type=Path, default=ROOT / "benchmarks" / "results" / "rec_joint_runs",
                        help="folder of per-run result files (existing ones are kept, not run again)")
    parser.add_argument("--tables", action="store_true", help="only rebuild the JSON and print the tables")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "rec_joint.json", help="result file")
    args = parser.parse_args()

    from haneul.io import atomic_write_text

    datasets = [d for d in args.datasets.split(",") if d]
    models = [m for m in args.models.split(",") if m]
    for name, known, given in (("data set", SETTINGS, datasets), ("model", MODELS, models)):
        bad = [g for g in given if g not in known]
        if bad:
            sys.exit(f"unknown {name} {bad[0]!r}; choose from {', '.join(known)}")
    args.runs.mkdir(parents=True, exist_ok=True)
    if not args.tables:
        todo = []
        for dataset in datasets:
            if not (args.data / dataset).is_dir():
                sys.exit(f"{args.data / dataset} is not there; pass --data FOLDER holding {dataset}/")
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                for model in models:
                    out = args.runs / f"{dataset}-{model}-seed{seed}.json"
                    if not out.exists():
                        todo.append((str(args.data), dataset, model, seed, str(out), args.epochs, args.patience))
        print(f"{len(todo)} runs to do", flush=True)
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            for fut in as_completed([pool.submit(run_one, *job) for job in todo]):
                print(fut.result(), flush=True)
    table = collect(args.runs)
    result = {"settings": {"optimiser": SETTINGS, "models": MODELS, "patience": args.patience, "epochs": args.epochs,
                           "protocol": "per-user random 8:1:1, full ranking, embedding 64, best validation Recall@10 epoch"},
              "datasets": table}
    atomic_write_text(args.out, json.dumps(result, indent=1))
    print(markdown(table))


if __name__ == "__main__":
    main()
