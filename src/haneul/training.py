"""Pieces every training loop in haneul shares: the warm-up + decay learning-rate schedule and the choice
of device and mixed-precision dtype.

The schedule is the one HyperCLOVA (§2.3) and most LM recipes use: a linear warm-up to the peak rate,
then a cosine (or linear) decay to a floor. It is a pure function of the step, which is what lets a
resumed run follow exactly the rates of one that never stopped. torch is imported inside the functions
that need it, so importing this module stays cheap.
"""

from __future__ import annotations

import math
import os
from typing import Any

from haneul.errors import InvalidInput

__all__ = ["SHAPES", "pick_amp_dtype", "pick_device", "warmup_decay"]

SHAPES = ("cosine", "linear")


def warmup_decay(
    step: int,
    *,
    total: int,
    warmup: int,
    peak: float,
    floor: float = 0.0,
    shape: str = "cosine",
    spent: float = 0.0,
) -> float:
    """The learning rate of 0-based ``step`` in a run of ``total`` steps.

    Steps ``0 .. warmup-1`` rise linearly to ``peak`` (step 0 already trains, at ``peak / warmup``);
    the remaining steps fall to ``floor`` along a half cosine or a straight line and stay there.
    ``spent`` is the fraction of another budget (wall-clock time) already used: the decay follows
    whichever of the two budgets is further along, so a run cut short by time still ends at the floor.
    ``peak=1.0`` gives the multiplier ``torch.optim.lr_scheduler.LambdaLR`` expects.
    """
    if shape not in SHAPES:
        raise InvalidInput(f"schedule shape {shape!r} is unknown; use one of {', '.join(SHAPES)}")
    if warmup > 0 and step < warmup:
        return peak * (step + 1) / warmup
    span = max(total - warmup, 1)
    # the two shapes measure their position differently (done vs left) so each is exact at its ends
    if shape == "cosine":
        done = min(max(max(step - warmup, 0) / span, spent), 1.0)
        return floor + 0.5 * (peak - floor) * (1.0 + math.cos(math.pi * done))
    left = max(min((total - step) / span, 1.0 - spent), 0.0)
    return floor + (peak - floor) * left


def pick_device(name: str | None = None) -> Any:
    """A ``torch.device``: ``name`` as given, or for ``None`` / ``"auto"`` the GPU when there is one.

    Under ``torchrun`` each process takes the GPU of its ``LOCAL_RANK``.
    """
    import torch

    if name not in (None, "auto"):
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def pick_amp_dtype(name: str, device: Any) -> Any:
    """The autocast dtype for ``name`` (auto, fp32, bf16, fp16) on ``device``; ``None`` means full fp32.

    ``auto`` is bf16 on a GPU that supports it, fp16 on one that does not, and fp32 on a CPU.
    """
    import torch

    if name == "fp32" or (name == "auto" and device.type == "cpu"):
        return None  # CPU bf16 autocast is slower than fp32 on most CPUs
    if name == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    table = {"bf16": torch.bfloat16, "fp16": torch.float16}
    if name not in table:
        raise InvalidInput(f"dtype {name!r} is unknown; use auto, fp32, bf16 or fp16")
    return table[name]
