"""Score NSMC predictions: accuracy of the predicted labels against the hidden test labels.

The platform runs ``python eval.py --prediction PRED --label LABEL``: PRED holds one prediction per
line as JSON (0 or 1, as the session's ``infer`` returned it), LABEL one label per line. The last
line printed is the score, ``{"acc": 0.8123}``. A malformed prediction is an error on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prediction", required=True)
    parser.add_argument("--label", required=True)
    args = parser.parse_args()
    with open(args.prediction, encoding="utf-8") as fh:
        predictions = [json.loads(line) for line in fh if line.strip()]
    with open(args.label, encoding="utf-8") as fh:
        labels = [int(line) for line in fh if line.strip()]
    if len(predictions) != len(labels):
        sys.exit(f"{len(predictions)} predictions for {len(labels)} labels")
    bad = next((p for p in predictions if p not in (0, 1)), None)
    if bad is not None:
        sys.exit(f"prediction {bad!r} is not a label; predict 0 or 1")
    correct = sum(int(p == y) for p, y in zip(predictions, labels, strict=True))
    print(json.dumps({"acc": correct / len(labels)}))


if __name__ == "__main__":
    main()
