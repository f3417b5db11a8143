"""The C++ BCQ kernel, every path this CPU can run, against dequantise-then-matmul.

Each test runs once per kernel path (``avx512``, ``avx2``, ``scalar`` and the opt-in ``avx2-int8``
mode), forced with :func:`haneul.quant.kernels.set_isa`; only paths this CPU lacks are skipped. The
exact paths must agree with a float64 dequantise-then-matmul within 1e-5 relative; the int8 mode
within its stated error bound. Compiling the extension takes one to a few minutes, so these tests
are marked slow and share one build per test module.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch

from haneul.errors import InvalidInput
from haneul.quant import kernels
from haneul.quant.bcq import bcq_quantize
from haneul.quant.layers import BCQLinear

pytestmark = pytest.mark.slow

EXACT = 1e-5  # relative error allowed to the exact (fp32-table) paths
INT8 = 3e-2  # a loose relative check for the int8 mode; test_int8_error_within_its_bound is the real one


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).norm() / b.norm())


def reference(layer: BCQLinear, x: torch.Tensor) -> torch.Tensor:
    """Dequantise-then-matmul in float64 (so the reference's own rounding does not count)."""
    out = x.double() @ layer.dequantize().double().T
    return out + layer.bias.double() if layer.bias is not None else out


def tolerance(isa: str) -> float:
    return INT8 if isa == "avx2-int8" else EXACT


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    from haneul.settings import reload_settings

    if shutil.which("c++") is None and shutil.which("g++") is None:
        pytest.skip("no C++ compiler")
    home: Path = tmp_path_factory.mktemp("kernel-home")
    old = os.environ.get("HANEUL_HOME")
    os.environ["HANEUL_HOME"] = str(home)
    reload_settings()
    try:
        yield kernels.build()
    finally:
        kernels.set_isa(None)
        if old is None:
            os.environ.pop("HANEUL_HOME", None)
        else:
            os.environ["HANEUL_HOME"] = old
        reload_settings()


@pytest.fixture(params=kernels.ISAS)
def isa(request: pytest.FixtureRequest, kernel: ModuleType) -> Iterator[str]:
    """Forces one kernel path for the test; skips paths this CPU cannot run."""
    name: str = request.param
    if name not in kernels.supported_isas():
        pytest.skip(f"this CPU cannot run the {name} path")
    kernels.set_isa(name)
    try:
        yield name
    finally:
        kernels.set_isa(None)


def quantised(out_f: int, in_f: int, bits: int, group: int | None, seed: int = 0, **kw: object) -> BCQLinear:
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(out_f, in_f, generator=gen)
    return BCQLinear.from_result(bcq_quantize(weight, bits, group, rounds=1, **kw))  # type: ignore[arg-type]


def fits_scalar(layer: BCQLinear) -> bool:
    return layer.in_features % 8 == 0 and layer.group_size % 8 == 0


def table_bound(layer: BCQLinear, x: torch.Tensor, limit: int, seg_cols: int = 64) -> torch.Tensor:
    """The byte-shuffle kernels' error bound per output (lut_avx2_shuffle.h): Σ_segments runs · M /
    (2L) · Σ_i |α|, M the largest 4-input absolute sum of the segment, L the integer tables' limit
    (127 for int8); segments are groups cut at ``seg_cols`` · 8 inputs."""
    n = x.shape[0]
    abs_sums = x.abs().double().reshape(n, -1, 4).sum(-1)  # (n, runs)
    alpha_abs = layer.alpha.detach().double().abs().sum(-1)  # (out, G)
    bound = torch.zeros(n, layer.out_features, dtype=torch.float64)
    seg_runs = seg_cols * 2
    group_runs = layer.group_size // 4
    for g in range(layer.n_groups):
        for start in range(g * group_runs, (g + 1) * group_runs, seg_runs):
            stop = min(start + seg_runs, (g + 1) * group_runs)
            m = abs_sums[:, start:stop].max(dim=1).values  # (n,)
            bound += (stop - start) * m[:, None] / (2 * limit) * alpha_abs[None, :, g]
    return bound


# in/out sizes that are not multiples of 16 or 32 (row-block tail) and inputs not multiples of 32 (word tail)
@pytest.mark.parametrize("bits", [1, 2, 3, 4])
@pytest.mark.parametrize(("in_f", "group"), [(96, 32), (192, 64), (384, 128), (100, None)])
@pytest.mark.parametrize("rows", [1, 8])
def test_kernel_matches_dequantise_then_matmul(
    isa: str, bits: int, in_f: int, group: int | None, rows: int
) -> None:
    layer = quantised(45, in_f, bits, group, seed=bits * 7 + in_f)
    x = torch.randn(rows, in_f, generator=torch.Generator().manual_seed(rows))
    ref = reference(layer, x)
    if isa == "scalar" and not fits_scalar(layer):  # 100 inputs: only the SIMD paths take them
        with pytest.raises(InvalidInput, match="multiples of 8"):
            layer.forward_infer(x, method="kernel")
        assert rel(layer.forward_infer(x), ref) < EXACT  # the automatic choice falls back to pure torch
        return
    out = layer.forward_infer(x, method="kernel")
    assert out.shape == (rows, 45)
    assert rel(out, ref) < tolerance(isa)


def test_group_edges_inside_a_word_and_more_than_four_planes(isa: str) -> None:
    # group 36: group ends fall mid-way through a 32-input word; 6 bits: planes handled in two passes;
    # 20 inputs in groups of 4: the scalar path and the int8 mode need multiples of 8 (int8: exact AVX2 then)
    for bits, in_f, group in ((3, 72, 36), (6, 64, 16), (2, 20, 4), (5, 48, 8)):
        layer = quantised(17, in_f, bits, group)
        x = torch.randn(3, in_f)
        if isa == "scalar" and not fits_scalar(layer):
            with pytest.raises(InvalidInput, match="multiples of 8"):
                layer.forward_infer(x, method="kernel")
            continue
        exact = isa != "avx2-int8" or not fits_scalar(layer)
        assert rel(layer.forward_infer(x, method="kernel"), reference(layer, x)) < (EXACT if exact else INT8)


def test_hand_computed_single_row(isa: str) -> None:
    # one output row, 8 inputs, 1 bit: code 0b01010101 → signs (+, −, +, −, …), α 2 → 2·(1 − 2 + … − 8) = −8
    layer = BCQLinear(8, 1, bits=1, group_size=None, bias=False)
    with torch.no_grad():
        layer.codes.fill_(0b01010101)
        layer.alpha.fill_(2.0)
    out = layer.forward_infer(torch.arange(1.0, 9.0)[None], method="kernel").item()
    if isa == "avx2-int8":
        # one segment, M = 5+6+7+8 = 26, s = 26/127; each run's sum −2 becomes round(−2/s) = −10
        assert out == pytest.approx(2 * 2 * -10 * 26 / 127, rel=1e-6)
    elif isa == "avx2":  # 24-bit tables, s = 26 / (2^23 − 1): −2 / s = −645277.46 rounds to −645277
        assert out == pytest.approx(2 * 2 * -645277 * 26 / (2**23 - 1), rel=1e-7)
        assert out == pytest.approx(-8.0, rel=1e-6)
    else:
        assert out == -8.0


def test_exact_paths_agree_with_each_other(kernel: ModuleType) -> None:
    layer = quantised(70, 256, 3, 64)
    x = torch.randn(4, 256)
    outs = {}
    try:
        for name in kernels.supported_isas():
            if name in kernels.EXACT_ISAS:
                kernels.set_isa(name)
                outs[name] = layer.forward_infer(x, method="kernel")
    finally:
        kernels.set_isa(None)
    assert len(outs) >= 1
    first = next(iter(outs.values()))
    for out in outs.values():
        assert rel(out, first) < 1e-6


@pytest.mark.parametrize(("in_f", "group", "rows"), [(576, 64, 1), (1536, None, 3), (256, 128, 16)])
def test_int8_error_within_its_bound(kernel: ModuleType, in_f: int, group: int | None, rows: int) -> None:
    if "avx2-int8" not in kernels.supported_isas():
        pytest.skip("this CPU cannot run the avx2-int8 path")
    layer = quantised(70, in_f, 3, group, seed=in_f)
    x = torch.randn(rows, in_f, generator=torch.Generator().manual_seed(in_f))
    x[0, :8] *= 20  # one outlier run: its segment's scale is coarse, the others are not affected
    kernels.set_isa("avx2-int8")
    try:
        out = layer.forward_infer(x, method="kernel").double()
    finally:
        kernels.set_isa(None)
    ref = reference(layer, x)
    bound = table_bound(layer, x, 127)
    assert ((out - ref).abs() <= bound + 1e-5 * ref.abs().max()).all()
    assert 1e-4 < rel(out, ref) < INT8  # quantised tables: measurably inexact, yet close


def test_avx2_24_bit_tables_stay_within_the_exact_tolerance(kernel: ModuleType) -> None:
    if "avx2" not in kernels.supported_isas():
        pytest.skip("this CPU cannot run the avx2 path")
    layer = quantised(70, 1536, 3, None, seed=5)  # whole rows: three segments of 512 inputs
    x = torch.randn(2, 1536, generator=torch.Generator().manual_seed(5))
    x[1, 100:104] *= 50  # an outlier run coarsens its segment's scale
    kernels.set_isa("avx2")
    try:
        entry = layer._simd_operands()[0]
        out = layer.forward_infer(x, method="kernel").double()
    finally:
        kernels.set_isa(None)
    assert entry is kernel.bcq_gemm_avx2_bytes  # the byte-shuffle kernel, not the fp32-table one
    ref = reference(layer, x)
    bound = table_bound(layer, x, 2**23 - 1)
    # the worst-case rounding bound alone keeps every row within the 1e-5 target, even with the outlier
    assert (bound.norm(dim=1) / ref.norm(dim=1)).max() < EXACT
    assert ((out - ref).abs() <= bound + 1e-6 * ref.abs().max()).all()
    assert rel(out, ref) < EXACT


def test_cache_follows_alpha_and_codes(isa: str) -> None:
    layer = quantised(33, 64, 3, 32)
    x = torch.randn(1, 64)
    first = layer.forward_infer(x, method="kernel")
    with torch.no_grad():
        layer.alpha.mul_(2.0)  # an in-place optimiser step must not reuse stale repacked scales
    assert rel(layer.forward_infer(x, method="kernel"), 2 * first) < 1e-6
    with torch.no_grad():
        layer.codes.bitwise_not_()  # flipping every code flips every sign
    assert rel(layer.forward_infer(x, method="kernel"), -2 * first) < EXACT
    assert "_kernel_cache" not in layer.state_dict()  # the saved format is unchanged


def test_module_call_plan_follows_scales_codes_dtype_and_copies(isa: str) -> None:
    import copy
    import pickle

    layer = quantised(33, 64, 3, 32)
    layer.bias = None
    x = torch.randn(2, 3, 64)
    tol = tolerance(isa)
    with torch.no_grad():
        first = layer(x)
        # the SIMD paths keep a plan: the next call goes straight to the kernel
        assert ("_plan" in layer.__dict__) == (isa != "scalar")
        assert first.shape == (2, 3, 33) and rel(first, reference(layer, x)) < tol
        layer.alpha.mul_(2.0)  # in place: the plan's repacked scales are stale now
        assert rel(layer(x), 2 * first) < 1e-6
        layer.codes.bitwise_not_()
        assert rel(layer(x), -2 * first) < EXACT
        layer.alpha.data = layer.alpha.data / 2  # replaced storage, same version counter
        assert rel(layer(x), -first) < EXACT
        clone = copy.deepcopy(layer)
        assert "_plan" not in clone.__dict__ and rel(clone(x), -first) < 1e-6
        half = clone.to(torch.bfloat16)(x.bfloat16())
        assert half.dtype == torch.bfloat16 and rel(half, -first) < 2e-2
        big = torch.randn(40, 64)  # more rows than the kernel takes: the plan steps aside
        assert rel(layer(big), reference(layer, big)) < EXACT
    assert "_plan" not in pickle.loads(pickle.dumps(layer)).__dict__


def test_plan_follows_a_forced_path(kernel: ModuleType) -> None:
    simd = [name for name in kernels.supported_isas() if name in kernels.SIMD_ISAS]
    if not simd:
        pytest.skip("this CPU has no SIMD path")
    layer = quantised(40, 64, 3, None)
    layer.bias = None
    x = torch.randn(1, 64)
    try:
        with torch.no_grad():
            kernels.set_isa(simd[0])
            layer(x)
            assert layer.__dict__["_plan"][2] is layer._simd_operands()[0]
            for name in [*simd[1:], "scalar"]:
                kernels.set_isa(name)
                out = layer(x)  # a stale plan would call the previous path
                assert rel(out, reference(layer, x)) < tolerance(name)
                plan = layer.__dict__["_plan"]
                assert plan[1] != kernels.generation or plan[2] is layer._simd_operands()[0]
    finally:
        kernels.set_isa(None)


def test_offset_bias_bf16_and_auto_choice(isa: str) -> None:
    layer = quantised(40, 64, 4, 16, offset=True)
    layer.bias = torch.nn.Parameter(torch.randn(40), requires_grad=False)
    x = torch.randn(5, 64)
    ref = reference(layer, x)
    tol = tolerance(isa)
    assert rel(layer.forward_infer(x, method="kernel"), ref) < tol
    with torch.no_grad():
        assert rel(layer(x), ref) < tol  # the automatic choice uses the kernel
    bf = layer.to(torch.bfloat16).forward_infer(x.bfloat16(), method="kernel")
    assert bf.dtype == torch.bfloat16 and rel(bf, ref) < 2e-2


def test_portable_entry_point_matches_dequantise_then_matmul(kernel: ModuleType) -> None:
    for bits, group, rows in ((1, 32, 1), (3, 64, 1), (4, None, 8), (2, 8, 3)):
        layer = quantised(45, 192, bits, group)
        x = torch.randn(rows, 192)
        out = kernel.lut_gemm(x, layer.codes, layer.alpha.detach(), layer.group_size)
        assert rel(out, reference(layer, x)) < EXACT


def test_automatic_choice_is_the_fastest_exact_path(kernel: ModuleType) -> None:
    kernels.set_isa(None)
    supported = kernels.supported_isas()
    assert supported[0] in kernels.EXACT_ISAS and "scalar" in supported
    assert kernels.isa() == supported[0]  # avx2-int8 never runs unless forced


def test_forcing_a_path_that_does_not_exist_names_the_choices(kernel: ModuleType) -> None:
    with pytest.raises(InvalidInput, match="avx512, avx2, scalar"):
        kernels.set_isa("neon")


def test_environment_variable_forces_a_path_once(kernel: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernels, "_env_read", False)
    monkeypatch.setattr(kernels, "_isa", None)
    monkeypatch.setenv("HANEUL_QUANT_ISA", "scalar")
    assert kernels.isa() == "scalar"
    monkeypatch.setenv("HANEUL_QUANT_ISA", "avx2")
    assert kernels.isa() == "scalar"  # read once
    monkeypatch.setattr(kernels, "_forced", None)
    monkeypatch.setattr(kernels, "_env_read", False)
    monkeypatch.setattr(kernels, "_isa", None)
    monkeypatch.setenv("HANEUL_QUANT_ISA", "sse9")
    with pytest.raises(InvalidInput, match="HANEUL_QUANT_ISA='sse9'"):
        kernels.isa()
    monkeypatch.setenv("HANEUL_QUANT_ISA", "auto")
    monkeypatch.setattr(kernels, "_env_read", False)
    assert kernels.isa() == kernels.supported_isas()[0]
    kernels.set_isa(None)


def test_a_cpu_without_avx512_chooses_avx2(kernel: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    if "avx2" not in kernels.supported_isas():
        pytest.skip("this CPU cannot run the avx2 path")
    kernels.set_isa(None)
    monkeypatch.setattr(kernels, "_supported", ("avx2", "scalar", "avx2-int8"))  # as on AMD Zen 3
    monkeypatch.setattr(kernels, "_isa", None)
    assert kernels.isa() == "avx2"
    with pytest.raises(InvalidInput, match="supports avx2, scalar, avx2-int8"):
        kernels.set_isa("avx512")
    layer = quantised(45, 192, 3, 64)
    x = torch.randn(2, 192)
    assert rel(layer.forward_infer(x, method="kernel"), reference(layer, x)) < EXACT
    monkeypatch.undo()
    kernels.set_isa(None)
