"""A small, fast NSMC baseline: character n-grams (TF-IDF) and logistic regression (scikit-learn).

Run it as a session on the competition's dataset, then submit its checkpoint:

    haneul run --dataset nsmc-comp -- python train.py --max-ngram 2
    haneul submit SESSION

It binds ``save``, ``load`` and ``infer`` before training, so that ``haneul submit`` (and
``haneul deploy``) can run the same file to predict: with ``HANEUL_MODE=submit`` the platform loads
the checkpoint through ``load`` and calls ``infer`` on the hidden test inputs, and the training code
below ``bind`` never runs.
"""

from __future__ import annotations

import argparse
import csv
import os
import pickle
import random

import haneul

state: dict = {}


def save(folder: str) -> None:
    with open(os.path.join(folder, "model.pkl"), "wb") as fh:
        pickle.dump(state["model"], fh)


def load(folder: str) -> None:
    with open(os.path.join(folder, "model.pkl"), "rb") as fh:
        state["model"] = pickle.load(fh)


def infer(documents: list[str]) -> list[int]:
    return [int(y) for y in state["model"].predict(documents)]


haneul.bind(save=save, load=load, infer=infer)


def read_train(folder: str) -> list[tuple[str, int]]:
    with open(os.path.join(folder, "train.tsv"), encoding="utf-8", newline="") as fh:
        rows = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [(r["document"], int(r["label"])) for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-ngram", type=int, default=2, help="longest character n-gram used as a feature")
    parser.add_argument("--c", type=float, default=2.0, help="inverse regularisation strength")
    parser.add_argument("--data", default=haneul.DATASET_PATH or "data/train",
                        help="the train part (default: the session's dataset)")
    args = parser.parse_args()
    haneul.config({"max_ngram": args.max_ngram, "c": args.c})

    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    rows = read_train(args.data)
    random.Random(0).shuffle(rows)
    held = max(1, len(rows) // 10)
    dev, train = rows[:held], rows[held:]
    model = make_pipeline(TfidfVectorizer(analyzer="char_wb", ngram_range=(1, args.max_ngram), sublinear_tf=True),
                          LogisticRegression(C=args.c, max_iter=1000))
    model.fit([d for d, _ in train], [y for _, y in train])
    state["model"] = model
    train_acc = model.score([d for d, _ in train], [y for _, y in train])
    dev_acc = model.score([d for d, _ in dev], [y for _, y in dev])
    haneul.report(step=0, train_acc=train_acc, dev_acc=dev_acc)
    haneul.save("model")
    print(f"{len(train)} training rows: train acc {train_acc:.4f}, dev acc {dev_acc:.4f}")


if __name__ == "__main__":
    main()
