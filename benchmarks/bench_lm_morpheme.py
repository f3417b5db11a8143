"""Does morpheme-aware tokenisation help? (HyperCLOVA §2.2's claim, tested at small scale.)

For each tokenizer kind (morpheme-bpe, bpe, unigram) at the same vocabulary: train it on the same
slice of ko-reviews, tokenize that slice (the validation documents are the same for every kind, since
the split hashes document indices), pre-train the same GPT preset for the same number of *training
tokens*, then report validation bits per character (comparable across tokenizers) and few-shot NSMC
accuracy (k demonstrations, the label word 긍정/부정 with the higher log-likelihood wins).
Writes benchmarks/results/lm_morpheme.json.

    .venv/bin/python benchmarks/bench_lm_morpheme.py [--quick] [--preset ko-nano] [--tokens 2000000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

from haneul.io import atomic_write_text
from haneul.lm.data import prepare_data
from haneul.lm.model import GPT
from haneul.lm.pretrain import TrainConfig, pretrain
from haneul.lm.tokenizer import load_tokenizer, train_tokenizer

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "lm_morpheme.json"
LABELS = {0: " 부정", 1: " 긍정"}


def _nsmc(path: Path) -> list[tuple[str, int]]:
    rows = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        next(fh)
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 3 and parts[1].strip():
                rows.append((parts[1], int(parts[2])))
    return rows


@torch.no_grad()
def few_shot_accuracy(model: GPT, tok, train: list[tuple[str, int]], test: list[tuple[str, int]], k: int, seed: int = 0) -> float:  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    window = model.config.max_seq_len
    label_ids = {y: tok.encode(w) for y, w in LABELS.items()}
    correct = 0
    for text, gold in test:
        demos = rng.sample(train, k)
        context = "".join(f"리뷰: {t}\n감정:{LABELS[y]}\n" for t, y in demos) + f"리뷰: {text}\n감정:"
        ctx = tok.encode(context)
        scores = {}
        for y, ids in label_ids.items():
            seq = (ctx + ids)[-window:]
            x = torch.tensor([seq])
            logp = model(x)[0][0, :-1].log_softmax(-1)
            tail = range(len(seq) - len(ids), len(seq))
            scores[y] = sum(float(logp[i - 1, seq[i]]) for i in tail)
        correct += max(scores, key=scores.get) == gold  # type: ignore[arg-type]
    return correct / len(test)


def main() -> None:
    ap = argparse.ArgumentParser(description="tokenizer kind vs bits per character and few-shot accuracy")
    ap.add_argument("--quick", action="store_true", help="tiny budget, smoke-sized (a few minutes on a busy CPU)")
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("HANEUL_TEST_DATA", ROOT.parent / "shared" / "data")))
    ap.add_argument("--preset", default="ko-nano")
    ap.add_argument("--docs", type=int, default=None, help="ko-reviews documents to use")
    ap.add_argument("--tokens", type=int, default=None, help="training tokens per model")
    ap.add_argument("--vocab-size", type=int, default=8000)
    ap.add_argument("--batch-size", type=int, default=None, help="sequences per step (default 16; 8 with --quick)")
    ap.add_argument("--seq-len", type=int, default=None, help="tokens per sequence (default 256; 128 with --quick)")
    ap.add_argument("--lr", type=float, default=None, help="peak learning rate (default 3e-3 for ko-nano, 2e-3 otherwise)")
    ap.add_argument("--shots", type=int, default=4)
    ap.add_argument("--eval", type=int, default=None, help="NSMC test examples for few-shot accuracy")
    args = ap.parse_args()
    docs = args.docs or (5_000 if args.quick else 200_000)
    budget = args.tokens or (40_000 if args.quick else 5_000_000)
    n_eval = args.eval or (40 if args.quick else 500)
    batch, seq = (8, 128) if args.quick else (16, 256)
    batch, seq = args.batch_size or batch, args.seq_len or seq
    lr = args.lr or (3e-3 if args.preset == "ko-nano" else 2e-3)
    steps = max(budget // (batch * seq), 1)
    reviews = args.data / "ko-reviews" / "reviews.jsonl.gz"
    if not reviews.is_file():
        sys.exit(f"needs {reviews}; pass --data")
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    work = Path(tempfile.mkdtemp(prefix="bench-morph-"))
    corpus = work / "corpus.jsonl"
    with gzip.open(reviews, "rt", encoding="utf-8") as src, open(corpus, "w", encoding="utf-8") as dst:
        for i, line in enumerate(src):
            if i >= docs:
                break
            dst.write(line)
    test = _nsmc(args.data / "nsmc" / "ratings_test.txt.gz")
    train_rows = _nsmc(args.data / "nsmc" / "ratings_train.txt.gz")[:2000]
    random.Random(0).shuffle(test)
    test = test[:n_eval]
    rows = []
    for kind in ("morpheme-bpe", "bpe", "unigram"):
        t0 = time.perf_counter()
        tok_dir, data_dir = work / f"tok-{kind}", work / f"data-{kind}"
        train_tokenizer(tok_dir, files=[corpus], kind=kind, vocab_size=args.vocab_size)
        meta = prepare_data(tok_dir, [corpus], data_dir, val_fraction=0.02, workers=1)
        res = pretrain(TrainConfig(
            data=str(data_dir), out=str(work / f"run-{kind}"), preset=args.preset, steps=steps, batch_size=batch,
            seq_len=seq, lr=lr, warmup=max(steps // 10, 1), eval_every=steps, eval_batches=50, save_every=10**9,
            log_every=max(steps // 5, 1),
        ))
        model = GPT.from_pretrained(res["model_dir"])
        acc = few_shot_accuracy(model, load_tokenizer(tok_dir), train_rows, test, args.shots)
        row = {
            "tokenizer": kind, "val_bpc": res["val_bpc"], "val_loss_per_token": res["val_loss"],
            "chars_per_token": meta["val"]["characters"] / meta["val"]["tokens"], "steps": steps,
            "train_tokens": steps * batch * seq,
            # a fixed token budget covers less text with a tokenizer that cuts finer
            "train_characters_approx": round(steps * batch * seq * meta["val"]["characters"] / meta["val"]["tokens"]),
            f"nsmc_{args.shots}shot_accuracy": acc,
            "seconds": time.perf_counter() - t0,
        }
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    result = {
        "benchmark": "lm_morpheme",
        "preset": args.preset,
        "corpus": f"ko-reviews, first {docs:,} reviews (2 % held out for bits per character)",
        "vocab_size": args.vocab_size,
        "batch_size": batch, "seq_len": seq, "lr": lr,
        "few_shot": f"{args.shots}-shot, {len(test)} NSMC test reviews, chance = 0.5",
        "results": rows,
        "quick": args.quick,
        "load_average_1min": os.getloadavg()[0],
        "note": "same model preset and training-token budget for each tokenizer; small scale, so read as indicative",
    }
    atomic_write_text(RESULTS, json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
