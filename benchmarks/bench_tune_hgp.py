"""Time-to-target for the optimiser on HGP / LastFM: TPE + ASHA against random search (and Ray Tune).

The search space, sampler and pruner are those of ``examples/tune/hgp_lastfm.yaml`` (built with
``StudySpec.sampler()`` / ``.pruner()``, the objects a study on the server uses); only the epochs per
trial and the largest ``dim`` are cut so a sampler seed takes about 10 minutes on a shared 2-core
CPU. Trials run in-process, one after another, through Optuna and ``haneul.rec.train.fit`` on one
split and one set of Leiden groups (seed 0) built once; the cost a platform trial adds on top (a
process that imports torch and loads LastFM) is measured separately as ``trial_start_s``.

1. Random search: ``--trials`` B trials of ``--epochs`` E epochs, no pruning (B x E trial-epochs).
   The target is the best validation Recall@10 any of its trials reached at any epoch.
2. TPE + ASHA: the same B trials, E epochs at most; a pruned trial counts the epochs it ran. Reported:
   the trial-epochs spent when a validation Recall@10 first reached the target, and that over B x E.
   Steps 1 and 2 run once per sampler seed in ``--seeds`` (TPE samples with the seed + 100).
3. Ray Tune's ASHA scheduler (random search, the same space, budget, rungs and 2 CPUs) against the
   first seed's target when Ray is installed; otherwise the reason it did not run.
4. Tuned against default, on the TEST split (training seeds 0, 1, 2 on the seed-0 split): a TPE + ASHA
   search under ``haneul rec train``'s own protocol (at most 200 epochs, validation every epoch, early
   stopping after 10 without a better one) with the defaults enqueued as its first trial (as ``haneul
   tune enqueue`` does) and ASHA's first rung at ``--test-min-resource`` epochs; its best trial on
   validation against the default settings, both retrained under that protocol. When step 2 ran in the
   same invocation, also the best trial of its short searches, at E epochs and under the protocol.
5. PBT: ``examples/tune/hgp_lastfm_pbt.yaml`` (fewer epochs and trials) as a real study on a live
   server; the trials' lineage (``parent_trial`` against the sessions' ``parent_id``) and values.

    .venv/bin/python benchmarks/bench_tune_hgp.py --seeds 0,1,2 --test-trials 24   # about 50 min, 2 shared cores
    .venv/bin/python benchmarks/bench_tune_hgp.py --quick        # B=4, E=3, one seed, no Ray or PBT: a smoke run
    .venv/bin/python benchmarks/bench_tune_hgp.py --parts pbt    # one part; the file keeps the others

Writes benchmarks/results/tune_hgp.json (atomically).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

STUDY = ROOT / "examples" / "tune" / "hgp_lastfm.yaml"
PBT_STUDY = ROOT / "examples" / "tune" / "hgp_lastfm_pbt.yaml"
OBJECTIVE = "valid_recall_10"
TPE_SEED_OFFSET = 100  # TPE + ASHA samples with seed + 100, Ray with seed + 200


def default_data() -> Path:
    base = Path(os.environ.get("HANEUL_TEST_DATA", ROOT.parent / "shared" / "data"))
    return base / "social" / "lastfm"


@dataclass
class Search:
    """One search's ledger: every (trial, epoch, value) in the order it was reported."""

    name: str
    points: list[tuple[int, int, float]] = field(default_factory=list)
    trials: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def trial_epochs(self) -> int:
        return len(self.points)

    @property
    def best(self) -> float:
        return max(v for _, _, v in self.points)

    def epochs_to(self, target: float) -> int | None:
        """Trial-epochs spent when a reported value first reached ``target`` (None: never)."""
        for n, (_, _, value) in enumerate(self.points, 1):
            if value >= target - 1e-12:
                return n
        return None

    def summary(self, target: float, baseline_epochs: int) -> dict[str, Any]:
        reached = self.epochs_to(target)
        return {
            "trial_epochs": self.trial_epochs, "best_valid_recall_10": self.best, "seconds": round(self.seconds, 1),
            "trial_epochs_to_target": reached,
            "ratio_to_random_budget": None if reached is None else round(reached / baseline_epochs, 4),
            "trials": self.trials,
        }


def config_for(params: dict[str, Any], epochs: int, seed: int = 0):
    from haneul.rec.train import TrainConfig

    return TrainConfig(model="hgp", epochs=epochs, eval_every=1, threads=1, seed=seed, **params)


