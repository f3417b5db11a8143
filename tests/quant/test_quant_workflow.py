"""The AlphaTuning workflow called from Python, without the CLI: quantise, tune a task, evaluate."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from quant_helpers import byte_tokenizer

from haneul.errors import InvalidInput
from haneul.quant import (
    AlphaTuneTaskConfig,
    EvalTaskConfig,
    QuantizeConfig,
    alphatune_task,
    evaluate_task,
    quantize_base,
)
from haneul.quant.workflow import TaskData, load_task_data

# the keys of `haneul quant quantize --json`, which scripts and docs/benchmarks.md rely on
QUANTIZE_JSON_KEYS = (
    "out checksum bits group_size layers skipped mean_rel_error seconds quantised_layer_bytes "
    "quantised_layer_fp32_bytes quantised_layer_ratio_vs_fp32 other_weight_bytes_fp16 total_bytes"
).split()


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "held-out.txt"
    path.write_text(
        "\n".join(["the cat sat on the mat.", "하늘은 파랗다.", "a b c d e f g"] * 6), encoding="utf-8"
    )
    return path


def test_quantize_base_reports_what_the_cli_prints(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "base"
    result = quantize_base(
        QuantizeConfig(model=str(tiny_model_dir), out=out, bits=3, group_size=32, rounds=1)
    )
    assert result.layers == 14 and (out / "quant.json").is_file() and len(result.checksum) == 64
    assert result.skipped == [("lm_head", "LM head kept in full precision")]  # tied to the embedding
    # 3 bits of code + 3 fp16 scales per 32 weights = 4.5 bits per weight against fp32's 32
    assert result.sizes.quantised_layer_ratio_vs_fp32 == pytest.approx(32 / 4.5, rel=1e-6)
    record = result.to_dict()
    assert list(record) == QUANTIZE_JSON_KEYS
    assert record["total_bytes"] == record["quantised_layer_bytes"] + record["other_weight_bytes_fp16"]
    with pytest.raises(InvalidInput, match="already a quantised base"):
        quantize_base(QuantizeConfig(model=str(out), out=tmp_path / "again"))


def test_alphatune_task_then_evaluate_the_task_file(
    tiny_model_dir: Path, tmp_path: Path, text_file: Path
) -> None:
    out = tmp_path / "run"
    config = AlphaTuneTaskConfig(
        data=text_file, eval_data=text_file, model=str(tiny_model_dir), task="text", out=out, name="sky",
        bits=2, group_size=32, rounds=1, steps=3, lr=0.01, batch_size=2, eval_rows=100, block=32,
    )  # fmt: skip
    result = alphatune_task(config)
    assert result.base == out / "base" and result.task_file == out / "tasks" / "sky.safetensors"
    assert result.task_file_bytes == result.task_file.stat().st_size > 0
    assert result.steps == 3 == len(result.losses) and result.trainable_params > 0
    assert result.after["perplexity"] != result.before["perplexity"]  # the scales moved
    assert set(result.to_dict()) == {
        "base", "task_file", "task_file_bytes", "trainable_params", "steps", "final_loss", "train_seconds",
        "before", "after",
    }  # fmt: skip

    scored = evaluate_task(
        EvalTaskConfig(
            data=text_file, model=str(result.base), task="text", task_file=result.task_file, block=32
        )
    )
    assert scored.metrics["perplexity"] == pytest.approx(result.after["perplexity"], rel=1e-5)
    assert scored.to_dict()["task_file"] == str(result.task_file)

    # the base in OUT/base is reused only with the settings it was made with
    with pytest.raises(InvalidInput, match="holds a base quantised with"):
        alphatune_task(replace(config, bits=3))


def test_task_data_checks_and_splits(tmp_path: Path, text_file: Path, nsmc_file: Path) -> None:
    tok = byte_tokenizer()
    rows = load_task_data("nsmc", nsmc_file, tok)
    head, tail = rows.split(6)
    assert isinstance(rows, TaskData) and (len(head), len(tail)) == (6, len(rows) - 6)
    assert head.spec is rows.spec and len(head.training_examples(tok)) == 6
    blocks = load_task_data("text", text_file, tok, block=16)
    assert blocks.spec is None and blocks.training_examples(tok) == blocks.items
    with pytest.raises(InvalidInput, match="not one of nsmc, text, d2t"):
        load_task_data("qa", text_file, tok)
    with pytest.raises(InvalidInput, match="no tokenizer"):
        load_task_data("text", text_file, None)
    with pytest.raises(InvalidInput, match="exceeds --bits 2"):
        alphatune_task(AlphaTuneTaskConfig(data=text_file, bits=2, train_alpha=3, out=tmp_path / "x"))
