"""Session launch latency with the Ray executor against the local one, in the same run.

A Ray head (``ray start --head`` on loopback, its own temp folder, no dashboard) is started and warmed
with one session; then sessions are launched alternately through a server with the local executor and
one with ``HANEUL_EXECUTOR=ray``. Latency is measured as in ``bench_platform.py``: from the ``haneul run``
invocation to the first line the session's code prints (its own ``time.time()``), so it counts the
CLI, the server's queue, the executor's start (a detached actor placed on the cluster, which starts the
process) and the Python start-up. The median over ``--sessions`` launches is the figure; the target is
≤ 2 s on a warm cluster.

    .venv/bin/python benchmarks/bench_platform_ray.py [--sessions 20]

Writes benchmarks/results/platform_ray.json (atomically).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_platform import _AUTH, Server, get  # noqa: E402

from haneul.io import atomic_write_text  # noqa: E402
from haneul.platform.testing import BIN, free_port, wait_for  # noqa: E402

# Ray rewrites 127.0.0.1 to the machine's outward address; another loopback address stays on loopback
HEAD_IP = "127.0.0.2"
FIRST_LINE = "import time; print(repr(time.time()), flush=True)"


def launch(server: Server, work: Path) -> float:
    """Seconds from ``haneul run`` to the first line of the session's code."""
    # bench_platform's reads carry one server's token; two servers run here
    _AUTH["Authorization"] = f"Bearer {(server.home / 'admin.token').read_text().strip()}"
    t0 = time.time()
    sid = server.run("python", "-c", FIRST_LINE, cwd=work)
    done = server.wait_done(sid)
    if done["status"] != "done":
        raise RuntimeError(f"session {sid} ended {done['status']}: {done.get('reason')}")
    return float(get(f"{server.url}/api/v1/sessions/{sid}/logs").json()["lines"][0]) - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=20, help="launches per executor")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "platform_ray.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="haneul-bench-ray-") as tmp:
        root = Path(tmp)
        work = root / "code"  # the sessions' working folder, snapshotted at each launch: nothing else in it
        work.mkdir()
        port = free_port()
        address = f"{HEAD_IP}:{port}"
        env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
        env.pop("RAY_ADDRESS", None)
        with open(root / "ray.log", "wb") as log:
            head = subprocess.Popen([str(BIN / "ray"), "start", "--block", "--head", f"--node-ip-address={HEAD_IP}",
                                     f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                                     f"--temp-dir={root / 'ray'}", "--disable-usage-stats"],
                                    env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        servers: dict[str, Server] = {}
        try:
            os.environ.update({k: env[k] for k in ("RAY_USAGE_STATS_ENABLED", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN")})
            servers["local"] = Server(root / "local-home")
            servers["ray"] = Server(root / "ray-home", HANEUL_EXECUTOR="ray", HANEUL_RAY_ADDRESS=address)
            # the first session on the cluster pays for its worker process start: warm both sides once
            wait_for(lambda: _warm(servers["ray"], work), timeout=180, interval=1.0)
            launch(servers["local"], work)
            lat: dict[str, list[float]] = {"local": [], "ray": []}
            for i in range(args.sessions):
                for name in ("local", "ray") if i % 2 == 0 else ("ray", "local"):
                    lat[name].append(launch(servers[name], work))
                print(f"{i + 1}/{args.sessions}: local {lat['local'][-1]:.3f} s, ray {lat['ray'][-1]:.3f} s", flush=True)
        finally:
            for server in servers.values():
                server.close()
            head.terminate()
            try:
                head.wait(30)
            except subprocess.TimeoutExpired:
                head.kill()
    out = {
        "what": "seconds from `haneul run` to the session code's first line; same machine, alternating executors",
        "sessions": args.sessions,
        "local": {"median_s": statistics.median(lat["local"]), "p90_s": _p90(lat["local"]), "all_s": lat["local"]},
        "ray": {"median_s": statistics.median(lat["ray"]), "p90_s": _p90(lat["ray"]), "all_s": lat["ray"]},
        "target_ray_median_s": 2.0,
        "cpus": os.cpu_count(), "load_average_1m_at_end": os.getloadavg()[0],
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    atomic_write_text(args.out, json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: out[k] for k in ("local", "ray")} | {"load": out["load_average_1m_at_end"]}, indent=1))


def _warm(server: Server, work: Path) -> bool:
    try:
        launch(server, work)
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"the Ray side is not ready yet: {getattr(exc, 'stderr', None) or exc}", file=sys.stderr)
        return False
    return True


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


if __name__ == "__main__":
    main()
