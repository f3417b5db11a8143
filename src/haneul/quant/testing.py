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
    """A random ``LlamaForCausalLM`` in eval mode: SwiGLU ``2 * hidden``, 4 heads (2 key/value), tied embedding.

    The defaults match :func:`byte_tokenizer` (258 tokens, pad 0, eos 1).
    """
    import torch
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
