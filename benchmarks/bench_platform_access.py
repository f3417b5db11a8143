"""Metric ingestion with accounts and access checks on, against the same server without them.

Two servers run side by side on the same machine: the real one (every request carries a session
token, verified and checked against the session it writes to) and one built with
``create_app(authenticate=False)``, where every request is the local admin. One session per server
reports N points through ``haneul.report`` as fast as it can; the runs alternate, ``--repeats`` times
each, and the medians are compared. Targets: at least 100,000 points/s with
the checks, and at least 0.9x the run without them.

Run: .venv/bin/python benchmarks/bench_platform_access.py [--points 1000000] [--repeats 3]
Writes benchmarks/results/platform_access.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
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
RESULTS = ROOT / "benchmarks" / "results" / "platform_access.json"

sys.path.insert(0, str(Path(__file__).parent))
from bench_platform import WORKER  # noqa: E402  the same session script as the ingestion benchmark

# a server without accounts, for the baseline only (create_app's authenticate=False is not a setting)
UNCHECKED = textwrap.dedent("""
    import sys, uvicorn
    from haneul.platform.server import create_app
    from haneul.settings import Settings
    port = int(sys.argv[1])
    app = create_app(Settings(), server_url=f"http://127.0.0.1:{port}", authenticate=False)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
""")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, home: Path, *, checked: bool) -> None:
        self.home, self.port = home, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, HANEUL_HOME=str(home), HANEUL_SERVER=self.url, HANEUL_PORT=str(self.port),
                        HANEUL_SYS_METRICS_INTERVAL="0")
        self.env["PATH"] = f"{BIN}{os.pathsep}{self.env['PATH']}"
        cmd = [str(BIN / "haneul"), "server"] if checked else [sys.executable, "-c", UNCHECKED, str(self.port)]
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{self.url}/api/v1/health", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.url} did not come up") from None
                time.sleep(0.1)
        self.headers = {"Authorization": f"Bearer {(home / 'admin.token').read_text().strip()}"}

    def ingest(self, points: int, work: Path) -> float:
        out = subprocess.run([str(BIN / "haneul"), "run", "--", "python", "worker.py", str(points)], env=self.env,
                             cwd=work, capture_output=True, text=True, check=True)
        sid = int(out.stdout)
        while (s := httpx.get(f"{self.url}/api/v1/sessions/{sid}", headers=self.headers).json())["status"] in (
                "queued", "running"):
            time.sleep(0.05)
        assert s["status"] == "done", s
        log = httpx.get(f"{self.url}/api/v1/sessions/{sid}/logs", headers=self.headers).json()["lines"]
        stored = {k["key"]: k["count"] for k in
                  httpx.get(f"{self.url}/api/v1/sessions/{sid}/metrics", headers=self.headers).json()}
        assert stored["loss"] == points, stored
        return points / json.loads(log[-1])["seconds"]

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=1_000_000, help="points per run")
    ap.add_argument("--repeats", type=int, default=3, help="runs per server (alternating)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="haneul-bench-access-"))
    (work / "worker.py").write_text(WORKER)
    checked, unchecked = Server(work / "checked", checked=True), Server(work / "unchecked", checked=False)
    rates: dict[str, list[float]] = {"checked": [], "unchecked": []}
    try:
        for _ in range(args.repeats):
            rates["unchecked"].append(unchecked.ingest(args.points, work))
            rates["checked"].append(checked.ingest(args.points, work))
    finally:
        checked.close()
        unchecked.close()
        shutil.rmtree(work, ignore_errors=True)
    with_checks, without = statistics.median(rates["checked"]), statistics.median(rates["unchecked"])
    result = {
        "benchmark": "metric ingestion with accounts and access checks vs the same server without them",
        "command": f"benchmarks/bench_platform_access.py --points {args.points} --repeats {args.repeats}",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "points_per_run": args.points,
        "checked_points_per_s_median": with_checks,
        "unchecked_points_per_s_median": without,
        "ratio": with_checks / without,
        "runs": rates,
        "targets": {"checked_points_per_s": 100_000, "ratio": 0.9},
        "met": with_checks >= 100_000 and with_checks / without >= 0.9,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
