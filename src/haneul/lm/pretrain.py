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

import contextlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import haneul
from haneul.errors import Conflict, InvalidInput
from haneul.io import atomic_dir, recover_dir
from haneul.training import pick_amp_dtype, pick_device, warmup_decay

__all__ = ["TrainConfig", "pretrain", "lr_at", "load_checkpoint_config"]

CKPT = "checkpoint"
FINAL = "model"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "haneul.json")


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
    return warmup_decay(step, total=cfg.steps, warmup=cfg.warmup, peak=cfg.lr, floor=cfg.lr * cfg.min_lr_ratio)


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
    run = _Run(cfg, on_step)
    run.resume()
    run.train()
    run.finish()
    return run.summary()


class _Run:
    """One call of :func:`pretrain`: what it builds once (data, model, optimizer, process group), the
    state that a checkpoint carries (step, history), and the steps of the run as methods."""

    def __init__(self, cfg: TrainConfig, on_step: Callable[[int, dict[str, float]], None] | None) -> None:
        import torch

        from haneul.lm.data import TokenData
        from haneul.lm.model import GPT

        self.cfg = cfg = replace(cfg)  # fit_to_budget may change steps: leave the caller's object alone
        self.on_step = on_step
        self.out = Path(cfg.out)
        self.ckpt_dir = self.out / CKPT
        self.data = TokenData(cfg.data)
        if cfg.train_tokens is not None:
            self.data.limit_train(cfg.train_tokens)
        self.model_cfg, self.seq_len = _model_config(cfg, self.data.meta)
        self.world, self.rank, self.device = _join_process_group(cfg.device)
        self.master = self.rank == 0
        self.amp = pick_amp_dtype(cfg.dtype, self.device)
        if self.device.type == "cuda":
            torch.set_float32_matmul_precision("high")  # TF32 for whatever autocast leaves in fp32
        self.peak = gpu_peak_flops(self.device) if self.amp is not None else None
        self.flops_per_token = self.model_cfg.flops_per_token(self.seq_len)
        self.tokens_per_step = cfg.batch_size * cfg.grad_accum * self.seq_len * self.world

        torch.manual_seed(cfg.seed)
        self.model = GPT(self.model_cfg).to(self.device)
        self.train_model: Any = self.model  # compiled and / or wrapped in DDP once training starts
        self.opt = _adamw(self.model, cfg, self.device)
        self.scaler = torch.amp.GradScaler(enabled=self.amp is torch.float16)

        self.start_step = self.step = 0
        self.history: dict[str, list[float]] = {"loss": [], "val_loss": [], "val_bpc": []}
        # Losses and gradient norms stay on the device until a log, evaluation or checkpoint step needs
        # them, so the host queues the next step while the GPU still runs this one (no sync per step).
        self.pending: list[tuple[int, float, Any, Any]] = []
        self.stopped_early = False  # by stop_after: no final model is written
        self.out_of_budget = False  # by max_seconds before the last step: the final model is written
        self.began = self.first_done = self.window_t = time.perf_counter()
        self.window_tokens = 0

    # -- resume

    def resume(self) -> None:
        """Continue from ``out/checkpoint`` when an earlier run left one: weights, optimizer, step, history."""
        import torch

        if self.master:
            recover_dir(self.ckpt_dir)  # a crash while a checkpoint was being swapped in
        self._barrier()
        state = load_checkpoint_config(self.out)
        if state is None:
            return
        from haneul.lm.config import GPTConfig

        _check_same_shape(GPTConfig.from_dict(state["model"]), self.model_cfg, self.ckpt_dir)
        from safetensors.torch import load_file

        weights = load_file(str(self.ckpt_dir / "model.safetensors"))
        if self.model_cfg.tie_embeddings:
            weights["lm_head.weight"] = weights["model.embed_tokens.weight"]
        self.model.load_state_dict(weights)
        extra = torch.load(self.ckpt_dir / "optimizer.pt", map_location=self.device, weights_only=False)
        self.opt.load_state_dict(extra["optimizer"])
        if extra.get("scaler"):
            self.scaler.load_state_dict(extra["scaler"])
        self.start_step = self.step = int(state["step"])
        self.history = state.get("history", self.history)

    # -- the loop

    def train(self) -> None:
        """Step until ``cfg.steps``, the time budget or ``stop_after``; report, evaluate and save on the way."""
        cfg = self.cfg
        self._wrap_for_training()
        self.model.train()
        self.began = self.first_done = self.window_t = time.perf_counter()
        while self.step < cfg.steps:
            lr = lr_at(self.step, cfg)
            loss_sum, grad_norm = self.train_step(lr)
            self.step += 1
            self._time_first_steps()
            self.pending.append((self.step, lr, self._mean_over_ranks(loss_sum / cfg.grad_accum), grad_norm))
            self.window_tokens += self.tokens_per_step
            out_of_time = self._out_of_time()
            interrupted = cfg.stop_after is not None and self.step >= cfg.stop_after
            last = self.step == cfg.steps
            evaluate_now = self.step % cfg.eval_every == 0 or last or out_of_time
            save_now = self.step % cfg.save_every == 0 or last or out_of_time or interrupted
            if self.step % cfg.log_every == 0 or evaluate_now or save_now:
                self._report(evaluate_now)
            if save_now:
                self.save_checkpoint()
            if interrupted and not last:
                self.stopped_early = True
                break
            if out_of_time:
                # a spent time budget ends the run like its last step: the model is written and usable
                self.out_of_budget = not last
                break
        self.flush()

    def train_step(self, lr: float) -> tuple[Any, Any]:
        """One optimizer step at ``lr`` over ``grad_accum`` micro-batches of every rank. Returns the sum of
        the micro-batch losses and the gradient norm before clipping, both still on the device."""
        import torch

        cfg = self.cfg
        for group in self.opt.param_groups:
            group["lr"] = lr
        loss_sum: Any = 0.0
        for micro in range(cfg.grad_accum):
            # the windows of a step depend on (seed, step) alone, which is what makes a resume exact
            index = (self.step * cfg.grad_accum + micro) * self.world + self.rank
            x, y = self.data.batch(index, cfg.batch_size, self.seq_len, cfg.seed)
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            # DDP averages gradients over the ranks once, on the last micro-batch
            last = micro == cfg.grad_accum - 1
            with self.train_model.no_sync() if self.world > 1 and not last else contextlib.nullcontext():
                with self._autocast():
                    _, loss = self.train_model(x, y)
                self.scaler.scale(loss / cfg.grad_accum).backward()
            loss_sum = loss_sum + loss.detach().float()
        self.scaler.unscale_(self.opt)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.scaler.step(self.opt)
        self.scaler.update()
        self.opt.zero_grad(set_to_none=True)
        return loss_sum, grad_norm

    def _time_first_steps(self) -> None:
        """Start the speed clock after the first step, which pays for warm-up and compilation; with
        ``fit_to_budget``, shorten the run once five more steps have measured its speed."""
        cfg = self.cfg
        if self.step == self.start_step + 1:
            self._sync()
            self.first_done = time.perf_counter()
        if cfg.fit_to_budget and cfg.max_seconds is not None and self.step == self.start_step + 6:
            self._sync()
            per_step = (time.perf_counter() - self.first_done) / 5
            # keep ~15 % of the budget for evaluations and checkpoints
            left = cfg.max_seconds * 0.85 - (time.perf_counter() - self.began)
            affordable = int(self._agree(self.step + int(left / per_step), "MIN"))
            if affordable < cfg.steps:
                cfg.steps = max(affordable, self.step)
                cfg.eval_every = min(cfg.eval_every, max(cfg.steps // 10, 1))
                cfg.warmup = min(cfg.warmup, max(cfg.steps // 10, 1))

    def _out_of_time(self) -> bool:
        cfg = self.cfg
        if cfg.max_seconds is None:
            return False
        spent = time.perf_counter() - self.began > cfg.max_seconds
        return bool(self._agree(float(spent), "MAX"))  # every rank stops at the same step

    # -- reporting and evaluation

    def _report(self, evaluate_now: bool) -> None:
        """Report the steps held back so far; the last one also carries throughput (on a log step or the
        last step) and validation figures (when ``evaluate_now``)."""
        cfg = self.cfg
        extra: dict[str, float] = {}
        if self.step % cfg.log_every == 0 or self.step == cfg.steps:
            extra.update(self._throughput())
        if evaluate_now:
            val_loss, val_bpc = self.evaluate()
            if not math.isnan(val_loss):
                extra.update(val_loss=val_loss, val_bpc=val_bpc)
                self.history["val_loss"].append(val_loss)
                self.history["val_bpc"].append(val_bpc)
        self.flush(extra)

    def _throughput(self) -> dict[str, float]:
        """Tokens per second (and MFU on a known GPU) since the last time this was measured."""
        self.pending[-1][2].item()  # wait for the GPU so the window's time is the work's time
        now = time.perf_counter()
        figures = {"tokens_per_s": self.window_tokens / max(now - self.window_t, 1e-9)}
        if self.peak:
            figures["mfu"] = figures["tokens_per_s"] * self.flops_per_token / self.world / self.peak
        self.window_t, self.window_tokens = now, 0
        return figures

    def evaluate(self) -> tuple[float, float]:
        """Validation loss and bits per character; the model is back in train mode afterwards."""
        with self._autocast():
            result = evaluate_split(self.model, self.data, self.cfg.batch_size, self.seq_len, self.cfg.eval_batches)
        self.model.train()
        return result

    def flush(self, extra: dict[str, float] | None = None) -> None:
        """Move the held-back losses to the history and report them, ``extra`` with the last."""
        for i, (at, lr, loss_t, norm_t) in enumerate(self.pending):
            metrics = {"loss": float(loss_t), "lr": lr, "grad_norm": float(norm_t)}
            self.history["loss"].append(metrics["loss"])
            if i == len(self.pending) - 1 and extra:
                metrics.update(extra)
            if self.master:
                haneul.report(step=at, **{k: v for k, v in metrics.items() if math.isfinite(v)})
                if self.on_step is not None:
                    self.on_step(at, metrics)
        self.pending.clear()

    # -- saving

    def save_checkpoint(self) -> None:
        """Replace ``out/checkpoint`` with this step's weights, optimizer and history (rank 0 only)."""
        import torch

        if not self.master:
            return
        trainer = {"step": self.step, "model": self.model_cfg.to_dict(), "train": asdict(self.cfg),
                   "history": self.history}  # fmt: skip
        with atomic_dir(self.ckpt_dir) as tmp:
            self.model.save_pretrained(tmp)
            scaler = self.scaler.state_dict() if self.scaler.is_enabled() else None
            torch.save({"optimizer": self.opt.state_dict(), "scaler": scaler}, tmp / "optimizer.pt")
            (tmp / "trainer.json").write_text(json.dumps(trainer) + "\n")
            self._copy_tokenizer(tmp)  # so that the checkpoint can be deployed and served as it is
        if haneul.session_id() is not None:
            haneul.save("last", self.ckpt_dir)

    def _copy_tokenizer(self, dest: Path) -> None:
        tok_dir = Path(self.data.meta["tokenizer"])
        for name in TOKENIZER_FILES:
            if (tok_dir / name).is_file():
                shutil.copyfile(tok_dir / name, dest / name)

    def finish(self) -> None:
        """Write ``out/model`` (weights, config and tokenizer, ready to serve) unless ``stop_after`` cut
        the run short, and let every rank end together."""
        if self.master and not self.stopped_early:
            h = self.history
            summary = {"steps": self.step, "val_loss": h["val_loss"][-1:] or None, "val_bpc": h["val_bpc"][-1:] or None}
            with atomic_dir(self.out / FINAL) as tmp:
                extra = {"training": summary, "tokenizer_kind": self.data.meta.get("tokenizer_kind")}
                self.model.save_pretrained(tmp, extra=extra)
                self._copy_tokenizer(tmp)
            if haneul.session_id() is not None:  # the finished model, ready for `haneul deploy SESSION --checkpoint model`
                haneul.save(FINAL, self.out / FINAL)
        if self.master:
            haneul.flush()
        self._barrier()

    def summary(self) -> dict[str, Any]:
        h, peak, world = self.history, self.peak, self.world
        # steady-state rate: the steps after the first (which compiles and warms up), evaluations included
        done = max(self.step - self.start_step - 1, 0)
        rate = self.tokens_per_step * done / max(time.perf_counter() - self.first_done, 1e-9)
        return {
            "step": self.step,
            "finished": not self.stopped_early,
            "out_of_time": self.out_of_budget,
            "loss": h["loss"],
            "val_loss": h["val_loss"][-1] if h["val_loss"] else None,
            "val_bpc": h["val_bpc"][-1] if h["val_bpc"] else None,
            "params": self.model.num_params(),
            "seconds": time.perf_counter() - self.began,
            "tokens_per_step": self.tokens_per_step,
            "tokens_per_s": rate,
            "flops_per_token": self.flops_per_token,
            "peak_flops": peak,
            "mfu": rate * self.flops_per_token / world / peak if peak else None,
            "checkpoint": str(self.ckpt_dir),
            "model_dir": str(self.out / FINAL) if not self.stopped_early else None,
        }

    # -- devices and ranks

    def _wrap_for_training(self) -> None:
        import torch

        if self.cfg.compile:
            self.train_model = torch.compile(self.model)
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device] if self.device.type == "cuda" else None
            self.train_model = DistributedDataParallel(self.train_model, device_ids=ids)

    def _autocast(self) -> Any:
        import torch

        if self.amp is None:
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=self.amp)

    def _sync(self) -> None:
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _agree(self, value: float, op: str) -> float:
        """``value`` reduced over the ranks with ``op`` (``MIN`` or ``MAX``), so every rank decides alike."""
        if self.world == 1:
            return value
        import torch
        import torch.distributed as dist

        t = torch.tensor([float(value)], device=self.device)
        dist.all_reduce(t, op=getattr(dist.ReduceOp, op))
        return t.item()

    def _mean_over_ranks(self, loss: Any) -> Any:
        if self.world == 1:
            return loss
        import torch.distributed as dist

        loss = loss.reshape(1)
        dist.all_reduce(loss)
        return loss[0] / self.world

    def _barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()


def _model_config(cfg: TrainConfig, meta: dict[str, Any]) -> tuple[Any, int]:
    """The preset with ``cfg.model``'s overrides, sized to the data's vocabulary, and the window length."""
    from haneul.lm.config import GPTConfig

    model_cfg = GPTConfig.from_name(cfg.preset, vocab_size=meta["vocab_size"], **cfg.model)
    seq_len = cfg.seq_len or model_cfg.max_seq_len
    if seq_len > model_cfg.max_seq_len:
        raise InvalidInput(f"--seq-len {seq_len} exceeds the model's context window {model_cfg.max_seq_len}; lower it")
    eos = meta.get("eos_id", 0)
    return replace(model_cfg, bos_token_id=eos, eos_token_id=eos), seq_len


def _join_process_group(device_name: str) -> tuple[int, int, Any]:
    """``(world size, rank, device)``; under ``torchrun`` (WORLD_SIZE > 1) also joins the process group."""
    import torch

    world = int(os.environ.get("WORLD_SIZE", 1))
    rank = int(os.environ.get("RANK", 0))
    device = pick_device(device_name)
    if world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            torch.cuda.set_device(device)
    return world, rank, device


def _adamw(model: Any, cfg: TrainConfig, device: Any) -> Any:
    """AdamW with weight decay on the matrices only (not on norms and biases)."""
    import torch

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(cfg.beta1, cfg.beta2),
        fused=device.type == "cuda",
    )


def _check_same_shape(saved: Any, current: Any, ckpt_dir: Path) -> None:
    ours, theirs = _shape(current), _shape(saved)
    if theirs == ours:
        return
    detail = ", ".join(f"{k} {v} (checkpoint) vs {ours[k]} (this run)" for k, v in theirs.items() if ours[k] != v)
    raise Conflict(
        f"checkpoint in {ckpt_dir} has another shape: {detail}; use the same --preset/--data or a new --out folder"
    )
