"""Memory-update benchmark for haneul.dialog: classifier speed on a 50 x 10 update, and memory-update F1.

1. Speed: update a 50-sentence memory with 10 summary sentences (500 pairs) with the classifier
   operator shipped in the package and with an untrained one of --preset (speed depends only on the
   shapes); median wall time over repeats, cold (no sentence vector cached) and warm (the
   memory's 50 sentence vectors cached from the previous update, the usual case for one person),
   with the append-only and lexical operators timed in the same run as baselines. The CPU may be
   shared with other work, so read the ratios, not the absolute milliseconds. Target: ≤ 50 ms.
2. Quality: memory-update precision / recall / F1 and operation accuracy on a CareCall-memory-format
   file (default: the hand-made test fixture) for the classifier, the lexical baseline, append-only
   and latest-only. The classifier is trained on KorNLI (when --nli is found) and then on pairs
   derived from the other half of the episodes (2-fold leave-episodes-out) plus a small hand-labelled
   pairs file (--pairs; disjoint content) and --synthetic generated pairs (haneul.dialog.synth,
   written independently of the fixture), so no transition is scored by a model that saw it.

    .venv/bin/python benchmarks/bench_dialog_update.py            # full (a few minutes)
    .venv/bin/python benchmarks/bench_dialog_update.py --quick    # under a minute
    .venv/bin/python benchmarks/bench_dialog_update.py --speed-only   # speed alone, seconds

Writes benchmarks/results/dialog_update.json (dialog_update_quick.json with --quick,
dialog_update_speed.json with --speed-only), atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
FIXTURE = ROOT / "tests" / "dialog" / "fixtures" / "carecall_memory_small.json"
PAIRS = ROOT / "tests" / "dialog" / "fixtures" / "memory_pairs_small.jsonl"


def default_nli() -> list[Path]:
    base = Path(os.environ.get("HANEUL_TEST_DATA", ROOT.parent / "shared" / "data"))
    return [base / "kornlu" / f"xnli.{split}.ko.tsv.gz" for split in ("dev", "test")]


def sentence_pool(data: Path) -> list[str]:
    from haneul.dialog.data import load_carecall

    pool: list[str] = []
    for ep in load_carecall(data):
        for s in ep:
            for x in s.memory + s.summary:
                if x not in pool:
                    pool.append(x)
    return pool


def time_it(fn, repeats: int) -> float:
    fn()  # warm-up (allocations, lazy imports)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def speed(model, repeats: int) -> dict:
    from haneul.dialog.operators import AppendOnly, ClassifierOperator, LexicalOperator

    pool = sentence_pool(FIXTURE)
    # 60 distinct realistic sentences: numbered variants keep them distinct when the pool is short
    sents = [f"{s} ({i // len(pool) + 1})" if i >= len(pool) else s for i, s in enumerate(pool * 2)][:60]
    memory, summary = sents[:50], sents[50:60]
    clf = ClassifierOperator(model)

    def cold():
        clf.cache.clear()
        clf.update(memory, summary)

    def warm():
        clf.update(memory, summary)

    out = {
        "pairs": len(memory) * len(summary),
        "classifier_cold_ms": time_it(cold, repeats),
        "classifier_warm_ms": time_it(warm, repeats),
        "append_only_ms": time_it(lambda: AppendOnly().update(memory, summary), repeats),
        "lexical_ms": time_it(lambda: LexicalOperator().update(memory, summary), repeats),
        "repeats": repeats,
    }
    out["cold_over_append_only"] = out["classifier_cold_ms"] / out["append_only_ms"]
    out["warm_over_append_only"] = out["classifier_warm_ms"] / out["append_only_ms"]
    out["target_ms"] = 50.0
    out["meets_target_cold"] = out["classifier_cold_ms"] <= 50.0
    out["meets_target_warm"] = out["classifier_warm_ms"] <= 50.0
    return out


def quality(data: Path, nli_rows, cfg, extra_pairs=()) -> dict:
    from haneul.dialog.data import load_carecall, transitions
    from haneul.dialog.evaluate import _Tally, score_transition
    from haneul.dialog.operators import AppendOnly, ClassifierOperator, LatestOnly, LexicalOperator
    from haneul.dialog.train import train_operator

    episodes = load_carecall(data)
    half = len(episodes) // 2
    folds = [(episodes[:half], episodes[half:]), (episodes[half:], episodes[:half])]
    fold_info = []
    overall: dict[str, _Tally] = {}
    by_k: dict[str, dict[int, _Tally]] = {}
    for train_eps, test_eps in folds:
        pairs = [(p.memory, p.summary, p.op) for tr in transitions(train_eps) for p in tr.labels] + list(extra_pairs)
        t = time.perf_counter()
        model, info = train_operator(nli_rows, pairs, cfg)
        fold_info.append({"train_s": time.perf_counter() - t, **info})
        ops = {"classifier": ClassifierOperator(model), "lexical": LexicalOperator(),
               "append-only": AppendOnly(), "latest-only": LatestOnly()}
        for tr in transitions(test_eps):
            for name, op in ops.items():
                tally, _ = score_transition(tr, op)
                overall.setdefault(name, _Tally()).add(tally)
                by_k.setdefault(name, {}).setdefault(tr.index, _Tally()).add(tally)
    return {
        "data": str(data),
        "episodes": len(episodes),
        "protocol": "2-fold leave-episodes-out; micro-averaged over all held-out transitions",
        "folds": fold_info,
        "overall": {name: t.row() for name, t in overall.items()},
        "per_session": {name: {str(k): t.row() for k, t in sorted(ks.items())} for name, ks in by_k.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer NLI rows and epochs, fewer repeats")
    parser.add_argument("--speed-only", action="store_true", help="time the updates, skip the quality part")
    parser.add_argument("--data", type=Path, default=FIXTURE, help="CareCall-memory-format JSON file")
    parser.add_argument("--nli", type=Path, nargs="*", default=default_nli(),
                        help="KorNLI TSV files for phase 1 (missing ones are skipped)")
    parser.add_argument("--pairs", type=Path, default=PAIRS,
                        help="extra hand-labelled pairs JSONL added to every fold's training ('' for none)")
    parser.add_argument("--synthetic", type=int, default=3000,
                        help="generated memory-operation pairs added to every fold's training (0 for none)")
    parser.add_argument("--unfreeze", action="store_true", help="phase 2 trains the encoder too")
    parser.add_argument("--nli-epochs", type=int, default=None, help="phase-1 epochs (default 3, 1 with --quick)")
    parser.add_argument("--preset", default="small", help="classifier preset: tiny, small or base")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 suits a 500-pair batch)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    os.environ.setdefault("HANEUL_HOME", tempfile.mkdtemp(prefix="haneul-bench-dialog-"))
    import torch

    from haneul.dialog.data import load_kornli
    from haneul.dialog.defaults import SHIPPED_OPERATOR
    from haneul.dialog.model import PairClassifier, PairClassifierConfig, load_classifier
    from haneul.dialog.train import TrainConfig
    from haneul.io import atomic_write_text

    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    repeats = args.repeats or (10 if args.quick else 30)
    nli_epochs = args.nli_epochs if args.nli_epochs is not None else (1 if args.quick else 3)
    cfg = TrainConfig(preset=args.preset, nli_epochs=nli_epochs, op_epochs=15 if args.quick else 30,
                      nli_limit=600 if args.quick else None, seed=0, threads=args.threads,
                      freeze_encoder=not args.unfreeze)
    nli_files = [f for f in args.nli if f.exists()]
    nli_rows = [row for f in nli_files for row in load_kornli(f)]

    t0 = time.perf_counter()
    from haneul.dialog.data import load_pairs

    extra = load_pairs(args.pairs) if str(args.pairs) and args.pairs.is_file() else []
    synthetic = []
    if args.synthetic > 0:
        from haneul.dialog.synth import generate_pairs

        synthetic = generate_pairs(args.synthetic, seed=0)
    qual = None
    if not args.speed_only:
        qual = quality(args.data, nli_rows, cfg, extra + synthetic)
        qual["extra_pairs"] = {"file": str(args.pairs) if extra else None, "rows": len(extra),
                               "synthetic": len(synthetic)}
    # speed does not depend on the weights, only on the preset's shapes (and the decision rule)
    spd = speed(PairClassifier(PairClassifierConfig.from_name(args.preset)), repeats)
    spd_shipped = speed(load_classifier(SHIPPED_OPERATOR), repeats)
    result = {
        "benchmark": "dialog_update",
        "quick": args.quick,
        "preset": args.preset,
        "threads": args.threads,
        "nli_files": [str(f) for f in nli_files],
        "freeze_encoder": cfg.freeze_encoder,
        "nli_rows": len(nli_rows[: cfg.nli_limit] if cfg.nli_limit else nli_rows),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "note": "CPU shared with other work: compare ratios within this run, not absolute times",
        "speed": spd,
        "speed_shipped": spd_shipped,
        "quality": qual,
        "wall_s": time.perf_counter() - t0,
    }
    name = "dialog_update_speed" if args.speed_only else "dialog_update_quick" if args.quick else "dialog_update"
    out = args.out or ROOT / "benchmarks" / "results" / f"{name}.json"
    atomic_write_text(out, json.dumps(result, ensure_ascii=False, indent=2))
    print(f"500-pair update: classifier cold {spd['classifier_cold_ms']:.1f} ms, warm {spd['classifier_warm_ms']:.1f} ms, "
          f"append-only {spd['append_only_ms']:.2f} ms, lexical {spd['lexical_ms']:.1f} ms (median of {repeats}); "
          f"shipped operator cold {spd_shipped['classifier_cold_ms']:.1f} ms, warm {spd_shipped['classifier_warm_ms']:.1f} ms")
    for name, r in (qual or {}).get("overall", {}).items():
        acc = "-" if r["op_acc"] is None else f"{r['op_acc']:.3f}"
        print(f"{name:12s} P {r['precision']:.3f} R {r['recall']:.3f} F1 {r['f1']:.3f} op-acc {acc}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
