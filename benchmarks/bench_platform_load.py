"""Load: 100 sessions reporting metrics as fast as they can while 20 clients browse the pages and hold
live metric streams open, for 5 minutes, against one server on loopback.

The server is a real ``haneul server`` (SQLite by default; HANEUL_DB_URL for another database). Each
reporting session is a coroutine posting batches of ``--batch`` points to its own session's metrics
route, as the SDK does, one batch in flight at a time; each browser client loops over the sessions
page, a session's page and a metric history, and every other client keeps an SSE metrics stream of one
session open and reads it. Reported: points stored per second in total, errors (any answer but 2xx, and
any failed connection), page latency percentiles, and a final count of every session's points on the
server against what was acknowledged.

    .venv/bin/python benchmarks/bench_platform_load.py [--sessions 100] [--browsers 20] [--duration 300]

Writes benchmarks/results/platform_load.json (atomically). Client and server share the machine's
cores, so the figures are a floor for a server on a machine of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_platform import _AUTH, Server  # noqa: E402

from haneul.io import atomic_write_text  # noqa: E402


async def report(http: httpx.AsyncClient, sid: int, batch: int, stop: float, tally: dict) -> None:
    """One session: batches of ``batch`` points, each sent when the last was answered."""
    step = 0
    while time.monotonic() < stop:
        steps = list(range(step, step + batch))
        body = {"metrics": {"loss": {"steps": steps, "values": [1.0 / (s + 1) for s in steps]}}}
        try:
            res = await http.post(f"/api/v1/sessions/{sid}/metrics", json=body)
        except httpx.HTTPError as exc:
            tally["errors"].append(f"metrics: {type(exc).__name__}")
            continue
        if res.status_code // 100 == 2:
            tally["acked"][sid] = tally["acked"].get(sid, 0) + batch
            step += batch
        else:
            tally["errors"].append(f"metrics: {res.status_code}")


async def browse(http: httpx.AsyncClient, sids: list[int], stop: float, tally: dict, n: int) -> None:
    """One browser: the sessions page, a session page, a metric history, in turn (once every session
    has stored its first batch, so that every history exists)."""
    while len(tally["acked"]) < len(sids) and time.monotonic() < stop:
        await asyncio.sleep(0.05)
    i = n
    while time.monotonic() < stop:
        sid = sids[i % len(sids)]
        for what, url in (("sessions page", "/"), ("session page", f"/sessions/{sid}"),
                          ("metric history", f"/api/v1/sessions/{sid}/metrics/loss?max_points=1000")):
            t0 = time.perf_counter()
            try:
                status = str((await http.get(url)).status_code)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            tally["latency"].setdefault(what, []).append(time.perf_counter() - t0)
            if status != "200":
                tally["errors"].append(f"{what}: {status}")
        i += 1


async def stream(http: httpx.AsyncClient, sid: int, stop: float, tally: dict) -> None:
    """One live plot: an SSE metrics stream of one session, read until the end of the run."""
    while time.monotonic() < stop:
        try:
            async with http.stream("GET", f"/api/v1/sessions/{sid}/stream/metrics", params={"key": "loss"},
                                   timeout=httpx.Timeout(10, read=None)) as res:
                if res.status_code != 200:
                    tally["errors"].append(f"stream: {res.status_code}")
                    return
                async for line in res.aiter_lines():
                    if line.startswith("event:"):
                        tally["events"] += 1
                    if time.monotonic() >= stop:
                        return
        except httpx.HTTPError as exc:
            tally["errors"].append(f"stream: {type(exc).__name__}")


async def run(url: str, sids: list[int], args: argparse.Namespace) -> dict:
    tally: dict = {"acked": {}, "errors": [], "latency": {}, "events": 0}
    limits = httpx.Limits(max_connections=args.sessions + args.browsers + 10)
    async with httpx.AsyncClient(base_url=url, headers=_AUTH, timeout=60, limits=limits) as http:
        t0 = time.monotonic()
        stop = t0 + args.duration
        tasks = [report(http, sid, args.batch, stop, tally) for sid in sids]
        tasks += [browse(http, sids, stop, tally, n) if n % 2 == 0 else stream(http, sids[n], stop, tally)
                  for n in range(args.browsers)]
        await asyncio.gather(*tasks)
        tally["seconds"] = time.monotonic() - t0
    return tally


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=100, help="reporting sessions")
    ap.add_argument("--browsers", type=int, default=20, help="clients: half browse pages, half hold SSE streams")
    ap.add_argument("--duration", type=float, default=300.0, help="seconds of load")
    ap.add_argument("--batch", type=int, default=1000, help="points per metrics request")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "platform_load.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="haneul-bench-load-") as tmp:
        server = Server(Path(tmp) / "home", HANEUL_CAPACITY_CPUS=str(args.sessions))
        try:
            sids = [server.run("true", cwd=Path(tmp)) for _ in range(args.sessions)]
            for sid in sids:
                server.wait_done(sid)
            print(f"{args.sessions} sessions, {args.browsers} clients, {args.duration:.0f} s", flush=True)
            tally = asyncio.run(run(server.url, sids, args))
            with httpx.Client(base_url=server.url, headers=_AUTH, timeout=60) as http:
                stored = {sid: {k["key"]: k["count"] for k in http.get(f"/api/v1/sessions/{sid}/metrics").json()}
                          .get("loss", 0) for sid in sids}
        finally:
            server.close()
    acked = sum(tally["acked"].values())
    lost = {sid: tally["acked"].get(sid, 0) - n for sid, n in stored.items() if n < tally["acked"].get(sid, 0)}
    pages = {what: {"requests": len(v), "p50_ms": round(1000 * float(np.percentile(v, 50)), 1),
                    "p99_ms": round(1000 * float(np.percentile(v, 99)), 1)} for what, v in tally["latency"].items()}
    every = [x for v in tally["latency"].values() for x in v]
    out = {
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "database": "postgresql" if os.environ.get("HANEUL_DB_URL", "").startswith("postgresql") else "sqlite",
        "seconds": round(tally["seconds"], 1),
        "points_acknowledged": acked, "points_stored": sum(stored.values()),
        "ingest_points_per_s": round(acked / tally["seconds"]),
        "acknowledged_points_lost": lost,
        "errors": len(tally["errors"]), "error_kinds": sorted(set(tally["errors"]))[:20],
        "pages": pages, "page_p99_ms": round(1000 * float(np.percentile(every, 99)), 1) if every else None,
        "sse_events": tally["events"],
        "cpus": os.cpu_count(), "load_average_1m_at_end": os.getloadavg()[0],
    }
    atomic_write_text(args.out, json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
