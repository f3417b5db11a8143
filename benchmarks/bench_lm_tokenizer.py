"""Tokenizer efficiency and encoding throughput on held-out Korean text (HyperCLOVA §2.2).

Trains morpheme-bpe, bpe and unigram tokenizers on the ko-reviews corpus (which excludes the NSMC
test reviews) and measures, on NSMC test reviews: tokens per character, tokens per eojeol (space-
separated word) and exact round trips; the SmolLM2 tokenizer is measured as an English-centric
reference when the embedded model is available. Encoding throughput (MB/s of UTF-8 text, one core)
is measured for morpheme-bpe with a cold and a warm eojeol cache, against plain byte-level BPE in the
same run. Writes benchmarks/results/lm_tokenizer.json.

    .venv/bin/python benchmarks/bench_lm_tokenizer.py [--quick] [--data ../shared/data]
"""

from __future__ import annotations

import os

os.environ.setdefault("RAYON_NUM_THREADS", "1")  # one core for the Rust side too
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from haneul.io import atomic_write_text  # noqa: E402
from haneul.lm.tokenizer import HaneulTokenizer, load_tokenizer, train_tokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "lm_tokenizer.json"


def _reviews(path: Path, n: int) -> list[str]:
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            text = json.loads(line)["text"]
            if text.strip():
                out.append(text)
            if len(out) >= n:
                break
    return out


def _nsmc(path: Path, n: int) -> list[str]:
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        next(fh)
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 3 and parts[1].strip():
                out.append(parts[1])
            if len(out) >= n:
                break
    return out


def _efficiency(tok: HaneulTokenizer, texts: list[str]) -> dict[str, float]:
    ids = tok.encode_batch(texts)
    n_tok = sum(len(i) for i in ids)
    chars = sum(len(t) for t in texts)
    eojeols = sum(len(t.split()) for t in texts)
    exact = sum(tok.decode(i) == t for i, t in zip(ids, texts, strict=True))
    return {"tokens_per_char": n_tok / chars, "tokens_per_eojeol": n_tok / eojeols, "round_trip_exact": exact / len(texts)}


def _throughput(make: callable, texts: list[str], repeats: int = 2) -> dict[str, float]:  # type: ignore[valid-type]
    nbytes = sum(len(t.encode()) for t in texts)
    tok = make()  # a fresh tokenizer: empty eojeol cache
    t0 = time.perf_counter()
    for i in range(0, len(texts), 1000):
        tok.encode_batch(texts[i : i + 1000])
    cold = time.perf_counter() - t0
    warm = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(0, len(texts), 1000):
            tok.encode_batch(texts[i : i + 1000])
        warm = min(warm, time.perf_counter() - t0)
    return {"cold_mb_s": nbytes / cold / 1e6, "warm_mb_s": nbytes / warm / 1e6, "bytes": nbytes}


def _smollm2(quick: bool) -> HaneulTokenizer | None:
    try:
        from haneul.lm.models.smollm2 import smollm2_cache_dir, smollm2_dir
    except ImportError:
        return None
    folder = smollm2_cache_dir()
    if not (folder / "tokenizer.json").is_file():
        if quick:
            return None
        try:
            folder = smollm2_dir()
        except Exception as exc:  # the embedded model is optional for this figure
            print(f"SmolLM2 unavailable: {exc}", file=sys.stderr)
            return None
    return load_tokenizer(folder)


def main() -> None:
    ap = argparse.ArgumentParser(description="tokenizer efficiency and throughput")
    ap.add_argument("--quick", action="store_true", help="small corpus, 8k vocabulary only (under a minute)")
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("HANEUL_TEST_DATA", ROOT.parent / "shared" / "data")))
    ap.add_argument("--train-docs", type=int, default=None)
    ap.add_argument("--eval-docs", type=int, default=None)
    args = ap.parse_args()
    reviews = args.data / "ko-reviews" / "reviews.jsonl.gz"
    nsmc = args.data / "nsmc" / "ratings_test.txt.gz"
    if not reviews.is_file() or not nsmc.is_file():
        sys.exit(f"needs {reviews} and {nsmc}; pass --data")
    train_docs = args.train_docs or (10_000 if args.quick else 200_000)
    eval_docs = args.eval_docs or (3_000 if args.quick else 50_000)
    vocabs = [8000] if args.quick else [8000, 32000]
    train = _reviews(reviews, train_docs)
    held = _nsmc(nsmc, eval_docs)

    rows = []
    dirs: dict[tuple[str, int], str] = {}
    work = Path(tempfile.mkdtemp(prefix="bench-tok-"))
    for vocab in vocabs:
        for kind in ("morpheme-bpe", "bpe", "unigram"):
            out = work / f"{kind}-{vocab}"
            t0 = time.perf_counter()
            tok = train_tokenizer(out, texts=train, kind=kind, vocab_size=vocab)
            row = {"tokenizer": kind, "vocab_size": tok.vocab_size, "train_seconds": time.perf_counter() - t0}
            row.update(_efficiency(tok, held))
            rows.append(row)
            dirs[(kind, vocab)] = str(out)
            print(json.dumps(row), file=sys.stderr)
    ref = _smollm2(args.quick)
    if ref is not None:
        rows.append({"tokenizer": "smollm2-135m (reference)", "vocab_size": ref.vocab_size, **_efficiency(ref, held)})

    speed_texts = held
    v = vocabs[0]
    speed = {
        "morpheme-bpe": _throughput(lambda: load_tokenizer(dirs[("morpheme-bpe", v)]), speed_texts),
        "bpe": _throughput(lambda: load_tokenizer(dirs[("bpe", v)]), speed_texts),
    }
    result = {
        "benchmark": "lm_tokenizer",
        "train_corpus": f"ko-reviews, first {len(train):,} reviews",
        "held_out": f"NSMC test reviews, first {len(held):,}",
        "efficiency": rows,
        "encode_throughput_one_core": {
            "vocab_size": v,
            **speed,
            "morpheme_bpe_vs_bpe_warm": speed["morpheme-bpe"]["warm_mb_s"] / speed["bpe"]["warm_mb_s"],
            "target_mb_s": 1.0,
        },
        "quick": args.quick,
        "load_average_1min": os.getloadavg()[0],
        "note": "throughput on a shared 2-core CPU: compare with the same-run bpe figure",
    }
    atomic_write_text(RESULTS, json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
