from __future__ import annotations

import math
from functools import partial

import pytest

from haneul.errors import InvalidInput
from haneul.training import pick_amp_dtype, pick_device, warmup_decay

# The schedules each training loop computed on its own before they shared warmup_decay, kept as the
# references the shared function must reproduce (to the last bit, except where noted).


def pretrain_reference(step: int, *, steps: int, warmup: int, lr: float, min_lr_ratio: float) -> float:
    if warmup > 0 and step < warmup:
        return lr * (step + 1) / warmup
    span = max(steps - warmup, 1)
    progress = min(max(step - warmup, 0) / span, 1.0)
    floor = lr * min_lr_ratio
    return floor + 0.5 * (lr - floor) * (1.0 + math.cos(math.pi * progress))


def sft_reference(step: int, total: int, warmup: int, base: float) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(total - warmup, 1)
    return base * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def speech_reference(step: int, *, warmup: int, total: int, lr: float, minutes: float, max_minutes: float | None) -> float:
    if step < warmup:
        return lr * (step + 1) / warmup
    frac = (step - warmup) / max(1, total - warmup)
    if max_minutes:
        frac = max(frac, minutes / max_minutes)
    frac = min(1.0, frac)
    return lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))


def alphatuning_reference(step: int, *, steps: int, warmup_steps: int) -> float:
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    return max(0.0, (steps - step) / max(steps - warmup_steps, 1))


RUNS = [(1, 0), (1, 1), (10, 2), (10, 0), (10, 10), (10, 15), (97, 7), (1000, 100), (1500, 100), (20000, 1000)]


def _steps(total: int) -> list[int]:
    """Every step of a short run, a spread of a long one, and a few past the end."""
    inside = range(total) if total <= 200 else sorted({*range(0, total, max(total // 150, 1)), *range(120), total - 1})
    return [*inside, total, total + 1, total + 50]


@pytest.mark.parametrize(("total", "warmup"), RUNS)
@pytest.mark.parametrize(("lr", "min_lr_ratio"), [(1.0, 0.1), (3e-3, 0.1), (6e-4, 0.0), (2e-3, 0.37)])
def test_pretrain_schedule_is_unchanged(total: int, warmup: int, lr: float, min_lr_ratio: float) -> None:
    from haneul.lm.pretrain import TrainConfig, lr_at

    cfg = TrainConfig(data="", out="", steps=total, warmup=warmup, lr=lr, min_lr_ratio=min_lr_ratio)
    for step in _steps(total):
        old = pretrain_reference(step, steps=total, warmup=warmup, lr=lr, min_lr_ratio=min_lr_ratio)
        assert lr_at(step, cfg) == old, step  # bit for bit: exact resume compares loss curves exactly


@pytest.mark.parametrize(("total", "warmup"), [(t, w) for t, w in RUNS if w <= t])
@pytest.mark.parametrize("base", [2e-5, 2e-4, 1.0])
def test_sft_schedule_is_unchanged(total: int, warmup: int, base: float) -> None:
    for step in _steps(total):
        new = warmup_decay(step, total=total, warmup=warmup, peak=base)
        assert new == sft_reference(step, total, warmup, base), step


@pytest.mark.parametrize(("total", "warmup"), RUNS)
@pytest.mark.parametrize(("minutes", "max_minutes"), [(0.0, None), (0.0, 60.0), (12.5, 60.0), (90.0, 60.0), (3.0, 0.0)])
def test_speech_schedule_is_unchanged(total: int, warmup: int, minutes: float, max_minutes: float | None) -> None:
    from haneul.speech.train import TrainConfig, lr_at

    cfg = TrainConfig(lr=1e-3, warmup_steps=warmup, max_minutes=max_minutes)
    for step in _steps(total):
        old = speech_reference(step, warmup=warmup, total=total, lr=1e-3, minutes=minutes, max_minutes=max_minutes)
        # speech wrote the floor as a share of the peak, lr * (0.05 + 0.95 * c), the shared function
        # as a value, floor + (peak - floor) * c: the same number up to the last bit or two
        assert lr_at(cfg, step, total, minutes) == pytest.approx(old, rel=1e-15, abs=0), step


@pytest.mark.parametrize(("total", "warmup"), RUNS)
def test_alphatuning_multiplier_is_unchanged(total: int, warmup: int) -> None:
    for step in _steps(total):
        new = warmup_decay(step, total=total, warmup=warmup, peak=1.0, shape="linear")
        assert new == alphatuning_reference(step, steps=total, warmup_steps=warmup), step


def test_alphatuning_rates_through_lambda_lr_are_unchanged() -> None:
    import torch

    def rates(schedule: object) -> list[float]:
        opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=3e-3)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)  # type: ignore[arg-type]
        out = []
        for _ in range(12):
            opt.step()
            sched.step()
            out.append(sched.get_last_lr()[0])
        return out

    new = partial(warmup_decay, total=12, warmup=3, peak=1.0, shape="linear")
    assert rates(new) == rates(partial(alphatuning_reference, steps=12, warmup_steps=3))


def test_schedule_shape_by_hand() -> None:
    # 2 warm-up steps, then 4 decay steps from 1.0 to 0.2
    cosine = [warmup_decay(s, total=6, warmup=2, peak=1.0, floor=0.2) for s in range(7)]
    assert cosine == pytest.approx([0.5, 1.0, 1.0, 0.2 + 0.4 * (1 + math.cos(math.pi / 4)), 0.6,
                                    0.2 + 0.4 * (1 + math.cos(3 * math.pi / 4)), 0.2])
    linear = [warmup_decay(s, total=6, warmup=2, peak=1.0, floor=0.2, shape="linear") for s in range(7)]
    assert linear == pytest.approx([0.5, 1.0, 1.0, 0.8, 0.6, 0.4, 0.2])
    # a time budget half spent moves the decay on to its middle even at the first decay step
    assert warmup_decay(2, total=6, warmup=2, peak=1.0, floor=0.2, spent=0.5) == pytest.approx(0.6)
    assert warmup_decay(2, total=6, warmup=2, peak=1.0, floor=0.2, shape="linear", spent=0.5) == pytest.approx(0.6)
    with pytest.raises(InvalidInput, match="shape 'step' is unknown; use one of cosine, linear"):
        warmup_decay(0, total=6, warmup=2, peak=1.0, shape="step")


def test_device_and_precision_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("cuda:1") == torch.device("cuda", 1)  # named devices are taken as given
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device() == pick_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert pick_device(None) == torch.device("cuda", 3)

    cpu, gpu = torch.device("cpu"), torch.device("cuda", 0)
    assert pick_amp_dtype("auto", cpu) is None and pick_amp_dtype("fp32", gpu) is None
    assert pick_amp_dtype("bf16", cpu) is torch.bfloat16 and pick_amp_dtype("fp16", gpu) is torch.float16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert pick_amp_dtype("auto", gpu) is torch.float16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert pick_amp_dtype("auto", gpu) is torch.bfloat16
    with pytest.raises(InvalidInput, match="dtype 'int8' is unknown; use auto, fp32, bf16 or fp16"):
        pick_amp_dtype("int8", gpu)
