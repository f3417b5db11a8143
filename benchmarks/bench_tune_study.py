"""A whole study run as platform sessions on a real server: trials launched, pruned, the compute
they used and the best value found.

Starts ``haneul server`` in a subprocess (its own HANEUL_HOME under /tmp, capacity ``--cpus``), creates
the study from a study file (``examples/tune/hgp_lastfm.yaml`` by default) with ``--trials`` and
``--concurrent`` as given, and waits for it to end. Reports the trials by state, the trial-epochs run
(the steps each trial reached, pruned ones included) against the trial-epochs the same number of
trials would run unpruned, the compute (session seconds), the wall time and the best trial.

With ``--enqueue-default`` the first trial runs ``haneul rec train``'s own defaults, and with
``--test-seeds`` the best trial's parameters and the defaults are each trained again (in-process, the
study's epochs) on those seeds and scored on the TEST split, which the study never looked at.

Run: .venv/bin/python benchmarks/bench_tune_study.py [--study FILE] [--trials 40] [--concurrent 2]
     [--min-resource N] [--enqueue-default] [--test-seeds 0,1,2]
Writes benchmarks/results/tune_study_<name>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform as host
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def start_server(home: Path, cpus: int) -> tuple[subprocess.Popen[bytes], str, str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, HANEUL_HOME=str(home), HANEUL_PORT=str(port), HANEUL_CAPACITY_CPUS=str(cpus),
               PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    for var in ("HANEUL_SESSION", "HANEUL_API_TOKEN", "HANEUL_SERVER"):
        env.pop(var, None)
    log = open(home / "server.log", "wb")
    proc = subprocess.Popen([str(BIN / "haneul"), "server"], env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/api/v1/health", timeout=1)
            token = (home / "admin.token").read_text().strip()
            return proc, url, token
        except (httpx.TransportError, OSError):
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{url} did not come up; see {home / 'server.log'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", type=Path, default=ROOT / "examples" / "tune" / "hgp_lastfm.yaml")
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--concurrent", type=int, default=2)
    ap.add_argument("--cpus", type=int, default=2, help="the server's CPU capacity")
    ap.add_argument("--timeout", type=float, default=3600.0)
    ap.add_argument("--min-resource", type=int, default=None, help="ASHA's first rung (epochs), overriding the file's")
    ap.add_argument("--enqueue-default", action="store_true", help="run haneul rec train's defaults as trial 0")
    ap.add_argument("--test-seeds", default="", help="retrain best and defaults on these seeds, score on test")
    ap.add_argument("--out", type=Path, default=None,
                    help="result file (default benchmarks/results/tune_study_<study name>.json)")
    args = ap.parse_args()

    from haneul.tune.spec import StudySpec

    spec = StudySpec.load(args.study).to_dict()
    spec["budget"].update(trials=args.trials, concurrent=args.concurrent)
    if args.min_resource is not None:
        spec["algorithm"]["pruner_args"] = {**spec["algorithm"]["pruner_args"], "min_resource": args.min_resource}
    from bench_tune_hgp import DEFAULTS

    if args.enqueue_default:
        spec["enqueue"] = [dict(DEFAULTS)]
    epochs = next((int(m.group(1)) for tok in [" ".join(spec["command"])]
                   for m in [re.search(r"--epochs[ =](\d+)", tok)] if m), None)
    home = Path(tempfile.mkdtemp(prefix="haneul-bench-tune-"))
    proc, url, token = start_server(home, args.cpus)
    t0 = time.time()
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
            res = http.post("/api/v1/tune/studies", json={"spec": spec})
            if res.status_code != 201:
                raise SystemExit(f"the study was refused: {res.text}")
            name = res.json()["name"]
            while time.time() - t0 < args.timeout:
                study = http.get(f"/api/v1/tune/studies/{name}").json()
                if study["status"] != "running":
                    break
                print(f"\r{time.time() - t0:6.0f} s  {study['trials']}  best {study['best_value']}", end="", flush=True)
                time.sleep(5)
            print()
            trials = http.get(f"/api/v1/tune/studies/{name}/trials").json()
            page = http.get(f"/tune/{name}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    wall = time.time() - t0
    states: dict[str, int] = {}
    for t in trials:
        states[t["state"]] = states.get(t["state"], 0) + 1
    trial_epochs = sum(t["last_step"] or 0 for t in trials)
    out = {
        "study": str(args.study.relative_to(ROOT)) if args.study.is_relative_to(ROOT) else str(args.study),
        "settings": {"trials": args.trials, "concurrent": args.concurrent, "cpus": args.cpus,
                     "sampler": spec["algorithm"]["sampler"], "pruner": spec["algorithm"]["pruner"],
                     "epochs_per_trial": epochs},
        "status": study["status"], "reason": study["reason"], "states": states,
        "trial_epochs": trial_epochs,
        "trial_epochs_unpruned": epochs * len(trials) if epochs else None,
        "compute_s": round(sum(t["compute_s"] or 0 for t in trials), 1),
        "wall_s": round(wall, 1),
        "best": {"value": study["best_value"], "trial": study["best_trial"],
                 "params": next((t["params"] for t in trials if t["number"] == study["best_trial"]), None)},
        "page_status": page.status_code,
        "host": {"machine": host.machine(), "cpus": os.cpu_count(), "python": host.python_version()},
    }
    if args.test_seeds and out["best"]["params"]:
        # without --epochs in the command the trials trained as `haneul rec train` does (early stopping)
        out["test"] = test_split(spec, out["best"]["params"], [int(x) for x in args.test_seeds.split(",")], epochs)
    print(json.dumps(out, indent=2))
    dest = args.out or ROOT / "benchmarks" / "results" / f"tune_study_{spec['name']}.json"
    dest.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {dest}")
    shutil.rmtree(home, ignore_errors=True)


def test_split(spec: dict, params: dict, seeds: list[int], epochs: int | None) -> dict:
    """The best trial's parameters and the defaults, each trained on every seed for ``epochs`` (None:
    ``haneul rec train``'s maximum, with its early stopping); TEST Recall@10."""
    from bench_tune_hgp import default_data, retrain

    from haneul.rec.data import load_recbole, split_random
    from haneul.rec.train import TrainConfig, prepare

    data = load_recbole(default_data())
    split = split_random(data, seed=0)
    prep_by_seed = {s: prepare(data, TrainConfig(seed=s), split) for s in seeds}
    epochs = epochs or TrainConfig().epochs
    tuned = retrain(data, prep_by_seed, dict(params), seeds, epochs)
    default = retrain(data, prep_by_seed, {}, seeds, epochs)
    return {"epochs": epochs, "seeds": seeds, "tuned": tuned, "default": default,
            "recall@10_gain": tuned["recall@10"]["mean"] - default["recall@10"]["mean"],
            "tuned_wins_every_seed": all(t["recall@10"] > d["recall@10"]
                                         for t, d in zip(tuned["runs"], default["runs"], strict=True))}


if __name__ == "__main__":
    main()
