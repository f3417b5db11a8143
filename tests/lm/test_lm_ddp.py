from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from haneul.lm.pretrain import TrainConfig, pretrain

NANO = {"n_layer": 2, "d_model": 32, "n_head": 4, "n_kv_head": 2, "d_ff": 64, "max_seq_len": 32}


@pytest.mark.slow
def test_ddp_two_processes_match_gradient_accumulation(tiny_lm: dict[str, Path], tmp_path: Path) -> None:
    """2 gloo processes x 1 micro-batch see the same windows as 1 process x 2 micro-batches, and DDP
    averages gradients, so both runs follow the same loss curve."""
    args = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "haneul",
        "lm", "pretrain", "--data", str(tiny_lm["data"]), "--out", str(tmp_path / "ddp"), "--preset", "ko-nano",
        "--steps", "5", "--batch-size", "4", "--seq-len", "32", "--lr", "3e-3", "--warmup", "2",
        "--eval-every", "5", "--eval-batches", "2", "--device", "cpu", "--json",
        *[f"-m{k}={v}" for k, v in NANO.items()],
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    trainer = json.loads((tmp_path / "ddp" / "checkpoint" / "trainer.json").read_text())
    single = pretrain(
        TrainConfig(
            data=str(tiny_lm["data"]), out=str(tmp_path / "single"), preset="ko-nano", model=NANO, steps=5,
            batch_size=4, grad_accum=2, seq_len=32, lr=3e-3, warmup=2, eval_every=5, eval_batches=2, device="cpu",
        )
    )
    assert trainer["step"] == 5
    assert trainer["history"]["loss"] == pytest.approx(single["loss"], rel=1e-4)
