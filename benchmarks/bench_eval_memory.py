"""Memory and fail-fast figures of `haneul eval run`: peak RSS of a 4-shot KLUE-STS run with the
embedded SmolLM2-135M, and the time until a missing data file is reported.

KLUE-STS itself is not in ``../shared/data``; KorSTS is, and the ``klue_sts`` task reads the KLUE JSON
layout (``guid, sentence1, sentence2, labels{label, real-label, binary-label}``), so the KorSTS dev
split is rewritten into that layout first (same sentences, same 0-5 scores). Each measurement is a
separate ``haneul eval run`` process: its peak resident set size comes from ``wait4`` and the elapsed
time from the parent's clock, so model loading is included exactly as a user sees it.

    .venv/bin/python benchmarks/bench_eval_memory.py --label after        # one measurement set
    .venv/bin/python benchmarks/bench_eval_memory.py --label before       # run before a change

Results are merged by label into ``benchmarks/results/eval_memory.json``, so a figure taken before a
change stays beside the one taken after it. The first use of SmolLM2 converts the GGUF file (about a
minute); a warm-up run does that before anything is timed.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "eval_memory.json"
KORSTS = ROOT.parent / "shared" / "data" / "kornlu" / "sts-dev.tsv.gz"
HANEUL = [sys.executable, "-c", "from haneul.cli.main import main; main()"]


def klue_sts_file(folder: Path) -> tuple[Path, str]:
    """The KorSTS dev split rewritten as a KLUE-STS JSON list."""
    rows = []
    if KORSTS.exists():
        with gzip.open(KORSTS, "rt", encoding="utf-8") as fh:
            next(fh)
            for i, line in enumerate(fh):
                parts = line.rstrip("\n").split("\t")
                if len(parts) < 7:
                    continue
                score = float(parts[4])
                rows.append({"guid": f"korsts-dev-{i}", "source": parts[0], "sentence1": parts[5],
                             "sentence2": parts[6], "labels": {"label": round(score, 1), "real-label": score,
                                                               "binary-label": int(score >= 3.0)}})
        source = str(KORSTS)
    else:  # without the shared data: a synthetic stand-in of the same shape
        for i in range(400):
            rows.append({"guid": f"syn-{i}", "sentence1": f"오늘 날씨가 {i % 7}번째로 좋다", "sentence2":
                         f"오늘은 날씨가 {i % 5}번째로 맑다", "labels": {"real-label": float(i % 6)}})
        source = "synthetic"
    path = folder / "klue-sts-dev.json"
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    return path, source


def run_cli(args: list[str], env: dict[str, str]) -> dict[str, object]:
    """Run `haneul ...` in a child; return its exit code, wall time, peak RSS and last output line."""
    started = time.perf_counter()
    proc = subprocess.Popen([*HANEUL, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out_text, err_text = "", ""
    # wait4 gives this child's own rusage (RUSAGE_CHILDREN would mix in earlier children)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    out_text = proc.stdout.read() if proc.stdout else ""
    err_text = proc.stderr.read() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    tail = (err_text.strip().splitlines() or out_text.strip().splitlines() or [""])[-1]
    return {"rc": proc.returncode, "seconds": round(seconds, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "last_line": tail[:300], "stdout": out_text}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="after", help="name of this measurement set (e.g. before, after)")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--shots", default="4")
    parser.add_argument("--extra", default="", help="extra arguments for `haneul eval run`, space-separated")
    args = parser.parse_args()

    # PYTHONPATH may point at another copy of the sources (e.g. a snapshot taken before a change)
    env = {**os.environ, "HANEUL_SERVER": "", "PYTHONPATH": os.environ.get("PYTHONPATH") or str(ROOT / "src")}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data, source = klue_sts_file(folder)
        # warm-up: converts the GGUF file once so that no timed run pays for it
        warm = run_cli(["eval", "run", "--model", "smollm2", "--task", f"klue_sts={data}", "--shots", "0",
                        "--limit", "1", "--out", str(folder / "warm"), "--no-publish", "--json"], env)
        if warm["rc"] != 0:
            raise SystemExit(f"warm-up failed: {warm['last_line']}")
        missing = run_cli(["eval", "run", "--model", "smollm2", "--task", f"klue_sts={folder / 'nope.json'}",
                           "--shots", args.shots, "--out", str(folder / "missing"), "--no-publish"], env)
        full = run_cli(["eval", "run", "--model", "smollm2", "--task", f"klue_sts={data}", "--shots", args.shots,
                        "--limit", str(args.limit), "--out", str(folder / "run"), "--no-publish", "--json",
                        *args.extra.split()], env)
        if full["rc"] != 0:
            raise SystemExit(f"run failed: {full['last_line']}")
        scores = json.loads(str(full["stdout"]))["tasks"]["klue_sts"]["shots"][args.shots]["mean"]
        timing = json.loads(str(full["stdout"])).get("timing", {})

    record = {
        "what": f"haneul eval run --model smollm2 --task klue_sts=<KorSTS dev as KLUE JSON> --shots {args.shots} "
                f"--limit {args.limit} {args.extra}".strip(),
        "data": source,
        "peak_rss_mb": full["peak_rss_mb"],
        "run_seconds": full["seconds"],
        "scoring_seconds": round(float(timing.get("seconds") or 0.0), 2),
        "scores": scores,
        "missing_file": {"rc": missing["rc"], "seconds_to_error": missing["seconds"],
                         "peak_rss_mb": missing["peak_rss_mb"], "message": missing["last_line"]},
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    merged = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
    merged[args.label] = record
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(merged, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(record, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
