"""Synthetic call-speech generation speed: hours of audio rendered per wall-clock minute.

Baseline in the same run: espeak-ng alone (no telephone channel) on one worker. Then the full
pipeline (espeak-ng + noise + sox 300-3400 Hz / 8 kHz / mu-law channel + WAV write) on one worker
and on every core. The CPU here is shared, so absolute speeds are noisy; the ratios to the
same-run baseline are the figures to compare.

    .venv/bin/python benchmarks/bench_speech_synth.py [--quick]

Writes ``benchmarks/results/speech_synth.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="render 0.01 h per configuration instead of 0.1 h")
    ap.add_argument("--hours", type=float, default=0.1, help="hours of audio per configuration")
    args = ap.parse_args()
    hours = 0.01 if args.quick else args.hours

    from haneul.io import atomic_write_text
    from haneul.speech.synth import synthesize

    cores = os.cpu_count() or 1
    configs = [("espeak only, 1 worker (baseline)", False, 1), ("full pipeline, 1 worker", True, 1),
               (f"full pipeline, {cores} workers", True, cores)]  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory(prefix="haneul-bench-synth-") as tmp:
        for channel in (False, True):  # warm-up: imports and first process start-up are not timed
            synthesize(Path(tmp) / f"warm{channel}", 0.0005, seed=1, workers=1, channel=channel)
        for i, (name, channel, workers) in enumerate(configs):
            res = synthesize(Path(tmp) / str(i), hours, seed=0, noise=0.2, workers=workers, channel=channel)
            speed = res.seconds / 3600 / (res.wall_s / 60)
            rows.append({"config": name, "workers": workers, "channel": channel, "audio_hours": res.seconds / 3600,
                         "utterances": res.utterances, "wall_s": res.wall_s, "audio_hours_per_minute": speed})  # fmt: skip
            print(
                f"{name:36s} {speed:6.2f} h of audio per minute ({res.utterances} utterances in {res.wall_s:.1f} s)"
            )
    base = rows[0]["audio_hours_per_minute"]
    for r in rows:
        r["ratio_to_baseline"] = r["audio_hours_per_minute"] / base
    out = ROOT / "benchmarks" / "results" / "speech_synth.json"
    atomic_write_text(out, json.dumps({"quick": args.quick, "cpu_count": cores, "rows": rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
