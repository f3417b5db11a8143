"""Results table for haneul.rec on LastFM and FilmTrust: every model, mean +- std over seeds.

For each data set and seed the per-user random 8:1:1 split and the Leiden groups are built once
and shared by every model (popularity, BPR-MF, LightGCN, the raw-social variant and HGP), so all
rows use the same protocol in the same run. Reports AUC and F1 (one sampled negative per held-out
positive, F1 threshold from validation) and full-ranking Recall@10 / NDCG@10 (RecBole protocol:
all items ranked, the user's train and validation items excluded), the HGP - LightGCN Recall@10
gap, and the published RecBole-GNN LastFM numbers for reference. Epochs are sized so the full
table finishes in about 15 minutes on a shared 2-core CPU, which is far fewer than the published
runs use; read the published numbers as a ceiling, not as the same budget.

    .venv/bin/python benchmarks/bench_rec_social.py            # 3 seeds, both data sets
    .venv/bin/python benchmarks/bench_rec_social.py --quick    # 1 seed, 2 epochs, under a minute

Writes benchmarks/results/rec_social.json (atomically).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

MODELS = ["pop", "bpr", "lightgcn", "social", "hgp"]
METRICS = ["auc", "f1", "recall@10", "ndcg@10"]
PUBLISHED_LASTFM = {  # RecBole-GNN, 8:1:1, full ranking, embedding 64
    "lightgcn": {"recall@10": 0.2064, "ndcg@10": 0.1972},
    "mhcn": {"recall@10": 0.2123, "ndcg@10": 0.2068},
    "sept": {"recall@10": 0.2127, "ndcg@10": 0.2057},
}


def default_data() -> Path:
    base = Path(os.environ.get("HANEUL_TEST_DATA", ROOT.parent / "shared" / "data"))
    return base / "social"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data(), help="folder holding lastfm/ and filmtrust/")
    parser.add_argument("--quick", action="store_true", help="1 seed, 2 epochs")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=None, help="override the per-data-set epochs")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--datasets", default="lastfm,filmtrust")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--out", default=None, help="result file (default benchmarks/results/rec_social[_quick].json)")
    args = parser.parse_args()
    if args.out is None:
        args.out = str(ROOT / "benchmarks" / "results" / ("rec_social_quick.json" if args.quick else "rec_social.json"))

    import torch

    from haneul.io import atomic_write_text
    from haneul.rec.data import load_recbole
    from haneul.rec.train import TrainConfig, fit, prepare

    torch.set_num_threads(args.threads)
    seeds = [0] if args.quick else list(range(args.seeds))
    # epochs per data set: sized for the time budget (FilmTrust is ~3x smaller than LastFM)
    epochs = {"lastfm": 30, "filmtrust": 40}
    common = {"batch_size": 8192, "lr": 2e-2, "dim": 64, "eval_every": 10}
    out: dict = {"settings": {**common, "seeds": seeds, "threads": args.threads, "quick": args.quick}, "datasets": {}}
    t_all = time.perf_counter()
    for name in args.datasets.split(","):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = load_recbole(args.data / name)
        n_epochs = 2 if args.quick else (args.epochs or epochs.get(name, 30))
        runs: dict[str, list[dict]] = {m: [] for m in args.models.split(",")}
        group_info = []
        for seed in seeds:
            base = TrainConfig(model="hgp", epochs=n_epochs, seed=seed, **common)
            prep = prepare(data, base)
            if prep.groups is not None:
                group_info.append({"communities": prep.groups.n_groups, "groups": prep.groups.kept_groups, "social_edges": prep.groups.social_edges,
                                   "group_edges": prep.groups.group_edges, "reduction": round(prep.groups.reduction, 4),
                                   "modularity": round(prep.groups.modularity, 4)})
            for model in runs:
                config = TrainConfig(model=model, epochs=n_epochs, seed=seed, **common)
                result = fit(data, config, prep=prep, report=False)
                row = {k: result.metrics[k] for k in METRICS} | {"seconds": round(result.seconds, 1), "best_epoch": result.best_epoch}
                runs[model].append(row)
                print(f"{name} seed {seed} {model:9s} " + "  ".join(f"{k} {row[k]:.4f}" for k in METRICS)
                      + f"  ({row['seconds']}s)", flush=True)
        table = {
            m: {k: {"mean": float(np.mean([r[k] for r in rs])), "std": float(np.std([r[k] for r in rs]))} for k in METRICS}
            | {"seconds_mean": float(np.mean([r["seconds"] for r in rs]))}
            for m, rs in runs.items()
        }
        entry = {"describe": data.describe(), "epochs": n_epochs, "groups": group_info, "table": table, "runs": runs}
        if "hgp" in runs and "lightgcn" in runs:
            diffs = [h["recall@10"] - g["recall@10"] for h, g in zip(runs["hgp"], runs["lightgcn"], strict=True)]
            entry["hgp_minus_lightgcn_recall@10"] = {"mean": float(np.mean(diffs)), "per_seed": diffs,
                                                      "hgp_at_least_as_good": bool(np.mean(diffs) >= 0)}
        if name == "lastfm":
            entry["published"] = PUBLISHED_LASTFM
        out["datasets"][name] = entry
    out["total_seconds"] = round(time.perf_counter() - t_all, 1)
    atomic_write_text(args.out, json.dumps(out, indent=2))

    for name, entry in out["datasets"].items():
        print(f"\n{name} ({entry['epochs']} epochs, {len(seeds)} seed(s)); mean +- std")
        print("| model | " + " | ".join(METRICS) + " |")
        print("|---|" + "---|" * len(METRICS))
        for m, row in entry["table"].items():
            print(f"| {m} | " + " | ".join(f"{row[k]['mean']:.4f} ± {row[k]['std']:.4f}" for k in METRICS) + " |")
        if "published" in entry:
            for m, ref in entry["published"].items():
                print(f"| {m} (published) | - | - | {ref['recall@10']:.4f} | {ref['ndcg@10']:.4f} |")
        if "hgp_minus_lightgcn_recall@10" in entry:
            print(f"HGP - LightGCN Recall@10: {entry['hgp_minus_lightgcn_recall@10']['mean']:+.4f}")
    print(f"\ntotal {out['total_seconds']}s -> {args.out}")


if __name__ == "__main__":
    main()
