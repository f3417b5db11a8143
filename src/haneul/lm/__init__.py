"""HyperCLOVA-style Korean language-model stack: tokenizers, GPT model, data, pre-training, generation, serving.

Importing ``haneul.lm`` is cheap (no torch): the public names below are loaded on first use, so the
platform server can load the serving plugin (:func:`haneul.lm.serve.plugin`) without pulling in the
model code.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "GPTConfig": "haneul.lm.config",
    "PRESETS": "haneul.lm.config",
    "GPT": "haneul.lm.model",
    "KVCache": "haneul.lm.model",
    "prepare_data": "haneul.lm.data",
    "TokenData": "haneul.lm.data",
    "bits_per_char": "haneul.lm.data",
    "TrainConfig": "haneul.lm.pretrain",
    "pretrain": "haneul.lm.pretrain",
    "Generator": "haneul.lm.generate",
    "SamplingParams": "haneul.lm.generate",
    "Completion": "haneul.lm.generate",
    "create_router": "haneul.lm.serve",
    "create_app": "haneul.lm.serve",
    "list_models": "haneul.lm.registry",
    "register_model": "haneul.lm.registry",
    "resolve": "haneul.lm.registry",
    "train_tokenizer": "haneul.lm.tokenizer",
    "load_tokenizer": "haneul.lm.tokenizer",
    "HaneulTokenizer": "haneul.lm.tokenizer",
    "run_recipe": "haneul.lm.recipe",
    "PTuneConfig": "haneul.lm.ptuning",
    "ptune": "haneul.lm.ptuning",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'haneul.lm' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