def optuna_search(name: str, spec, data, prep, trials: int, epochs: int, seed: int,
                  enqueue: dict[str, Any] | None = None) -> Search:
    """B trials of ``spec``'s sampler and pruner, each trial ``fit`` with a reporting callback;
    ``enqueue`` is tried first (as ``haneul tune enqueue`` does on a server)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from haneul.rec.train import fit

    search = Search(name)
    study = optuna.create_study(direction="maximize", sampler=spec.sampler(seed=seed), pruner=spec.pruner())
    if enqueue is not None:
        study.enqueue_trial(enqueue)

    def objective(trial: optuna.Trial) -> float:
        params = spec.sample(trial)
        seen: list[float] = []

        def progress(epoch: int, row: dict[str, float]) -> None:
            value = float(row[OBJECTIVE])
            seen.append(value)
            search.points.append((trial.number, epoch, value))
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        state = "complete"
        try:
            fit(data, config_for(params, epochs), prep=prep, report=False, progress=progress)
        except optuna.TrialPruned:
            state = "pruned"
            raise
        finally:
            search.trials.append({"number": trial.number, "params": params, "state": state, "epochs": len(seen),
                                  "best": max(seen) if seen else None})
        return max(seen)  # use: best, as in the study file

    t0 = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    search.seconds = time.perf_counter() - t0
    return search


def ray_search(spec, data_dir: Path, prep, trials: int, epochs: int, seed: int) -> dict[str, Any]:
    """Ray Tune's ASHA (random search) over the same space, budget and rungs; or why it did not run."""
    try:
        import ray
        from ray import tune
        from ray.tune.schedulers import ASHAScheduler
        from ray.tune.search.basic_variant import BasicVariantGenerator
    except ImportError as exc:
        return {"ran": False, "why": f"ray[tune] is not installed ({exc}); pip install 'ray[tune]'"}
    space: dict[str, Any] = {}
    for name, p in spec.space.items():
        if p.type == "categorical":
            space[name] = tune.choice(list(p.choices))
        elif p.type == "int":
            space[name] = tune.qrandint(int(p.low), int(p.high), int(p.step or 1))
        else:
            space[name] = tune.loguniform(p.low, p.high) if p.log else tune.uniform(p.low, p.high)
    args = dict(spec.algorithm.pruner_args)

    def trainable(config: dict[str, Any], prep=None, epochs: int = epochs, key: str = OBJECTIVE) -> None:
        # self-contained: Ray ships it to worker processes that cannot import this script
        import time as wall_clock

        from ray import tune as rt

        from haneul.rec.train import TrainConfig, fit

        def progress(epoch: int, row: dict[str, float]) -> None:
            rt.report({key: float(row[key]), "epoch": epoch, "wall": wall_clock.time()})

        settings = TrainConfig(model="hgp", epochs=epochs, eval_every=1, threads=1, seed=0, **config)
        fit(prep.data, settings, prep=prep, report=False, progress=progress)

    t0 = time.perf_counter()
    try:
        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
        scheduler = ASHAScheduler(time_attr="epoch", max_t=epochs, grace_period=int(args.get("min_resource", 1)),
                                  reduction_factor=float(args.get("reduction_factor", 4)))
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(trainable, prep=prep), {"cpu": 1}),
            param_space=space,
            tune_config=tune.TuneConfig(metric=OBJECTIVE, mode="max", scheduler=scheduler, num_samples=trials,
                                        search_alg=BasicVariantGenerator(random_state=seed)),
            run_config=tune.RunConfig(storage_path=tempfile.mkdtemp(prefix="haneul-ray-"), verbose=0),
        )
        grid = tuner.fit()
        if grid.errors:
            first = str(grid.errors[0]).strip().splitlines()
            return {"ran": False, "why": f"{len(grid.errors)} Ray trials failed; the first: {first[-1] if first else '?'}"}
        rows = []
        for result in grid:
            frame = result.metrics_dataframe
            if frame is None or OBJECTIVE not in frame:
                continue
            rows += [(float(w), int(e), float(v)) for w, e, v in zip(frame["wall"], frame["epoch"], frame[OBJECTIVE],
                                                                     strict=True)]
    except Exception as exc:  # the report says why instead of the benchmark failing
        return {"ran": False, "why": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
    finally:
        if ray.is_initialized():
            ray.shutdown()
    rows.sort()
    search = Search("ray_asha", points=[(0, e, v) for _, e, v in rows])
    search.seconds = time.perf_counter() - t0
    return {"ran": True, "version": ray.__version__, "search": search}


def retrain(data, prep_by_seed, params: dict[str, Any], seeds: list[int], epochs: int) -> dict[str, Any]:
    """Train ``params`` for ``epochs`` (the default evaluation cadence) on each seed; test metrics."""
    from haneul.rec.train import TrainConfig, fit

    runs = []
    for seed in seeds:
        config = replace(TrainConfig(), epochs=epochs, threads=1, seed=seed, **params)
        result = fit(data, config, prep=prep_by_seed[seed], report=False)
        runs.append({"seed": seed, "best_epoch": result.best_epoch, **{k: float(v) for k, v in result.metrics.items()}})
    out: dict[str, Any] = {"params": params, "runs": runs}
    for key in ("recall@10", "ndcg@10", "auc"):
        values = np.array([r[key] for r in runs])
        out[key] = {"mean": float(values.mean()), "std": float(values.std())}
    return out


def trial_start_cost(data_dir: Path) -> float:
    """Seconds a trial process spends before its first epoch: start, import, load LastFM, build groups."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "haneul", "rec", "train", "--data", str(data_dir), "--epochs", "0",
                        "--threads", "1", "--out", str(Path(tmp) / "m"), "--json"],
                       check=True, capture_output=True, env={**os.environ, "HANEUL_HOME": tmp})
        return time.perf_counter() - t0


DEFAULTS = {"lr": 2e-2, "dim": 64, "alpha": 0.1, "reg": 1e-4, "k": 1, "batch_size": 8192}  # `haneul rec train`'s, in the space's terms


@dataclass
class Bench:
    """What every part of the benchmark shares: the data, its split and groups, the study's space."""

    args: argparse.Namespace
    data: Any
    split: Any
    prep: Any
    raw: dict[str, Any]  # the study file as a dict

    def spec(self, dim_max: int, **algorithm: Any):
        from haneul.tune.spec import StudySpec

        raw = json.loads(json.dumps(self.raw))
        raw["space"]["dim"]["high"] = min(raw["space"]["dim"]["high"], dim_max)
        raw["algorithm"] |= algorithm
        return StudySpec.from_dict(raw)


def part_search(b: Bench, result: dict[str, Any]) -> None:
    """Random search against TPE + ASHA, once per sampler seed."""
    args = b.args
    tpe = b.spec(args.dim_max)
    runs = []
    for seed in [int(x) for x in args.seeds.split(",")]:
        random = b.spec(args.dim_max, sampler="random", pruner="none", seed=seed)
        print(f"sampler seed {seed}: random search, {args.trials} trials x {args.epochs} epochs", flush=True)
        rnd = optuna_search("random", random, b.data, b.prep, args.trials, args.epochs, seed)
        target, budget = rnd.best, rnd.trial_epochs
        print(f"  best valid Recall@10 {target:.4f} after {rnd.epochs_to(target)} of {budget} trial-epochs "
              f"({rnd.seconds:.0f} s)", flush=True)
        # another seed: with the same one TPE's random start-up trials would repeat random search's first ones
        asha = optuna_search("tpe_asha", tpe, b.data, b.prep, args.trials, args.epochs, seed + TPE_SEED_OFFSET)
        reached = asha.epochs_to(target)
        print(f"  TPE + ASHA: best {asha.best:.4f}; {asha.trial_epochs} trial-epochs; target reached after "
              f"{reached} ({asha.seconds:.0f} s)", flush=True)
        runs.append({"sampler_seeds": {"random": seed, "tpe_asha": seed + TPE_SEED_OFFSET},
                     "target_valid_recall_10": target, "random_trial_epochs": budget,
                     "random_trial_epochs_to_own_best": rnd.epochs_to(target),
                     "tpe_asha_trial_epochs_to_target": reached,
                     "tpe_asha_ratio": None if reached is None else round(reached / budget, 4),
                     "random": rnd.summary(target, budget), "tpe_asha": asha.summary(target, budget)})
    ratios = [r["tpe_asha_ratio"] for r in runs]
    result["search"] = {
        "trials": args.trials, "epochs": args.epochs, "dim_max": args.dim_max,
        "space": tpe.to_dict()["space"], "pruner_args": dict(tpe.algorithm.pruner_args),
        "tpe_seed_offset": TPE_SEED_OFFSET, "runs": runs,
        "tpe_asha_ratio": {"per_seed": ratios, "mean": None if None in ratios else round(float(np.mean(ratios)), 4),
                           "worst": None if None in ratios else max(ratios)},
        "tpe_asha_meets_half": all(r is not None and r <= 0.5 for r in ratios),
    }


def part_ray(b: Bench, result: dict[str, Any]) -> None:
    """Ray Tune's ASHA against the first seed's target."""
    args = b.args
    first = result["search"]["runs"][0]
    target, budget = first["target_valid_recall_10"], first["random_trial_epochs"]
    seed = first["sampler_seeds"]["random"] + 2 * TPE_SEED_OFFSET
    print(f"Ray Tune ASHA against the target of sampler seed {first['sampler_seeds']['random']}", flush=True)
    out = ray_search(b.spec(args.dim_max), args.data, b.prep, args.trials, args.epochs, seed)
    out |= {"seed": seed, "target_valid_recall_10": target}
    if out.get("ran"):
        search = out.pop("search")
        out |= search.summary(target, budget)
        print(f"  best {search.best:.4f}; {search.trial_epochs} trial-epochs; target reached after "
              f"{search.epochs_to(target)}", flush=True)
    else:
        print(f"  did not run: {out['why']}", flush=True)
    result["ray_asha"] = out


def part_test(b: Bench, result: dict[str, Any]) -> None:
    """Tune at the default epochs on validation (the defaults enqueued first), then compare on TEST."""
    from haneul.rec.train import TrainConfig, prepare

    args = b.args
    epochs = TrainConfig().epochs
    seeds = [int(x) for x in args.retrain_seeds.split(",")]
    print(f"TPE + ASHA at {epochs} epochs, {args.test_trials} trials, the defaults enqueued first", flush=True)
    # ASHA's rung at epoch 2 stops slow starters before a 30-epoch run can show what they are worth
    spec = b.spec(args.test_dim_max, pruner_args={**b.raw["algorithm"]["pruner_args"],
                                                  "min_resource": args.test_min_resource})
    search = optuna_search("tpe_asha_full", spec, b.data, b.prep, args.test_trials, epochs, TPE_SEED_OFFSET,
                           enqueue=dict(DEFAULTS))
    done = [t for t in search.trials if t["state"] == "complete"]
    best = max(done, key=lambda t: t["best"])
    default_valid = next(t["best"] for t in search.trials if t["number"] == 0)
    print(f"  best valid Recall@10 {best['best']:.4f} (defaults {default_valid:.4f}); {search.trial_epochs} "
          f"trial-epochs; {best['params']}", flush=True)
    prep_by_seed = {s: b.prep if s == 0 else prepare(b.data, TrainConfig(seed=s), b.split) for s in seeds}
    tuned = retrain(b.data, prep_by_seed, dict(best["params"]), seeds, epochs)
    default = retrain(b.data, prep_by_seed, {}, seeds, epochs)
    out: dict[str, Any] = {
        "epochs": epochs, "eval_every": TrainConfig().eval_every, "seeds": seeds, "split_seed": 0,
        "search": {"budget": args.test_trials, "dim_max": args.test_dim_max, "seed": TPE_SEED_OFFSET,
                   "space": spec.to_dict()["space"],
                   "pruner_args": dict(spec.algorithm.pruner_args),
                   "trial_epochs": search.trial_epochs, "seconds": round(search.seconds, 1),
                   "default_valid_recall_10": default_valid, "best_valid_recall_10": best["best"],
                   "trials": search.trials},
        "tuned": tuned, "default": default,
        "recall@10_gain": tuned["recall@10"]["mean"] - default["recall@10"]["mean"],
        "tuned_wins_every_seed": all(t["recall@10"] > d["recall@10"]
                                     for t, d in zip(tuned["runs"], default["runs"], strict=True)),
    }
    print(f"  test Recall@10 tuned {tuned['recall@10']['mean']:.4f} +- {tuned['recall@10']['std']:.4f}, "
          f"default {default['recall@10']['mean']:.4f} +- {default['recall@10']['std']:.4f}", flush=True)
    if "search" in result and "search" in b.args.parts:  # the short searches' best, trained as the defaults are
        short = max((t for r in result["search"]["runs"] for t in r["tpe_asha"]["trials"] if t["state"] == "complete"),
                    key=lambda t: t["best"])
        moved = retrain(b.data, prep_by_seed, dict(short["params"]), seeds, epochs)
        short_epochs = result["search"]["epochs"]
        at_short = {"tuned": retrain(b.data, prep_by_seed, dict(short["params"]), seeds, short_epochs),
                    "default": retrain(b.data, prep_by_seed, {}, seeds, short_epochs)}
        out["short_search_best"] = {"searched_epochs": short_epochs, "params": short["params"],
                                    "valid_recall_10": short["best"], f"at_{epochs}_epochs": moved,
                                    f"at_{short_epochs}_epochs": at_short}
        print(f"  the {short_epochs}-epoch searches' best: at {epochs} epochs {moved['recall@10']['mean']:.4f}; "
              f"at {short_epochs} epochs {at_short['tuned']['recall@10']['mean']:.4f} against the defaults' "
              f"{at_short['default']['recall@10']['mean']:.4f}", flush=True)
    result["test"] = out


def part_pbt(b: Bench, result: dict[str, Any]) -> None:
    """The PBT example as a real study on a live server (LastFM, fewer epochs): lineage and values."""
    import httpx

    from haneul.platform.testing import start_server, wait_for
    from haneul.tune.spec import StudySpec

    args = b.args
    raw = StudySpec.load(PBT_STUDY).to_dict()
    with tempfile.TemporaryDirectory(prefix="haneul-pbt-") as tmp:
        code = Path(tmp) / "code"
        code.mkdir()
        raw.update(name="hgp-pbt", cwd=str(code), command=[
            sys.executable, "-m", "haneul", "rec", "train", "--data", str(args.data), "--model", "hgp",
            "--epochs", str(args.pbt_epochs), "--eval-every", "1", "--save-every", "3", "--dim", "64",
            "--threads", "1", "--out", "model"])
        raw["budget"] |= {"trials": args.pbt_trials}
        print(f"PBT on a live server: population {raw['pbt']['population']}, {args.pbt_trials} trials, "
              f"{args.pbt_epochs} epochs", flush=True)
        held = os.environ.get("HANEUL_CAPACITY_CPUS")
        os.environ["HANEUL_CAPACITY_CPUS"] = str(raw["pbt"]["population"])  # the whole population at once
        t0 = time.perf_counter()
        server = start_server(Path(tmp) / "home")
        try:
            with httpx.Client(base_url=server.url, headers=server.headers(), timeout=60) as http:
                res = http.post("/api/v1/tune/studies", json={"spec": raw})
                res.raise_for_status()
                study = wait_for(lambda: (s := http.get("/api/v1/tune/studies/hgp-pbt").json())["status"] != "running"
                                 and s, timeout=3000, interval=2)
                trials = http.get("/api/v1/tune/studies/hgp-pbt/trials").json()
                curves = {c["number"]: c for c in http.get("/api/v1/tune/studies/hgp-pbt/intermediate").json()}
                for t in trials:
                    session = http.get(f"/api/v1/sessions/{t['session_id']}").json()
                    t["session_parent_id"] = session.get("parent_id")
                    t["session_parent_checkpoint"] = session.get("parent_checkpoint")
                    t["steps"] = curves[t["number"]]["steps"]
                    t["values"] = curves[t["number"]]["values"]
        finally:
            server.stop()
            if held is None:
                os.environ.pop("HANEUL_CAPACITY_CPUS", None)
            else:
                os.environ["HANEUL_CAPACITY_CPUS"] = held
    by_number = {t["number"]: t for t in trials}
    forks = [t for t in trials if t["parent_trial"] is not None]
    lineage_ok = all(t["session_parent_id"] == by_number[t["parent_trial"]]["session_id"] for t in forks)
    last = {t["number"]: (t["values"][-1] if t["values"] else None) for t in trials}
    best = max((n for n, v in last.items() if v is not None), key=lambda n: last[n])
    chain, n = [], best
    while n is not None:
        chain.append(n)
        n = by_number[n]["parent_trial"]
    founders = [last[t["number"]] for t in trials if t["parent_trial"] is None and last[t["number"]] is not None]
    result["pbt"] = {
        "study": study["status"], "reason": study["reason"], "seconds": round(time.perf_counter() - t0, 1),
        "epochs": args.pbt_epochs, "trials": len(trials), "forks": len(forks),
        "replaced": sum(t["state"] == "replaced" for t in trials), "lineage_matches_sessions": lineage_ok,
        "best_trial": best, "best_last_valid_recall_10": last[best], "best_lineage": chain,
        "best_founder_last_valid_recall_10": max(founders) if founders else None,
        "trial_rows": trials,
    }
    print(f"  {len(forks)} forks; best trial {best} ({last[best]:.4f}) descends from {chain[1:]}; "
          f"best founder {max(founders) if founders else float('nan'):.4f}; lineage matches: {lineage_ok}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data(), help="the LastFM RecBole folder")
    parser.add_argument("--trials", type=int, default=20, help="trials per search (B)")
    parser.add_argument("--epochs", type=int, default=12, help="epochs per trial (E)")
    parser.add_argument("--dim-max", type=int, default=64, help="largest dim searched (the study file goes to 128)")
    parser.add_argument("--seeds", default="0", help="sampler seeds: one random-vs-TPE+ASHA pair each (comma list)")
    parser.add_argument("--test-trials", type=int, default=20, help="trials of the default-epochs search of part 4")
    parser.add_argument("--test-dim-max", type=int, default=128, help="largest dim of the part 4 search")
    parser.add_argument("--test-min-resource", type=int, default=10, help="ASHA's first rung (epochs) in part 4")
    parser.add_argument("--pbt-epochs", type=int, default=12, help="epochs per member in the PBT part")
    parser.add_argument("--pbt-trials", type=int, default=10, help="trials (members and forks) in the PBT part")
    parser.add_argument("--retrain-seeds", default="0,1,2", help="training seeds of the tuned-vs-default runs")
    parser.add_argument("--parts", default="search,ray,test,pbt",
                        help="which parts to run; parts not run keep their entries of an existing --out file")
    parser.add_argument("--quick", action="store_true", help="a smoke run: B=4, E=3, 3 test trials, one seed, no Ray")
    parser.add_argument("--out", default=None, help="result file (default benchmarks/results/tune_hgp[_quick].json)")
    args = parser.parse_args()
    parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    if args.quick:
        args.trials, args.epochs, args.seeds, args.retrain_seeds, args.test_trials = 4, 3, "0", "0", 3
        parts = [x for x in parts if x not in ("ray", "pbt")]
    out_path = Path(args.out or ROOT / "benchmarks" / "results" / ("tune_hgp_quick.json" if args.quick
                                                                   else "tune_hgp.json"))

    from haneul.io import atomic_write_text
    from haneul.rec.data import load_recbole, split_random
    from haneul.rec.train import TrainConfig, prepare
    from haneul.tune.spec import StudySpec

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = load_recbole(args.data)
    split = split_random(data, seed=0)
    bench = Bench(args, data, split, prepare(data, TrainConfig(seed=0), split), StudySpec.load(STUDY).to_dict())
    def current() -> dict[str, Any]:
        return json.loads(out_path.read_text()) if out_path.exists() else {}

    # parts not run here keep what an earlier (or a concurrent) run with the same --out wrote
    result: dict[str, Any] = current() if set(parts) != {"search", "ray", "test", "pbt"} else {}
    result["settings"] = {"study_file": str(STUDY.relative_to(ROOT)), "split_seed": 0, "threads": 1,
                          "quick": args.quick, "in_process": True, "space": bench.raw["space"],
                          "pruner_args": bench.raw["algorithm"]["pruner_args"]}
    if "trial_start_s" not in result:
        result["trial_start_s"] = round(trial_start_cost(args.data), 2)
    produced = {"settings": result["settings"], "trial_start_s": result["trial_start_s"]}
    for name, key, part in (("search", "search", part_search), ("ray", "ray_asha", part_ray),
                            ("test", "test", part_test), ("pbt", "pbt", part_pbt)):
        if name in parts:
            if name != "search":
                result = {**current(), **produced}
            part(bench, result)
            produced[key] = result[key]
            merged = {**current(), **produced}
            merged["complete"] = all(k in merged for k in ("search", "ray_asha", "test", "pbt"))
            atomic_write_text(out_path, json.dumps(merged, indent=2))  # after each part: a partial run still counts
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
