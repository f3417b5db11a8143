"""Platform benchmarks (NSML): metric ingestion and reading versus the MLflow tracking server,
launch latency, the sessions page with 10,000 sessions (and a search by a param and a metric over
them), and one session reporting 30,000 metric keys in one batch (ingest time, and the sessions and
session pages with it present, against the same pages before it existed).

Run: .venv/bin/python benchmarks/bench_platform.py [--quick] [--only many_keys ...]
Writes benchmarks/results/platform.json (with --only, platform_<parts>.json). MLflow
is the baseline in the same run when installed (`pip install mlflow`); without it those rows are
skipped with a note.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RESULTS = ROOT / "benchmarks" / "results" / "platform.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


# the local admin's token of the server under test (each server writes one on its first start)
_AUTH: dict[str, str] = {}


def get(url: str, **kwargs: object) -> httpx.Response:
    return httpx.get(url, headers=_AUTH, **kwargs)  # type: ignore[arg-type]


class Server:
    def __init__(self, home: Path, **settings: str) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, HANEUL_HOME=str(home), HANEUL_SERVER=self.url, HANEUL_PORT=str(self.port),
                        **settings)
        self.env["PATH"] = f"{BIN}{os.pathsep}{self.env['PATH']}"
        self.proc = subprocess.Popen([str(BIN / "haneul"), "server"], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_http(f"{self.url}/api/v1/health")
        _AUTH["Authorization"] = f"Bearer {(home / 'admin.token').read_text().strip()}"

    def run(self, *cmd: str, cwd: Path) -> int:
        out = subprocess.run([str(BIN / "haneul"), "run", "--", *cmd], env=self.env, cwd=cwd,
                             capture_output=True, text=True, check=True)
        return int(out.stdout)

    def wait_done(self, sid: int, timeout: float = 600) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = get(f"{self.url}/api/v1/sessions/{sid}").json()
            if s["status"] not in ("queued", "running"):
                return s
            time.sleep(0.05)
        raise RuntimeError(f"session {sid} did not finish")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)


WORKER = textwrap.dedent("""
    import json, sys, time, haneul
    n = int(sys.argv[1])
    haneul.report(step=0, warmup=1.0)  # client set-up (imports, connection) is not ingestion
    haneul.flush()
    t0 = time.perf_counter()
    for i in range(n):
        haneul.report(step=i, loss=1.0 / (i + 1))
    haneul.flush()
    dt = time.perf_counter() - t0
    print(json.dumps({"points": n, "seconds": dt}))
