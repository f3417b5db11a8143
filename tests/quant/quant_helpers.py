"""Tiny models, a byte-level tokenizer and sample rows shared by the quant tests."""

from __future__ import annotations

from typing import Any

import torch


def byte_tokenizer() -> Any:
    """A 258-token byte-level tokenizer built in memory (no files, no downloads); handles Korean."""
    from tokenizers import Tokenizer, decoders, models
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(ByteLevel.alphabet())
    vocab = {"<pad>": 0, "<eos>": 1, **{ch: i + 2 for i, ch in enumerate(alphabet)}}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")


def tiny_llama(vocab: int = 258, hidden: int = 64, layers: int = 2, seed: int = 0) -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=1,
    )
    return LlamaForCausalLM(cfg).eval()


def tiny_gpt2(vocab: int = 100, seed: int = 0) -> Any:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(
        n_layer=2, n_embd=32, n_head=2, vocab_size=vocab, n_positions=64, bos_token_id=0, eos_token_id=0
    )
    return GPT2LMHeadModel(cfg).eval()


NSMC_ROWS = [
    ("정말 재미있고 감동적인 영화", 1),
    ("최고의 영화 강력 추천합니다", 1),
    ("배우들 연기가 훌륭했어요", 1),
    ("good fun, loved it", 1),
    ("시간 낭비 최악의 영화", 0),
    ("지루하고 재미없다", 0),
    ("돈이 아까운 영화", 0),
    ("boring and bad", 0),
]
