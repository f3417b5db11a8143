from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from quant_helpers import tiny_gpt2, tiny_llama
from torch import nn

from haneul.errors import IntegrityError, InvalidInput
from haneul.quant.layers import BCQLinear
from haneul.quant.model import (
    base_checksum,
    bcq_layers,
    load_quantized,
    model_weight_bytes,
    quantize_model,
    save_quantized,
)


def logits(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(ids).logits


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def test_llama_all_linears_replaced_head_kept() -> None:
    model = tiny_llama()
    ids = torch.randint(0, 258, (2, 12))
    ref = logits(model, ids)
    report = quantize_model(model, bits=8, group_size=32, rounds=3)
    names = {s.name for s in report.layers}
    assert len(names) == 2 * 7  # q, k, v, o, gate, up, down per block
    assert "model.layers.0.mlp.down_proj" in names
    assert report.skipped == [("lm_head", "LM head kept in full precision")]
    assert isinstance(model.model.layers[1].self_attn.k_proj, BCQLinear)
    assert model.lm_head.weight is model.model.embed_tokens.weight  # still tied
    assert rel(logits(model, ids), ref) < 0.05  # 8 bits: close (a random tiny model amplifies noise)
    assert all(0 <= s.rel_error < 1e-3 for s in report.layers)


def test_fewer_bits_more_error() -> None:
    errors = []
    for bits in (2, 3, 4):
        model = tiny_llama()
        errors.append(quantize_model(model, bits=bits, group_size=32, rounds=3).mean_rel_error)
    assert errors[0] > errors[1] > errors[2]


def test_skip_patterns_and_head() -> None:
    model = tiny_llama()
    report = quantize_model(
        model, bits=3, skip=["*.mlp.down_proj", "model.layers.0.self_attn.q_proj"], quantize_head=True
    )
    skipped = dict(report.skipped)
    assert skipped["model.layers.1.mlp.down_proj"] == "skipped by request"
    assert "model.layers.0.self_attn.q_proj" in skipped
    assert isinstance(model.model.layers[0].mlp.down_proj, nn.Linear)
    assert isinstance(model.lm_head, BCQLinear)
    assert len(report.layers) == 14 - 3 + 1


def test_gpt2_conv1d_layers() -> None:
    model = tiny_gpt2()
    ids = torch.randint(0, 100, (2, 10))
    ref = logits(model, ids)
    report = quantize_model(model, bits=8, group_size=None, rounds=3)
    assert len(report.layers) == 2 * 4  # c_attn, attn.c_proj, c_fc, mlp.c_proj
    c_attn = model.transformer.h[0].attn.c_attn
    assert isinstance(c_attn, BCQLinear) and (c_attn.in_features, c_attn.out_features) == (32, 96)
    assert rel(logits(model, ids), ref) < 0.02


class WithConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(16, 16)
        self.conv = nn.Conv2d(1, 2, 3)
        self.mix = nn.Bilinear(4, 4, 2)


def test_unsupported_layers_are_skipped_with_a_listed_warning() -> None:
    model = WithConv()
    with pytest.warns(
        UserWarning, match=r"skipped 2 unsupported layer\(s\).*conv \(Conv2d\), mix \(Bilinear\)"
    ):
        report = quantize_model(model, bits=2, group_size=8)
    assert isinstance(model.proj, BCQLinear)
    assert ("conv", "unsupported layer type Conv2d") in report.skipped


def test_bad_group_size_leaves_model_untouched() -> None:
    model = tiny_llama()
    with pytest.raises(
        InvalidInput, match="group size 48 does not divide the input dimension 64 of model.layers.0"
    ):
        quantize_model(model, bits=3, group_size=48)
    assert not bcq_layers(model)
    with pytest.raises(InvalidInput, match="outside 1-8"):
        quantize_model(model, bits=9)


def test_save_load_roundtrip_is_exact(tmp_path: Path, tokenizer: object) -> None:
    model = tiny_llama()
    quantize_model(model, bits=3, group_size=16, rounds=2, offset=True)
    ids = torch.randint(0, 258, (2, 9))
    checksum = save_quantized(model, tmp_path / "base", tokenizer=tokenizer)
    assert checksum == base_checksum(model)
    loaded, meta = load_quantized(tmp_path / "base")
    assert meta["settings"]["bits"] == 3 and len(meta["layers"]) == 14
    assert loaded.haneul_base_checksum == checksum
    assert torch.equal(logits(loaded, ids), logits(model, ids))
    assert (tmp_path / "base" / "tokenizer.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_corrupt_base_is_refused(tmp_path: Path) -> None:
    model = tiny_llama()
    quantize_model(model, bits=2, rounds=1)
    save_quantized(model, tmp_path / "base")
    weights = tmp_path / "base" / "bcq.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="sha256"):
        load_quantized(tmp_path / "base")


def test_weight_bytes_count_codes_and_scales() -> None:
    model = tiny_llama(hidden=64, layers=1)
    quantize_model(model, bits=3, group_size=None, rounds=1)
    sizes = model_weight_bytes(model)
    # q,o: 64x64; k,v: 32x64; gate,up: 128x64; down: 64x128 -> codes 3 bits/weight, one fp16 scale per row and bit
    n_weights = 2 * 64 * 64 + 2 * 32 * 64 + 2 * 128 * 64 + 64 * 128
    rows = 64 + 64 + 32 + 32 + 128 + 128 + 64
    assert sizes["quantised"] == n_weights * 3 // 8 + rows * 3 * 2
    meta_free = json.dumps(sizes)
    assert "total" in meta_free and sizes["total"] == sizes["quantised"] + sizes["full_precision"]
