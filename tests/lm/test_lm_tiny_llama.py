from __future__ import annotations

import torch

from haneul.lm.testing import tiny_llama


def test_tiny_llama_is_a_small_deterministic_gqa_model() -> None:
    model = tiny_llama(50, hidden=16, layers=1, pad_token_id=3, eos_token_id=2, seed=7)
    cfg = model.config
    assert (cfg.vocab_size, cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers) == (50, 16, 32, 1)
    assert (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.max_position_embeddings) == (4, 2, 512)
    assert (cfg.pad_token_id, cfg.eos_token_id, cfg.bos_token_id) == (3, 2, None)
    assert not model.training
    # 4 query heads of width 4 read 2 shared key/value heads
    assert model.model.layers[0].self_attn.k_proj.weight.shape == (8, 16)
    assert torch.equal(model.model.embed_tokens.weight[3], torch.zeros(16))  # the pad row starts at zero
    assert model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr()

    same = tiny_llama(50, hidden=16, layers=1, pad_token_id=3, eos_token_id=2, seed=7)
    other = tiny_llama(50, hidden=16, layers=1, pad_token_id=3, eos_token_id=2, seed=8)
    ids = torch.tensor([[5, 9, 11]])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, same(ids).logits)
        assert not torch.equal(model(ids).logits, other(ids).logits)


def test_package_presets_size_it_to_their_tokenizers() -> None:
    from haneul.evals.testing import tiny_llama as evals_llama
    from haneul.evals.testing import tiny_tokenizer
    from haneul.quant.testing import byte_tokenizer
    from haneul.quant.testing import tiny_llama as quant_llama

    quant = quant_llama()
    tok = byte_tokenizer()
    assert quant.config.vocab_size == len(tok) == 258 and quant.config.hidden_size == 64
    assert (quant.config.pad_token_id, quant.config.eos_token_id) == (tok.pad_token_id, tok.eos_token_id) == (0, 1)
    assert quant.lm_head.weight.data_ptr() == quant.model.embed_tokens.weight.data_ptr()  # tied

    tok = tiny_tokenizer()
    model = evals_llama(tok, hidden=16)
    assert model.config.vocab_size == len(tok) and model.config.max_position_embeddings == 512
    ids = (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)
    assert (model.config.bos_token_id, model.config.eos_token_id, model.config.pad_token_id) == ids
    shared = tiny_llama(len(tok), hidden=16, bos_token_id=ids[0], eos_token_id=ids[1], pad_token_id=ids[2])
    for (name, a), (_, b) in zip(model.state_dict().items(), shared.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
