from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from quant_helpers import NSMC_ROWS, tiny_llama

from haneul.errors import Conflict, InvalidInput
from haneul.quant.alphatuning import (
    AlphaTuneConfig,
    alphatune,
    load_task_alphas,
    parse_train_alpha,
    prepare_alphatuning,
    save_task_alphas,
    task_file_summary,
)
from haneul.quant.model import bcq_layers, load_quantized, quantize_model, save_quantized
from haneul.quant.tasks import SentimentTask, batches, lm_blocks, perplexity, read_nsmc, read_texts


def quantised(bits: int = 3, group: int | None = 16, seed: int = 0) -> Any:
    model = tiny_llama(seed=seed)
    quantize_model(model, bits=bits, group_size=group, rounds=2)
    return model


def alphas(model: Any) -> dict[str, torch.Tensor]:
    return {n: m.alpha.detach().clone() for n, m in bcq_layers(model).items()}


def test_prepare_freezes_all_but_chosen_scales() -> None:
    model = quantised(bits=3, group=16)
    n = prepare_alphatuning(model, 1)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert len(trainable) == 14 and all(p.dim() == 3 for p in trainable)
    # rows of the 14 layers per block pair, times groups (in/16), times 1 scale
    rows_groups = 2 * (64 * 4 + 32 * 4 + 32 * 4 + 64 * 4 + 128 * 4 + 128 * 4 + 64 * 8)
    assert n == rows_groups
    total = sum(p.numel() for p in tiny_llama().parameters())
    assert total / n > 15  # even a toy model trains a small fraction
    assert prepare_alphatuning(model, "all") == 3 * rows_groups
    with pytest.raises(InvalidInput, match="exceeds the 3 bits"):
        prepare_alphatuning(model, 4)


def test_layer_patterns_choose_whose_scales_train(tokenizer: Any) -> None:
    model = quantised(bits=3, group=16)
    everything = prepare_alphatuning(model, 1)
    mlp = prepare_alphatuning(model, 1, ["*.mlp.*"])
    names = [n for n, m in bcq_layers(model).items() if m.alpha.requires_grad]
    assert names and all(".mlp." in n for n in names) and len(names) == 3 * 2  # gate/up/down x 2 blocks
    assert 0 < mlp < everything
    assert prepare_alphatuning(model, 1, ["*.mlp.*", "*o_proj"]) > mlp
    before = alphas(model)
    config = AlphaTuneConfig(train_alpha=1, layers=("*down_proj",), steps=3, lr=0.05, warmup_steps=1)
    result = alphatune(model, batches(lm_blocks(tokenizer, ["나는 학교에 간다. " * 8] * 4, 16), 2, 3), config)
    assert result["trainable_params"] < mlp
    for name, value in alphas(model).items():  # only the chosen layers' scales move
        assert torch.equal(value, before[name]) != name.endswith("down_proj")
    with pytest.raises(InvalidInput, match="matches no quantised layer"):
        prepare_alphatuning(model, 1, ["*.nothing"])


def test_distillation_pulls_a_quantised_student_towards_its_teacher(tokenizer: Any) -> None:
    import copy

    from haneul.quant.alphatuning import distillation_loss, train_parameters

    teacher = tiny_llama(seed=0).eval()
    blocks = lm_blocks(tokenizer, ["나는 학교에 간다. 오늘은 비가 온다. " * 6] * 4, 24)
    batch = next(batches(blocks, 2, 1))
    loss = distillation_loss(teacher)
    assert float(loss(copy.deepcopy(teacher), batch)) == pytest.approx(0.0, abs=1e-6)  # identical: KL 0
    student = copy.deepcopy(teacher)
    quantize_model(student, bits=2, group_size=16, rounds=1)
    prepare_alphatuning(student, "all")
    params = [m.alpha for m in bcq_layers(student).values()]
    start = float(loss(student, batch))
    losses, _ = train_parameters(student, params, batches(blocks, 2, 30), steps=30, lr=0.002, warmup_steps=2,
                                 grad_clip=1.0, loss_fn=loss)  # fmt: skip
    assert start > 0 and float(loss(student.eval(), batch)) < 0.6 * start


def test_parse_train_alpha() -> None:
    assert parse_train_alpha("all") == "all" and parse_train_alpha("1") == 1
    for bad in ("0", "x"):
        with pytest.raises(InvalidInput):
            parse_train_alpha(bad)


def test_training_lowers_loss_and_touches_only_first_scales(tokenizer: Any) -> None:
    model = quantised()
    before = alphas(model)
    codes = {n: m.codes.clone() for n, m in bcq_layers(model).items()}
    examples = lm_blocks(tokenizer, ["abcabcabc abc abcabc " * 4] * 4, block=32)
    result = alphatune(
        model,
        batches(examples, 4, 40, pad_id=0),
        AlphaTuneConfig(train_alpha=1, steps=40, lr=0.05, warmup_steps=2),
    )
    assert result["steps"] == 40
    assert result["losses"][-1] < result["losses"][0] - 0.5
    after = alphas(model)
    for name in before:
        assert torch.equal(after[name][..., 1:], before[name][..., 1:])
        assert torch.equal(bcq_layers(model)[name].codes, codes[name])
    assert any(not torch.equal(after[n][..., 0], before[n][..., 0]) for n in before)
    # the run reported its metrics through the SDK (outside a session: a local CSV)
    from haneul.platform import sdk

    sdk.flush()


