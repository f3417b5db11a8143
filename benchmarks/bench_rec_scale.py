"""Scale benchmark for haneul.rec: one HGP training epoch on a synthetic paper-size graph.

Builds a power-law group-user-item graph with the HGP paper's size (1,645,279 nodes, 4,711,208
edges), then times one full-graph training epoch of HGP and, in the same run, of LightGCN on the
same user-item edges (the baseline), plus the time of one propagation step (torch CSR against
scipy CSR on the same matrix). Besides wall time it records the epoch's CPU seconds, which other
tenants of a shared machine do not inflate. Peak memory is the process's maximum resident set size, which
includes building the graph, so it is an upper bound for training alone.

    .venv/bin/python benchmarks/bench_rec_scale.py            # paper size
    .venv/bin/python benchmarks/bench_rec_scale.py --quick    # 1/20 of it, under a minute

Writes benchmarks/results/rec_scale.json. The CPU may be shared: compare the ratios, which come
from the same run, rather than the absolute seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # ru_maxrss is KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1/20 of the paper size")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("BENCH_THREADS", "2")))
    parser.add_argument("--batch-size", type=int, default=1 << 21, help="interactions per step (one full propagation each)")
    parser.add_argument("--k", type=int, default=1, help="propagation steps (1 is the model default)")
    parser.add_argument("--out", default=None, help="result file (default benchmarks/results/rec_scale[_quick].json)")
    args = parser.parse_args()
    if args.out is None:
        args.out = str(ROOT / "benchmarks" / "results" / ("rec_scale_quick.json" if args.quick else "rec_scale.json"))

    import torch

    from haneul.io import atomic_write_text
    from haneul.rec.baselines import LightGCN, MFConfig
    from haneul.rec.data import interaction_keys
    from haneul.rec.graph import PAPER_EDGES, PAPER_NODES, synthetic_tripartite
    from haneul.rec.hgp import HGP, HGPConfig
    from haneul.rec.train import TrainConfig, train_epoch

    torch.set_num_threads(args.threads)
    scale = 20 if args.quick else 1
    t0 = time.perf_counter()
    g = synthetic_tripartite(PAPER_NODES // scale, PAPER_EDGES // scale, seed=0)
    gen_s = time.perf_counter() - t0
    print(f"graph: {g.n_nodes:,} nodes ({g.n_groups:,} groups, {g.n_users:,} users, {g.n_items:,} items), "
          f"{g.n_edges:,} edges; built in {gen_s:.1f}s", flush=True)

    prep = SimpleNamespace(
        data=SimpleNamespace(n_items=g.n_items), train_pairs=g.user_item,
        train_keys=interaction_keys(g.user_item[:, 0], g.user_item[:, 1], g.n_items),
    )
    results: dict = {
        "graph": {"nodes": g.n_nodes, "edges": g.n_edges, "groups": g.n_groups, "users": g.n_users, "items": g.n_items,
                  "group_user_edges": len(g.group_user), "user_item_edges": len(g.user_item), "build_s": round(gen_s, 2)},
        "settings": {"threads": args.threads, "batch_size": args.batch_size, "k": args.k, "dim": 64, "quick": args.quick,
                     "load_average_1m_at_start": round(os.getloadavg()[0], 2), "torch": torch.__version__, "python": platform.python_version(), "cpus": os.cpu_count()},
    }

    def one_epoch(model, name: str) -> float:
        config = TrainConfig(model="hgp", batch_size=args.batch_size)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        rng = np.random.default_rng(0)
        t, c = time.perf_counter(), time.process_time()
        loss = train_epoch(model, prep, config, rng, opt)
        seconds = time.perf_counter() - t
        # CPU seconds of this process (all threads): what the epoch costs without other tenants;
        # divided by the thread count it bounds the wall time on an idle machine from below
        cpu = time.process_time() - c
        steps = -(-len(g.user_item) // args.batch_size)
        print(f"{name}: one epoch ({steps} steps) {seconds:.1f}s wall, {cpu:.1f}s CPU, loss {loss:.4f}, "
              f"peak RSS {peak_rss_gb():.2f} GB", flush=True)
        results[name] = {"epoch_s": round(seconds, 2), "epoch_cpu_s": round(cpu, 2), "steps": steps, "loss": round(loss, 5)}
        return seconds

    t = time.perf_counter()
    hgp = HGP(HGPConfig.from_name("scale", k=args.k), g.n_users, g.n_items, g.user_item, group_user=g.group_user)
    results["hgp_build_s"] = round(time.perf_counter() - t, 2)
    hgp_s = one_epoch(hgp, "hgp")
    results["hgp"]["peak_rss_gb"] = round(peak_rss_gb(), 2)

    # propagation per step: one (1 - a) A Z + a H on the user-item graph, torch CSR vs scipy CSR
    x = torch.randn(hgp.ui.adj.shape[0], 64)
    reps = 3
    with torch.no_grad():
        t = time.perf_counter()
        for _ in range(reps):
            _ = 0.9 * (hgp.ui.torch @ x) + 0.1 * x
        torch_step = (time.perf_counter() - t) / reps
    xn = x.numpy()
    t = time.perf_counter()
    for _ in range(reps):
        _ = 0.9 * (hgp.ui.adj @ xn) + 0.1 * xn
    scipy_step = (time.perf_counter() - t) / reps
    with torch.no_grad():
        t = time.perf_counter()
        hgp.propagate()
        full_prop = time.perf_counter() - t
    results["propagation"] = {
        "user_item_nnz": int(hgp.ui.adj.nnz), "group_user_nnz": int(hgp.social_graph.adj.nnz),
        "torch_step_s": round(torch_step, 4), "scipy_step_s": round(scipy_step, 4),
        "scipy_over_torch": round(scipy_step / torch_step, 2),
        "full_forward_s (K steps on both graphs + fusion)": round(full_prop, 3),
    }
    print(f"propagation step on user-item graph: torch {torch_step:.3f}s, scipy {scipy_step:.3f}s; "
          f"full forward {full_prop:.2f}s", flush=True)
    del hgp, x, xn

    lgcn = LightGCN(MFConfig(dim=64, k=args.k), g.n_users, g.n_items, g.user_item)
    lg_s = one_epoch(lgcn, "lightgcn")
    results["hgp_over_lightgcn_epoch"] = round(hgp_s / lg_s, 2)
    results["hgp_over_lightgcn_epoch_cpu"] = round(results["hgp"]["epoch_cpu_s"] / results["lightgcn"]["epoch_cpu_s"], 2)
    results["peak_rss_gb"] = round(peak_rss_gb(), 2)
    results["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    results["targets"] = {"epoch_s": 60, "peak_gb": 8,
                          "met": bool(hgp_s <= 60 and results["peak_rss_gb"] <= 8) if not args.quick else None}
    atomic_write_text(args.out, json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
