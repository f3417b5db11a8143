"""AlphaTuning: adapt a BCQ-quantised LM to a task by training only its scaling factors (section 3.2).

After post-training quantisation the binary codes are frozen and shared by every task; a task
trains the scales ``α`` (all of them, or only the first ``k`` per group — ``k = 1`` is the paper's
cheapest setting) and nothing else. What a task needs on disk is therefore just those scales: a
small safetensors file that records the checksum of the base it was trained on, so it can never be
applied to a different base by mistake.

Training reports its loss and learning rate through :func:`haneul.report`, so it runs the same as a
platform session or on its own.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from haneul.errors import Conflict, InvalidInput, NotFound
from haneul.io import atomic_write_bytes
from haneul.quant.model import bcq_layers

TASK_FORMAT = "haneul-alphatuning/1"

__all__ = [
    "AlphaTuneConfig",
    "alphatune",
    "distillation_loss",
    "load_task_alphas",
    "parse_train_alpha",
    "prepare_alphatuning",
    "save_task_alphas",
    "select_layers",
    "train_parameters",
]


def parse_train_alpha(value: str | int) -> int | str:
    """``"all"`` or a positive integer (how many scales per group are trained)."""
    if isinstance(value, str) and value.strip().lower() == "all":
        return "all"
    try:
        k = int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"--train-alpha {value!r} must be 'all' or a number of scales such as 1") from None
    if k < 1:
        raise InvalidInput(f"--train-alpha {k} must be at least 1 (or 'all')")
    return k


@dataclass
class AlphaTuneConfig:
    train_alpha: int | str = 1
    layers: tuple[str, ...] | None = None  # glob patterns of the layers whose scales train (None: all)
    steps: int = 200
    lr: float = 1e-3
    warmup_steps: int = 10
    grad_clip: float = 1.0
    log_every: int = 10


def prepare_alphatuning(
    model: nn.Module, train_alpha: int | str = 1, layers: Sequence[str] | None = None
) -> int:
    """Freeze everything except the chosen scales; returns the number of trainable values.

    ``layers``: glob patterns (``"*.mlp.*"``, ``"*down_proj"``) naming the BCQ layers whose scales
    train, like PEFT's target modules; the other layers keep their post-training scales. ``None``
    trains every layer's.
    """
    found = bcq_layers(model)
    if not found:
        raise InvalidInput(
            "the model has no BCQ layers; quantise it first (quantize_model or `haneul quant quantize`)"
        )
    chosen = select_layers(found, layers)
    for p in model.parameters():
        p.requires_grad_(False)
    total = 0
    for name, layer in chosen.items():
        k = train_alpha if train_alpha == "all" else min(int(train_alpha), layer.bits)
        if train_alpha != "all" and int(train_alpha) > layer.bits:
            raise InvalidInput(
                f"--train-alpha {train_alpha} exceeds the {layer.bits} bits of {name}; use at most {layer.bits}"
            )
        layer.set_train_alpha(k)
        total += layer.trainable_alpha_count()
    return total


def select_layers(found: dict[str, Any], patterns: Sequence[str] | None) -> dict[str, Any]:
    """The layers of ``found`` whose names match any glob of ``patterns`` (all for ``None``)."""
    import fnmatch

    if patterns is None:
        return found
    chosen = {n: m for n, m in found.items() if any(fnmatch.fnmatchcase(n, p) for p in patterns)}
    if not chosen:
        example = next(iter(found))
        raise InvalidInput(
            f"--alpha-layers {', '.join(patterns) or '(none)'} matches no quantised layer; "
            f"names look like {example!r} (try '*.mlp.*')"
        )
    return chosen


def train_parameters(
    model: nn.Module,
    params: Sequence[nn.Parameter],
    batches: Iterable[dict[str, torch.Tensor]],
    *,
    steps: int,
    lr: float,
    warmup_steps: int,
    grad_clip: float,
    on_step: Callable[[int, float, float], None] | None = None,
    loss_fn: Callable[[nn.Module, dict[str, torch.Tensor]], torch.Tensor] | None = None,
) -> tuple[list[float], float]:
    """Train ``params`` for at most ``steps`` batches with AdamW (no weight decay), linear warm-up/decay.

    The gradient norm is clipped to ``grad_clip`` (0 turns clipping off). ``on_step(step, loss, lr)``
    runs after every step with the learning rate the next step will use. ``loss_fn(model, batch)``
    replaces the model's own next-token loss (e.g. :func:`distillation_loss`). The model is in train
    mode while it runs and in eval mode after. Returns the loss of every step and the loop's wall
    seconds.
    """
    from functools import partial

    from haneul.training import warmup_decay

    # weight_decay=0 matters: with a zero gradient Adam then leaves untrained values bit-identical.
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)

    # peak=1.0: LambdaLR multiplies lr by the factor this returns
    schedule = partial(warmup_decay, total=steps, warmup=warmup_steps, peak=1.0, shape="linear")
    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    model.train()
    losses: list[float] = []
    start = time.perf_counter()
    for step, batch in enumerate(batches):
        if step >= steps:
            break
        loss = model(**batch).loss if loss_fn is None else loss_fn(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        opt.step()
        sched.step()
        value = float(loss.detach())
        losses.append(value)
        if on_step is not None:
            on_step(step, value, sched.get_last_lr()[0])
    seconds = time.perf_counter() - start
    model.eval()
    return losses, seconds


def distillation_loss(
    teacher: nn.Module, temperature: float = 1.0
) -> Callable[[nn.Module, dict[str, torch.Tensor]], torch.Tensor]:
    """A ``loss_fn`` for :func:`train_parameters`: KL(teacher ‖ student) per labelled token.

    The full-precision teacher's next-token distribution carries far more than the sampled token
    (LLM-QAT's data-free recipe distils on the teacher's own samples for this reason): with a few
    thousand tokens of calibration text, matching the hard tokens lets millions of scales memorise
    them, while matching the distribution keeps the student close to the model it approximates.
    """

    def loss(student: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        with torch.no_grad():
            target = (teacher(**inputs).logits.float() / temperature).log_softmax(-1)
        pred = (student(**inputs).logits.float() / temperature).log_softmax(-1)
        keep = batch["labels"] != -100
        kl = torch.nn.functional.kl_div(pred[keep], target[keep], log_target=True, reduction="batchmean")
        return kl * temperature**2

    return loss


def alphatune(
    model: nn.Module,
    batches: Iterable[dict[str, torch.Tensor]],
    config: AlphaTuneConfig,
    on_step: Callable[[int, float], None] | None = None,
) -> dict[str, Any]:
    """Train the chosen scales with AdamW (no weight decay) and linear warm-up/decay."""
    import haneul

    trainable = prepare_alphatuning(model, config.train_alpha, config.layers)
    params = [layer.alpha for layer in bcq_layers(model).values() if layer.alpha.requires_grad]
    steps = max(config.steps, 1)

    def step_done(step: int, loss: float, lr: float) -> None:
        if step % config.log_every == 0 or step == steps - 1:
            haneul.report(step=step, loss=loss, lr=lr)
        if on_step is not None:
            on_step(step, loss)

    losses, seconds = train_parameters(
        model,
        params,
        batches,
        steps=steps,
        lr=config.lr,
        warmup_steps=config.warmup_steps,
        grad_clip=config.grad_clip,
        on_step=step_done,
    )
    for layer in bcq_layers(model).values():
        layer.alpha.requires_grad_(False)
    return {
        "trainable_params": trainable,
        "steps": len(losses),
        "final_loss": losses[-1] if losses else float("nan"),
        "seconds": seconds,
        "losses": losses,
    }


def save_task_alphas(
    model: nn.Module,
    path: str | os.PathLike[str],
    train_alpha: int | str,
    task: str = "",
    metrics: dict[str, float] | None = None,
) -> str:
    """Write the trained scales (only the trained slice of each layer) and the base checksum."""
    from safetensors.torch import save

    base = getattr(model, "haneul_base_checksum", None)
    if not base:
        raise InvalidInput(
            "the model has no base checksum; quantise it with quantize_model or load a saved base first"
        )
    tensors: dict[str, torch.Tensor] = {}
    for name, layer in bcq_layers(model).items():
        k = layer.bits if train_alpha == "all" else int(train_alpha)
        tensors[f"{name}.alpha"] = layer.alpha.detach()[..., :k].contiguous().cpu()
    meta = {
        "format": TASK_FORMAT,
        "base_checksum": base,
        "train_alpha": str(train_alpha),
        "task": task,
        "metrics": json.dumps(metrics or {}),
    }
    return atomic_write_bytes(path, save(tensors, metadata=meta))


def read_task_meta(path: str | os.PathLike[str]) -> dict[str, str]:
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise NotFound(f"task file {path} does not exist; create one with `haneul quant alphatune`")
    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata() or {}
    if meta.get("format") != TASK_FORMAT:
        raise InvalidInput(f"{path} is not an AlphaTuning task file (format {meta.get('format')!r})")
    return meta


def load_task_alphas(model: nn.Module, path: str | os.PathLike[str]) -> dict[str, str]:
    """Put a task's scales into a quantised base; refuses a file made for another base."""
    from safetensors.torch import load_file

    meta = read_task_meta(path)
    base = getattr(model, "haneul_base_checksum", None)
    if base != meta.get("base_checksum"):
        raise Conflict(
            f"task file {path} was trained on base {str(meta.get('base_checksum'))[:12]}, but this model is base "
            f"{str(base)[:12]}; load the base it was made for (or re-run alphatune on this one)"
        )
    tensors = load_file(str(path))
    layers = bcq_layers(model)
    if set(tensors) != {f"{n}.alpha" for n in layers}:
        raise Conflict(
            f"task file {path} names other layers than this base has; re-run alphatune on this base"
        )
    with torch.no_grad():
        for name, layer in layers.items():
            value = tensors[f"{name}.alpha"]
            k = value.shape[-1]
            layer.alpha[..., :k] = value.to(layer.alpha.dtype)
    return meta


def task_file_summary(path: str | os.PathLike[str]) -> dict[str, Any]:
    meta = read_task_meta(path)
    out: dict[str, Any] = dict(meta)
    out["metrics"] = json.loads(meta.get("metrics") or "{}")
    out["bytes"] = Path(path).stat().st_size
    return out


def config_dict(config: AlphaTuneConfig) -> dict[str, Any]:
    return asdict(config)
