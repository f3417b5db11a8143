"""The method comparison benchmark in --quick mode: every row present, counts exactly as worked out by hand.

The quick model is a 2-layer Llama (hidden 64, SwiGLU 128, 4 query / 2 key-value heads of 16, tied
258 x 64 embedding). Per block its projections are q 64x64, k 32x64, v 32x64, o 64x64, gate 128x64,
up 128x64, down 64x128 = 36,864 weights, so the quantised layers hold 73,728; the rest is the
embedding (16,512), four block norms and the final norm (5 x 64 = 320): 16,832.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from haneul.errors import InvalidInput

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_quant_methods.py"

LAYER_WEIGHTS = 73_728
REST = 16_832
# BCQ codes are bit-planes packed per row: out x q x in/8 bytes summed over the 7 projections of a block
CODE_BYTES_Q3 = 2 * 3 * (64 * 8 + 32 * 8 + 32 * 8 + 64 * 8 + 128 * 8 + 128 * 8 + 64 * 16)  # 27,648
GROUPS_G32 = 2 * (64 * 2 + 32 * 2 + 32 * 2 + 64 * 2 + 128 * 2 + 128 * 2 + 64 * 4)  # 2,304 groups


def _bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_quant_methods_under_test", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def quick_text(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("bench") / "quant_methods_quick.json"
    result = _bench().main(["--quick", "--task", "text", "--out", str(out)])
    return result, out


def test_quick_table_has_every_method_with_hand_counted_sizes(
    quick_text: tuple[dict[str, Any], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    result, out = quick_text
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))  # the file is the final result
    assert result["complete"] and result["metric"] == "perplexity"
    rows = {r["method"]: r for r in result["rows"]}
    assert list(rows) == [
        "fp32",
        "full_ft",
        "lora",
        "lora_bcq",
        "lora_rtn",
        "ptq_bcq",
        "alpha_1",
        "alpha_all",
    ]
    assert result["quantised_layer_params"] == LAYER_WEIGHTS

    # trainable parameters
    assert rows["fp32"]["trainable_params"] == 0
    assert rows["ptq_bcq"]["trainable_params"] == 0
    assert rows["full_ft"]["trainable_params"] == LAYER_WEIGHTS + REST  # tied head counted once
    # LoRA r = 8 adds r * (in + out) per projection
    lora = 2 * 8 * ((64 + 64) * 2 + (64 + 32) * 2 + (64 + 128) * 3)
    assert lora == 16_384
    for m in ("lora", "lora_bcq", "lora_rtn"):
        assert rows[m]["trainable_params"] == lora
    assert rows["alpha_1"]["trainable_params"] == GROUPS_G32  # one α per group
    assert rows["alpha_all"]["trainable_params"] == 3 * GROUPS_G32

    # weight bytes
    dense = {"layers": LAYER_WEIGHTS * 4, "rest": REST * 4, "total": (LAYER_WEIGHTS + REST) * 4}
    for m in ("fp32", "full_ft", "lora"):
        assert rows[m]["weight_bytes"] == dense
    bcq_layers = CODE_BYTES_Q3 + 3 * GROUPS_G32 * 2  # codes + three fp16 α per group
    for m in ("lora_bcq", "ptq_bcq", "alpha_1", "alpha_all"):
        assert rows[m]["weight_bytes"] == {
            "layers": bcq_layers,
            "rest": REST * 2,
            "total": bcq_layers + REST * 2,
        }
    # RTN: 3-bit codes (same count as BCQ's bit-planes), 3-bit zero points, fp16 scales
    rtn_layers = LAYER_WEIGHTS * 3 // 8 + GROUPS_G32 * 3 // 8 + GROUPS_G32 * 2
    assert rows["lora_rtn"]["weight_bytes"]["layers"] == rtn_layers == 33_120
    assert rows["ptq_bcq"]["layers_vs_fp32"] == pytest.approx(LAYER_WEIGHTS * 4 / bcq_layers)

    # the metric: full fine-tuning must learn the synthetic text; every value is a finite perplexity
    for r in rows.values():
        assert 1.0 <= r["perplexity"] < float("inf")
    assert rows["full_ft"]["perplexity"] < rows["fp32"]["perplexity"]
    assert rows["lora"]["perplexity"] < rows["fp32"]["perplexity"]
    # training times: zero exactly for the untrained rows, shared by LoRA and its quantised copies
    assert rows["fp32"]["train_seconds"] == rows["ptq_bcq"]["train_seconds"] == 0.0
    assert rows["full_ft"]["train_seconds"] > 0 and rows["alpha_1"]["train_seconds"] > 0
    assert (
        rows["lora_bcq"]["train_seconds"]
        == rows["lora_rtn"]["train_seconds"]
        == rows["lora"]["train_seconds"]
    )
    assert set(result["targets"]["q3"]) == {
        "best_alphatuning",
        "within_target_of_full_ft",
        "better_than_lora_bcq",
    }

    table = _bench().markdown(result)
    for label in ("full fine-tuning (fp32)", "LoRA → RTN PTQ", "AlphaTuning, train α₁", "BCQ PTQ, no tuning"):
        assert label in table
    assert "| 16,384 |" in table and "294,912 + 67,328 = 362,240" in table


def test_bad_method_and_bits_are_one_line_errors(tmp_path: Path) -> None:
    bench = _bench()
    with pytest.raises(InvalidInput, match="--methods lorra unknown"):
        bench.main(["--quick", "--methods", "fp32,lorra", "--out", str(tmp_path / "x.json")])
    with pytest.raises(InvalidInput, match="bits=9"):
        bench.main(["--quick", "--bits", "9", "--out", str(tmp_path / "x.json")])
    with pytest.raises(InvalidInput, match="does not divide"):
        bench.main(
            ["--quick", "--group-size", "48", "--methods", "ptq_bcq", "--out", str(tmp_path / "x.json")]
        )
    with pytest.raises(InvalidInput, match="matches no quantised layer"):
        bench.main(
            ["--quick", "--methods", "alpha_1", "--alpha-layers", "*.nope", "--out", str(tmp_path / "x.json")]
        )


def test_alpha_layers_trains_only_the_chosen_layers_scales(tmp_path: Path) -> None:
    bench = _bench()
    every = bench.main(["--quick", "--methods", "alpha_1", "--steps", "2", "--out", str(tmp_path / "a.json")])
    mlp = bench.main(["--quick", "--methods", "alpha_1", "--steps", "2", "--alpha-layers", "*.mlp.*",
                      "--out", str(tmp_path / "m.json")])  # fmt: skip
    (a,), (m,) = every["rows"], mlp["rows"]
    assert 0 < m["trainable_params"] < a["trainable_params"] and m["alpha_layers"] == ["*.mlp.*"]


@pytest.mark.slow
def test_quick_sentiment_at_two_bit_widths(tmp_path: Path) -> None:
    result = _bench().main(
        ["--quick", "--task", "nsmc", "--bits", "3", "4", "--out", str(tmp_path / "q.json")]
    )
    rows = {(r["method"], r["bits"]): r for r in result["rows"]}
    assert result["metric"] == "accuracy"
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in rows.values())
    for bits in (3, 4):
        for m in ("lora_bcq", "lora_rtn", "ptq_bcq", "alpha_1", "alpha_all"):
            assert (m, bits) in rows
    assert rows[("alpha_all", 4)]["trainable_params"] == 4 * GROUPS_G32
    code_bytes_q4 = CODE_BYTES_Q3 // 3 * 4
    assert rows[("ptq_bcq", 4)]["weight_bytes"]["layers"] == code_bytes_q4 + 4 * GROUPS_G32 * 2
    assert (
        rows[("lora_rtn", 4)]["weight_bytes"]["layers"]
        == LAYER_WEIGHTS // 2 + GROUPS_G32 // 2 + GROUPS_G32 * 2
    )


def test_haneul_model_folder_with_its_morpheme_tokenizer(tmp_path: Path, nsmc_file: Path) -> None:
    """A haneul model folder is quantised and tuned with haneul's own (morpheme-split) tokenizer."""
    from haneul.lm.config import GPTConfig
    from haneul.lm.model import GPT
    from haneul.lm.testing import tiny_corpus
    from haneul.lm.tokenizer import train_tokenizer

    folder = tmp_path / "ko-test"
    tok = train_tokenizer(folder, texts=tiny_corpus(200), kind="morpheme-bpe", vocab_size=320)
    cfg = GPTConfig(
        vocab_size=tok.vocab_size, n_layer=1, n_head=2, n_kv_head=1, d_model=32, d_ff=64, max_seq_len=128
    )
    GPT(cfg).save_pretrained(folder)
    bench = _bench()
    model, tokenizer, _ = bench.load_model(str(folder))
    from haneul.quant.model import HaneulTokenizerAdapter

    assert isinstance(tokenizer, HaneulTokenizerAdapter)
    text = "이 영화는 정말 재미있었어요"
    assert tokenizer.encode(text) == tok.encode(text)
    result = bench.main(
        ["--model", str(folder), "--task", "nsmc", "--data", str(nsmc_file), "--eval-data", str(nsmc_file),
         "--rows", "8", "--eval-rows", "4", "--steps", "3", "--group-size", "16", "--rounds", "1",
         "--methods", "full_ft,lora_rtn,alpha_1", "--out", str(tmp_path / "r.json")]
    )  # fmt: skip
    assert [r["method"] for r in result["rows"]] == ["full_ft", "lora_rtn", "alpha_1"]
    assert result["data"]["train_rows"] == 8 and result["data"]["eval_rows"] == 4
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in result["rows"])
    lines = tmp_path / "reviews.txt"
    lines.write_text("\n".join(tiny_corpus(30, seed=2)) + "\n", encoding="utf-8")
    result = bench.main(
        ["--model", str(folder), "--task", "text", "--data", str(lines), "--rows", "20", "--eval-rows", "10",
         "--block", "32", "--methods", "fp32", "--out", str(tmp_path / "t.json")]
    )  # fmt: skip
    # the ten lines after the twenty training lines are the held-out text
    assert result["data"]["train_lines"] == 20 and result["data"]["eval_lines"] == 10
    assert result["rows"][0]["perplexity"] > 1.0
