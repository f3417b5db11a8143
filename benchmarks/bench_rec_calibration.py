"""Is ``recommend``'s ``confidence`` calibrated? Predicted hit probability against observed hit rate.

Trains LightGCN on one data set (seed 0), ranks every unseen item for each test user (the user's
train and validation items excluded, as ``recommend`` does for a deployed model), and compares the
``confidence`` of the top-10 items with how often they are test items, overall and in bins.

    .venv/bin/python benchmarks/bench_rec_calibration.py                  # FilmTrust, 10 epochs
    .venv/bin/python benchmarks/bench_rec_calibration.py --data DIR --epochs 30

Writes benchmarks/results/rec_calibration.json (atomically).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

BINS = [0.0, 0.05, 0.1, 0.2, 0.4, 1.0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(os.environ.get("HANEUL_TEST_DATA", ROOT.parent / "shared" / "data")) / "social" / "filmtrust"
    parser.add_argument("--data", type=Path, default=default, help="a RecBole data folder")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs (no early stopping)")
    parser.add_argument("--k", type=int, default=10, help="top-k items per user")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "rec_calibration.json",
                        help="result file")
    args = parser.parse_args()

    import torch

    from haneul.io import atomic_write_text
    from haneul.rec.data import load_recbole
    from haneul.rec.metrics import pairs_matrix
    from haneul.rec.train import TrainConfig, fit, prepare

    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = load_recbole(args.data)
    config = TrainConfig(model="lightgcn", epochs=args.epochs, patience=0)
    prep = prepare(data, config)
    rec = fit(data, config, prep=prep, report=False).model
    split = prep.split
    seen_idx = np.r_[split.train, split.valid]
    test = pairs_matrix(data.user[split.test], data.item[split.test], data.n_users, data.n_items)
    seen = pairs_matrix(data.user[seen_idx], data.item[seen_idx], data.n_users, data.n_items)
    users = np.unique(data.user[split.test])
    scores = rec.user_emb[users] @ rec.item_emb.T
    rows = np.repeat(np.arange(len(users)), np.diff(seen[users].indptr))
    scores[rows, seen[users].indices] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, : args.k]
    calibrated = rec.confidence(np.take_along_axis(scores, top, axis=1))
    assert calibrated is not None, "fit() calibrates every model it returns"
    confidence = calibrated.ravel()
    hits = np.asarray(test[users[:, None], top].todense()).ravel()
    bins: list[dict[str, Any]] = []
    for lo, hi in zip(BINS[:-1], BINS[1:], strict=True):
        inside = (confidence >= lo) & ((confidence < hi) if hi < 1.0 else (confidence <= hi))
        if inside.any():
            bins.append({"bin": [lo, hi], "items": int(inside.sum()), "mean_confidence": round(float(confidence[inside].mean()), 4),
                         "hit_rate": round(float(hits[inside].mean()), 4)})
    out = {"data": data.name, "epochs": args.epochs, "k": args.k, "users": len(users),
           "mean_confidence": round(float(confidence.mean()), 4), "precision_at_k": round(float(hits.mean()), 4),
           "bins": bins}
    atomic_write_text(args.out, json.dumps(out, indent=2))
    print(f"{data.name}: mean confidence of the top {args.k} {out['mean_confidence']:.3f}, observed hit rate "
          f"{out['precision_at_k']:.3f}")
    for b in bins:
        print(f"  confidence {b['bin'][0]:.2f}-{b['bin'][1]:.2f}: {b['items']:5d} items, mean {b['mean_confidence']:.3f}, "
              f"hit rate {b['hit_rate']:.3f}")


if __name__ == "__main__":
    main()