""")


def bench_haneul(points: int, work: Path, **settings: str) -> dict:
    """Ingestion, reads and launch latency of one server (``settings``: extra HANEUL_* environment)."""
    server = Server(work / "home", **settings)
    try:
        (work / "worker.py").write_text(WORKER)
        sid = server.run("python", "worker.py", str(points), cwd=work)
        s = server.wait_done(sid)
        assert s["status"] == "done", s
        res = json.loads(get(f"{server.url}/api/v1/sessions/{sid}/logs").json()["lines"][-1])
        keys = {k["key"]: k["count"] for k in get(f"{server.url}/api/v1/sessions/{sid}/metrics").json()}
        stored = keys["loss"]
        assert stored == points, (stored, points)
        reads = []
        for _ in range(5):
            t0 = time.perf_counter()
            got = get(f"{server.url}/api/v1/sessions/{sid}/metrics/loss", timeout=60).json()
            reads.append(time.perf_counter() - t0)
            assert got["total"] == points
        down = []
        for _ in range(5):
            t0 = time.perf_counter()
            get(f"{server.url}/api/v1/sessions/{sid}/metrics/loss", params={"max_points": 1000})
            down.append(time.perf_counter() - t0)
        # launch latency: CLI invocation to the first line of user code
        lat = []
        for _ in range(10):
            t0 = time.time()
            sid2 = server.run("python", "-c", "import time; print(repr(time.time()), flush=True)", cwd=work)
            server.wait_done(sid2)
            first = float(get(f"{server.url}/api/v1/sessions/{sid2}/logs").json()["lines"][0])
            lat.append(first - t0)
        return {
            "ingest_points": points,
            "ingest_seconds": res["seconds"],
            "ingest_points_per_s": points / res["seconds"],
            "read_full_history_s_median": statistics.median(reads),
            "read_downsampled_1000_s_median": statistics.median(down),
            "launch_latency_s_median": statistics.median(lat),
            "launch_latency_s_all": lat,
        }
    finally:
        server.close()


def bench_sessions_page(n_sessions: int, work: Path) -> dict:
    from sqlalchemy import insert

    from haneul.platform.db import MetricKey, Session, make_engine, migrate

    home = work / "page-home"
    engine = make_engine(f"sqlite:///{home / 'haneul.db'}")
    migrate(engine)
    now = time.time()
    rows = [dict(name=f"exp-{i}", owner=f"user{i % 17}", status=("done", "failed", "running")[i % 3],
                 command=["python", "train.py", f"--seed={i}"], env={}, cpus=1.0, gpus=0, memory=0, priority=0,
                 executor="local", token_hash="x", workdir=str(home / "sessions" / str(i + 1)),
                 log_path=str(home / "sessions" / str(i + 1) / "output.log"), created_at=now - i,
                 status_dummy=None) for i in range(n_sessions)]
    for r in rows:
        r.pop("status_dummy")
        if r["status"] == "running":
            r["status"] = "done"  # no live processes behind them
    with engine.begin() as conn:
        conn.execute(insert(Session), rows)
        conn.execute(insert(MetricKey), [dict(session_id=i + 1, key=k, count=100, last_step=99, last_value=0.5)
                                         for i in range(n_sessions) for k in ("loss", "acc")])
    engine.dispose()
    server = Server(home)
    try:
        times, api_times = [], []
        for _ in range(20):
            t0 = time.perf_counter()
            r = get(f"{server.url}/", timeout=30)
            times.append(time.perf_counter() - t0)
            assert r.status_code == 200 and f"{n_sessions} sessions" in r.text
            t0 = time.perf_counter()
            get(f"{server.url}/api/v1/sessions", params={"limit": 50, "status": "done", "sort": "name"})
            api_times.append(time.perf_counter() - t0)
        return {"sessions": n_sessions, "page_s_median": statistics.median(times[2:]),
                "list_api_filtered_sorted_s_median": statistics.median(api_times[2:]),
                **_bench_search(server, home, n_sessions), **_bench_keys(server)}
    finally:
        server.close()


SEARCH = "params.lr < 1e-3 and metrics.val_acc > 0.8"


def _bench_search(server: Server, home: Path, n_sessions: int) -> dict:
    """"Filter by a param and a metric over 10,000 sessions" (target <= 200 ms): every session gets
    an lr and a batch size and a val_acc, added after the page rows above were measured so those stay
    comparable with earlier runs; the baseline is the unfiltered list in the same loop."""
    from sqlalchemy import insert

    from haneul.platform.db import MetricKey, make_engine
    from haneul.platform.db.models import SessionParam

    engine = make_engine(f"sqlite:///{home / 'haneul.db'}")
    lrs = (1e-2, 3e-3, 1e-3, 3e-4, 1e-4)
    with engine.begin() as conn:
        conn.execute(insert(SessionParam), [
            dict(session_id=i + 1, key=key, value=value, num=float(value), text=None)
            for i in range(n_sessions) for key, value in (("lr", lrs[i % 5]), ("batch_size", 16 << (i % 3)))])
        conn.execute(insert(MetricKey), [dict(session_id=i + 1, key="val_acc", count=1, last_step=0,
                                              last_value=(i % 100) / 100) for i in range(n_sessions)])
    engine.dispose()
    expected = sum(1 for i in range(n_sessions) if lrs[i % 5] < 1e-3 and (i % 100) / 100 > 0.8)
    url = f"{server.url}/api/v1/sessions"
    filtered, plain = [], []
    for _ in range(20):
        t0 = time.perf_counter()
        r = get(url, params={"filter": SEARCH, "limit": 50}, timeout=30)
        filtered.append(time.perf_counter() - t0)
        assert r.status_code == 200 and r.json()["total"] == expected, r.text[:200]
        t0 = time.perf_counter()
        get(url, params={"limit": 50}, timeout=30)
        plain.append(time.perf_counter() - t0)
    return {"search_filter": SEARCH, "search_matches": expected,
            "search_param_and_metric_s_median": statistics.median(filtered[2:]),
            "search_baseline_unfiltered_list_s_median": statistics.median(plain[2:]),
            "search_target_s": 0.2}


def _bench_keys(server: Server) -> dict:
    """The column picker's keys over every session (after ``_bench_search`` gave each session two params
    and three metrics); the baseline is one page of the plain list in the same loop."""
    keys_times, plain = [], []
    for _ in range(20):
        t0 = time.perf_counter()
        r = get(f"{server.url}/api/v1/sessions/keys", timeout=30)
        keys_times.append(time.perf_counter() - t0)
        assert r.status_code == 200 and r.json()["params"] == ["batch_size", "lr"], r.text[:200]
        t0 = time.perf_counter()
        get(f"{server.url}/api/v1/sessions", params={"limit": 50}, timeout=30)
        plain.append(time.perf_counter() - t0)
    return {"keys_route_s_median": statistics.median(keys_times[2:]),
            "keys_baseline_list_s_median": statistics.median(plain[2:])}


MANY_KEYS_WORKER = textwrap.dedent("""
    import json, os, sys, time
    from haneul.platform.client import Client
    n = int(sys.argv[1])
    client = Client.from_env()
    client.health()  # connection set-up is not ingestion
    now = time.time()
    groups = {f"layer{i:05d}/grad_norm": ([0, 1], [float(i), i + 0.5], [now, now]) for i in range(n)}
    t0 = time.perf_counter()
    accepted = client.log_metrics(os.environ["HANEUL_SESSION"], groups)
    print(json.dumps({"keys": n, "accepted": accepted, "seconds": time.perf_counter() - t0}))
