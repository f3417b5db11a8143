"""Metric ingestion and launch latency on SQLite against PostgreSQL, in the same run.

Each round starts a fresh server on each database (SQLite in WAL mode, the default; a new database on
the PostgreSQL server named by HANEUL_TEST_POSTGRES_URL) and runs the measurement of
``bench_platform.py``: a session reporting ``--points`` points through the SDK (every point counted on
the server afterwards), full and downsampled reads of that history, and the launch latency of ten
sessions. Rounds alternate the two databases so that a busy moment of the machine does not land on
one side only; the medians over rounds are reported.

    bash scripts/with-postgres.sh .venv/bin/python benchmarks/bench_platform_backends.py [--points 1000000] [--rounds 3]

Writes benchmarks/results/platform_backends.json (atomically).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_platform import bench_haneul  # noqa: E402

from haneul.io import atomic_write_text  # noqa: E402
from haneul.platform.testing import POSTGRES_URL_VAR, postgres_database  # noqa: E402

KEYS = ("ingest_points_per_s", "read_full_history_s_median", "read_downsampled_1000_s_median",
        "launch_latency_s_median")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1_000_000, help="points one session reports")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds per database")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "platform_backends.json")
    args = ap.parse_args()
    admin = os.environ.get(POSTGRES_URL_VAR)
    if not admin:
        raise SystemExit(f"no PostgreSQL server: run under `bash scripts/with-postgres.sh` (or set {POSTGRES_URL_VAR})")
    runs: dict[str, list[dict]] = {"sqlite": [], "postgresql": []}
    for r in range(args.rounds):
        for backend in ("sqlite", "postgresql") if r % 2 == 0 else ("postgresql", "sqlite"):
            with tempfile.TemporaryDirectory(prefix=f"haneul-bench-{backend}-") as tmp:
                if backend == "sqlite":
                    got = bench_haneul(args.points, Path(tmp))
                else:
                    with postgres_database(admin) as url:
                        got = bench_haneul(args.points, Path(tmp), HANEUL_DB_URL=url)
            runs[backend].append({k: got[k] for k in KEYS})
            print(f"round {r + 1} {backend:10s} " + "  ".join(f"{k} {got[k]:.4g}" for k in KEYS), flush=True)
    medians = {b: {k: statistics.median(x[k] for x in rows) for k in KEYS} for b, rows in runs.items()}
    out = {
        "points": args.points, "rounds": args.rounds, "medians": medians, "runs": runs,
        "postgresql_over_sqlite_ingest": medians["postgresql"]["ingest_points_per_s"]
        / medians["sqlite"]["ingest_points_per_s"],
        "load_average_1m_at_end": os.getloadavg()[0], "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    atomic_write_text(args.out, json.dumps(out, indent=2) + "\n")
    print(json.dumps(medians, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
