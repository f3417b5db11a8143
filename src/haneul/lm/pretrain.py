"""GPT pre-training (HyperCLOVA §2.3): AdamW, warm-up + cosine decay, gradient accumulation and clipping,
mixed precision where the device supports it, optional ``torch.compile``, DDP under ``torchrun``, and
checkpoints that resume exactly.

Exact resume rests on three facts: the batch of every step is a pure function of ``(seed, step)``
(:meth:`~haneul.lm.data.TokenData.batch`), the learning rate is a pure function of the step, and a
checkpoint holds the model weights (fp32 safetensors, bit-exact) and the optimizer state. A run that is
stopped and resumed therefore produces the same loss at every step as one that never stopped.

Metrics go through :func:`haneul.report` (loss, lr, tokens/s, validation loss, validation bits per
character), so ``haneul run -- haneul lm pretrain ...`` streams them to the platform.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from haneul.errors import Conflict, InvalidInput
from haneul.io import atomic_write_text

__all__ = ["TrainConfig", "pretrain", "lr_at", "load_checkpoint_config"]

CKPT = "checkpoint"
FINAL = "model"


@dataclass
class TrainConfig:
    data: str
    out: str
    preset: str = "ko-tiny"
    model: dict[str, Any] = field(default_factory=dict)  # overrides of the preset (n_layer=..., d_model=...)
    steps: int = 1000
    batch_size: int = 16
    grad_accum: int = 1
    seq_len: int | None = None  # default: the preset's context window
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup: int = 100
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    eval_every: int = 200
    eval_batches: int = 20
    save_every: int = 200
    seed: int = 0
    dtype: str = "auto"  # auto | fp32 | bf16 | fp16
    device: str = "auto"
    compile: bool = False
    max_seconds: float | None = None  # end the run early (model written) when the time budget is spent
    # with max_seconds: after a few steps, shorten `steps` so the cosine schedule ends inside the budget
    # (the schedule then depends on measured speed, so such a run is not bit-reproducible)
    fit_to_budget: bool = False
    stop_after: int | None = None  # stop (and save) after this step, as an interruption would
    train_tokens: int | None = None  # sample training windows from the first N tokens only (corpus size)
    log_every: int = 10

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to ``lr`` over ``warmup`` steps, then cosine decay to ``lr * min_lr_ratio``."""
    if cfg.warmup > 0 and step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    span = max(cfg.steps - cfg.warmup, 1)
    progress = min(max(step - cfg.warmup, 0) / span, 1.0)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + 0.5 * (cfg.lr - floor) * (1.0 + math.cos(math.pi * progress))


def _device(name: str) -> Any:
    import torch

    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def _amp_dtype(name: str, device: Any) -> Any:
    import torch

    if name == "fp32" or (name == "auto" and device.type == "cpu"):
        return None  # CPU bf16 autocast is slower than fp32 on most CPUs
    if name == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    table = {"bf16": torch.bfloat16, "fp16": torch.float16}
    if name not in table:
        raise InvalidInput(f"dtype {name!r} is unknown; use auto, fp32, bf16 or fp16")
    return table[name]


# Dense bf16/fp16 tensor-core peaks (no sparsity) of GPUs whose name contains the key, in FLOP/s.
GPU_PEAK_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 125e12, "L4": 121e12}


def gpu_peak_flops(device: Any) -> float | None:
    """The dense 16-bit peak of a known CUDA device, else None (no MFU is reported then)."""
    import torch

    if getattr(device, "type", str(device)) != "cuda" or not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in GPU_PEAK_FLOPS.items() if k in name), None)


