"""Training throughput: haneul's ko-tiny GPT versus a plain Hugging Face ``LlamaForCausalLM`` loop of
the same size, in the same run (same batches, AdamW, clipping, fp32 on CPU / bf16 autocast on GPU).

Reports tokens/s for both, their ratio (target >= 1.0x) and model FLOPs utilisation when the device's
peak is known (``--peak-tflops``, a GPU we know, or on CPU the best fp32 matrix product measured in
the same run). Absolute numbers on a shared CPU are noisy: read the ratio. Writes
benchmarks/results/lm_train.json (or ``--out``).

    .venv/bin/python benchmarks/bench_lm_train.py [--quick] [--preset ko-tiny] [--device cuda]
    python benchmarks/bench_lm_train.py --preset ko-small --device cuda --batch-size 32 --seq-len 1024 --compile
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from haneul.io import atomic_write_text
from haneul.lm.config import GPTConfig
from haneul.lm.model import GPT
from haneul.lm.pretrain import gpu_peak_flops

RESULTS = Path(__file__).resolve().parent / "results" / "lm_train.json"


def _hf_model(cfg: GPTConfig) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    hf = {k: v for k, v in cfg.to_hf().items() if k not in ("architectures", "torch_dtype")}
    return LlamaForCausalLM(LlamaConfig(**hf, attn_implementation="sdpa"))


def _loop(model: torch.nn.Module, batches: list[torch.Tensor], hf: bool, device: torch.device, amp: torch.dtype | None) -> float:
    """Seconds for one optimizer step per batch (after the first, which warms up)."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1, fused=device.type == "cuda")
    model.train()
    start = 0.0
    for i, b in enumerate(batches):
        if i == 1:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        x = b.to(device)
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            if hf:
                loss = model(input_ids=x[:, :-1], labels=x[:, :-1]).loss
            else:
                loss = model(x[:, :-1], x[:, 1:])[1]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def measured_gemm_peak(device: torch.device, n: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of the best of ``repeats`` fp32 n×n matrix products: the practical peak of a CPU, whose
    nominal peak depends on clocks and vector units that a virtual machine does not report."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few steps only (under a minute)")
    ap.add_argument("--preset", default="ko-tiny")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch-size", type=int, default=None, help="default 8 (2 with --quick)")
    ap.add_argument("--seq-len", type=int, default=None, help="default 256 (128 with --quick)")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=None, help="alternate the two loops this many times")
    ap.add_argument("--peak-tflops", type=float, default=None, help="device peak for MFU (TFLOP/s)")
    ap.add_argument("--compile", action="store_true", help="torch.compile both models (same for each)")
    ap.add_argument("--no-hf", action="store_true", help="time haneul alone (no transformers baseline)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results JSON (default: %(default)s)")
    args = ap.parse_args()
    steps = args.steps or (2 if args.quick else 10)
    rounds = args.rounds or (2 if args.quick else 3)
    args.batch_size = args.batch_size or (2 if args.quick else 8)
    args.seq_len = args.seq_len or (128 if args.quick else 256)
    device = torch.device(args.device)
    amp = torch.bfloat16 if device.type == "cuda" else None
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")
    cfg = GPTConfig.from_name(args.preset, max_seq_len=max(args.seq_len, GPTConfig.from_name(args.preset).max_seq_len))
    torch.manual_seed(0)
    batches = [torch.randint(0, cfg.vocab_size, (args.batch_size, args.seq_len + 1)) for _ in range(steps + 1)]
    ours = GPT(cfg).to(device)
    models: dict[str, tuple[torch.nn.Module, bool]] = {"haneul": (ours, False)}
    if not args.no_hf:
        models["transformers"] = (_hf_model(cfg).to(device), True)
    if args.compile:
        models = {k: (torch.compile(m), hf) for k, (m, hf) in models.items()}
    times: dict[str, list[float]] = {k: [] for k in models}
    # alternate the loops so that load from other processes hits each alike
    for _ in range(rounds):
        for name, (model, hf) in models.items():
            times[name].append(_loop(model, batches, hf, device, amp))
    tokens = steps * args.batch_size * args.seq_len
    best = {k: min(v) for k, v in times.items()}
    tps = {k: tokens / v for k, v in best.items()}
    flops_per_token = cfg.flops_per_token(args.seq_len)
    peak = args.peak_tflops * 1e12 if args.peak_tflops else None
    peak_source = "--peak-tflops" if peak else None
    if peak is None and device.type == "cuda":
        peak = gpu_peak_flops(device)
        peak_source = f"{torch.cuda.get_device_name(device)} bf16 dense peak" if peak else None
    if peak is None and device.type == "cpu":
        peak = measured_gemm_peak(device)
        peak_source = "measured: best fp32 2048x2048 matrix product on this CPU, same run"
    result = {
        "benchmark": "lm_train",
        "preset": args.preset,
        "params": ours.num_params(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "dtype": "bf16 autocast" if amp else "fp32",
        "batch_size": args.batch_size,
        "seq_len": args.seq_len,
        "steps_timed": steps,
        "rounds": rounds,
        "tokens_per_s": tps,
        "speedup_vs_transformers": tps["haneul"] / tps["transformers"] if "transformers" in tps else None,
        "compiled": args.compile,
        "peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
        "achieved_tflops": {k: v * flops_per_token / 1e12 for k, v in tps.items()},
        "peak_tflops": peak / 1e12 if peak else None,
        "peak_source": peak_source,
        "mfu": {k: v * flops_per_token / peak for k, v in tps.items()} if peak else None,
        "quick": args.quick,
        "load_average_1min": os.getloadavg()[0],
        "note": "best of alternating rounds; on a shared CPU compare the ratio, not absolute numbers",
    }
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
