"""Korean-aware tokenizers: morpheme-bpe (mecab-ko + byte-level BPE), plain byte-level BPE, unigram."""

from __future__ import annotations

from haneul.lm.tokenizer.core import (
    CHAT_TEMPLATE,
    EOS_TOKEN,
    KINDS,
    SPECIAL_TOKENS,
    HaneulTokenizer,
    load_tokenizer,
    min_vocab_size,
    train_tokenizer,
)
from haneul.lm.tokenizer.segment import MorphemeSegmenter, split_words

__all__ = [
    "CHAT_TEMPLATE",
    "EOS_TOKEN",
    "KINDS",
    "SPECIAL_TOKENS",
    "HaneulTokenizer",
    "MorphemeSegmenter",
    "load_tokenizer",
    "min_vocab_size",
    "split_words",
    "train_tokenizer",
]
