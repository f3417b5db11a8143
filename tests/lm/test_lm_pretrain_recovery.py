from __future__ import annotations

import os
from pathlib import Path

import torch

from haneul.lm.pretrain import TrainConfig, pretrain

NANO = {"n_layer": 2, "d_model": 32, "n_head": 4, "n_kv_head": 2, "d_ff": 64, "max_seq_len": 32}


def _cfg(data: Path, out: Path, **kw: object) -> TrainConfig:
    base = dict(data=str(data), out=str(out), preset="ko-nano", model=NANO, steps=6, batch_size=4, seq_len=32,
                lr=3e-3, warmup=2, eval_every=6, eval_batches=2, save_every=100, log_every=100)
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def test_resume_after_a_crash_between_the_checkpoint_renames(tiny_lm: dict[str, Path], tmp_path: Path) -> None:
    torch.set_num_threads(1)
    full = pretrain(_cfg(tiny_lm["data"], tmp_path / "full"))
    out = tmp_path / "crashed"
    pretrain(_cfg(tiny_lm["data"], out, stop_after=3))
    # what a crash after the old checkpoint moved aside, and before the new one moved in, leaves behind
    os.replace(out / "checkpoint", out / ".checkpoint.old")
    steps: list[int] = []
    resumed = pretrain(_cfg(tiny_lm["data"], out), on_step=lambda step, _: steps.append(step))
    assert steps == [4, 5, 6]  # it went on from the step-3 checkpoint, not from scratch
    assert resumed["loss"] == full["loss"]
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint", "model"]