def evaluate_split(model: Any, data: Any, batch_size: int, seq_len: int, max_batches: int) -> tuple[float, float]:
    """Mean validation loss (nats per token) and bits per character of ``data``'s validation split,
    over its fixed evenly spread windows; ``(nan, nan)`` when the split is shorter than one window.
    Leaves ``model`` in eval mode; wrap the call in autocast for mixed precision."""
    import torch

    from haneul.lm.data import bits_per_char

    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    with torch.no_grad():
        for x, y in data.val_batches(batch_size, seq_len, max_batches):
            _, loss = model(x.to(device), y.to(device))
            total += float(loss) * x.numel()
            count += x.numel()
    if count == 0:
        return float("nan"), float("nan")
    mean = total / count
    val = data.meta["val"]
    return mean, bits_per_char(mean, val["tokens"], val["characters"])


def load_checkpoint_config(out_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    state = Path(out_dir) / CKPT / "trainer.json"
    return json.loads(state.read_text()) if state.is_file() else None


def _shape(cfg: Any) -> dict[str, Any]:
    keys = ("vocab_size", "n_layer", "n_head", "n_kv_head", "d_model", "d_ff", "head_dim_override", "tie_embeddings")
    return {k: getattr(cfg, k) for k in keys}


def pretrain(
    cfg: TrainConfig,
    *,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Train (or resume) and return a summary: final step, losses per step, validation figures, paths."""
    import numpy as np
    import torch

    import haneul
    from haneul.lm.config import GPTConfig
    from haneul.lm.data import TokenData
    from haneul.lm.model import GPT

    cfg = replace(cfg)  # fit_to_budget may change steps: leave the caller's object alone
    out = Path(cfg.out)
    data = TokenData(cfg.data)
    if cfg.train_tokens is not None:
        data.limit_train(cfg.train_tokens)
    model_cfg = GPTConfig.from_name(cfg.preset, vocab_size=data.meta["vocab_size"], **cfg.model)
    seq_len = cfg.seq_len or model_cfg.max_seq_len
    if seq_len > model_cfg.max_seq_len:
        raise InvalidInput(f"--seq-len {seq_len} exceeds the model's context window {model_cfg.max_seq_len}; lower it")
    eos = data.meta.get("eos_id", 0)
    model_cfg = replace(model_cfg, bos_token_id=eos, eos_token_id=eos)

    # -- distributed set-up (torchrun sets WORLD_SIZE / RANK / LOCAL_RANK)
    world = int(os.environ.get("WORLD_SIZE", 1))
    rank = int(os.environ.get("RANK", 0))
    device = _device(cfg.device)
    if world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            torch.cuda.set_device(device)
    master = rank == 0
    amp = _amp_dtype(cfg.dtype, device)

    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")  # TF32 for whatever autocast leaves in fp32
    peak = gpu_peak_flops(device) if amp is not None else None
    flops_per_token = model_cfg.flops_per_token(seq_len)

    torch.manual_seed(cfg.seed)
    model = GPT(model_cfg).to(device)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(cfg.beta1, cfg.beta2),
        fused=device.type == "cuda",
    )
    scaler = torch.amp.GradScaler(enabled=amp is torch.float16)

    start_step = 0
    history: dict[str, list[float]] = {"loss": [], "val_loss": [], "val_bpc": []}
    ckpt_dir = out / CKPT
    if (ckpt_dir / "trainer.json").is_file():
        state = json.loads((ckpt_dir / "trainer.json").read_text())
        saved = GPTConfig.from_dict(state["model"])
        if _shape(saved) != _shape(model_cfg):
            diff = {k: (v, _shape(model_cfg)[k]) for k, v in _shape(saved).items() if _shape(model_cfg)[k] != v}
            detail = ", ".join(f"{k} {a} (checkpoint) vs {b} (this run)" for k, (a, b) in diff.items())
            raise Conflict(
                f"checkpoint in {ckpt_dir} has another shape: {detail}; use the same --preset/--data "
                "or a new --out folder"
            )
        from safetensors.torch import load_file

        weights = load_file(str(ckpt_dir / "model.safetensors"))
        if model_cfg.tie_embeddings:
            weights["lm_head.weight"] = weights["model.embed_tokens.weight"]
        model.load_state_dict(weights)
        extra = torch.load(ckpt_dir / "optimizer.pt", map_location=device, weights_only=False)
        opt.load_state_dict(extra["optimizer"])
        if extra.get("scaler"):
            scaler.load_state_dict(extra["scaler"])
        start_step = int(state["step"])
        history = state.get("history", history)

    train_model: Any = model
    if cfg.compile:
        train_model = torch.compile(model)
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        train_model = DistributedDataParallel(train_model, device_ids=[device] if device.type == "cuda" else None)

    def autocast() -> Any:
        if amp is None:
            return torch.autocast(device.type, enabled=False)
        return torch.autocast(device.type, dtype=amp)

    def evaluate() -> tuple[float, float]:
        with autocast():
            result = evaluate_split(model, data, cfg.batch_size, seq_len, cfg.eval_batches)
        model.train()
        return result

    def save(step: int) -> None:
        if not master:
            return
        tmp = out / f".{CKPT}.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        model.save_pretrained(tmp)
        torch.save(
            {"optimizer": opt.state_dict(), "scaler": scaler.state_dict() if scaler.is_enabled() else None},
            tmp / "optimizer.pt",
        )
        trainer = {"step": step, "model": model_cfg.to_dict(), "train": asdict(cfg), "history": history}
        atomic_write_text(tmp / "trainer.json", json.dumps(trainer) + "\n")
        # swap folders so a crash leaves either the old or the new checkpoint whole
        old = out / f".{CKPT}.old"
        if ckpt_dir.exists():
            if old.exists():
                shutil.rmtree(old)
            os.replace(ckpt_dir, old)
        os.replace(tmp, ckpt_dir)
        if old.exists():
            shutil.rmtree(old)
        if haneul.session_id() is not None:
            haneul.save("last", ckpt_dir)

    model.train()
    tokens_per_step = cfg.batch_size * cfg.grad_accum * seq_len * world
    began = time.perf_counter()
    window_t, window_tokens = time.perf_counter(), 0
    step = start_step
    stopped_early = False
    out_of_budget = False
    first_done = began
    # Losses and gradient norms stay on the device until a log, evaluation or checkpoint step needs
    # them, so the host queues the next step while the GPU still runs this one (no sync per step).
    pending: list[tuple[int, float, Any, Any]] = []

    def flush(extra: dict[str, float] | None = None) -> dict[str, float]:
        last: dict[str, float] = {}
        for i, (at, lr_, loss_t, norm_t) in enumerate(pending):
            metrics = {"loss": float(loss_t), "lr": lr_, "grad_norm": float(norm_t)}
            history["loss"].append(metrics["loss"])
            if i == len(pending) - 1 and extra:
                metrics.update(extra)
            if master:
                haneul.report(step=at, **{k: v for k, v in metrics.items() if math.isfinite(v)})
                if on_step is not None:
                    on_step(at, metrics)
            last = metrics
        pending.clear()
        return last

    while step < cfg.steps:
        lr = lr_at(step, cfg)
        for group in opt.param_groups:
            group["lr"] = lr
        loss_sum: Any = 0.0
        for micro in range(cfg.grad_accum):
            x, y = data.batch((step * cfg.grad_accum + micro) * world + rank, cfg.batch_size, seq_len, cfg.seed)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            sync = micro == cfg.grad_accum - 1 or world == 1
            ctx = train_model.no_sync() if (world > 1 and not sync) else _null()
            with ctx:
                with autocast():
                    _, loss = train_model(x, y)
                scaler.scale(loss / cfg.grad_accum).backward()
            loss_sum = loss_sum + loss.detach().float()
        scaler.unscale_(opt)
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        step += 1
        if step == start_step + 1:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            first_done = time.perf_counter()  # the first step pays for warm-up: not a fair sample
        if cfg.fit_to_budget and cfg.max_seconds is not None and step == start_step + 6:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            per_step = (time.perf_counter() - first_done) / 5
            # keep ~15 % of the budget for evaluations and checkpoints
            affordable = step + int((cfg.max_seconds * 0.85 - (time.perf_counter() - began)) / per_step)
            if world > 1:
                import torch.distributed as dist

                t = torch.tensor([float(affordable)], device=device)
                dist.all_reduce(t, op=dist.ReduceOp.MIN)
                affordable = int(t.item())
            if affordable < cfg.steps:
                cfg.steps = max(affordable, step)
                cfg.eval_every = min(cfg.eval_every, max(cfg.steps // 10, 1))
                cfg.warmup = min(cfg.warmup, max(cfg.steps // 10, 1))
        loss_t = loss_sum / cfg.grad_accum
        if world > 1:
            import torch.distributed as dist

            loss_t = loss_t.reshape(1)
            dist.all_reduce(loss_t)
            loss_t = loss_t[0] / world
        pending.append((step, lr, loss_t, grad_norm))
        window_tokens += tokens_per_step
        out_of_time = cfg.max_seconds is not None and time.perf_counter() - began > cfg.max_seconds
        if world > 1 and cfg.max_seconds is not None:
            import torch.distributed as dist

            flag = torch.tensor([float(out_of_time)], device=device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)  # every rank stops at the same step
            out_of_time = bool(flag.item())
        interrupted = cfg.stop_after is not None and step >= cfg.stop_after
        evaluate_now = step % cfg.eval_every == 0 or step == cfg.steps or out_of_time
        save_now = step % cfg.save_every == 0 or step == cfg.steps or out_of_time or interrupted
        if step % cfg.log_every == 0 or evaluate_now or save_now:
            extra: dict[str, float] = {}
            if step % cfg.log_every == 0 or step == cfg.steps:
                loss_t.item()  # wait for the GPU so the window's time is the work's time
                now = time.perf_counter()
                extra["tokens_per_s"] = window_tokens / max(now - window_t, 1e-9)
                if peak:
                    extra["mfu"] = extra["tokens_per_s"] * flops_per_token / world / peak
                window_t, window_tokens = now, 0
            if evaluate_now:
                val_loss, val_bpc = evaluate()
                if not np.isnan(val_loss):
                    extra.update(val_loss=val_loss, val_bpc=val_bpc)
                    history["val_loss"].append(val_loss)
                    history["val_bpc"].append(val_bpc)
            flush(extra)
        if save_now:
            save(step)
        if interrupted and step < cfg.steps:
            stopped_early = True
            break
        if out_of_time:
            # a spent time budget ends the run like its last step: the model is written and usable
            out_of_budget = step < cfg.steps
            break
    flush()

    final = out / FINAL
    if master and not stopped_early:
        tmp = out / f".{FINAL}.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        summary = {"steps": step, "val_loss": history["val_loss"][-1:] or None, "val_bpc": history["val_bpc"][-1:] or None}
        model.save_pretrained(tmp, extra={"training": summary, "tokenizer_kind": data.meta.get("tokenizer_kind")})
        tok_dir = Path(data.meta["tokenizer"])
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "haneul.json"):
            if (tok_dir / name).is_file():
                shutil.copyfile(tok_dir / name, tmp / name)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    if master:
        haneul.flush()
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
    # steady-state rate: the steps after the first (which compiles and warms up), evaluations included
    rate = tokens_per_step * max(step - start_step - 1, 0) / max(time.perf_counter() - first_done, 1e-9)
    return {
        "step": step,
        "finished": not stopped_early,
        "out_of_time": out_of_budget,
        "loss": history["loss"],
        "val_loss": history["val_loss"][-1] if history["val_loss"] else None,
        "val_bpc": history["val_bpc"][-1] if history["val_bpc"] else None,
        "params": model.num_params(),
        "seconds": time.perf_counter() - began,
        "tokens_per_step": tokens_per_step,
        "tokens_per_s": rate,
        "flops_per_token": flops_per_token,
        "peak_flops": peak,
        "mfu": rate * flops_per_token / world / peak if peak else None,
        "checkpoint": str(ckpt_dir),
        "model_dir": str(final) if not stopped_early else None,
    }


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
