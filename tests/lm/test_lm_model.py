from __future__ import annotations

from pathlib import Path

import pytest
import torch

from haneul.errors import InvalidInput
from haneul.lm.config import PRESETS, GPTConfig
from haneul.lm.model import GPT, KVCache

TINY = GPTConfig(vocab_size=97, n_layer=2, n_head=4, n_kv_head=2, d_model=32, d_ff=48, max_seq_len=64, rope_theta=500.0)


def test_preset_sizes() -> None:
    expected = {"ko-nano": 1e6, "ko-tiny": 10e6, "ko-small": 50e6, "ko-base": 350e6}
    for name, target in expected.items():
        n = PRESETS[name].num_params()
        assert 0.8 * target < n < 1.25 * target, (name, n)
    assert GPT(PRESETS["ko-nano"]).num_params() == PRESETS["ko-nano"].num_params()
    with pytest.raises(InvalidInput, match="ko-nano, ko-tiny"):
        GPTConfig.from_name("ko-huge")


@pytest.mark.parametrize("tie", [True, False])
def test_same_logits_as_transformers_llama(tmp_path: Path, tie: bool) -> None:
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    cfg = GPTConfig(**{**TINY.to_dict(), "tie_embeddings": tie})
    model = GPT(cfg).eval()
    model.save_pretrained(tmp_path)
    ref = LlamaForCausalLM.from_pretrained(tmp_path, attn_implementation="eager").eval()
    idx = torch.randint(0, cfg.vocab_size, (2, 17))
    ours, loss = model(idx, targets=idx)
    with torch.no_grad():
        theirs = ref(idx, labels=idx)
    torch.testing.assert_close(ours, theirs.logits, rtol=1e-4, atol=1e-4)
    # HF shifts labels internally; ours takes already-shifted targets
    ours_shifted = torch.nn.functional.cross_entropy(ours[:, :-1].reshape(-1, cfg.vocab_size), idx[:, 1:].reshape(-1))
    torch.testing.assert_close(ours_shifted, theirs.loss, rtol=1e-4, atol=1e-4)
    assert loss is not None and loss.item() > 0
    back = GPT.from_pretrained(tmp_path)
    torch.testing.assert_close(back(idx)[0], ours)


def test_loads_a_transformers_folder(tmp_path: Path) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(1)
    hf_cfg = LlamaConfig(**{k: v for k, v in TINY.to_hf().items() if k not in ("architectures", "torch_dtype")})
    ref = LlamaForCausalLM(hf_cfg).eval()
    ref.save_pretrained(tmp_path)
    ours = GPT.from_pretrained(tmp_path)
    idx = torch.randint(0, TINY.vocab_size, (1, 9))
    with torch.no_grad():
        torch.testing.assert_close(ours(idx)[0], ref(idx).logits, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("fused", [False, True])
def test_kv_cache_with_left_padding_matches_full_forward(fused: bool) -> None:
    torch.manual_seed(0)
    model = GPT(TINY).eval()
    if fused:
        assert model.fuse_projections() and model.projections_fused()
    a = torch.randint(0, 97, (7,))
    b = torch.randint(0, 97, (4,))
    full_a, _ = model(a[None])
    full_b, _ = model(b[None])
    # batch the two prompts left-padded, then decode one more token step by step
    pad = 7 - 4
    idx = torch.stack([a, torch.cat([torch.zeros(pad, dtype=torch.long), b])])
    key_mask = torch.tensor([[1] * 7, [0] * pad + [1] * 4])
    positions = (key_mask.cumsum(-1) - 1).clamp(min=0)
    cache = KVCache.empty(TINY, 2, 16, torch.device("cpu"), torch.float32)
    logits = model.forward_cached(idx, cache, positions, key_mask, fused=fused)
    torch.testing.assert_close(logits[0], full_a[0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(logits[1, pad:], full_b[0], rtol=1e-4, atol=1e-4)
    nxt = torch.tensor([[5], [6]])
    key_mask = torch.cat([key_mask, torch.ones(2, 1, dtype=torch.long)], dim=1)
    step = model.forward_cached(nxt, cache, positions[:, -1:] + 1, key_mask, fused=fused)
    ref_a, _ = model(torch.cat([a, torch.tensor([5])])[None])
    ref_b, _ = model(torch.cat([b, torch.tensor([6])])[None])
    torch.testing.assert_close(step[0, 0], ref_a[0, -1], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(step[1, 0], ref_b[0, -1], rtol=1e-4, atol=1e-4)


def test_fused_projections_share_the_weights(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = GPT(TINY)
    idx = torch.randint(0, 97, (1, 6))
    assert model.fuse_projections()
    attn = model.model.layers[0].self_attn
    # an optimiser step writes the Linear weights in place: the fused matrix sees it
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    model(idx, targets=idx)[1].backward()  # type: ignore[union-attr]
    opt.step()
    assert model.projections_fused()
    torch.testing.assert_close(attn._qkv[: attn.q_proj.weight.shape[0]], attn.q_proj.weight.detach())
    # safetensors refuses tensors that share a buffer; saving still works and round-trips
    model.save_pretrained(tmp_path)
    back = GPT.from_pretrained(tmp_path)
    torch.testing.assert_close(back(idx)[0], model.eval()(idx)[0])
    # a dtype change replaces the weights: the fused path is off until fused again
    model.to(torch.float64)
    assert not model.projections_fused()
    assert model.fuse_projections() and attn._qkv.dtype == torch.float64


def test_fusion_leaves_wrapped_layers_alone() -> None:
    model = GPT(TINY)
    layer = model.model.layers[1].mlp
    layer.up_proj = torch.nn.Sequential(layer.up_proj)  # stands in for a LoRA or quantised wrapper
    assert not model.fuse_projections()
    assert not model.projections_fused()


def test_context_window_enforced() -> None:
    with pytest.raises(InvalidInput, match="context window 64"):
        GPT(TINY)(torch.zeros(1, 65, dtype=torch.long))
