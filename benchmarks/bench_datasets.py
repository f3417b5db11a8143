"""Dataset push and pull throughput against a plain ``cp -r`` of the same tree, in the same run.

A tree of N files totalling S bytes (random bytes, so nothing deduplicates) is pushed to a real server
(`haneul server` in a subprocess with its own HANEUL_HOME under /tmp), pushed a second time (nothing
new may be stored: the bytes uploaded are reported), and pulled into a new folder. The baseline is
``cp -r`` of the same tree on the same disk. Targets: push and pull at least 0.5x cp's throughput,
and 0 bytes uploaded by the second push.

Both ways the client moves bytes are measured, each against a fresh server that has answered one
request already (as a running server has: the first request of a new server builds its routes):
through the store's folder, which the CLI uses on the server's own machine (the figures without a
prefix, which the targets are read on), and over HTTP, which it uses from another machine (``http_``).

Push is timed whole: walking the tree (``scan``), then hashing, uploading and committing (``push``,
which hashes each batch while the previous ones upload).

``cp -r`` + ``sync`` varies a lot from run to run on a shared machine, so the whole comparison runs
``--runs`` times (each with a fresh server) and the figures written are the medians; every run's own
figures are kept under ``runs``, with the machine's 1-minute load average when the run started.

Run: .venv/bin/python benchmarks/bench_datasets.py [--quick] [--files N] [--size-mb S] [--runs R]
(default 2,000 files / 2 GB; --quick 200 files / 200 MB; 3 runs). Writes benchmarks/results/datasets.json
(--quick: datasets-quick.json, so that a quick check does not replace the full figures).
"""

from __future__ import annotations

import argparse
import json
import os
import platform as host
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RESULTS = ROOT / "benchmarks" / "results" / "datasets.json"
QUICK_RESULTS = RESULTS.with_name("datasets-quick.json")


def make_tree(root: Path, files: int, total: int) -> int:
    """``files`` files of random bytes in folders of 100, ``total`` bytes in all."""
    each = total // files
    written = 0
    for i in range(files):
        path = root / f"shard-{i // 100:03d}" / f"part-{i:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(each))
        written += each
    return written


