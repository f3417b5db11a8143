from __future__ import annotations

import pytest
import torch
from torch import nn

from haneul.errors import InvalidInput
from haneul.quant.bcq import bcq_quantize
from haneul.quant.layers import BCQLinear


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().float(), b.detach().float()
    return float((a - b).norm() / b.norm())


def make_layer(
    out_f: int = 40, in_f: int = 64, bits: int = 3, group: int | None = 16, **kw: object
) -> BCQLinear:
    torch.manual_seed(0)
    lin = nn.Linear(in_f, out_f)
    return BCQLinear.from_linear(lin, bits, group, rounds=3, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["lut", "tiled"])
@pytest.mark.parametrize("offset", [False, True])
@pytest.mark.parametrize("rows", [1, 8])
def test_inference_matches_dequantise_then_matmul(method: str, offset: bool, rows: int) -> None:
    layer = make_layer(offset=offset)
    layer.tile_rows = 16  # force several tiles
    x = torch.randn(rows, 64)
    ref = x @ layer.dequantize().T + layer.bias
    out = layer.forward_infer(x, method=method)
    assert rel(out, ref) < 1e-4


def test_auto_path_row_group_and_3d_input() -> None:
    layer = make_layer(out_f=24, in_f=20, bits=2, group=None)  # 20 is not a multiple of 8: tiled path
    x = torch.randn(2, 5, 20)
    with torch.no_grad():
        out = layer(x)
    assert out.shape == (2, 5, 24)
    assert rel(out, x @ layer.dequantize().T + layer.bias) < 1e-4
    with pytest.raises(InvalidInput, match="divisible by 8"):
        layer.forward_infer(x, method="lut")


def test_codes_are_packed_uint8_and_match_the_quantiser() -> None:
    torch.manual_seed(3)
    w = torch.randn(8, 32)
    res = bcq_quantize(w, bits=2, group_size=16, rounds=2)
    layer = BCQLinear.from_result(res)
    assert layer.codes.dtype == torch.uint8 and layer.codes.shape == (8, 2, 4)
    torch.testing.assert_close(layer.dequantize(), res.dequantize())
    assert rel(layer.dequantize(), w) == pytest.approx(res.rel_error**0.5, rel=1e-4)


def test_tiled_inference_never_builds_the_whole_weight(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANEUL_QUANT_KERNEL", "0")  # the pure-torch paths
    layer = make_layer(out_f=50)
    layer.tile_rows = 16
    seen: list[int] = []
    original = BCQLinear.dequantize

    def spy(self: BCQLinear, rows: slice | None = None, alpha: torch.Tensor | None = None) -> torch.Tensor:
        w = original(self, rows, alpha)
        seen.append(w.shape[0])
        return w

    monkeypatch.setattr(BCQLinear, "dequantize", spy)
    with torch.no_grad():
        layer(torch.randn(8, 64))
        layer(torch.randn(1, 64))  # the lookup-table path builds no weight rows at all
    assert seen == [16, 16, 16, 2]


def test_bf16_inference() -> None:
    layer = make_layer().to(torch.bfloat16)
    x = torch.randn(1, 64)
    ref = x @ make_layer().dequantize().T + make_layer().bias
    with torch.no_grad():
        for method in ("lut", "tiled"):
            out = layer.forward_infer(x.bfloat16(), method=method)
            assert out.dtype == torch.bfloat16
            assert rel(out, ref) < 2e-2


def test_training_forward_gradients_reach_only_chosen_scales() -> None:
    layer = make_layer(bits=3)
    codes = layer.codes.clone()
    layer.set_train_alpha(1)
    x = torch.randn(4, 64)
    out = layer(x)
    with torch.no_grad():
        torch.testing.assert_close(out, layer.forward_infer(x), rtol=1e-5, atol=1e-5)
    out.pow(2).sum().backward()
    grad = layer.alpha.grad
    assert grad is not None and grad[..., 0].abs().sum() > 0
    assert torch.equal(grad[..., 1:], torch.zeros_like(grad[..., 1:]))
    assert layer.bias is not None and layer.bias.grad is None
    assert torch.equal(layer.codes, codes)
    assert layer.trainable_alpha_count() == 40 * 4 * 1
    layer.set_train_alpha("all")
    assert layer.trainable_alpha_count() == 40 * 4 * 3
    with pytest.raises(InvalidInput):
        layer.set_train_alpha(4)


def test_conv1d_transposed_weight() -> None:
    from transformers.pytorch_utils import Conv1D

    torch.manual_seed(0)
    conv = Conv1D(nf=24, nx=16)  # weight (in=16, out=24)
    nn.init.normal_(conv.weight)
    layer = BCQLinear.from_linear(conv, bits=8, group_size=None, rounds=5, transposed=True)
    x = torch.randn(3, 16)
    with torch.no_grad():
        assert rel(layer(x), conv(x)) < 0.02


def test_extra_repr_and_bytes() -> None:
    layer = make_layer(out_f=40, in_f=64, bits=3, group=16)
    text = repr(layer)
    assert "bits=3" in text and "group_size=16" in text and "n_groups=4" in text
    assert "group_size=row" in repr(make_layer(group=None))
    # codes: 40 rows · 3 planes · 8 bytes; scales: 40 · 4 groups · 3 at 2 bytes
    assert layer.weight_bytes() == 40 * 3 * 8 + 40 * 4 * 3 * 2


@pytest.mark.slow
def test_cpp_kernel_matches_dequantise_then_matmul() -> None:
    import shutil

    from haneul.quant import kernels

    if shutil.which("c++") is None and shutil.which("g++") is None:
        pytest.skip("no C++ compiler")
    kernels.build()
    layer = make_layer(out_f=40, in_f=64, group=16, offset=True)
    for rows in (1, 3, 16):
        x = torch.randn(rows, 64)
        ref = x @ layer.dequantize().T + layer.bias
        assert rel(layer.forward_infer(x, method="kernel"), ref) < 1e-4
    with torch.no_grad():
        assert rel(layer(x), ref) < 1e-4  # the automatic choice now uses the kernel
    bf = layer.to(torch.bfloat16).forward_infer(x.bfloat16(), method="kernel")
    assert bf.dtype == torch.bfloat16 and rel(bf, ref) < 2e-2
