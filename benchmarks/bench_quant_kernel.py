"""Packed BCQ layer forward vs dense ``torch.matmul`` on SmolLM2-135M's layer shapes (same run).

For each shape (out, in) of SmolLM2's attention and MLP projections, batch 1 (GEMV, decoding) and
batch 8 (GEMM), fp32 and bf16: time ``BCQLinear.forward_infer`` on packed 3- and 4-bit codes
(group 64) against ``x @ W.T`` with the dense weight of the same dtype, and check the packed result
against dequantise-then-matmul. Random weights are enough here: speed and exactness do not depend
on the values. Times are the CPU time of the (single) benchmark thread, which other processes on
a shared CPU do not inflate; still, the ratio (dense time / packed time, > 1 means packed is
faster) is what to compare. The packed path is the C++ kernel when it is built (``haneul quant
build-kernel``; ``--build`` here builds it first), else the pure-torch path.

    .venv/bin/python benchmarks/bench_quant_kernel.py [--quick] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from haneul.io import atomic_write_text
from haneul.quant.bcq import bcq_quantize
from haneul.quant.layers import BCQLinear

SHAPES = {
    "q_proj/o_proj": (576, 576),
    "k_proj/v_proj": (192, 576),
    "gate_proj/up_proj": (1536, 576),
    "down_proj": (576, 1536),
}
OUT = Path(__file__).resolve().parent / "results" / "quant_kernel.json"


def timeit(fn, reps: int) -> float:
    """Median CPU time of this thread per call: other processes on a shared CPU do not inflate it."""
    fn()
    samples = []
    for _ in range(reps):
        start = time.thread_time()
        for _ in range(5):
            fn()
        samples.append((time.thread_time() - start) / 5)
    return statistics.median(samples)


def kernels_state() -> str:
    from haneul.quant import kernels

    return "c++" if kernels.get() is not None else "pure-torch"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and only 3 bits")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1: steadier on a shared CPU)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    reps = 5 if args.quick else 20
    rows = []
    for bits in (3,) if args.quick else (3, 4):
        for name, (out_f, in_f) in SHAPES.items():
            weight = torch.randn(out_f, in_f) * 0.02
            layer = BCQLinear.from_result(bcq_quantize(weight, bits, 64, rounds=2))
            for dtype in (torch.float32, torch.bfloat16):
                layer_d = copy.deepcopy(layer).to(dtype)  # Module.to works in place
                dense = layer.dequantize().to(dtype)  # the same numbers as the packed layer
                for batch in (1, 8):
                    x = torch.randn(batch, in_f).to(dtype)
                    with torch.no_grad():
                        ref = x.float() @ layer.dequantize().T
                        got = layer_d.forward_infer(x).float()
                        pure = layer_d.forward_infer(x, method="lut" if batch == 1 else "tiled")  # pure torch
                        err = float((got - ref).norm() / ref.norm())
                        t_dense = timeit(lambda: torch.matmul(x, dense.T), reps)  # noqa: B023
                        t_packed = timeit(lambda: layer_d.forward_infer(x), reps)  # noqa: B023
                        pure_method = "lut" if batch == 1 else "tiled"
                        t_pure = timeit(lambda: layer_d.forward_infer(x, method=pure_method), reps)  # noqa: B023
                    rows.append(
                        {
                            "layer": name,
                            "shape": [out_f, in_f],
                            "bits": bits,
                            "dtype": str(dtype).removeprefix("torch."),
                            "batch": batch,
                            "dense_us": t_dense * 1e6,
                            "packed_us": t_packed * 1e6,
                            "speed_ratio": t_dense / t_packed,
                            "pure_torch_us": t_pure * 1e6,
                            "pure_torch_speed_ratio": t_dense / t_pure,
                            "pure_torch_rel_error": float((pure.float() - ref).norm() / ref.norm()),
                            "rel_error_vs_dequant": err,
                            "dense_weight_bytes": dense.numel() * dense.element_size(),
                            "packed_weight_bytes": layer.weight_bytes(),
                        }
                    )
                    r = rows[-1]
                    print(
                        f"q={bits} {name:18s} {r['dtype']:8s} batch {batch}: dense {r['dense_us']:8.0f} us  "
                        f"packed {r['packed_us']:8.0f} us  ratio {r['speed_ratio']:.3f}  err {err:.1e}"
                    )
    result = {
        "benchmark": "quant_kernel",
        "quick": args.quick,
        "threads": args.threads,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "kernel": kernels_state(),
        "note": "speed_ratio = dense time / packed time (>1: packed faster); thread CPU time, shared CPU",
        "max_rel_error": max(r["rel_error_vs_dequant"] for r in rows if r["dtype"] == "float32"),
        "rows": rows,
    }
    atomic_write_text(OUT, json.dumps(result, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