def start_server(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, HANEUL_HOME=str(home), HANEUL_PORT=str(port), HANEUL_SERVER=url)
    env.pop("HANEUL_SESSION", None)
    proc = subprocess.Popen([str(BIN / "haneul"), "server"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/api/v1/health", timeout=1)
            return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{url} did not come up")


def timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def cp_r(src: Path, dest: Path) -> None:
    subprocess.run(["cp", "-r", str(src), str(dest)], check=True)
    subprocess.run(["sync"], check=True)  # cp's bytes on disk too: the store fsyncs every blob


def against_server(work: Path, src: Path, home: Path, threads: int, local: bool) -> dict[str, Any]:
    """Push, push again and pull ``src`` against a fresh server; ``local``: through the store's folder
    (what the CLI does on the server's machine), else over HTTP (what it does from another machine)."""
    from haneul.platform.client import Client
    from haneul.platform.credentials import local_admin_token
    from haneul.platform.datasets import pull, push, scan

    proc, url = start_server(home)
    try:
        client = Client(url, token=local_admin_token(home))
        client.request_json("GET", "/api/v1/datasets")  # a running server: its first request's set-up paid
        plan, scan_s = timed(scan, "bench", src)
        first, upload_s = timed(push, client, plan, threads=threads, local=local)
        plan2, scan2_s = timed(scan, "bench", src)
        second, upload2_s = timed(push, client, plan2, threads=threads, local=local)
        pulled, pull_s = timed(pull, client, "bench", work / "pulled", threads=threads, local=local)
        subprocess.run(["sync"], check=True)
        client.close()
    finally:
        proc.terminate()
        proc.wait(20)
    shutil.rmtree(home, ignore_errors=True)
    shutil.rmtree(work / "pulled", ignore_errors=True)
    return {"push_s": scan_s + upload_s, "scan_s": scan_s, "upload_s": upload_s, "first": first,
            "second_s": scan2_s + upload2_s, "second": second, "pull_s": pull_s, "pulled": pulled}


def one_run(work: Path, src: Path, size: int, threads: int, i: int) -> dict[str, float | int | bool]:
    """cp -r, then push, push again and pull of ``src`` through the store's folder and over HTTP, each
    against a fresh server."""
    load = os.getloadavg()[0]
    _, cp_s = timed(cp_r, src, work / "cp-copy")
    shutil.rmtree(work / "cp-copy")
    here = against_server(work, src, work / f"home-{i}", threads, local=True)
    http = against_server(work, src, work / f"home-http-{i}", threads, local=False)
    mb = size / 1e6
    return {
        "cp_r_s": round(cp_s, 3), "cp_r_MBps": round(mb / cp_s, 1),
        "push_s": round(here["push_s"], 3), "push_scan_s": round(here["scan_s"], 3),
        "push_hash_upload_commit_s": round(here["upload_s"], 3),
        "push_MBps": round(mb / here["push_s"], 1), "push_vs_cp": round(cp_s / here["push_s"], 3),
        "push_uploaded_bytes": here["first"].uploaded_bytes, "push_version": here["first"].version,
        "second_push_s": round(here["second_s"], 3), "second_push_uploaded_bytes": here["second"].uploaded_bytes,
        "second_push_created_version": here["second"].created,
        "pull_s": round(here["pull_s"], 3), "pull_MBps": round(mb / here["pull_s"], 1),
        "pull_vs_cp": round(cp_s / here["pull_s"], 3), "pull_files": here["pulled"]["files"],
        "http_push_s": round(http["push_s"], 3), "http_push_vs_cp": round(cp_s / http["push_s"], 3),
        "http_second_push_s": round(http["second_s"], 3),
        "http_second_push_uploaded_bytes": http["second"].uploaded_bytes,
        "http_pull_s": round(http["pull_s"], 3), "http_pull_vs_cp": round(cp_s / http["pull_s"], 3),
        "load_1min": round(load, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="200 files / 200 MB")
    ap.add_argument("--files", type=int, default=None, help="number of files (default 2000; quick 200)")
    ap.add_argument("--size-mb", type=int, default=None, help="total size in MB (default 2000; quick 200)")
    ap.add_argument("--threads", type=int, default=4, help="client threads for hashing, uploads and downloads")
    ap.add_argument("--runs", type=int, default=3, help="runs of the whole comparison; the medians are written")
    args = ap.parse_args()
    files = args.files or (200 if args.quick else 2000)
    total = (args.size_mb or (200 if args.quick else 2000)) * 1_000_000

    from haneul.io import atomic_write_text

    work = Path(tempfile.mkdtemp(prefix="haneul-bench-ds-"))
    try:
        src = work / "tree"
        size = make_tree(src, files, total)
        subprocess.run(["sync"], check=True)
        cp_r(src, work / "warm")  # read the tree once so every contender starts from the page cache
        shutil.rmtree(work / "warm")
        runs = [one_run(work, src, size, args.threads, i) for i in range(max(1, args.runs))]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    out: dict[str, object] = {
        "mode": "quick" if args.quick else "full", "files": files, "bytes": size, "threads": args.threads,
        "cpus": os.cpu_count(), "machine": f"{host.system()} {host.machine()}", "runs_done": len(runs),
        "statistic": "median of the runs",
    }
    for key, value in runs[0].items():
        if isinstance(value, bool):  # second_push_created_version: true if any run made a version
            out[key] = any(r[key] for r in runs)
        elif isinstance(value, int | float):
            median = statistics.median(r[key] for r in runs)
            out[key] = round(median, 3) if isinstance(median, float) else median
    out["targets_met"] = {"push_at_least_half_cp": out["push_vs_cp"] >= 0.5,  # type: ignore[operator]
                          "pull_at_least_half_cp": out["pull_vs_cp"] >= 0.5,  # type: ignore[operator]
                          "second_push_uploads_nothing": out["second_push_uploaded_bytes"] == 0
                          and not out["second_push_created_version"]}
    out["runs"] = [{k: r[k] for k in ("cp_r_s", "push_s", "pull_s", "push_vs_cp", "pull_vs_cp", "http_push_s",
                                      "http_pull_s", "http_push_vs_cp", "http_pull_vs_cp", "load_1min")}
                   for r in runs]
    atomic_write_text(QUICK_RESULTS if args.quick else RESULTS, json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
