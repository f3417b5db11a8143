"""Tiny inputs for tests, examples and smoke runs, built in memory with no download: a synthetic Korean
corpus and a randomly initialised Hugging Face Llama.

Corpus sentences are built from a small grammar of movie-review phrases (subject + particle, object,
predicate, emoticons), seeded, so a few hundred of them train a tokenizer and a ko-nano model in seconds
and the model's output is recognisably shaped like the input. :func:`tiny_llama` is the one small
``LlamaForCausalLM`` the quant, evals, SFT and dialog tests share; ``haneul.quant.testing`` and
``haneul.evals.testing`` size it to their own tokenizers.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

__all__ = ["tiny_corpus", "tiny_llama", "write_tiny_corpus"]

_SUBJECTS = ["이 영화는", "배우들의 연기가", "스토리가", "감독의 연출이", "음악이", "주인공이", "결말이", "영상미가"]
_ADVERBS = ["정말", "너무", "진짜", "생각보다", "완전", "의외로", "조금", "엄청"]
_PREDICATES_POS = ["재미있었어요", "좋았다", "감동적이었습니다", "훌륭하다", "최고였음", "마음에 들었어요"]
_PREDICATES_NEG = ["지루했어요", "별로였다", "실망스러웠습니다", "아쉽다", "최악이었음", "이해가 안 됐어요"]
_TAILS = ["", " ㅋㅋ", " ㅠㅠ", "!", "...", " 강추합니다.", " 시간 아까움.", " 10점 만점에 8점."]


def tiny_corpus(n: int = 400, seed: int = 0) -> list[str]:
    """``n`` synthetic Korean review sentences (half positive, half negative)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        preds = _PREDICATES_POS if i % 2 == 0 else _PREDICATES_NEG
        parts = [rng.choice(_SUBJECTS), rng.choice(_ADVERBS), rng.choice(preds)]
        if rng.random() < 0.5:
            parts += [rng.choice(["그리고", "하지만", "그래도"]), rng.choice(_SUBJECTS), rng.choice(preds)]
        out.append(" ".join(parts) + rng.choice(_TAILS))
    return out


def write_tiny_corpus(path: str | Path, n: int = 400, seed: int = 0) -> Path:
    """Write :func:`tiny_corpus` as a one-review-per-line text file."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("\n".join(tiny_corpus(n, seed)) + "\n", encoding="utf-8")
    return p


def tiny_llama(
    vocab_size: int,
    *,
    hidden: int = 32,
    layers: int = 2,
    max_positions: int = 512,
    tie_embeddings: bool = False,
    bos_token_id: int | None = None,
    eos_token_id: int | None = None,
    pad_token_id: int | None = None,
    seed: int = 0,
) -> Any:
    """A randomly initialised ``LlamaForCausalLM`` in eval mode, the same weights for the same arguments.

    SwiGLU width ``2 * hidden``, 4 attention heads sharing 2 key/value heads (so grouped-query attention
    is exercised), ``hidden=32`` and 2 layers by default: it builds in well under a second on a CPU.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        tie_word_embeddings=tie_embeddings,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
    )
    return LlamaForCausalLM(config).eval()
