"""The C++ BCQ kernel (AVX-512 register-table path and portable path) against dequantise-then-matmul.

Compiling the extension takes one to a few minutes, so these tests are marked slow and share one
build per test module.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch

from haneul.quant.bcq import bcq_quantize
from haneul.quant.layers import BCQLinear

pytestmark = pytest.mark.slow


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().float(), b.detach().float()
    return float((a - b).norm() / b.norm())


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    from haneul.quant import kernels
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
        if old is None:
            os.environ.pop("HANEUL_HOME", None)
        else:
            os.environ["HANEUL_HOME"] = old
        reload_settings()


@pytest.fixture
def simd(kernel: ModuleType) -> ModuleType:
    if not kernel.simd_available():
        pytest.skip("this CPU has no AVX-512")
    return kernel


def quantised(out_f: int, in_f: int, bits: int, group: int | None, seed: int = 0, **kw: object) -> BCQLinear:
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(out_f, in_f, generator=gen)
    return BCQLinear.from_result(bcq_quantize(weight, bits, group, rounds=1, **kw))  # type: ignore[arg-type]


# in/out sizes that are not multiples of 16 (row-block tail) and inputs not multiples of 32 (word tail)
@pytest.mark.parametrize("bits", [1, 2, 3, 4])
@pytest.mark.parametrize(("in_f", "group"), [(96, 32), (192, 64), (384, 128), (100, None)])
@pytest.mark.parametrize("rows", [1, 8])
def test_simd_matches_dequantise_then_matmul(
    simd: ModuleType, bits: int, in_f: int, group: int | None, rows: int
) -> None:
    layer = quantised(45, in_f, bits, group, seed=bits * 7 + in_f)
    x = torch.randn(rows, in_f, generator=torch.Generator().manual_seed(rows))
    ref = x @ layer.dequantize().T
    out = layer.forward_infer(x, method="kernel")
    assert out.shape == (rows, 45)
    assert rel(out, ref) < 1e-4


def test_simd_group_edges_inside_a_word_and_more_than_four_planes(simd: ModuleType) -> None:
    # group 36: group ends fall mid-way through a 32-input word; 6 bits: planes handled in two passes
    for bits, in_f, group in ((3, 72, 36), (6, 64, 16), (2, 20, 4)):
        layer = quantised(17, in_f, bits, group)
        x = torch.randn(3, in_f)
        assert rel(layer.forward_infer(x, method="kernel"), x @ layer.dequantize().T) < 1e-4


def test_simd_hand_computed_single_row(simd: ModuleType) -> None:
    # one output row, 4 inputs, 1 bit: codes 0b0101 → signs (+, −, +, −), alpha 2 → 2·(1 − 2 + 3 − 4) = −4
    layer = BCQLinear(4, 1, bits=1, group_size=None, bias=False)
    with torch.no_grad():
        layer.codes.fill_(0b0101)
        layer.alpha.fill_(2.0)
    out = layer.forward_infer(torch.tensor([[1.0, 2.0, 3.0, 4.0]]), method="kernel")
    assert out.item() == pytest.approx(-4.0)


def test_simd_cache_follows_alpha_and_codes(simd: ModuleType) -> None:
    layer = quantised(33, 64, 3, 32)
    x = torch.randn(1, 64)
    first = layer.forward_infer(x, method="kernel")
    with torch.no_grad():
        layer.alpha.mul_(2.0)  # an in-place optimiser step must not reuse stale repacked scales
    assert rel(layer.forward_infer(x, method="kernel"), 2 * first) < 1e-6
    with torch.no_grad():
        layer.codes.bitwise_not_()  # flipping every code flips every sign
    assert rel(layer.forward_infer(x, method="kernel"), -2 * first) < 1e-5
    assert "_kernel_cache" not in layer.state_dict()  # the saved format is unchanged


def test_module_call_plan_follows_scales_codes_dtype_and_copies(simd: ModuleType) -> None:
    import copy
    import pickle

    layer = quantised(33, 64, 3, 32)
    layer.bias = None
    x = torch.randn(2, 3, 64)
    with torch.no_grad():
        first = layer(x)
        assert "_plan" in layer.__dict__  # the next call goes straight to the kernel
        assert first.shape == (2, 3, 33) and rel(first, x @ layer.dequantize().T) < 1e-5
        layer.alpha.mul_(2.0)  # in place: the plan's repacked scales are stale now
        assert rel(layer(x), 2 * first) < 1e-6
        layer.codes.bitwise_not_()
        assert rel(layer(x), -2 * first) < 1e-5
        layer.alpha.data = layer.alpha.data / 2  # replaced storage, same version counter
        assert rel(layer(x), -first) < 1e-5
        clone = copy.deepcopy(layer)
        assert "_plan" not in clone.__dict__ and rel(clone(x), -first) < 1e-6
        half = clone.to(torch.bfloat16)(x.bfloat16())
        assert half.dtype == torch.bfloat16 and rel(half, -first) < 2e-2
        big = torch.randn(40, 64)  # more rows than the kernel takes: the plan steps aside
        assert rel(layer(big), big @ layer.dequantize().T) < 1e-5
    assert "_plan" not in pickle.loads(pickle.dumps(layer)).__dict__


def test_simd_offset_bias_bf16_and_auto_choice(simd: ModuleType) -> None:
    layer = quantised(40, 64, 4, 16, offset=True)
    layer.bias = torch.nn.Parameter(torch.randn(40), requires_grad=False)
    x = torch.randn(5, 64)
    ref = x @ layer.dequantize().T + layer.bias
    assert rel(layer.forward_infer(x, method="kernel"), ref) < 1e-4
    with torch.no_grad():
        assert rel(layer(x), ref) < 1e-4  # the automatic choice uses the kernel
    bf = layer.to(torch.bfloat16).forward_infer(x.bfloat16(), method="kernel")
    assert bf.dtype == torch.bfloat16 and rel(bf, ref) < 2e-2


def test_portable_path_matches_dequantise_then_matmul(kernel: ModuleType) -> None:
    for bits, group, rows in ((1, 32, 1), (3, 64, 1), (4, None, 8)):
        layer = quantised(45, 192, bits, group)
        x = torch.randn(rows, 192)
        out = kernel.lut_gemm(x, layer.codes, layer.alpha.detach(), layer.group_size)
        assert rel(out, x @ layer.dequantize().T) < 1e-4


def test_layer_falls_back_to_portable_path_without_avx512(
    kernel: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    from haneul.errors import InvalidInput
    from haneul.quant import kernels

    monkeypatch.setattr(kernels, "_simd", False)  # as on a CPU without AVX-512
    layer = quantised(45, 192, 3, 64)
    x = torch.randn(2, 192)
    assert rel(layer.forward_infer(x, method="kernel"), x @ layer.dequantize().T) < 1e-4
    odd = quantised(9, 20, 2, None)  # 20 inputs: only the AVX-512 path takes them
    with pytest.raises(InvalidInput, match="multiples of 8"):
        odd.forward_infer(torch.randn(1, 20), method="kernel")
    assert rel(odd.forward_infer(torch.ones(1, 20)), torch.ones(1, 20) @ odd.dequantize().T) < 1e-4
