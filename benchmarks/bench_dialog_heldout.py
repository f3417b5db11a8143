"""Memory-update quality on the hand-written held-out set: the shipped memory operator vs the baselines.

The test set, ``benchmarks/data/carecall_memory_handwritten.json`` (25 care-call episodes x 5
sessions, 100 memory updates), was written by hand in the CareCall-memory format, apart from
``haneul.dialog.synth`` and the test fixtures, and is never used for training or for choosing
thresholds. The shipped operator (``src/haneul/dialog/models/operator``) was trained on generated
pairs and the hand-labelled pairs file and calibrated on the development updates: the test fixture
(``tests/dialog/fixtures/carecall_memory_small.json``) and the hand-written development set
(``tests/dialog/fixtures/carecall_memory_dev.json``).

1. Memory-update P / R / F1 per session index, overall, k>=2 and k>=3 for the shipped operator, the
   lexical baseline, append-only and latest-only, with a bootstrap over episodes (2,000 resamples) of
   the F1 difference between the operator and each baseline.
2. Error analysis (haneul.dialog.evaluate.explain_errors) per session index on the fixture and on
   the test set: which reference facts each operator loses and which stale ones it keeps, and the
   confusion of predicted operations against the derived labels.
3. Ablations, each trained here and scored on the test set: the previous default recipe
   (NLI-transfer classifier, phase 1 on KorNLI's XNLI splits when found, `small` preset, frozen
   encoder, argmax decisions), the shipped recipe without calibration (argmax), calibrated on the
   fixture alone, and with two other seeds. With the same seed the shipped recipe gives the shipped
   weights again (one torch thread, the same pair order as `haneul dialog train-operator`).

    .venv/bin/python benchmarks/bench_dialog_heldout.py            # a few minutes on 2 cores
    .venv/bin/python benchmarks/bench_dialog_heldout.py --no-ablations   # the shipped model only, seconds
    .venv/bin/python benchmarks/bench_dialog_heldout.py --docs-only      # tables from the results file

Writes benchmarks/results/dialog_heldout.json atomically and rewrites the tables between the
``<!-- dialog_heldout:NAME -->`` / ``<!-- /dialog_heldout:NAME -->`` markers in docs/dialog.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import sys
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
TEST_SET = ROOT / "benchmarks" / "data" / "carecall_memory_handwritten.json"
FIXTURE = ROOT / "tests" / "dialog" / "fixtures" / "carecall_memory_small.json"
DEV_SETS = (FIXTURE, ROOT / "tests" / "dialog" / "fixtures" / "carecall_memory_dev.json")
HAND_PAIRS = ROOT / "tests" / "dialog" / "fixtures" / "memory_pairs_small.jsonl"
DOCS = ROOT / "docs" / "dialog.md"
BASELINES = ("lexical", "append-only", "latest-only")
SUMMARY_ROWS = ("all", "k>=2", "k>=3")

# the shipped recipe: `haneul dialog train-operator` with these settings rebuilds the shipped model
SHIPPED_RECIPE = {"synthetic": 10000, "preset": "tiny", "op_epochs": 6, "unfreeze": True, "seed": 0}
REBUILD_COMMAND = (
    "haneul dialog train-operator --synthetic 10000 --pairs tests/dialog/fixtures/memory_pairs_small.jsonl "
    "--unfreeze --preset tiny --op-epochs 6 --threads 1 --seed 0 "
    "--calibrate tests/dialog/fixtures/carecall_memory_small.json --calibrate tests/dialog/fixtures/carecall_memory_dev.json "
    "--out src/haneul/dialog/models/operator"
)


def default_nli() -> list[Path]:
    base = Path(os.environ.get("HANEUL_TEST_DATA", ROOT.parent / "shared" / "data"))
    return [base / "kornlu" / f"xnli.{split}.ko.tsv.gz" for split in ("dev", "test")]


def baseline_operators() -> dict:
    from haneul.dialog.operators import get_operator

    return {name: get_operator(name) for name in BASELINES}


def scores(episodes, operators: dict) -> dict:
    """Rows per session index and summary rows, by operator: {operator: {session: row}}."""
    from haneul.dialog.evaluate import evaluate

    report = evaluate(episodes, operators)
    out: dict[str, dict[str, dict]] = {}
    for row in report.rows:
        out.setdefault(row["operator"], {})[str(row["session"])] = row
    return out


def bootstrap(episodes, operators: dict, first: int, against: str, n: int = 2000, seed: int = 0) -> dict:
    """F1(operator) - F1(``against``) over updates of session >= ``first``, episodes resampled."""
    from haneul.dialog.data import transitions
    from haneul.dialog.evaluate import _Tally, score_transition

    per_episode = []
    for episode in episodes:
        tallies = {name: _Tally() for name in ("operator", against)}
        for tr in transitions([episode]):
            if tr.index >= first:
                for name in tallies:
                    tallies[name].add(score_transition(tr, operators[name])[0])
        per_episode.append(tallies)
    rng = random.Random(seed)

    def diff(sample) -> float:
        total = {name: _Tally() for name in ("operator", against)}
        for tallies in sample:
            for name, t in tallies.items():
                total[name].add(t)
        return total["operator"].row()["f1"] - total[against].row()["f1"]

    draws = sorted(diff([rng.choice(per_episode) for _ in per_episode]) for _ in range(n))
    return {"against": against, "from_session": first, "f1_diff": diff(per_episode),
            "ci95": [draws[int(0.025 * n)], draws[int(0.975 * n) - 1]],
            "share_above_zero": sum(d > 0 for d in draws) / n, "resamples": n}


def error_analysis(episodes, operators: dict) -> dict:
    from haneul.dialog.data import transitions
    from haneul.dialog.evaluate import UpdateErrors, explain_errors

    out: dict[str, dict] = {}
    for name, op in operators.items():
        by_k: dict[int, UpdateErrors] = {}
        for tr in transitions(episodes):
            if tr.memory and tr.summary:
                by_k.setdefault(tr.index, UpdateErrors()).add(explain_errors(tr, op.update(tr.memory, tr.summary)))
        total = UpdateErrors()
        for e in by_k.values():
            total.add(e)
        out[name] = {
            "lost": {str(k): dict(e.lost) for k, e in sorted(by_k.items())} | {"all": dict(total.lost)},
            "stale": {str(k): dict(e.stale) for k, e in sorted(by_k.items())} | {"all": dict(total.stale)},
            "confusion": {f"{g}->{p}": c for (g, p), c in sorted(total.confusion.items())},
        }
    return out


def train_recipe(nli_rows, pairs, dev, *, preset, op_epochs, unfreeze, seed, calibrated=True, nli_epochs=0,
                 threads=1):
    """Train one operator the way `haneul dialog train-operator` does; returns (operator, info).

    ``dev`` are the development transitions to calibrate on (ignored when not ``calibrated``).
    """
    from haneul.dialog.operators import ClassifierOperator
    from haneul.dialog.train import TrainConfig, calibrate, train_operator

    cfg = TrainConfig(preset=preset, nli_epochs=nli_epochs, op_epochs=op_epochs, freeze_encoder=not unfreeze,
                      seed=seed, threads=threads)
    t = time.perf_counter()
    model, info = train_operator(nli_rows, pairs, cfg)
    info["train_s"] = time.perf_counter() - t
    if calibrated:
        rule, cal = calibrate(model, dev)
        info.update(decision=asdict(rule), calibration=cal)
    return ClassifierOperator(model), info


PREVIOUS_DEFAULT = "previous default (NLI-transfer, frozen encoder, argmax)"


def ablations(test, dev, fixture_dev, nli_files, nli_epochs: int) -> tuple[dict, dict]:
    """Test scores of each variant, and the trained operators by variant name."""
    from haneul.dialog.data import load_kornli, load_pairs
    from haneul.dialog.synth import generate_pairs

    hand = load_pairs(HAND_PAIRS)
    nli_rows = [row for f in nli_files for row in load_kornli(f)]
    # hand-labelled pairs first, then generated ones: the order `haneul dialog train-operator` uses
    shipped = dict(preset="tiny", op_epochs=6, unfreeze=True)
    variants = {
        PREVIOUS_DEFAULT: dict(nli=nli_rows, pairs=hand + generate_pairs(3000, seed=0), dev=[], preset="small",
                               op_epochs=30, unfreeze=False, seed=0, calibrated=False, nli_epochs=nli_epochs),
        "shipped recipe, argmax (not calibrated)": dict(
            nli=[], pairs=hand + generate_pairs(10000, seed=0), dev=[], seed=0, calibrated=False, **shipped),
        "shipped recipe, calibrated on the fixture alone": dict(
            nli=[], pairs=hand + generate_pairs(10000, seed=0), dev=fixture_dev, seed=0, **shipped),
    }
    for seed in (1, 2):
        variants[f"shipped recipe, seed {seed}"] = dict(
            nli=[], pairs=hand + generate_pairs(10000, seed=seed), dev=dev, seed=seed, **shipped)
    out, trained = {}, {}
    for name, v in variants.items():
        op, info = train_recipe(v.pop("nli"), v.pop("pairs"), v.pop("dev"), **v)
        trained[name] = op
        rows = scores(test, {"operator": op})["operator"]
        out[name] = {"info": {k: info[k] for k in ("train_s", "op_pairs", "nli_pairs", "decision", "calibration")
                              if k in info},
                     "test": {k: rows[k] for k in SUMMARY_ROWS}}
        print(f"  {name}: test F1 {rows['all']['f1']:.3f}, k>=3 {rows['k>=3']['f1']:.3f}")
    return out, trained


# ---- docs tables -------------------------------------------------------------------------------------------


def _prf(row: dict) -> str:
    return f"{row['precision']:.3f} / {row['recall']:.3f} / **{row['f1']:.3f}**"


def table_per_session(test_scores: dict) -> str:
    names = ["operator", *BASELINES]
    sessions = [k for k in test_scores["operator"] if k not in SUMMARY_ROWS] + list(SUMMARY_ROWS)
    lines = ["| k | updates | " + " | ".join(f"{n} P / R / **F1**" for n in names) + " |",
             "|---|---|" + "---|" * len(names)]
    for k in sessions:
        row = test_scores["operator"][k]
        lines.append(f"| {k} | {row['transitions']} | " + " | ".join(_prf(test_scores[n][k]) for n in names) + " |")
    return "\n".join(lines)


def table_bootstrap(boot: list[dict]) -> str:
    lines = ["| updates | vs | F1 difference | 95 % interval (episodes resampled) | resamples above 0 |",
             "|---|---|---|---|---|"]
    for b in boot:
        lines.append(f"| k ≥ {b['from_session']} | {b['against']} | {b['f1_diff']:+.3f} | "
                     f"[{b['ci95'][0]:+.3f}, {b['ci95'][1]:+.3f}] | {b['share_above_zero']:.0%} |")
    return "\n".join(lines)


def table_errors(errors: dict, kind: str) -> str:
    """Lost (recall) or stale (precision) sentences by cause, per session index and operator."""
    names = list(errors)
    causes = sorted({c for n in names for per_k in errors[n][kind].values() for c in per_k})
    sessions = [k for k in errors[names[0]][kind]]
    lines = ["| operator | cause | " + " | ".join(f"k={k}" if k != "all" else "all" for k in sessions) + " |",
             "|---|---|" + "---|" * len(sessions)]
    for n in names:
        for c in causes:
            counts = [errors[n][kind][k].get(c, 0) for k in sessions]
            if any(counts):
                lines.append(f"| {n} | {c} | " + " | ".join(str(x) for x in counts) + " |")
    return "\n".join(lines)


def table_confusion(errors: dict, name: str) -> str:
    ops = ("PASS", "APPEND", "REPLACE", "DELETE")
    conf = Counter({tuple(k.split("->")): v for k, v in errors[name]["confusion"].items()})
    lines = ["| derived label ↓ / predicted → | " + " | ".join(ops) + " |", "|---|" + "---|" * len(ops)]
    for g in ops:
        lines.append(f"| {g} | " + " | ".join(str(conf.get((g, p), 0)) for p in ops) + " |")
    return "\n".join(lines)


def table_ablations(abl: dict, shipped: dict) -> str:
    lines = ["| variant | all P / R / F1 | k ≥ 3 P / R / F1 |", "|---|---|---|",
             f"| **shipped operator** | {_prf(shipped['all'])} | {_prf(shipped['k>=3'])} |"]
    for name, v in abl.items():
        lines.append(f"| {name} | {_prf(v['test']['all'])} | {_prf(v['test']['k>=3'])} |")
    return "\n".join(lines)


def rewrite_docs(tables: dict[str, str]) -> None:
    from haneul.io import atomic_write_text

    text = DOCS.read_text(encoding="utf-8")
    for name, body in tables.items():
        pattern = re.compile(rf"(<!-- dialog_heldout:{re.escape(name)} -->\n).*?(<!-- /dialog_heldout:{re.escape(name)} -->)",
                             re.DOTALL)
        if not pattern.search(text):
            raise SystemExit(f"docs/dialog.md has no <!-- dialog_heldout:{name} --> markers; add them where the table goes")
        text = pattern.sub(lambda m, body=body: m.group(1) + body + "\n" + m.group(2), text)
    atomic_write_text(DOCS, text)


def write_docs(result: dict) -> None:
    errors = result["errors"]
    tables = {
        "test": table_per_session(result["scores"]),
        "bootstrap": table_bootstrap(result["bootstrap"]),
        "lost-dev": table_errors(errors["dev"], "lost"),
        "lost-test": table_errors(errors["test"], "lost"),
        "stale-test": table_errors(errors["test"], "stale"),
        "confusion-test": table_confusion(errors["test"], "operator"),
    }
    if result["ablations"]:
        shipped = {k: result["scores"]["operator"][k] for k in SUMMARY_ROWS}
        tables["ablations"] = table_ablations(result["ablations"], shipped)
    rewrite_docs(tables)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-ablations", action="store_true", help="score the shipped model only (seconds)")
    parser.add_argument("--nli", type=Path, nargs="*", default=default_nli(),
                        help="KorNLI TSV files for the previous default recipe's phase 1 (missing ones are skipped)")
    parser.add_argument("--nli-epochs", type=int, default=1, help="phase-1 epochs of the previous default recipe")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "dialog_heldout.json")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite the tables in docs/dialog.md")
    parser.add_argument("--docs-only", action="store_true", help="rewrite the docs tables from --out, measure nothing")
    args = parser.parse_args()
    if args.docs_only:
        write_docs(json.loads(args.out.read_text(encoding="utf-8")))
        return

    os.environ.setdefault("HANEUL_HOME", tempfile.mkdtemp(prefix="haneul-bench-dialog-"))
    import torch

    from haneul.dialog.data import load_carecall, transitions
    from haneul.dialog.defaults import SHIPPED_OPERATOR
    from haneul.dialog.operators import ClassifierOperator
    from haneul.io import atomic_write_text

    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    test, fixture = load_carecall(TEST_SET), load_carecall(FIXTURE)
    dev = [tr for path in DEV_SETS for tr in transitions(load_carecall(path))]
    shipped = ClassifierOperator.load(SHIPPED_OPERATOR)
    ops = {"operator": shipped, **baseline_operators()}
    test_scores = scores(test, ops)
    boot = [bootstrap(test, ops, first, against) for first in (2, 3) for against in ("lexical", "append-only")]
    errors = {"dev": error_analysis(fixture, {"operator": shipped, "lexical": ops["lexical"]}),
              "test": error_analysis(test, {"operator": shipped, "lexical": ops["lexical"]})}
    nli_files = [f for f in args.nli if f.exists()]
    abl, trained = ({}, {}) if args.no_ablations else ablations(test, dev, transitions(fixture), nli_files,
                                                                   args.nli_epochs)
    if trained:
        # what the previous default classifier dropped, and where (the fixture is held out for it too)
        for split, episodes in (("dev", fixture), ("test", test)):
            errors[split]["previous default"] = error_analysis(episodes, {"x": trained[PREVIOUS_DEFAULT]})["x"]
    meta = json.loads((SHIPPED_OPERATOR / "config.json").read_text(encoding="utf-8"))
    result = {
        "benchmark": "dialog_heldout",
        "test_set": str(TEST_SET.relative_to(ROOT)),
        "test_updates": sum(len(e) - 1 for e in test),
        "dev_sets": [str(path.relative_to(ROOT)) for path in DEV_SETS],
        "shipped_model": str(SHIPPED_OPERATOR.relative_to(ROOT)),
        "shipped_decision": meta.get("decision"),
        "shipped_recipe": SHIPPED_RECIPE,
        "rebuild_command": REBUILD_COMMAND,
        "scores": test_scores,
        "bootstrap": boot,
        "errors": errors,
        "ablations": abl,
        "nli_files": [str(f) for f in nli_files],
        "cpu": platform.processor() or platform.machine(),
        "load_average": os.getloadavg(),
        "wall_s": time.perf_counter() - t0,
    }
    atomic_write_text(args.out, json.dumps(result, ensure_ascii=False, indent=2))
    if not args.no_docs:
        write_docs(result)
    for name in ops:
        r, r3 = test_scores[name]["all"], test_scores[name]["k>=3"]
        print(f"{name:12s} all P {r['precision']:.3f} R {r['recall']:.3f} F1 {r['f1']:.3f} | "
              f"k>=3 P {r3['precision']:.3f} R {r3['recall']:.3f} F1 {r3['f1']:.3f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
