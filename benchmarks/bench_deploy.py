"""Deployment benchmark: the latency a deployment adds to a model call, and its throughput.

A trivial model (``infer`` returns its inputs doubled) is trained as a session, deployed with one
replica, and called through ``POST /api/v1/deployments/NAME/predict``:

- latency: p50/p99 of one-input predictions from one keep-alive client, minus the p50 of the same
  ``infer`` called in this process (target: at most 5 ms added); the replica called directly is shown
  too, to split the cost between the platform's server and the replica;
- throughput: 8 concurrent keep-alive clients for a few seconds (target: at least 500 requests/s).

Run: .venv/bin/python benchmarks/bench_deploy.py [--quick]
Writes benchmarks/results/deploy.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "deploy.json"
sys.path.insert(0, str(ROOT / "src"))

from haneul.io import atomic_write_text  # noqa: E402
from haneul.platform.testing import LiveServer, start_server  # noqa: E402

MODEL = textwrap.dedent("""
    import haneul

    def infer(inputs):
        return [2 * x for x in inputs]

    haneul.bind(save=lambda d: open(d + "/m", "w").write("2"), load=lambda d: None, infer=infer)
    haneul.save("double")
""")


def infer(inputs: list[float]) -> list[float]:
    return [2 * x for x in inputs]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed_calls(call: object, n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        call(i)  # type: ignore[operator]
        out.append((time.perf_counter() - t0) * 1000)
    return out


def deploy(server: LiveServer, folder: Path) -> dict:
    folder.mkdir(parents=True)
    (folder / "train.py").write_text(MODEL)
    done = server.cli("run", "-f", "--", "python", "train.py", cwd=folder)
    assert done.returncode == 0, done.stderr
    sid = json.loads(server.cli("ps", "--json").stdout)["items"][0]["id"]
    done = server.cli("deploy", str(sid), "--name", "double", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def throughput(url: str, headers: dict[str, str], clients: int, seconds: float) -> dict[str, float]:
    counts = [0] * clients
    errors = [0] * clients
    stop = time.perf_counter() + seconds

    def worker(k: int) -> None:
        with httpx.Client(headers=headers, timeout=30) as http:
            while time.perf_counter() < stop:
                res = http.post(url, json={"inputs": [k]})
                if res.status_code == 200:
                    counts[k] += 1
                else:
                    errors[k] += 1

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    return {"clients": clients, "seconds": round(elapsed, 2), "requests": sum(counts), "errors": sum(errors),
            "requests_per_s": round(sum(counts) / elapsed, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    args = ap.parse_args()
    n = 300 if args.quick else 3000
    seconds = 2.0 if args.quick else 8.0
    with tempfile.TemporaryDirectory(prefix="haneul-bench-deploy-") as tmp:
        os.environ.pop("HANEUL_SESSION", None)
        server = start_server(Path(tmp) / "home")
        try:
            d = deploy(server, Path(tmp) / "code")
            replica = f"http://127.0.0.1:{d['replicas'][0]['port']}/predict"
            url = f"{server.url}/api/v1/deployments/double/predict"
            in_process = timed_calls(lambda i: infer([i]), n)
            with httpx.Client(headers=server.headers(), timeout=30) as http:
                timed_calls(lambda i: http.post(url, json={"inputs": [i]}), 100)  # warm the pools
                assert http.post(url, json={"inputs": [21]}).json() == {"predictions": [42]}
                through_server = timed_calls(lambda i: http.post(url, json={"inputs": [i]}), n)
                direct = timed_calls(lambda i: http.post(replica, json={"inputs": [i]}), n)
            rate = throughput(url, server.headers(), 8, seconds)
            server.cli("undeploy", "double")
        finally:
            server.stop()
    p50 = statistics.median(through_server)
    base = statistics.median(in_process)
    out = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "requests": n,
        "latency_ms": {
            "in_process_infer_p50": round(base, 4),
            "through_server_p50": round(p50, 3),
            "through_server_p99": round(percentile(through_server, 0.99), 3),
            "replica_direct_p50": round(statistics.median(direct), 3),
            "added_p50": round(p50 - base, 3),
            "target_added_p50": 5.0,
        },
        "throughput": {**rate, "target_requests_per_s": 500},
    }
    out["meets_targets"] = out["latency_ms"]["added_p50"] <= 5.0 and rate["requests_per_s"] >= 500
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS, json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
