"""Build the NSMC competition's dataset: a train part and a hidden test part (test_data + test_label).

Usage:
    python prepare.py SOURCE OUT [--train N] [--test N] [--seed S]

SOURCE is an NSMC-format file (tab-separated ``id``, ``document``, ``label`` with a header line,
plain or .gz) or a folder holding ``ratings_train.txt[.gz]`` and ``ratings_test.txt[.gz]``. With one
file, its rows are shuffled and split. OUT receives::

    OUT/train/train.tsv    id, document, label (what sessions see at HANEUL_DATASET_PATH)
    OUT/test/test_data     the test inputs: one JSON string (the document) per line
    OUT/test/test_label    the test labels: 0 or 1, one per line, in the same order

Push it with ``haneul dataset push nsmc-comp OUT/train --test OUT/test --eval eval.py --metric acc``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
from pathlib import Path


def read_nsmc(path: Path) -> list[tuple[str, str, int]]:
    """Rows ``(id, document, label)`` of an NSMC-format file; rows with no document are skipped."""
    opener = gzip.open if path.suffix == ".gz" else open
    rows = []
    with opener(path, "rt", encoding="utf-8") as fh:
        header = fh.readline().rstrip("\n").split("\t")
        if header[:3] != ["id", "document", "label"]:
            raise SystemExit(f"{path}: the first line must be the header id<TAB>document<TAB>label")
        for n, line in enumerate(fh, 2):
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 3 or parts[2] not in ("0", "1"):
                raise SystemExit(f"{path}:{n}: expected id<TAB>document<TAB>label with label 0 or 1")
            if parts[1].strip():
                rows.append((parts[0], parts[1], int(parts[2])))
    return rows


def find(folder: Path, stem: str) -> Path:
    for name in (f"{stem}.txt", f"{stem}.txt.gz"):
        if (folder / name).is_file():
            return folder / name
    raise SystemExit(f"{folder} has no {stem}.txt or {stem}.txt.gz")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="an NSMC-format file, or a folder with ratings_train/test")
    parser.add_argument("out", type=Path, help="the folder to write train/ and test/ into (must not exist)")
    parser.add_argument("--train", type=int, default=None, help="keep at most N training rows")
    parser.add_argument("--test", type=int, default=None, help="keep at most N test rows")
    parser.add_argument("--seed", type=int, default=0, help="the shuffle's seed")
    args = parser.parse_args(argv)
    if args.out.exists():
        raise SystemExit(f"{args.out} exists; give a new folder")
    rng = random.Random(args.seed)
    if args.source.is_dir():
        train, test = read_nsmc(find(args.source, "ratings_train")), read_nsmc(find(args.source, "ratings_test"))
        rng.shuffle(train)
        rng.shuffle(test)
    else:
        rows = read_nsmc(args.source)
        rng.shuffle(rows)
        cut = len(rows) * 4 // 5
        train, test = rows[:cut], rows[cut:]
    train, test = train[:args.train], test[:args.test]
    if not train or not test:
        raise SystemExit(f"{args.source} gave {len(train)} training and {len(test)} test rows; both must be > 0")
    (args.out / "train").mkdir(parents=True)
    (args.out / "test").mkdir()
    with open(args.out / "train" / "train.tsv", "w", encoding="utf-8") as fh:
        fh.write("id\tdocument\tlabel\n")
        fh.writelines(f"{i}\t{doc}\t{label}\n" for i, doc, label in train)
    with open(args.out / "test" / "test_data", "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(doc, ensure_ascii=False) + "\n" for _, doc, _ in test)
    with open(args.out / "test" / "test_label", "w", encoding="utf-8") as fh:
        fh.writelines(f"{label}\n" for _, _, label in test)
    print(f"{len(train)} training rows, {len(test)} test rows in {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
