"""Pause/resume latency (NSML stop-and-go): from the pause request to the resumed process reporting
again, less the script's own checkpoint save and load, over a few repetitions; target <= 2 s.

The session runs a loop that reports a heartbeat every 20 ms, checks ``haneul.paused()``, saves a
small state (``haneul.save``) and exits when asked, and loads it (``haneul.load()``) on start; it
prints how long its save and load took, and those are subtracted. It flushes after its first report
of a run, so the figure is the platform's latency (pause flag seen, process exit noticed, slots
freed, resume queued, new process started, first point stored), not the SDK's 0.25 s batching.
The baseline in the same run is a new session's launch to its first stored point.

Run: .venv/bin/python benchmarks/bench_pause_resume.py [--reps 5]
Writes benchmarks/results/pause_resume.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from haneul.io import atomic_write_text
from haneul.platform.client import Client
from haneul.platform.testing import start_server, wait_for

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "pause_resume.json"
TARGET_S = 2.0

LOOP = textwrap.dedent("""
    import sys, time
    import haneul

    t0 = time.perf_counter()
    state = haneul.load()
    print(f"timing load {time.perf_counter() - t0:.6f}", flush=True)
    step = state["step"] if state else 0
    first = True
    while True:
        haneul.report(step=step, beat=float(step))
        if first:
            haneul.flush()
            first = False
        step += 1
        if haneul.paused():
            t0 = time.perf_counter()
            haneul.save("state", {"step": step, "weights": bytes(1 << 16)})
            print(f"timing save {time.perf_counter() - t0:.6f}", flush=True)
            sys.exit(0)
        time.sleep(0.02)
""")


def _poll(predicate, timeout: float = 60.0):  # noqa: ANN001, ANN202
    return wait_for(predicate, timeout=timeout, interval=0.005)


def _count(client: Client, sid: int) -> int:
    return next((k["count"] for k in client.metric_keys(sid) if k["key"] == "beat"), 0)


def _timings(client: Client, sid: int, what: str) -> list[float]:
    return [float(line.split()[-1]) for line in client.tail_logs(sid, lines=10_000)["lines"]
            if line.startswith(f"timing {what} ")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5, help="pause/resume cycles to time")
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="haneul-bench-pause-"))
    os.environ.update(HANEUL_HOME=str(home), HANEUL_SYS_METRICS_INTERVAL="0", HANEUL_CAPACITY_CPUS="2")
    code = home / "code"
    code.mkdir()
    (code / "loop.py").write_text(LOOP)
    server = start_server(home)
    client = Client(server.url)
    try:
        t0 = time.perf_counter()
        sid = client.create_session(command=[sys.executable, "loop.py"], cwd=str(code))["id"]
        _poll(lambda: _count(client, sid) > 0)
        launch = time.perf_counter() - t0
        cycles = []
        for _ in range(args.reps):
            time.sleep(0.3)  # let it run a little, as a training loop would
            t0 = time.perf_counter()
            client.pause_session(sid, grace=30)
            _poll(lambda: client.get_session(sid)["status"] == "paused")
            paused = time.perf_counter() - t0
            held = _count(client, sid)
            client.resume_session(sid)
            _poll(lambda: _count(client, sid) > held)  # noqa: B023 - polled within the iteration
            total = time.perf_counter() - t0
            cycles.append({"total_s": total, "pause_to_paused_s": paused,
                           "save_s": _timings(client, sid, "save")[-1], "load_s": _timings(client, sid, "load")[-1]})
        client.stop_session(sid)
    finally:
        client.close()
        server.stop()
    for c in cycles:
        c["net_s"] = c["total_s"] - c["save_s"] - c["load_s"]
    net = [c["net_s"] for c in cycles]
    out = {
        "what": "pause request -> resumed process's first stored point, less the script's save and load",
        "reps": args.reps, "target_s": TARGET_S,
        "net_median_s": statistics.median(net), "net_max_s": max(net),
        "meets_target": max(net) <= TARGET_S,
        "baseline_new_session_launch_to_first_point_s": launch,
        "cycles": cycles,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
    }
    atomic_write_text(RESULTS, json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
