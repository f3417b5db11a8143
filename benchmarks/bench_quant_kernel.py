"""Packed BCQ layer vs dense ``nn.Linear`` / ``torch.matmul`` on SmolLM2-135M's layer shapes (same run).

Two measurements, both against the dense baseline in the same run:

* **decode step** (what one generated token costs): all 30 × 7 projection shapes of SmolLM2 as
  separate layers (random weights; packed 3- and 4-bit codes, group 64), one batch-1 pass of an
  input through every layer in order, packed ``BCQLinear`` vs dense fp32 ``nn.Linear`` (and dense bf16
  for reference), each called as a module the way a model calls it, with
  torch's default threads and again with one thread, wall-clock time, best and median of several
  passes. Like a real
  decoding step, each weight is read once per pass, so the dense fp32 weights (≈ 425 MB) come
  from memory rather than from cache. The portable scalar kernel is timed too.
* **per shape, cache hot**: each shape (out, in), batch 1 (GEMV) and batch 8 (GEMM), fp32 and bf16,
  timed again and again on one layer, so the dense weight (≤ 3.5 MB) stays in the CPU cache: the
  layers as modules (``nn.Linear`` vs ``BCQLinear``), and the bare operations beneath them
  (``torch.matmul`` vs the AVX-512 kernel call). Times are the CPU time of the benchmark thread
  (``--threads``, default 1). Each packed result is checked against dequantise-then-matmul.

Random weights are enough here: speed and exactness do not depend on the values. The ratio
(dense time / packed time, > 1 means packed is faster) is what to compare on a shared CPU. The
packed path is the C++ kernel when it is built (``haneul quant build-kernel``; ``--build`` here
builds it first), else the pure-torch path.

    .venv/bin/python benchmarks/bench_quant_kernel.py [--quick] [--build] [--threads 1]

writes ``benchmarks/results/quant_kernel.json`` (``quant_kernel_quick.json`` with ``--quick``).

**Kernel paths** (``--isa avx512 avx2 scalar avx2-int8``, or ``--isa all``): the same comparison for
each named kernel path (forced with :func:`haneul.quant.kernels.set_isa`), on ONE thread, packed
3-bit (``--bits``) vs dense fp32 ``nn.Linear``: every SmolLM2 shape at batch 1 (cache hot, thread
CPU time) and the decoding step through all 210 projections. Samples are interleaved (dense, then
each path, again and again) so a change of load on a shared CPU hits baseline and packed alike;
the load average is recorded before and after. Every row names the path, the CPU model and its SIMD
flags. ``--dense-isa avx2`` runs the dense baseline as on a CPU without AVX-512 (MKL and ATen limited
to AVX2 through ``MKL_ENABLE_INSTRUCTIONS`` / ``ATEN_CPU_CAPABILITY``, set before the first torch
operation), the fair baseline for the AVX2 paths on an AVX-512 machine. Each run is kept in
``benchmarks/results/quant_kernel_isa.json`` under its dense baseline (a later run with the same
baseline replaces it).

    .venv/bin/python benchmarks/bench_quant_kernel.py --isa all [--build] [--quick] [--dense-isa avx2]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
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
OUT_ISA = OUT.with_name("quant_kernel_isa.json")
SIMD_FLAG_PREFIXES = (
    "sse",
    "ssse",
    "avx",
    "fma",
    "f16c",
    "amx",
    "vnni",
    "vaes",
    "gfni",
    "neon",
    "asimd",
    "sve",
)
BLOCK = [
    (576, 576),
    (192, 576),
    (192, 576),
    (576, 576),
    (1536, 576),
    (1536, 576),
    (576, 1536),
]  # q k v o gate up down
N_BLOCKS = 30


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


def random_packed(out_f: int, in_f: int, bits: int, group: int, gen: torch.Generator) -> BCQLinear:
    """A packed layer with random codes and scales (timing does not depend on the values)."""
    layer = BCQLinear(in_f, out_f, bits, group, bias=False)
    with torch.no_grad():
        layer.codes.copy_(torch.randint(0, 256, layer.codes.shape, generator=gen, dtype=torch.uint8))
        layer.alpha.copy_(torch.rand(layer.alpha.shape, generator=gen) * 0.02)
    return layer


def time_pass(fn, reps: int) -> tuple[float, float]:
    """Best and median wall-clock seconds of ``fn`` (one decoding step) after one warm-up pass."""
    fn()
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return min(samples), statistics.median(samples)


def decode_step(bits_list: tuple[int, ...], reps: int, threads: int) -> dict:
    """One batch-1 pass through all 30 × 7 SmolLM2 projections: packed vs dense, wall clock."""
    from haneul.quant import kernels

    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(1)
    shapes = BLOCK * N_BLOCKS
    inputs = {d: torch.randn(1, d, generator=gen) for d in (576, 1536)}
    dense = [dense_linear(torch.randn(o, i, generator=gen) * 0.02) for o, i in shapes]
    dense_bf16 = [copy.deepcopy(lin).bfloat16() for lin in dense]
    inputs_bf16 = {d: x.bfloat16() for d, x in inputs.items()}

    def run_dense() -> None:
        for lin in dense:
            lin(inputs[lin.in_features])

    def run_bf16() -> None:
        for lin in dense_bf16:
            lin(inputs_bf16[lin.in_features])

    with torch.no_grad():
        t_dense = time_pass(run_dense, reps)
        t_bf16 = time_pass(run_bf16, reps)
    result: dict = {
        "layers": len(shapes),
        "threads": threads,
        "reps": reps,
        "clock": "wall (time.perf_counter), one batch-1 pass through every layer in order",
        "baseline": "torch.nn.Linear (no bias) per projection; packed: BCQLinear, both called as modules",
        "dense_fp32_weight_mb": sum(lin.weight.numel() * 4 for lin in dense) / 1e6,
        "dense_fp32_ms": {"best": t_dense[0] * 1e3, "median": t_dense[1] * 1e3},
        "dense_bf16_ms": {"best": t_bf16[0] * 1e3, "median": t_bf16[1] * 1e3},
        "packed": [],
    }
    print(
        f"decode step, {len(shapes)} layers, {threads} threads: dense fp32 {t_dense[0] * 1e3:.2f} ms "
        f"(median {t_dense[1] * 1e3:.2f}), dense bf16 {t_bf16[0] * 1e3:.2f} ms (median {t_bf16[1] * 1e3:.2f})"
    )
    module = kernels.get()
    for bits in bits_list:
        layers = [random_packed(o, i, bits, 64, gen) for o, i in shapes]

        def run_packed(layers: list[BCQLinear] = layers) -> None:
            for layer in layers:
                layer(inputs[layer.in_features])

        with torch.no_grad():
            t_packed = time_pass(run_packed, reps)  # the warm-up pass also repacks each layer once
            row = {
                "bits": bits,
                "group_size": 64,
                "path": f"c++ {kernels.isa()}" if module is not None else "pure-torch",
                "packed_weight_mb": sum(layer.weight_bytes() for layer in layers) / 1e6,
                "packed_ms": {"best": t_packed[0] * 1e3, "median": t_packed[1] * 1e3},
                "speed_ratio_vs_fp32": {"best": t_dense[0] / t_packed[0], "median": t_dense[1] / t_packed[1]},
                "speed_ratio_vs_bf16": {"best": t_bf16[0] / t_packed[0], "median": t_bf16[1] / t_packed[1]},
            }
            if module is not None:

                def run_portable(layers: list[BCQLinear] = layers) -> None:
                    for layer in layers:
                        module.lut_gemm(inputs[layer.in_features], layer.codes, layer.alpha, 64)

                t_port = time_pass(run_portable, max(2, reps // 3))
                row["portable_kernel_ms"] = {"best": t_port[0] * 1e3, "median": t_port[1] * 1e3}
                row["portable_speed_ratio_vs_fp32"] = {
                    "best": t_dense[0] / t_port[0],
                    "median": t_dense[1] / t_port[1],
                }
        result["packed"].append(row)
        extra = f", portable kernel {row['portable_kernel_ms']['best']:.2f} ms" if module is not None else ""
        print(
            f"  q={bits}: packed {t_packed[0] * 1e3:.2f} ms (median {t_packed[1] * 1e3:.2f}) -> "
            f"{row['speed_ratio_vs_fp32']['best']:.2f}x of fp32 (median {row['speed_ratio_vs_fp32']['median']:.2f}x), "
            f"{row['speed_ratio_vs_bf16']['best']:.2f}x of bf16{extra}"
        )
        del layers
    return result


def kernel_op_time(layer: BCQLinear, x: torch.Tensor, reps: int) -> float | None:
    """CPU seconds of the bare SIMD kernel call (no module around it), or None without it."""
    from haneul.quant import kernels

    module = kernels.get()
    if module is None or not kernels.simd():
        return None
    entry, words, alpha = layer._simd_operands()
    out_f, group = layer.out_features, layer.group_size
    return timeit(lambda: entry(x, words, alpha, out_f, group), reps)


def dense_linear(weight: torch.Tensor) -> torch.nn.Linear:
    """The dense baseline layer: ``nn.Linear`` without bias holding ``weight`` (out, in)."""
    lin = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False, dtype=weight.dtype)
    lin.weight.data = weight
    return lin.requires_grad_(False)


def kernels_simd() -> bool:
    from haneul.quant import kernels

    return kernels.simd()


def cpu_info() -> dict:
    """The CPU model and its SIMD feature flags (from /proc/cpuinfo where there is one)."""
    model, flags = platform.processor() or platform.machine(), []
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and model in ("", platform.machine(), platform.processor()):
            model = value.strip()
        if key.strip() in ("flags", "Features") and not flags:
            flags = [f for f in value.split() if f.startswith(SIMD_FLAG_PREFIXES)]
    return {"model": model, "simd_flags": flags, "logical_cpus": os.cpu_count()}


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def thread_time_of(fn, calls: int) -> float:
    """Thread CPU seconds per call of ``fn`` over ``calls`` calls."""
    start = time.thread_time()
    for _ in range(calls):
        fn()
    return (time.thread_time() - start) / calls


def isa_shapes(isas: list[str], bits: int, samples: int) -> list[dict]:
    """Per SmolLM2 shape, batch 1, cache hot, one thread: dense fp32 nn.Linear vs each path, interleaved."""
    from haneul.quant import kernels

    rows = []
    gen = torch.Generator().manual_seed(0)
    for name, (out_f, in_f) in SHAPES.items():
        layer = BCQLinear.from_result(
            bcq_quantize(torch.randn(out_f, in_f, generator=gen) * 0.02, bits, 64, rounds=2)
        )
        layer.bias = None  # as in Llama-family projections: the module call takes the kernel plan
        lin = dense_linear(layer.dequantize())  # the same numbers as the packed layer
        x = torch.randn(1, in_f, generator=gen)
        ref = x.double() @ layer.dequantize().double().T
        times: dict[str, list[float]] = {"dense": [], **{isa: [] for isa in isas}}
        errors = {}
        with torch.no_grad():
            for isa in isas:
                kernels.set_isa(isa)
                got = layer(x)
                errors[isa] = float((got.double() - ref).norm() / ref.norm())
            for _ in range(samples):
                lin(x)
                times["dense"].append(thread_time_of(lambda: lin(x), 20))  # noqa: B023
                for isa in isas:
                    kernels.set_isa(isa)
                    layer(x)  # re-plans for this path (not timed)
                    times[isa].append(thread_time_of(lambda: layer(x), 20))  # noqa: B023
        kernels.set_isa(None)
        dense_us = statistics.median(times["dense"]) * 1e6
        for isa in isas:
            packed_us = statistics.median(times[isa]) * 1e6
            rows.append(
                {
                    "isa": isa,
                    "layer": name,
                    "shape": [out_f, in_f],
                    "bits": bits,
                    "group_size": 64,
                    "batch": 1,
                    "dense_fp32_us": dense_us,
                    "packed_us": packed_us,
                    "speed_ratio": dense_us / packed_us,
                    "speed_ratio_paired_median": statistics.median(
                        d / p for d, p in zip(times["dense"], times[isa], strict=True)
                    ),
                    "rel_error_vs_dequant": errors[isa],
                }
            )
            r = rows[-1]
            print(
                f"[{isa:9s}] q={bits} {name:18s} batch 1: dense {dense_us:7.1f} us  packed {packed_us:7.1f} us  "
                f"ratio {r['speed_ratio']:.2f} (paired {r['speed_ratio_paired_median']:.2f})  err {errors[isa]:.1e}"
            )
    return rows


def isa_decode(isas: list[str], bits: int, samples: int) -> dict:
    """One batch-1 pass through all 210 projections, one thread: dense fp32 vs each path, interleaved."""
    from haneul.quant import kernels

    gen = torch.Generator().manual_seed(1)
    shapes = BLOCK * N_BLOCKS
    inputs = {d: torch.randn(1, d, generator=gen) for d in (576, 1536)}
    dense = [dense_linear(torch.randn(o, i, generator=gen) * 0.02) for o, i in shapes]
    layers = [random_packed(o, i, bits, 64, gen) for o, i in shapes]

    def run_dense() -> None:
        for lin in dense:
            lin(inputs[lin.in_features])

    def run_packed() -> None:
        for layer in layers:
            layer(inputs[layer.in_features])

    cpu: dict[str, list[float]] = {"dense": [], **{isa: [] for isa in isas}}
    wall: dict[str, list[float]] = {"dense": [], **{isa: [] for isa in isas}}

    def sample(key: str, fn) -> None:
        start_wall, start_cpu = time.perf_counter(), time.thread_time()
        fn()
        wall[key].append(time.perf_counter() - start_wall)
        cpu[key].append(time.thread_time() - start_cpu)

    with torch.no_grad():
        run_dense()
        for _ in range(samples):
            sample("dense", run_dense)
            for isa in isas:
                kernels.set_isa(isa)
                run_packed()  # re-plans every layer for this path (not timed)
                sample(isa, run_packed)
    kernels.set_isa(None)
    med = {k: statistics.median(v) * 1e3 for k, v in cpu.items()}
    best = {k: min(v) * 1e3 for k, v in cpu.items()}
    result: dict = {
        "layers": len(shapes),
        "threads": 1,
        "samples": samples,
        "bits": bits,
        "group_size": 64,
        "clock": "thread CPU time (time.thread_time) of one batch-1 pass through every layer in order; wall "
        "clock alongside",
        "baseline": "torch.nn.Linear (no bias) per projection; packed: BCQLinear, both called as modules",
        "dense_fp32_weight_mb": sum(lin.weight.numel() * 4 for lin in dense) / 1e6,
        "packed_weight_mb": sum(layer.weight_bytes() for layer in layers) / 1e6,
        "dense_fp32_ms": {"best": best["dense"], "median": med["dense"]},
        "dense_fp32_wall_ms": {"median": statistics.median(wall["dense"]) * 1e3},
        "paths": [],
    }
    print(f"decode step, 210 layers, 1 thread: dense fp32 {med['dense']:.2f} ms (best {best['dense']:.2f})")
    for isa in isas:
        row = {
            "isa": isa,
            "packed_ms": {"best": best[isa], "median": med[isa]},
            "packed_wall_ms": {"median": statistics.median(wall[isa]) * 1e3},
            "speed_ratio": {"best": best["dense"] / best[isa], "median": med["dense"] / med[isa]},
            "speed_ratio_wall_median": statistics.median(wall["dense"]) / statistics.median(wall[isa]),
        }
        result["paths"].append(row)
        print(
            f"  [{isa:9s}] packed q={bits} {med[isa]:.2f} ms (best {best[isa]:.2f}) -> "
            f"{row['speed_ratio']['median']:.2f}x of dense fp32 (best {row['speed_ratio']['best']:.2f}x)"
        )
    return result


def isa_main(requested: list[str], bits: int, quick: bool, dense_isa: str) -> None:
    from haneul.quant import kernels

    if kernels.get() is None:
        raise SystemExit("the C++ kernel is not built: add --build (or run `haneul quant build-kernel`)")
    supported = kernels.supported_isas()
    isas = list(supported) if requested == ["all"] else requested
    missing = [isa for isa in isas if isa not in supported]
    if missing:
        raise SystemExit(f"this CPU cannot run {', '.join(missing)}; it supports {', '.join(supported)}")
    torch.set_num_threads(1)
    mkl = torch.backends.mkl.is_available()
    dense_baseline = {
        "label": f"dense-{dense_isa}",
        "aten_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "mkl": mkl,
        "mkl_enable_instructions": os.environ.get("MKL_ENABLE_INSTRUCTIONS"),
    }
    cpu = cpu_info()
    load_before = load_average()
    print(f"CPU: {cpu['model']}; SIMD flags: {' '.join(cpu['simd_flags'])}; load average {load_before}")
    print(f"dense baseline: {dense_baseline}")
    shapes = isa_shapes(isas, bits, 7 if quick else 25)
    decode = isa_decode(isas, bits, 3 if quick else 9)
    load_after = load_average()
    for row in [*shapes, *decode["paths"]]:
        row["cpu"] = cpu["model"]
        row["dense_baseline"] = dense_baseline["label"]
    run = {
        "dense_baseline": dense_baseline,
        "quick": quick,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "per_shape": shapes,
        "decode_step_1_thread": decode,
    }
    out = OUT_ISA if not quick else OUT_ISA.with_name("quant_kernel_isa_quick.json")
    runs = []
    if out.is_file():  # keep the run made with the other dense baseline
        runs = [
            r
            for r in json.loads(out.read_text()).get("runs", [])
            if r["dense_baseline"]["label"] != dense_baseline["label"]
        ]
    result = {
        "benchmark": "quant_kernel_isa",
        "threads": 1,
        "torch": torch.__version__,
        "cpu": cpu,
        "supported_isas": list(supported),
        "note": "speed_ratio = dense fp32 time / packed time (>1: packed faster), medians of interleaved "
        "samples; per shape: thread CPU time per call, cache hot; every path forced with kernels.set_isa. "
        "avx2-int8 is the opt-in int8-table mode (not exact): see rel_error_vs_dequant. One run per dense "
        "baseline: dense-default (this CPU's best BLAS path) and dense-avx2 (MKL/ATen limited to AVX2)",
        "runs": [*runs, run],
    }
    atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    print(f"load average before {load_before}, after {load_after}; wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and only 3 bits")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1: steadier on a shared CPU)"
    )
    parser.add_argument("--build", action="store_true", help="compile the C++ kernel first")
    parser.add_argument(
        "--isa",
        nargs="+",
        metavar="PATH",
        help="compare kernel paths instead (avx512, avx2, scalar, avx2-int8, or all): one thread, "
        "writes quant_kernel_isa.json",
    )
    parser.add_argument("--bits", type=int, default=3, help="code bits for --isa (default 3)")
    parser.add_argument(
        "--dense-isa",
        choices=("default", "avx2"),
        default="default",
        help="with --isa: run the dense baseline as on a CPU without AVX-512 (avx2), or as this CPU allows",
    )
    args = parser.parse_args()
    if args.dense_isa == "avx2":  # read by MKL and ATen at their first use, which is still to come
        os.environ["MKL_ENABLE_INSTRUCTIONS"] = "AVX2"
        os.environ["ATEN_CPU_CAPABILITY"] = "avx2"
    if args.build:
        from haneul.quant import kernels

        kernels.build()
    if args.isa:
        isa_main(args.isa, args.bits, args.quick, args.dense_isa)
        return
    default_threads = torch.get_num_threads()
    bits_list = (3,) if args.quick else (3, 4)
    decode = decode_step(bits_list, 5 if args.quick else 15, default_threads)
    # one thread too: on a busy CPU a two-thread GEMV can stall at its barrier when one thread
    # is descheduled, which says more about the load than about the kernels
    decode_1 = decode_step(bits_list, 5 if args.quick else 15, 1) if default_threads != 1 else decode
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    reps = 5 if args.quick else 10
    rows = []
    for bits in bits_list:
        for name, (out_f, in_f) in SHAPES.items():
            weight = torch.randn(out_f, in_f) * 0.02
            layer = BCQLinear.from_result(bcq_quantize(weight, bits, 64, rounds=2))
            for dtype in (torch.float32, torch.bfloat16):
                layer_d = copy.deepcopy(layer).to(dtype)  # Module.to works in place
                dense = layer.dequantize().to(dtype)  # the same numbers as the packed layer
                lin = dense_linear(dense)
                for batch in (1, 8):
                    x = torch.randn(batch, in_f).to(dtype)
                    with torch.no_grad():
                        ref = x.float() @ layer.dequantize().T
                        got = layer_d(x).float()
                        pure = layer_d.forward_infer(x, method="lut" if batch == 1 else "tiled")  # pure torch
                        err = float((got - ref).norm() / ref.norm())
                        # the layers as a model calls them, and the bare operations beneath them
                        t_dense = timeit(lambda: lin(x), reps)  # noqa: B023
                        t_packed = timeit(lambda: layer_d(x), reps)  # noqa: B023
                        t_matmul = timeit(lambda: torch.matmul(x, dense.T), reps)  # noqa: B023
                        t_kernel = kernel_op_time(layer_d, x, reps)
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
                            "matmul_us": t_matmul * 1e6,
                            "kernel_us": t_kernel * 1e6 if t_kernel else None,
                            "kernel_speed_ratio": t_matmul / t_kernel if t_kernel else None,
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
                        f"packed {r['packed_us']:8.0f} us  ratio {r['speed_ratio']:.3f}  "
                        + (f"bare kernel {r['kernel_speed_ratio']:.3f}  " if r["kernel_speed_ratio"] else "")
                        + f"err {err:.1e}"
                    )
    result = {
        "benchmark": "quant_kernel",
        "quick": args.quick,
        "threads": args.threads,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "kernel": kernels_state(),
        "kernel_simd": kernels_simd(),
        "note": "speed_ratio = dense time / packed time (>1: packed faster); shared CPU",
        "decode_step": decode,
        "decode_step_1_thread": decode_1,
        "per_shape_note": "cache-hot: one layer timed repeatedly; thread CPU time with `threads` threads; "
        "dense_us / packed_us: nn.Linear vs BCQLinear called as modules; matmul_us / kernel_us: the bare "
        "torch.matmul vs the bare AVX-512 kernel call",
        "max_rel_error": max(r["rel_error_vs_dequant"] for r in rows if r["dtype"] == "float32"),
        "rows": rows,
    }
    out = OUT if not args.quick else OUT.with_name("quant_kernel_quick.json")  # keep the full figures
    atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
