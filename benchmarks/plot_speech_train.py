"""Plot dev CER against training minutes from one or more ``bench_speech_train.py`` result files.

    .venv/bin/python benchmarks/plot_speech_train.py benchmarks/results/speech_train_full.json \\
        benchmarks/results/speech_train_full_las.json -o docs/img/speech_train_curve.png

Every model in every file is one line (label: model, preset, hours of training speech); the held-out
test CER of the best dev checkpoint is marked at the end of its line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", type=Path, help="speech_train*.json files")
    ap.add_argument("-o", "--out", type=Path, required=True, help="PNG to write")
    args = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from haneul.io import atomic_write_bytes

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for path in args.results:
        if not path.is_file():
            print(
                f"error: {path} does not exist; run benchmarks/bench_speech_train.py first", file=sys.stderr
            )
            return 1
        body = json.loads(path.read_text(encoding="utf-8"))
        for kind, model in body.get("models", {}).items():
            curve = model["curve"]
            label = f"{kind} {model['preset']} ({body['train_hours']:.1f} h of speech)"
            (line,) = ax.plot([p["minutes"] for p in curve], [100 * p["dev_cer"] for p in curve], marker="o",
                              markersize=3, label=label)  # fmt: skip
            ax.scatter([curve[-1]["minutes"]], [100 * model["heldout_cer"]], marker="*", s=120,
                       color=line.get_color(), zorder=3)  # fmt: skip
    ax.axhline(10, color="grey", linestyle="--", linewidth=1, label="10 % target")
    ax.set_xlabel("training minutes (2-core CPU)")
    ax.set_ylabel("CER, spaces removed (%)")
    ax.set_ylim(0, 105)
    ax.set_title("Dev CER while training; ★ held-out test CER of the best checkpoint")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    atomic_write_bytes(args.out, buf.getvalue())
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
