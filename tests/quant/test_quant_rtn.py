"""Round-to-nearest baseline quantiser: hand-computed grids, byte counts, whole-model application."""

from __future__ import annotations

import pytest
import torch
from quant_helpers import tiny_gpt2, tiny_llama

from haneul.errors import InvalidInput
from haneul.quant import rtn_quantize, rtn_quantize_model


def test_hand_computed_two_bit_groups() -> None:
    w = torch.tensor([[-1.0, 0.0, 0.6, 2.0, 0.2, 0.4, 0.8, 1.5]])
    r = rtn_quantize(w, bits=2, group_size=4)
    # group 1: range [-1, 2] -> scale 3/3 = 1, zero round(1/1) = 1; 0.6 rounds to level 1
    # group 2: range [0, 1.5] (0 is always inside) -> scale 0.5, zero 0
    assert torch.allclose(r.scale, torch.tensor([[1.0, 0.5]]))
    assert r.zero.tolist() == [[1, 0]]
    assert r.codes.tolist() == [[0, 1, 2, 3, 0, 1, 2, 3]]
    assert torch.allclose(r.dequantize(), torch.tensor([[-1.0, 0.0, 1.0, 2.0, 0.0, 0.5, 1.0, 1.5]]))
    # squared errors 0.4² + 0.2² + 0.1² + 0.2² = 0.25 over ‖w‖² = 8.45
    assert r.rel_error == pytest.approx(0.25 / 8.45, rel=1e-6)
    # 8 codes and 2 zero points at 2 bits -> 2 + 1 bytes, 2 fp16 scales -> 4 bytes
    assert r.nbytes() == 7
    assert r.nbytes(scale_bytes=4) == 11


def test_zero_group_and_whole_row() -> None:
    w = torch.tensor([[0.0, 0.0, 0.0, 0.0], [3.0, -3.0, 1.0, 0.0]])
    r = rtn_quantize(w, bits=3, group_size=None)
    assert r.group_size == 4 and r.scale.shape == (2, 1)
    assert torch.equal(r.dequantize()[0], torch.zeros(4))
    # row 2: range [-3, 3], scale 6/7; every weight is within half a step of its level
    assert torch.all((r.dequantize()[1] - w[1]).abs() <= 3 / 7 + 1e-6)


def test_error_never_exceeds_half_a_step() -> None:
    torch.manual_seed(0)
    w = torch.randn(16, 64)
    for bits in (2, 3, 4, 8):
        r = rtn_quantize(w, bits=bits, group_size=16)
        step = r.scale.repeat_interleave(16, dim=1)
        assert torch.all((r.dequantize() - w).abs() <= step / 2 + 1e-6)
        assert int(r.codes.max()) <= 2**bits - 1


def test_bad_bits_and_group_size() -> None:
    with pytest.raises(InvalidInput, match="bits=9"):
        rtn_quantize(torch.ones(2, 8), bits=9)
    with pytest.raises(InvalidInput, match="does not divide the input dimension 8"):
        rtn_quantize(torch.ones(2, 8), bits=3, group_size=3)


def test_model_layers_rounded_in_place_head_kept() -> None:
    model = tiny_llama(hidden=32, layers=1)
    q_before = model.model.layers[0].self_attn.q_proj.weight.detach().clone()
    emb_before = model.model.embed_tokens.weight.detach().clone()
    stats = rtn_quantize_model(model, bits=3, group_size=16)
    assert len(stats) == 7 and "lm_head" not in stats
    expected = rtn_quantize(q_before, bits=3, group_size=16).dequantize()
    assert torch.equal(model.model.layers[0].self_attn.q_proj.weight, expected)
    assert torch.equal(model.model.embed_tokens.weight, emb_before)  # tied head untouched
    # q_proj 32x32 at 3 bits, 2 groups per row: 384 code bytes + 24 zero-point bytes + 64 fp16 scales
    assert stats["model.layers.0.self_attn.q_proj"]["bytes"] == 384 + 24 + 128


def test_model_refuses_bad_group_before_changing_anything() -> None:
    model = tiny_llama(hidden=32, layers=1)  # MLP down_proj has 64 inputs, the rest 32
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(InvalidInput, match="does not divide"):
        rtn_quantize_model(model, bits=3, group_size=24)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_gpt2_conv1d_transposed() -> None:
    model = tiny_gpt2()
    w = model.transformer.h[0].attn.c_attn.weight.detach().clone()  # (in, out)
    rtn_quantize_model(model, bits=4, group_size=16)
    expected = rtn_quantize(w.T, bits=4, group_size=16).dequantize().T
    assert torch.equal(model.transformer.h[0].attn.c_attn.weight, expected)
