"""A tiny Llama and a byte-level tokenizer built in memory, for the quant tests and quick benchmarks.

Nothing here downloads weights or reads files; both build in well under a second on a CPU, and the
tokenizer covers Korean (every UTF-8 byte is a token).
"""

from __future__ import annotations

from typing import Any

__all__ = ["byte_tokenizer", "tiny_llama"]


def byte_tokenizer() -> Any:
    """A 258-token byte-level tokenizer (pad, eos, then the 256 bytes) as a transformers fast tokenizer."""
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
    """:func:`haneul.lm.testing.tiny_llama` sized to :func:`byte_tokenizer` (258 tokens, pad 0, eos 1):
    ``hidden=64``, 256 positions, tied embedding."""
    from haneul.lm.testing import tiny_llama as build

    return build(vocab, hidden=hidden, layers=layers, max_positions=256, tie_embeddings=True,
                 bos_token_id=1, eos_token_id=1, pad_token_id=0, seed=seed)  # fmt: skip
