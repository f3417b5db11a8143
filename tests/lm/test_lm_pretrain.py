from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from haneul.errors import Conflict
from haneul.lm.data import read_meta
from haneul.lm.pretrain import TrainConfig, lr_at, pretrain

NANO = {"n_layer": 2, "d_model": 32, "n_head": 4, "n_kv_head": 2, "d_ff": 64, "max_seq_len": 32}


def _cfg(data: Path, out: Path, **kw: object) -> TrainConfig:
    base = dict(data=str(data), out=str(out), preset="ko-nano", model=NANO, steps=8, batch_size=4, grad_accum=2,
                seq_len=32, lr=3e-3, warmup=2, eval_every=4, eval_batches=2, save_every=100, log_every=2)
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def test_lr_schedule() -> None:
    cfg = TrainConfig(data="", out="", steps=10, warmup=2, lr=1.0, min_lr_ratio=0.1)
    assert [round(lr_at(s, cfg), 4) for s in (0, 1, 2, 10)] == [0.5, 1.0, 1.0, 0.1]
    assert lr_at(6, cfg) == pytest.approx(0.1 + 0.45 * (1 + 0.0))  # halfway through the cosine


def test_exact_resume_gives_identical_loss_curve(tiny_lm: dict[str, Path], tmp_path: Path) -> None:
    torch.set_num_threads(1)
    full = pretrain(_cfg(tiny_lm["data"], tmp_path / "full"))
    first = pretrain(_cfg(tiny_lm["data"], tmp_path / "split", stop_after=3))
    assert first["step"] == 3 and not first["finished"]
    second = pretrain(_cfg(tiny_lm["data"], tmp_path / "split"))
    assert second["finished"] and second["step"] == 8
    assert len(full["loss"]) == 8
    assert second["loss"] == full["loss"]  # bit-identical, not approximately equal
    assert second["val_loss"] == full["val_loss"]
    assert full["loss"][-1] < full["loss"][0]  # it learns
    val = read_meta(tiny_lm["data"])["val"]
    assert full["val_bpc"] == pytest.approx(full["val_loss"] / math.log(2) * val["tokens"] / val["characters"])


def test_trained_model_folder_is_a_transformers_llama(tiny_lm: dict[str, Path], tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    res = pretrain(_cfg(tiny_lm["data"], tmp_path / "run", steps=2, eval_every=2))
    folder = Path(res["model_dir"])
    hf = AutoModelForCausalLM.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    ids = tok("이 영화는 정말", return_tensors="pt").input_ids
    assert hf(ids).logits.shape[-1] == json.loads((folder / "config.json").read_text())["vocab_size"]


def test_resume_with_another_shape_is_a_clear_error(tiny_lm: dict[str, Path], tmp_path: Path) -> None:
    pretrain(_cfg(tiny_lm["data"], tmp_path / "run", steps=2, eval_every=2, stop_after=1))
    with pytest.raises(Conflict, match=r"another shape: n_layer 2 \(checkpoint\) vs 3 \(this run\)"):
        pretrain(_cfg(tiny_lm["data"], tmp_path / "run", steps=2, model={**NANO, "n_layer": 3}))


def test_metrics_reported(tiny_lm: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import haneul

    seen: list[tuple[int, dict[str, float]]] = []
    monkeypatch.setattr(haneul, "report", lambda step=None, **kw: seen.append((step, kw)))
    pretrain(_cfg(tiny_lm["data"], tmp_path / "run", steps=4, eval_every=4))
    assert [s for s, _ in seen] == [1, 2, 3, 4]
    keys = set().union(*(kw for _, kw in seen))
    assert {"loss", "lr", "tokens_per_s", "val_loss", "val_bpc"} <= keys


def test_losses_held_on_device_are_reported_for_every_step_in_order(
    tiny_lm: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import haneul

    seen: list[tuple[int, dict[str, float]]] = []
    monkeypatch.setattr(haneul, "report", lambda step=None, **kw: seen.append((step, kw)))
    calls: list[int] = []
    # no log, evaluation or checkpoint step until the last: every step's figures arrive at the end
    res = pretrain(_cfg(tiny_lm["data"], tmp_path / "run", steps=5, log_every=100, eval_every=100),
                   on_step=lambda step, m: calls.append(step))
    assert [s for s, _ in seen] == calls == [1, 2, 3, 4, 5]
    assert [kw["loss"] for _, kw in seen] == res["loss"]
    assert "tokens_per_s" in seen[-1][1] and "tokens_per_s" not in seen[0][1]
    assert res["tokens_per_s"] > 0 and res["peak_flops"] is None  # no MFU on a CPU


def test_time_budget_ends_the_run_with_a_usable_model(tiny_lm: dict[str, Path], tmp_path: Path) -> None:
    res = pretrain(_cfg(tiny_lm["data"], tmp_path / "run", steps=50, max_seconds=0.0))
    assert res["step"] == 1 and res["out_of_time"] and res["model_dir"] and res["val_loss"] is not None


def test_the_rolling_checkpoint_carries_the_tokenizer(tiny_lm: dict[str, Path], tmp_path: Path) -> None:
    """A checkpoint saved mid-run is a servable model folder (it can be deployed as it is)."""
    pretrain(_cfg(tiny_lm["data"], tmp_path / "run", steps=4, save_every=2, stop_after=2))
    ckpt = tmp_path / "run" / "checkpoint"
    assert (ckpt / "tokenizer.json").is_file() and (ckpt / "config.json").is_file()
