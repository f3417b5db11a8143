"""Data-free calibration: a model's own samples as the training text for AlphaTuning's scales."""

from __future__ import annotations

import copy

import pytest
import torch

from haneul.errors import InvalidInput
from haneul.quant.alphatuning import prepare_alphatuning, train_parameters
from haneul.quant.model import (
    bcq_layers,
    quantize_model,
)
from haneul.quant.tasks import batches, perplexity, sample_blocks
from haneul.quant.testing import byte_tokenizer, tiny_llama


def test_samples_are_seeded_blocks_from_the_start_token() -> None:
    torch.set_num_threads(1)
    model, tok = tiny_llama(), byte_tokenizer()
    blocks = sample_blocks(model, tok, count=5, length=12, batch_size=2, seed=3)
    assert len(blocks) == 5 and all(len(ids) == 12 and ids == labels for ids, labels in blocks)
    assert all(ids[0] == tok.eos_token_id for ids, _ in blocks)  # no BOS in this tokenizer: EOS starts
    assert blocks == sample_blocks(model, tok, count=5, length=12, batch_size=2, seed=3)
    assert blocks != sample_blocks(model, tok, count=5, length=12, batch_size=2, seed=4)
    with pytest.raises(InvalidInput, match="count >= 1"):
        sample_blocks(model, tok, count=0)


def _trained_teacher() -> tuple[object, object]:
    """A tiny byte-level Llama fitted for a few seconds to synthetic Korean reviews: a teacher with
    structure for its samples to carry."""
    from haneul.lm.testing import tiny_corpus
    from haneul.quant.tasks import lm_blocks

    teacher, tok = tiny_llama(hidden=64, layers=2, seed=1), byte_tokenizer()
    data = lm_blocks(tok, tiny_corpus(200, seed=5), block=64)
    params = list(teacher.parameters())
    train_parameters(teacher, params, batches(data, 8, 150, seed=0), steps=150, lr=1e-2, warmup_steps=10,
                     grad_clip=1.0)
    return teacher, tok


def test_scales_tuned_on_the_full_precision_models_samples_recover_its_text() -> None:
    torch.set_num_threads(1)
    teacher, tok = _trained_teacher()
    train = sample_blocks(teacher, tok, count=48, length=64, seed=0)
    held_out = sample_blocks(teacher, tok, count=16, length=64, seed=1)
    student = copy.deepcopy(teacher)
    quantize_model(student, bits=2, group_size=None, rounds=5)
    before = perplexity(student, held_out)
    assert perplexity(teacher, held_out) < before  # 2-bit rows cost the student some fit
    prepare_alphatuning(student, "all")
    params = [layer.alpha for layer in bcq_layers(student).values()]
    losses, _ = train_parameters(student, params, batches(train, 8, 60, seed=0), steps=60, lr=3e-3,
                                 warmup_steps=5, grad_clip=1.0)
    after = perplexity(student, held_out)
    assert losses[-1] < losses[0]
    assert after < before  # closer to the teacher on samples it never trained on