""")


def _median_get(url: str, repeats: int = 10, **params: object) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = get(url, params=params, timeout=120)
        times.append(time.perf_counter() - t0)
        assert r.status_code == 200, (url, r.status_code, r.text[:200])
    return statistics.median(times)


def bench_many_keys(n_keys: int, work: Path) -> dict:
    """One batch of ``n_keys`` keys (two points each) from inside a session (target: <= 2 s), then the
    sessions page, the session page and the list API with that session present; the baseline is the
    same requests while the home holds one session with two keys."""
    server = Server(work / "keys-home", HANEUL_MAX_METRIC_KEYS=str(max(n_keys, 10_000)))
    try:
        (work / "small.py").write_text("import haneul\nhaneul.report(step=0, loss=1.0, acc=0.5)\n")
        small = server.run("python", "small.py", cwd=work)
        assert server.wait_done(small)["status"] == "done"
        before = {"sessions_page_s_median": _median_get(f"{server.url}/"),
                  "session_page_s_median": _median_get(f"{server.url}/sessions/{small}"),
                  "list_api_s_median": _median_get(f"{server.url}/api/v1/sessions")}
        (work / "many_keys.py").write_text(MANY_KEYS_WORKER)
        sid = server.run("python", "many_keys.py", str(n_keys), cwd=work)
        s = server.wait_done(sid)
        assert s["status"] == "done", s
        res = json.loads(get(f"{server.url}/api/v1/sessions/{sid}/logs").json()["lines"][-1])
        assert res["accepted"] == 2 * n_keys and s["metric_count"] == n_keys, (res, s["metric_count"])
        after = {"sessions_page_s_median": _median_get(f"{server.url}/"),
                 "session_page_s_median": _median_get(f"{server.url}/sessions/{sid}"),
                 "list_api_s_median": _median_get(f"{server.url}/api/v1/sessions"),
                 "session_api_s_median": _median_get(f"{server.url}/api/v1/sessions/{sid}"),
                 "key_page_api_s_median": _median_get(f"{server.url}/api/v1/sessions/{sid}/metrics",
                                                      q="grad", limit=24, offset=12_000)}
        return {"keys": n_keys, "ingest_one_batch_s": res["seconds"], "ingest_target_s": 2.0,
                "with_many_keys": after, "baseline_two_keys": before}
    finally:
        server.close()


def bench_mlflow(points: int, work: Path) -> dict:
    if shutil.which("mlflow", path=str(BIN)) is None:
        return {"skipped": "MLflow is not installed; `pip install mlflow` to measure the baseline"}
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    port = free_port()
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    proc = subprocess.Popen([str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{work / 'mlflow.db'}",
                             "--default-artifact-root", str(work / "mlartifacts"), "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "1"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health", timeout=120)
        client = MlflowClient(tracking_uri=url)
        exp = client.create_experiment("bench")
        run = client.create_run(exp)
        rid = run.info.run_id
        ts = int(time.time() * 1000)
        t0 = time.perf_counter()
        for start in range(0, points, 1000):
            batch = [Metric("loss", 1.0 / (i + 1), ts, i) for i in range(start, min(points, start + 1000))]
            client.log_batch(rid, metrics=batch)
        ingest = time.perf_counter() - t0
        t0 = time.perf_counter()
        hist = client.get_metric_history(rid, "loss")
        read = time.perf_counter() - t0
        assert len(hist) == points
        return {"ingest_points": points, "ingest_seconds": ingest, "ingest_points_per_s": points / ingest,
                "read_full_history_s": read}
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


PARTS = ["haneul", "sessions_page", "many_keys", "mlflow"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller sizes (seconds, not minutes)")
    ap.add_argument("--only", nargs="+", choices=PARTS, help="run only these parts (results in platform_<parts>.json)")
    args = ap.parse_args()
    points = 20_000 if args.quick else 100_000
    n_sessions = 1_000 if args.quick else 10_000
    parts = args.only or PARTS
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "haneul" in parts:
            out["haneul"] = bench_haneul(points, work)
        if "sessions_page" in parts:
            out["sessions_page"] = bench_sessions_page(n_sessions, work)
        if "many_keys" in parts:
            out["many_keys"] = bench_many_keys(30_000, work)  # the target size, quick or not
        if "mlflow" in parts:
            out["mlflow"] = bench_mlflow(points, work)
    out = {"machine": f"{os.cpu_count()} cpus", "quick": args.quick, **out}
    haneul, mlflow = out.get("haneul", {}), out.get("mlflow", {})
    if "ingest_points_per_s" in mlflow and "ingest_points_per_s" in haneul:
        out["ratio_ingest_vs_mlflow"] = haneul["ingest_points_per_s"] / mlflow["ingest_points_per_s"]
        out["ratio_read_vs_mlflow"] = mlflow["read_full_history_s"] / haneul["read_full_history_s_median"]
    from haneul.io import atomic_write_text

    results = RESULTS.with_name(f"platform_{'_'.join(args.only)}.json") if args.only else RESULTS
    atomic_write_text(results, json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
