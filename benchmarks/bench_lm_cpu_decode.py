"""CPU decoding of SmolLM2-135M-Instruct: haneul fp32 against haneul BCQ bases decoded on their packed
codes (AlphaTuning §3's quantised base, served by ``haneul lm generate`` / ``serve``), with llama.cpp on
the shipped Q4_1 GGUF as an outside baseline, in the same run.

For every model: new tokens per second with greedy decoding at batch 1 and 4 (llama.cpp: batch 1), with
1 and 2 torch threads, end to end (prompt included) and for the decoding steps alone; perplexity on one
held-out text (``--text``: a .txt or .jsonl file, optionally .gz, whose first ``--docs`` documents are
used; a few paragraphs of English written into this script otherwise); and how many greedy tokens of
the first prompt agree with fp32. Writes ``benchmarks/results/lm_cpu_decode.json``.

The BCQ bases are quantised once (15 rounds; several minutes on one core) and cached under
``benchmarks/.cache/``. The packed layers run the C++ lookup-table kernel when it is built
(``haneul quant build-kernel``, or ``--build`` here), else the pure-torch paths; the JSON says which.
llama.cpp runs when ``llama_cpp`` imports here, or in the interpreter given by ``--llama-python``
(a throwaway virtual environment holding ``llama-cpp-python``); otherwise the JSON says why not.

    .venv/bin/python benchmarks/bench_lm_cpu_decode.py [--quick] [--text FILE] [--build]
        [--variants 4/32o,3/32o] [--llama-python /tmp/venv/bin/python]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from haneul.io import atomic_write_text

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "lm_cpu_decode.json"
CACHE = HERE / ".cache"
PROMPTS = [
    "The capital of France is",
    "Write a short poem about the sea:",
    "Once upon a time, in a small village,",
    "To make a cup of tea, first",
]
DEFAULT_TEXT = """\
The lighthouse stood at the end of a narrow spit of rock, and for most of the year the only people who
saw it up close were the keeper and the men who brought his supplies. Every evening he climbed the
spiral stairs, trimmed the wick, polished the great lens and wrote a line in the log: the weather, the
ships he had seen, the state of the sea. Nobody read the log, but he kept it anyway, because a record
that is kept every day becomes a kind of company.

Bread is one of the oldest prepared foods. Flour and water are mixed into a dough, which is left to
rise when yeast or a sourdough starter is added; the yeast feeds on the sugars in the flour and releases
carbon dioxide, which is trapped by the gluten network and makes the loaf light. Baking sets the
structure, browns the crust and drives off most of the alcohol the fermentation produced.

A small town library changed more in the last twenty years than in the century before. The card
catalogue became a search box, the reference desk became a help desk, and the quiet reading room now
shares its space with a corner where children learn to program robots. Yet the busiest hour is still
the one after school, when students come in to do their homework together.

