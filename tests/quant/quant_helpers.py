"""Tiny models, a byte-level tokenizer and sample rows shared by the quant tests.

The byte tokenizer and tiny Llama live in :mod:`haneul.quant.testing` (the quick benchmark uses them too).
"""

from __future__ import annotations

from typing import Any

import torch

from haneul.quant.testing import byte_tokenizer, tiny_llama

__all__ = ["NSMC_ROWS", "byte_tokenizer", "tiny_gpt2", "tiny_llama"]


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