def test_base_plus_task_file_reproduces_tuned_model(tmp_path: Path, tokenizer: Any) -> None:
    model = quantised(bits=2, group=32)
    save_quantized(model, tmp_path / "base", tokenizer=tokenizer)
    examples = SentimentTask(labels=(" bad", " good")).train_examples(tokenizer, NSMC_ROWS)
    alphatune(model, batches(examples, 4, 6), AlphaTuneConfig(train_alpha="all", steps=6, lr=0.01))
    task = tmp_path / "tasks" / "sentiment.safetensors"
    save_task_alphas(model, task, "all", task="nsmc", metrics={"accuracy": 0.5})
    summary = task_file_summary(task)
    assert summary["metrics"] == {"accuracy": 0.5} and summary["train_alpha"] == "all"

    fresh, _ = load_quantized(tmp_path / "base")
    ids = torch.randint(0, 258, (2, 11))
    with torch.no_grad():
        base_out = fresh(ids).logits
        load_task_alphas(fresh, task)
        assert torch.equal(fresh(ids).logits, model(ids).logits)
    assert not torch.equal(base_out, model(ids).logits.detach())


def test_task_file_for_another_base_is_refused(tmp_path: Path) -> None:
    a = quantised(seed=0)
    b = quantised(seed=1)
    save_task_alphas(a, tmp_path / "a.safetensors", 1)
    with pytest.raises(Conflict, match="was trained on base .* but this model is base"):
        load_task_alphas(b, tmp_path / "a.safetensors")


def test_task_file_keeps_only_trained_slices(tmp_path: Path) -> None:
    model = quantised(bits=3, group=None)
    path = tmp_path / "t.safetensors"
    save_task_alphas(model, path, 1)
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    assert tensors["model.layers.0.mlp.up_proj.alpha"].shape == (128, 1, 1)


def test_read_nsmc_and_balanced_limit(nsmc_file: Path) -> None:
    rows = read_nsmc(nsmc_file)
    assert rows[0] == ("정말 재미있고 감동적인 영화", 1) and len(rows) == 8
    sample = read_nsmc(nsmc_file, limit=4, seed=3)
    assert sorted(label for _, label in sample) == [0, 0, 1, 1]
    bad = nsmc_file.with_name("bad.txt")
    bad.write_text("a\tb\n1\t2\n")
    with pytest.raises(InvalidInput, match="not NSMC-format"):
        read_nsmc(bad)


def test_read_texts_txt_and_jsonl_gz(tmp_path: Path) -> None:
    txt = tmp_path / "a.txt"
    txt.write_text("첫 줄\n\n둘째 줄\n", encoding="utf-8")
    assert read_texts(txt) == ["첫 줄", "둘째 줄"]
    js = tmp_path / "r.jsonl.gz"
    with gzip.open(js, "wt", encoding="utf-8") as fh:
        for t in ("좋아요", "별로"):
            fh.write(json.dumps({"id": 1, "text": t}, ensure_ascii=False) + "\n")
    assert read_texts(js, limit=1) == ["좋아요"]


def test_sentiment_examples_and_accuracy(tokenizer: Any) -> None:
    task = SentimentTask(labels=(" bad", " good"), max_length=24)
    examples = task.train_examples(tokenizer, [("x" * 100, 1)])
    ids, labels = examples[0]
    good = tokenizer.encode(" good", add_special_tokens=False)
    assert ids[-len(good) :] == good and labels[-len(good) :] == good
    assert all(v == -100 for v in labels[: -len(good)])
    assert len(ids) == 24 + len(good)  # the review is cut, the template tail kept
    assert tokenizer.decode(ids[: -len(good)]).endswith("\nSentiment:")

    class Oracle(torch.nn.Module):
        """Puts all probability on the first byte of ' good' after reviews containing 'good'."""

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Any:
            logits = torch.zeros(*input_ids.shape, 258)
            g_id = tokenizer.encode("g", add_special_tokens=False)[0]
            b_id = tokenizer.encode("b", add_special_tokens=False)[0]
            for i in range(input_ids.shape[0]):
                text = tokenizer.decode(input_ids[i])
                logits[i, :, g_id if "good" in text.split("Sentiment")[0] else b_id] = 5.0
            return type("Out", (), {"logits": logits})()

    rows = [("good movie", 1), ("bad movie", 0), ("good but", 0), ("so so", 0)]
    assert task.accuracy(Oracle(), tokenizer, rows, batch_size=3) == pytest.approx(3 / 4)


def test_perplexity_of_uniform_model_is_vocab_size(tokenizer: Any) -> None:
    class Uniform(torch.nn.Module):
        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Any:
            return type("Out", (), {"logits": torch.zeros(*input_ids.shape, 258)})()

    examples = lm_blocks(tokenizer, ["hello world", "안녕하세요"], block=8)
    assert perplexity(Uniform(), examples) == pytest.approx(258.0)


def test_shared_nsmc_reader(shared_data: Path | None) -> None:
    if shared_data is None:
        pytest.skip("shared data folder not available")
    rows = read_nsmc(shared_data / "nsmc" / "ratings_test.txt.gz", limit=40)
    assert len(rows) == 40 and sum(label for _, label in rows) == 20