Rivers shape the land they cross. Over thousands of years a river cuts its valley, carries sand and
gravel downstream and drops them where the current slows, building deltas and flood plains. People
have always settled along rivers, for water, for fertile soil and for the easy transport they offer,
and many of the world's great cities grew up on their banks.
"""


# -- inputs -----------------------------------------------------------------------------------------


def read_text(path: Path | None, docs: int) -> tuple[str, str]:
    """The held-out text and where it came from: the first ``docs`` documents of a .txt (one per line)
    or .jsonl (a ``text`` field) file, optionally gzip-compressed."""
    if path is None:
        return DEFAULT_TEXT, "built-in English paragraphs"
    opener = gzip.open if path.suffix == ".gz" else open
    out: list[str] = []
    with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
        for line in fh:
            line = line.strip()
            if not line:
                continue
            out.append(str(json.loads(line)["text"]) if ".jsonl" in path.name else line)
            if len(out) >= docs:
                break
    return "\n\n".join(out), f"{path} (first {len(out)} documents)"


def quantised_base(hf_model: Any, tokenizer: Any, bits: int, group: int | None, offset: bool) -> tuple[Path, float | None]:
    """A cached BCQ base of SmolLM2; returns (folder, quantise seconds or None when it was cached)."""
    import copy

    from haneul.quant.model import is_quantized_base, quantize_model, read_base_meta, save_quantized

    folder = CACHE / f"smollm2-q{bits}g{group or 'row'}{'o' if offset else ''}"
    if is_quantized_base(folder):
        settings = read_base_meta(folder, verify=False).get("settings", {})
        if (settings.get("bits"), settings.get("group_size"), settings.get("offset")) == (bits, group, offset):
            return folder, None
    model = copy.deepcopy(hf_model)
    started = time.perf_counter()
    quantize_model(model, bits=bits, group_size=group, offset=offset)
    seconds = time.perf_counter() - started
    save_quantized(model, folder, tokenizer, source="smollm2-135m")
    return folder, seconds


def parse_variant(spec: str) -> tuple[int, int | None, bool]:
    """``4/32o`` -> 4 bits, groups of 32, offsets; ``3/row`` -> row-wise scales."""
    bits, _, rest = spec.partition("/")
    offset = rest.endswith("o")
    group = rest.removesuffix("o")
    return int(bits), (None if group in ("", "row") else int(group)), offset


# -- measurements -----------------------------------------------------------------------------------


def _best(fn: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def speed(gen: Any, batch: int, threads: int, new: int, repeats: int) -> dict[str, float]:
    """Greedy tokens per second: end to end (prompt included), and the decoding steps alone (the time of
    a one-token run, which is the prompt's forward pass, taken off)."""
    from haneul.lm.generate import SamplingParams

    torch.set_num_threads(threads)
    prompts = PROMPTS[:batch]
    full = SamplingParams(max_tokens=new, temperature=0, stop_at_eos=False)
    first = SamplingParams(max_tokens=1, temperature=0, stop_at_eos=False)
    gen.generate(prompts, SamplingParams(max_tokens=4, temperature=0, stop_at_eos=False))  # warm-up
    t_full = _best(lambda: gen.generate(prompts, full), repeats)
    t_first = _best(lambda: gen.generate(prompts, first), repeats)
    return {
        "tokens_per_s": batch * new / t_full,
        "decode_tokens_per_s": batch * (new - 1) / max(t_full - t_first, 1e-9),
        "prompt_ms": t_first * 1e3,
    }


@torch.inference_mode()
def perplexity(model: Any, ids: list[int], window: int) -> float:
    """exp(mean next-token NLL) over ``ids`` cut into non-overlapping windows of ``window`` tokens."""
    total, count = 0.0, 0
    for start in range(0, len(ids) - 1, window):
        chunk = torch.tensor(ids[start : start + window + 1])
        if len(chunk) < 2:
            break
        _, loss = model(chunk[None, :-1], chunk[None, 1:])
        total += float(loss) * (len(chunk) - 1)
        count += len(chunk) - 1
    return float(torch.exp(torch.tensor(total / count)))


def greedy_ids(gen: Any, new: int) -> list[int]:
    return list(gen.generate(PROMPTS[0], temperature=0, max_tokens=new, stop_at_eos=False)[0].token_ids)


# -- llama.cpp --------------------------------------------------------------------------------------

LLAMA_SCRIPT = r"""
import json, math, sys, time
import numpy as np
from llama_cpp import Llama

job = json.loads(sys.argv[1])
out = {"version": __import__("llama_cpp").__version__, "threads": {}}
for threads in job["threads"]:
    llm = Llama(job["gguf"], n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False, seed=0)
    prompt = llm.tokenize(job["prompt"].encode(), add_bos=False, special=False)

    def run(n):
        llm.reset()
        got = 0
        for tok in llm.generate(prompt, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0, reset=True):
            got += 1
            if got >= n:
                break
        return got

    run(4)  # warm-up
    best_full = best_first = float("inf")
    for _ in range(job["repeats"]):
        t0 = time.perf_counter(); run(job["new"]); best_full = min(best_full, time.perf_counter() - t0)
        t0 = time.perf_counter(); run(1); best_first = min(best_first, time.perf_counter() - t0)
    out["threads"][str(threads)] = {
        "tokens_per_s": job["new"] / best_full,
        "decode_tokens_per_s": (job["new"] - 1) / max(best_full - best_first, 1e-9),
        "prompt_ms": best_first * 1e3,
    }
llm = Llama(job["gguf"], n_ctx=2048, n_threads=job["threads"][-1], logits_all=True, verbose=False)
ids, window, total, count = job["ids"], job["window"], 0.0, 0
for start in range(0, len(ids) - 1, window):
    chunk = ids[start : start + window + 1]
    if len(chunk) < 2:
        break
    llm.reset()
    llm.eval(chunk[:-1])
    logits = np.asarray(llm.scores[: len(chunk) - 1], dtype=np.float64)
    logits -= logits.max(-1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    total -= float(logp[np.arange(len(chunk) - 1), chunk[1:]].sum())
    count += len(chunk) - 1
out["perplexity"] = math.exp(total / count)
print(json.dumps(out))
"""


def llama_cpp(python: str | None, gguf: Path, ids: list[int], window: int, new: int, repeats: int,
              threads: list[int], unavailable: str | None = None) -> dict[str, Any] | str:
    """llama.cpp's figures on the GGUF file, or the reason they are missing."""
    import importlib.util

    if python is None:
        if importlib.util.find_spec("llama_cpp") is None:
            return f"not installed: {unavailable or 'llama_cpp does not import here and no --llama-python was given'}"
        python = sys.executable
    job = {"gguf": str(gguf), "prompt": PROMPTS[0], "ids": ids, "window": window, "new": new,
           "repeats": repeats, "threads": threads}
    try:
        done = subprocess.run([python, "-c", LLAMA_SCRIPT, json.dumps(job)], capture_output=True, text=True,
                              timeout=1800, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"not run: {exc}"
    if done.returncode != 0:
        return f"failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}"
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- main -------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="32 new tokens, one repeat, 256 perplexity tokens")
    ap.add_argument("--text", type=Path, default=None, help="held-out text for perplexity (.txt / .jsonl, .gz ok)")
    ap.add_argument("--docs", type=int, default=12, help="documents of --text to use")
    ap.add_argument("--variants", default="4/32o,3/32o", help="BCQ settings: BITS/GROUP[o], o = offsets")
    ap.add_argument("--threads", default="1,2", help="torch thread counts to time")
    ap.add_argument("--batches", default="1,4", help="batch sizes to time")
    ap.add_argument("--new-tokens", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--ppl-tokens", type=int, default=None, help="tokens of the text scored (default 1024, quick 256)")
    ap.add_argument("--window", type=int, default=512, help="perplexity window in tokens")
    ap.add_argument("--build", action="store_true", help="compile the C++ lookup-table kernel first")
    ap.add_argument("--llama-python", default=None, help="a Python interpreter in which llama_cpp imports")
    ap.add_argument("--llama-unavailable", default=None, help="why llama.cpp could not be installed (recorded)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    new = args.new_tokens or (32 if args.quick else 128)
    repeats = args.repeats or (1 if args.quick else 3)
    ppl_tokens = args.ppl_tokens or (256 if args.quick else 1024)
    threads = [int(t) for t in args.threads.split(",")]
    load_at_start = os.getloadavg()[0]
    batches = [int(b) for b in args.batches.split(",")]

    from haneul.lm.generate import Generator
    from haneul.lm.models.smollm2 import gguf_path, load_smollm2
    from haneul.quant import kernels

    if args.build and kernels.get() is None:
        kernels.build()
    hf_model, tokenizer = load_smollm2()
    text, text_source = read_text(args.text, args.docs)
    ids = tokenizer(text, add_special_tokens=False).input_ids[:ppl_tokens]

    models: dict[str, dict[str, Any]] = {"fp32": {"load": lambda: Generator.from_hf(hf_model, tokenizer, name="fp32")}}
    for spec in args.variants.split(","):
        bits, group, offset = parse_variant(spec)
        torch.set_num_threads(max(threads))
        folder, seconds = quantised_base(hf_model, tokenizer, bits, group, offset)
        models[f"bcq_{spec}"] = {
            "load": lambda folder=folder: Generator.from_quantized(folder),
            "base": str(folder.relative_to(HERE.parent)),
            "quantise_s": seconds,
        }

    reference: list[int] | None = None
    rows: dict[str, Any] = {}
    for name, entry in models.items():
        gen = entry.pop("load")()
        row: dict[str, Any] = dict(entry)
        torch.set_num_threads(max(threads))
        row["perplexity"] = perplexity(gen.model, ids, args.window)
        agree = greedy_ids(gen, new)
        if reference is None:
            reference = agree
        row["greedy_prefix_equal_to_fp32"] = next(
            (i for i, (a, b) in enumerate(zip(agree, reference, strict=False)) if a != b), len(agree))
        row["greedy_text"] = gen.tokenizer.decode(agree)
        for t in threads:
            for b in batches:
                row[f"threads_{t}_batch_{b}"] = speed(gen, b, t, new, repeats)
                print(name, t, b, json.dumps(row[f"threads_{t}_batch_{b}"]), file=sys.stderr)
        rows[name] = row
        del gen

    baseline = llama_cpp(args.llama_python, gguf_path(), ids, args.window, new, repeats, threads, args.llama_unavailable)
    result = {
        "benchmark": "lm_cpu_decode",
        "model": "SmolLM2-135M-Instruct",
        "decoding": "greedy, stop at nothing",
        "new_tokens": new,
        "repeats": repeats,
        "prompts": PROMPTS,
        "held_out_text": text_source,
        "perplexity_tokens": len(ids),
        "perplexity_window": args.window,
        "bcq_kernel": kernels.isa() if kernels.get() is not None else "not built (pure-torch paths)",
        "cpu_count": os.cpu_count(),
        "load_average_1min_at_start": load_at_start,
        **rows,
        "llama_cpp": baseline if not isinstance(baseline, dict) else {
            "gguf": gguf_path().name, "batch": 1, **baseline},
        "quick": args.quick,
        "load_average_1min_at_end": os.getloadavg()[0],
        "note": "best of repeats on a shared CPU; tokens_per_s includes the prompt's forward pass, "
                "decode_tokens_per_s takes it off; compare rows of one run, not absolute numbers",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
