"""AlphaTuning against its baselines on one task, in one run: trainable parameters, weight bytes, metric, time.

AlphaTuning (section 4, tables 2-4) compares scale-only tuning of a BCQ-quantised LM with full
fine-tuning, LoRA, and LoRA followed by post-training quantisation. This script runs, in one process,
on the same training batches (same data, order and number of steps) and the same held-out split:

==================  ===========================================================================
``fp32``            the unquantised model, no tuning
``full_ft``         full fine-tuning in fp32 (every parameter trained)
``lora``            LoRA (PEFT), r = 8 on every projection the quantiser replaces, merged after
``lora_bcq``        the merged LoRA model, then BCQ post-training quantisation
``lora_rtn``        the merged LoRA model, then round-to-nearest uniform quantisation (per-group
                    scale and zero point) at the same bits and group size
``ptq_bcq``         BCQ post-training quantisation of the untuned model, no tuning
``alpha_1``         AlphaTuning: BCQ, then train only the first scale α₁ of every group
``alpha_all``       AlphaTuning: BCQ, then train every α
==================  ===========================================================================

What is counted. *Trainable parameters*: the values the optimiser updates (tied embedding / LM head
once); the two LoRA-then-PTQ rows repeat LoRA's count and training time, since they quantise the one
LoRA run. *Weight bytes*: ``layers`` are the weight matrices of the Linear layers that the quantiser
replaces (every projection in the transformer blocks; not the LM head) — dense at 4 bytes per value,
BCQ as packed 1-bit codes + α (and offsets) at fp16, RTN as packed q-bit codes + q-bit zero points +
fp16 scales; ``rest`` is everything else (embeddings, norms, biases, an untied LM head) at 4 bytes for
the dense rows and at 2 bytes (fp16) for the quantised rows. The quantised rows are evaluated with
fp32 scales; their byte counts assume fp16 storage, as the paper does. *Metric*: accuracy on the
held-out rows (classification as generation), perplexity of the held-out text (LM adaptation), or
BLEU of greedy generations for data-to-text (``--task d2t``; chrF, slot error rate and reference
perplexity are recorded beside it — the paper's E2E / WebNLG / DART task, here on the Korean E2E-style
set :mod:`haneul.quant.d2t_data` writes, or an E2E CSV given with ``--data``).
*Training seconds*: wall time of the optimiser loop alone; on a shared CPU read the ratio to full
fine-tuning measured in the same run, not the absolute time.

    .venv/bin/python benchmarks/bench_quant_methods.py --quick
    .venv/bin/python benchmarks/bench_quant_methods.py --model ko-tiny --task nsmc --bits 3 4 --steps 150

``--quick`` builds a tiny random Llama from its config, a byte-level tokenizer and a synthetic
Korean review task (under a minute; the test suite runs it). Results go to
``benchmarks/results/quant_methods.json`` (``quant_methods_quick.json`` for ``--quick``), rewritten
atomically after every method, and a Markdown table is printed at the end.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

METHODS = ("fp32", "full_ft", "lora", "lora_bcq", "lora_rtn", "ptq_bcq", "alpha_1", "alpha_all")
LABELS = {
    "fp32": "fp32, no tuning",
    "full_ft": "full fine-tuning (fp32)",
    "lora": "LoRA r=8, merged (fp32)",
    "lora_bcq": "LoRA → BCQ PTQ",
    "lora_rtn": "LoRA → RTN PTQ",
    "ptq_bcq": "BCQ PTQ, no tuning",
    "alpha_1": "AlphaTuning, train α₁",
    "alpha_all": "AlphaTuning, train all α",
}
QUANTISED = {"lora_bcq", "lora_rtn", "ptq_bcq", "alpha_1", "alpha_all"}
# Learning rates: AlphaTuning trains a few scales and needs a larger step than full fine-tuning (as in
# the paper); LoRA sits between. The tiny random model of --quick learns from scratch, hence larger.
DEFAULT_LR = {"full_ft": 1e-4, "lora": 1e-3, "alpha": 1e-3}
QUICK_LR = {"full_ft": 3e-3, "lora": 1e-2, "alpha": 1e-2}
DEFAULTS: dict[str, Any] = {"steps": 200, "block": 128, "rounds": 15, "group_size": "64"}
# quick nsmc prompts need 160 tokens: the synthetic reviews end with their sentiment word and reach
# 128 bytes, so a shorter limit would cut off the very word the label depends on
QUICK_DEFAULTS: dict[str, Any] = {"steps": 40, "block": 64, "rounds": 2, "group_size": "32"}
QUICK_NSMC_BLOCK = 160
# higher-is-better metrics and how close (in their own units) AlphaTuning must come to full fine-tuning
HIGHER_IS_BETTER = {"accuracy": 0.01, "bleu": 1.0}
LORA_RANK = 8
LORA_ALPHA = 16


# -- data -------------------------------------------------------------------------------------------
@dataclass
class TaskData:
    """Tokenised training examples and the held-out split with its metric."""

    name: str
    metric: str  # "accuracy", "perplexity" or "bleu"
    train: list[tuple[list[int], list[int]]]
    # the metric, or a dict holding it and further scores (recorded in the row's "metrics")
    evaluate: Callable[[nn.Module], float | dict[str, float]]
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def higher_is_better(self) -> bool:
        return self.metric in HIGHER_IS_BETTER


def pad_id(tokenizer: Any) -> int:
    for attr in ("pad_token_id", "eos_token_id"):
        value = getattr(tokenizer, attr, None)
        if value is not None:
            return int(value)
    return 0


def load_model(spec: str) -> tuple[nn.Module, Any, str]:
    """(fp32 model in eval mode, tokenizer, where it came from) for ``--model``."""
    from haneul.errors import InvalidInput
    from haneul.quant.model import is_quantized_base, load_source

    path = Path(spec).expanduser()
    if not path.is_dir() and spec not in {"smollm2-135m", "smollm2"}:
        from haneul.lm.registry import resolve

        source = resolve(spec)  # a registered haneul model such as ko-tiny; lists the choices if unknown
        if source.kind != "folder":
            raise InvalidInput(
                f"model {spec!r} is a {source.kind} model; pass a local model folder to --model"
            )
        path = Path(source.location)
        spec = str(path)
    if path.is_dir() and is_quantized_base(path):
        raise InvalidInput(f"{path} is already a quantised base; pass the unquantised model to --model")
    model, tokenizer, _ = load_source(spec)  # a haneul folder comes with its morpheme-aware tokenizer
    if tokenizer is None:
        raise InvalidInput(f"{spec} has no tokenizer; save one beside the model (tokenizer.save_pretrained)")
    return model.float().eval(), tokenizer, spec


def shared_data() -> Path:
    return Path(os.environ.get("HANEUL_TEST_DATA", ROOT.parent / "shared" / "data"))


def quick_task(task: str, tokenizer: Any, block: int, lang: str = "ko") -> TaskData:
    """A synthetic Korean review task: label = the sentence's polarity, or the text itself for LM."""
    from haneul.lm.testing import tiny_corpus
    from haneul.quant.tasks import SentimentTask, lm_blocks, perplexity

    train_text, held_text = tiny_corpus(240, seed=0), tiny_corpus(48, seed=1)
    source = {
        "kind": "synthetic (haneul.lm.testing.tiny_corpus)",
        "train": len(train_text),
        "eval": len(held_text),
    }
    if task == "d2t":
        train_rows, held_rows = generated_d2t(120, 16, seed=0, lang=lang)
        source = {"kind": "generated (haneul.quant.d2t_data)", "lang": lang}
        return d2t_task(tokenizer, block, train_rows, held_rows, source)
    if task == "nsmc":
        # tiny_corpus alternates positive (even index) and negative sentences
        label = [(t, 1 - i % 2) for i, t in enumerate(train_text)]
        held = [(t, 1 - i % 2) for i, t in enumerate(held_text)]
        spec = SentimentTask(max_length=block)
        return TaskData(
            "nsmc",
            "accuracy",
            spec.train_examples(tokenizer, label),
            lambda m: spec.accuracy(m, tokenizer, held),
            source,
        )
    held_blocks = lm_blocks(tokenizer, held_text, block=block)
    return TaskData(
        "text",
        "perplexity",
        lm_blocks(tokenizer, train_text, block=block),
        lambda m: perplexity(m, held_blocks, pad_id=pad_id(tokenizer)),
        source,
    )


def generated_d2t(n_train: int, n_eval: int, seed: int, lang: str = "ko") -> tuple[list[Any], list[Any]]:
    """(mr, text) rows of the generated set: the train split, and the test split with seed + 1."""
    from haneul.quant.d2t_data import generate

    def rows(n: int, split_seed: int, split: str) -> list[Any]:
        return [(r["mr"], r["text"]) for r in generate(n, seed=split_seed, split=split, lang=lang)]

    return rows(n_train, seed, "train"), rows(n_eval, seed + 1, "test")


def d2t_task(tokenizer: Any, block: int, rows: list[Any], held: list[Any], source: dict[str, Any]) -> TaskData:
    """Data-to-text scored by BLEU (chrF, slot errors and perplexity recorded beside it)."""
    from haneul.quant.tasks import DataToTextTask

    spec = DataToTextTask(max_prompt=block, max_target=block)
    return TaskData(
        "d2t",
        "bleu",
        spec.train_examples(tokenizer, rows),
        lambda m: spec.evaluate(m, tokenizer, held),
        {**source, "train_rows": len(rows), "eval_rows": len(held)},
    )


def real_task(args: argparse.Namespace, tokenizer: Any) -> TaskData:
    from haneul.quant.tasks import SentimentTask, lm_blocks, perplexity, read_nsmc, read_texts

    data = shared_data()
    if args.task == "d2t":
        from haneul.quant.tasks import read_d2t

        if args.data is None:  # the generated set: test MRs name places never seen in training
            rows, held = generated_d2t(args.rows, args.eval_rows, seed=args.seed, lang=args.lang)
            source = {"kind": "generated (haneul.quant.d2t_data)", "lang": args.lang}
            return d2t_task(tokenizer, args.block, rows, held, source)
        if args.eval_data is None:
            raise SystemExit("--task d2t with --data needs --eval-data (an E2E CSV or JSONL held-out file)")
        rows = read_d2t(args.data, limit=args.rows, seed=args.seed)
        held = read_d2t(args.eval_data, limit=args.eval_rows, seed=args.seed + 1)
        return d2t_task(tokenizer, args.block, rows, held, {"train": str(args.data), "eval": str(args.eval_data)})
    if args.task == "nsmc":
        train_path = args.data or data / "nsmc" / "ratings_train.txt.gz"
        eval_path = args.eval_data or data / "nsmc" / "ratings_test.txt.gz"
        rows = read_nsmc(train_path, limit=args.rows, seed=args.seed)
        held = read_nsmc(eval_path, limit=args.eval_rows, seed=args.seed + 1)
        spec = SentimentTask(max_length=args.block)
        source = {
            "train": str(train_path),
            "eval": str(eval_path),
            "train_rows": len(rows),
            "eval_rows": len(held),
        }
        return TaskData(
            "nsmc",
            "accuracy",
            spec.train_examples(tokenizer, rows),
            lambda m: spec.accuracy(m, tokenizer, held),
            source,
        )
    train_path = args.data or data / "ko-reviews" / "reviews.jsonl.gz"
    if args.eval_data is not None:
        lines = read_texts(train_path, limit=args.rows)
        held_lines = read_texts(args.eval_data, limit=args.eval_rows)
    else:  # the lines after the training lines are the held-out text
        lines = read_texts(train_path, limit=args.rows + args.eval_rows)
        lines, held_lines = lines[: args.rows], lines[args.rows :]
    held_blocks = lm_blocks(tokenizer, held_lines, block=args.block)
    source = {
        "train": str(train_path),
        "eval": str(args.eval_data or train_path),
        "train_lines": len(lines),
        "eval_lines": len(held_lines),
        "eval_blocks": len(held_blocks),
    }
    return TaskData(
        "text",
        "perplexity",
        lm_blocks(tokenizer, lines, block=args.block),
        lambda m: perplexity(m, held_blocks, pad_id=pad_id(tokenizer)),
        source,
    )


# -- counting -----------------------------------------------------------------------------------------
def quantisable_layers(model: nn.Module) -> dict[str, tuple[int, int]]:
    """``name -> (out, in)`` of the layers quantize_model would replace (Linear / Conv1D, not the head)."""
    from haneul.quant.model import HEAD_NAMES, _is_conv1d

    out: dict[str, tuple[int, int]] = {}
    for name, module in model.named_modules():
        if name.split(".")[-1] in HEAD_NAMES:
            continue
        if isinstance(module, nn.Linear):
            out[name] = (module.out_features, module.in_features)
        elif _is_conv1d(module):
            w = module.weight
            out[name] = (int(w.shape[1]), int(w.shape[0]))
    return out


def unique_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Floating-point state tensors, a tied tensor counted once."""
    seen: set[tuple[int, tuple[int, ...]]] = set()
    out: dict[str, torch.Tensor] = {}
    for name, t in model.state_dict().items():
        key = (t.data_ptr(), tuple(t.shape))
        if key in seen or not t.is_floating_point():
            continue
        seen.add(key)
        out[name] = t
    return out


def dense_bytes(model: nn.Module, layers: dict[str, tuple[int, int]], per_value: int = 4) -> dict[str, int]:
    weights = {f"{n}.weight" for n in layers}
    state = unique_state(model)
    linear = sum(t.numel() for n, t in state.items() if n in weights) * per_value
    rest = sum(t.numel() for n, t in state.items() if n not in weights) * per_value
    return {"layers": linear, "rest": rest, "total": linear + rest}


def bcq_bytes(model: nn.Module) -> dict[str, int]:
    from haneul.quant.model import model_weight_bytes

    sizes = model_weight_bytes(model, scale_bytes=2, full_bytes=2)
    return {"layers": sizes["quantised"], "rest": sizes["full_precision"], "total": sizes["total"]}


def rtn_bytes(model: nn.Module, stats: dict[str, dict[str, Any]]) -> dict[str, int]:
    weights = {f"{n}.weight" for n in stats}
    linear = sum(int(s["bytes"]) for s in stats.values())
    rest = sum(t.numel() for n, t in unique_state(model).items() if n not in weights) * 2
    return {"layers": linear, "rest": rest, "total": linear + rest}


def count_trainable(params: Iterable[nn.Parameter]) -> int:
    return sum(p.numel() for p in {id(p): p for p in params}.values())


# -- training -----------------------------------------------------------------------------------------
def warmup_steps(steps: int) -> int:
    """Linear warm-up length shared by every trained method: a tenth of the steps, 1 to 10."""
    return max(min(10, steps // 10), 1)


def train(
    model: nn.Module,
    params: Sequence[nn.Parameter],
    batches: Iterable[dict[str, torch.Tensor]],
    steps: int,
    lr: float,
    tag: str,
) -> dict[str, Any]:
    """The optimiser loop of alphatune (AdamW, linear warm-up and decay, clipping at 1) on ``params``."""
    import haneul
    from haneul.quant.alphatuning import train_parameters

    def report(step: int, loss: float, step_lr: float) -> None:
        if math.isfinite(loss) and (step % 10 == 0 or step == steps - 1):
            haneul.report(step=step, **{f"{tag}_loss": loss, f"{tag}_lr": step_lr})

    losses, seconds = train_parameters(
        model,
        params,
        batches,
        steps=steps,
        lr=lr,
        warmup_steps=warmup_steps(steps),
        grad_clip=1.0,
        on_step=report,
    )
    return {"seconds": seconds, "final_loss": losses[-1] if losses else float("nan"), "steps": len(losses)}


def lora_targets(model: nn.Module, layers: dict[str, tuple[int, int]]) -> tuple[list[str], bool]:
    """Leaf names of the quantisable projections, and whether they are GPT-2 ``Conv1D`` (fan-in first)."""
    from haneul.quant.model import _is_conv1d

    names = sorted({n.split(".")[-1] for n in layers})
    conv = any(_is_conv1d(model.get_submodule(n)) for n in layers)
    return names, conv


# -- the run ------------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    from haneul.quant.d2t_data import LANGS
    from haneul.quant.tasks import TASKS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--model",
        default="smollm2-135m",
        help="'smollm2-135m', a haneul or Hugging Face model folder, or a registered haneul model name",
    )
    p.add_argument(
        "--task",
        default="nsmc",
        choices=TASKS,
        help="nsmc: sentiment as generation (accuracy); text: LM adaptation (perplexity); "
        "d2t: E2E-style data-to-text (BLEU, chrF, slot error rate)",
    )
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="training data (default: the shared NSMC train set / Korean review corpus / "
        "the generated Korean data-to-text set)",
    )
    p.add_argument(
        "--eval-data",
        type=Path,
        default=None,
        help="held-out data (default: NSMC test set / the lines after the training lines)",
    )
    p.add_argument(
        "--lang",
        default="ko",
        choices=LANGS,
        help="language of the generated data-to-text set (d2t without --data): Korean, or English over "
        "E2E's values for an English model such as SmolLM2",
    )
    p.add_argument("--rows", type=int, default=2000, help="training rows (nsmc) or lines (text)")
    p.add_argument("--eval-rows", type=int, default=300, help="held-out rows or lines")
    p.add_argument(
        "--block", type=int, default=None, help="tokens per LM block / longest prompt (default 128; quick 64)"
    )
    p.add_argument(
        "--bits",
        type=int,
        nargs="+",
        default=[3],
        help="bit widths to compare (e.g. 3 4); dense rows run once",
    )
    p.add_argument(
        "--group-size",
        default=None,
        help="'row' or a divisor of every layer's input size (default 64; quick 32)",
    )
    p.add_argument(
        "--offset", action="store_true", help="extended BCQ (one offset per group) for every BCQ row"
    )
    p.add_argument("--rounds", type=int, default=None, help="BCQ refinement rounds (default 15; quick 2)")
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="optimiser steps, the same for every trained method (default 200; quick 40)",
    )
    p.add_argument("--batch-size", type=int, default=8, help="examples per step")
    p.add_argument(
        "--lr-full",
        type=float,
        default=None,
        help=f"full fine-tuning lr (default {DEFAULT_LR['full_ft']}; quick {QUICK_LR['full_ft']})",
    )
    p.add_argument(
        "--lr-lora",
        type=float,
        default=None,
        help=f"LoRA lr (default {DEFAULT_LR['lora']}; quick {QUICK_LR['lora']})",
    )
    p.add_argument(
        "--lr-alpha",
        type=float,
        default=None,
        help=f"AlphaTuning lr (default {DEFAULT_LR['alpha']}; quick {QUICK_LR['alpha']})",
    )
    p.add_argument(
        "--methods", default=",".join(METHODS), help=f"comma-separated subset of {','.join(METHODS)}"
    )
    p.add_argument(
        "--alpha-layers",
        nargs="*",
        default=None,
        help="globs of the layers whose scales AlphaTuning trains, e.g. '*.mlp.*' (default: every layer)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for sampling, batching and initialisation")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: 1 with --quick, else torch's choice)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="result JSON (default benchmarks/results/quant_methods[_quick].json)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="tiny random Llama + synthetic Korean review task, group 32, 2 rounds, 40 steps (< 1 minute)",
    )
    args = p.parse_args(argv)
    defaults = QUICK_DEFAULTS if args.quick else DEFAULTS
    if args.quick and args.task in ("nsmc", "d2t"):
        defaults = {**defaults, "block": QUICK_NSMC_BLOCK}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    lrs = QUICK_LR if args.quick else DEFAULT_LR
    args.lr = {
        "full_ft": args.lr_full or lrs["full_ft"],
        "lora": args.lr_lora or lrs["lora"],
        "alpha": args.lr_alpha or lrs["alpha"],
    }
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    import haneul
    from haneul.errors import InvalidInput
    from haneul.quant.alphatuning import AlphaTuneConfig, alphatune
    from haneul.quant.bcq import check_bits, parse_group_size, resolve_group_size
    from haneul.quant.model import quantize_model
    from haneul.quant.rtn import rtn_quantize_model
    from haneul.quant.tasks import batches
    from haneul.quant.testing import byte_tokenizer, tiny_llama

    args = parse_args(argv)
    wanted = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in wanted if m not in METHODS]
    if unknown:
        raise InvalidInput(f"--methods {','.join(unknown)} unknown; choose from {','.join(METHODS)}")
    for bits in args.bits:
        check_bits(bits)
    group = parse_group_size(args.group_size)
    # the tiny --quick model runs fastest on one thread; more threads only spin on a busy CPU
    threads = args.threads or (1 if args.quick else None)
    if threads:
        torch.set_num_threads(threads)
    out_path = args.out or RESULTS / ("quant_methods_quick.json" if args.quick else "quant_methods.json")

    t0 = time.perf_counter()
    if args.quick:
        base, tokenizer = tiny_llama(seed=args.seed), byte_tokenizer()
        model_name = "tiny-llama (random, --quick)"
        task = quick_task(args.task, tokenizer, args.block, args.lang)
    else:
        base, tokenizer, model_name = load_model(args.model)
        task = real_task(args, tokenizer)
    setup_s = time.perf_counter() - t0
    for p in base.parameters():
        p.requires_grad_(False)
    layers = quantisable_layers(base)
    if QUANTISED.intersection(wanted):  # refuse a bad group size before any training
        for name, (_, in_features) in layers.items():
            resolve_group_size(group, in_features, name)

    def fresh_batches() -> Iterable[dict[str, torch.Tensor]]:
        return batches(task.train, args.batch_size, args.steps, pad_id=pad_id(tokenizer), seed=args.seed)

    rows: list[dict[str, Any]] = []

    def record(
        method: str,
        model: nn.Module,
        bits: int | None,
        sizes: dict[str, int],
        trainable: int,
        trained: dict[str, Any] | None,
        quantise_s: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        t = time.perf_counter()
        scores = task.evaluate(model)
        metric = scores[task.metric] if isinstance(scores, dict) else scores
        if isinstance(scores, dict):
            extra = {**(extra or {}), "metrics": scores}
        row = {
            "method": method,
            "label": LABELS[method],
            "bits": bits,
            "group_size": (args.group_size if bits else None),
            "trainable_params": trainable,
            "weight_bytes": sizes,
            task.metric: metric,
            "train_seconds": trained["seconds"] if trained else 0.0,
            "final_train_loss": (
                trained["final_loss"] if trained and math.isfinite(trained["final_loss"]) else None
            ),
            "quantise_seconds": quantise_s,
            "eval_seconds": time.perf_counter() - t,
            **(extra or {}),
        }
        rows.append(row)
        if math.isfinite(metric):
            haneul.report(
                step=len(rows), **{f"{method}{'_q' + str(bits) if bits else ''}_{task.metric}": metric}
            )
        write(out_path, args, model_name, task, setup_s, layers, rows)
        q = f" q={bits}" if bits else ""
        print(
            f"{LABELS[method]}{q}: {task.metric} {metric:.4f}  trainable {trainable:,}  "
            f"bytes {sizes['total']:,}  train {row['train_seconds']:.1f}s",
            file=sys.stderr,
            flush=True,
        )

    dense = dense_bytes(base, layers)
    need_lora = any(m in wanted for m in ("lora", "lora_bcq", "lora_rtn"))
    need_ptq = any(m in wanted for m in ("ptq_bcq", "alpha_1", "alpha_all"))

    if "fp32" in wanted:
        record("fp32", base, None, dense, 0, None)

    if "full_ft" in wanted:
        torch.manual_seed(args.seed)
        model = copy.deepcopy(base)
        params = list(model.parameters())
        for p in params:
            p.requires_grad_(True)
        trained = train(model, params, fresh_batches(), args.steps, args.lr["full_ft"], "full_ft")
        for p in params:
            p.requires_grad_(False)
        record(
            "full_ft", model, None, dense, count_trainable(params), trained, extra={"lr": args.lr["full_ft"]}
        )
        del model, params

    merged = None
    if need_lora:
        from peft import LoraConfig, get_peft_model

        torch.manual_seed(args.seed)
        names, conv = lora_targets(base, layers)
        config = LoraConfig(
            r=LORA_RANK,
            lora_alpha=LORA_ALPHA,
            lora_dropout=0.0,
            target_modules=names,
            fan_in_fan_out=conv,
            bias="none",
        )
        with warnings.catch_warnings():  # PEFT calls a transformers method that transformers deprecates
            warnings.simplefilter("ignore", FutureWarning)
            peft_model = get_peft_model(copy.deepcopy(base), config)
        params = [p for p in peft_model.parameters() if p.requires_grad]
        lora_trainable = count_trainable(params)
        lora_run = train(peft_model, params, fresh_batches(), args.steps, args.lr["lora"], "lora")
        merged = peft_model.merge_and_unload()
        merged.eval()
        for p in merged.parameters():
            p.requires_grad_(False)
        del peft_model, params
        lora_extra = {
            "lr": args.lr["lora"],
            "lora_rank": LORA_RANK,
            "lora_alpha": LORA_ALPHA,
            "lora_targets": names,
        }
        if "lora" in wanted:
            record(
                "lora", merged, None, dense_bytes(merged, layers), lora_trainable, lora_run, extra=lora_extra
            )

    for bits in args.bits:
        if merged is not None and "lora_bcq" in wanted:
            model = copy.deepcopy(merged)
            report = quantize_model(
                model, bits=bits, group_size=group, rounds=args.rounds, offset=args.offset
            )
            record(
                "lora_bcq",
                model,
                bits,
                bcq_bytes(model),
                lora_trainable,
                lora_run,
                report.seconds,
                {**lora_extra, "mean_layer_rel_error": report.mean_rel_error, "offset": args.offset},
            )
            del model
        if merged is not None and "lora_rtn" in wanted:
            model = copy.deepcopy(merged)
            t = time.perf_counter()
            stats = rtn_quantize_model(model, bits=bits, group_size=group)
            rtn_s = time.perf_counter() - t
            mean_err = sum(float(s["rel_error"]) for s in stats.values()) / max(len(stats), 1)
            record(
                "lora_rtn",
                model,
                bits,
                rtn_bytes(model, stats),
                lora_trainable,
                lora_run,
                rtn_s,
                {**lora_extra, "mean_layer_rel_error": mean_err},
            )
            del model
        if not need_ptq:
            continue
        quantised = copy.deepcopy(base)
        report = quantize_model(
            quantised, bits=bits, group_size=group, rounds=args.rounds, offset=args.offset
        )
        ptq_extra = {"mean_layer_rel_error": report.mean_rel_error, "offset": args.offset}
        if "ptq_bcq" in wanted:
            record("ptq_bcq", quantised, bits, bcq_bytes(quantised), 0, None, report.seconds, ptq_extra)
        for method, k in (("alpha_1", 1), ("alpha_all", "all")):
            if method not in wanted:
                continue
            torch.manual_seed(args.seed)
            model = copy.deepcopy(quantised)
            config = AlphaTuneConfig(
                train_alpha=k,
                layers=tuple(args.alpha_layers) if args.alpha_layers else None,
                steps=args.steps,
                lr=args.lr["alpha"],
                warmup_steps=warmup_steps(args.steps),
            )
            result = alphatune(model, fresh_batches(), config)
            trained = {"seconds": result["seconds"], "final_loss": result["final_loss"]}
            record(
                method,
                model,
                bits,
                bcq_bytes(model),
                result["trainable_params"],
                trained,
                report.seconds,
                {**ptq_extra, "lr": args.lr["alpha"], "train_alpha": k, "alpha_layers": args.alpha_layers},
            )
            del model
        del quantised

    result = write(out_path, args, model_name, task, setup_s, layers, rows, done=True)
    print(markdown(result))
    return result


def targets(rows: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    """The issue's targets, per bit width: AlphaTuning near full fine-tuning and above LoRA → BCQ."""
    by = {(r["method"], r["bits"]): r[metric] for r in rows}
    full = by.get(("full_ft", None))
    out: dict[str, Any] = {}
    for bits in sorted({r["bits"] for r in rows if r["bits"]}):
        alphas = [by[(m, bits)] for m in ("alpha_1", "alpha_all") if (m, bits) in by]
        if not alphas:
            continue
        higher = metric in HIGHER_IS_BETTER
        best = max(alphas) if higher else min(alphas)
        entry: dict[str, Any] = {"best_alphatuning": best}
        if full is not None:
            if higher:  # within 1 accuracy point / 1 BLEU point
                entry["within_target_of_full_ft"] = best >= full - HIGHER_IS_BETTER[metric]
            else:  # within 5 % perplexity
                entry["within_target_of_full_ft"] = best <= full * 1.05
        lora_bcq = by.get(("lora_bcq", bits))
        if lora_bcq is not None:
            entry["better_than_lora_bcq"] = best > lora_bcq if higher else best < lora_bcq
        out[f"q{bits}"] = entry
    return out


def write(
    path: Path,
    args: argparse.Namespace,
    model_name: str,
    task: TaskData,
    setup_s: float,
    layers: dict[str, tuple[int, int]],
    rows: list[dict[str, Any]],
    done: bool = False,
) -> dict[str, Any]:
    from haneul.io import atomic_write_text

    fp32_layer_bytes = sum(o * i for o, i in layers.values()) * 4
    for row in rows:
        row["layers_vs_fp32"] = fp32_layer_bytes / max(row["weight_bytes"]["layers"], 1)
    full = next((r for r in rows if r["method"] == "full_ft"), None)
    for row in rows:
        row["train_seconds_vs_full_ft"] = (
            row["train_seconds"] / full["train_seconds"]
            if full and full["train_seconds"] > 0 and row["train_seconds"] > 0
            else None
        )
    result = {
        "benchmark": "quant_methods",
        "complete": done,
        "model": model_name,
        "task": task.name,
        "metric": task.metric,
        "higher_is_better": task.higher_is_better,
        "data": task.source,
        "settings": {
            "bits": args.bits,
            "group_size": args.group_size,
            "offset": args.offset,
            "rounds": args.rounds,
            "steps": args.steps,
            "batch_size": args.batch_size,
            "block": args.block,
            "lr": args.lr,
            "seed": args.seed,
            "quick": args.quick,
            "train_examples": len(task.train),
        },
        "quantised_layers": len(layers),
        "quantised_layer_params": sum(o * i for o, i in layers.values()),
        "counted": (
            "layers = weight matrices of the Linear layers the quantiser replaces (not the LM head): dense 4 B/value; "
            "BCQ packed codes + alpha (+ offsets) at fp16; RTN packed q-bit codes + q-bit zero points + fp16 scales. "
            "rest = embeddings, norms, biases, untied head: 4 B/value for dense rows, 2 B (fp16) for quantised rows. "
            "Trainable params count a tied tensor once; the LoRA->PTQ rows repeat LoRA's count and training time."
        ),
        "setup_seconds": setup_s,
        "device": f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)",
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "note": "training times are wall-clock on a possibly shared CPU: compare train_seconds_vs_full_ft (same run)",
        "rows": rows,
        "targets": targets(rows, task.metric),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return result


def markdown(result: dict[str, Any]) -> str:
    metric = result["metric"]
    lines = [
        f"{result['task']} on {result['model']} — {metric} on the held-out split "
        f"({'higher' if result['higher_is_better'] else 'lower'} is better), "
        f"group {result['settings']['group_size']}, {result['settings']['steps']} steps",
        "",
        f"| method | q | trainable params | weight bytes: layers + rest = total | layers vs fp32 | {metric} | train s | train s vs full FT |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        b = r["weight_bytes"]
        ratio = r["train_seconds_vs_full_ft"]
        lines.append(
            f"| {r['label']} | {r['bits'] or '–'} | {r['trainable_params']:,} | "
            f"{b['layers']:,} + {b['rest']:,} = {b['total']:,} | {r['layers_vs_fp32']:.2f}× | {r[metric]:.4f} | "
            f"{r['train_seconds']:.1f} | {'–' if ratio is None else f'{ratio:.2f}×'} |"
        )
    lines += ["", f"Counted: {result['counted']}"]
    for key, entry in result["targets"].items():
        lines.append(f"Targets at {key}: {json.dumps(entry)}")
    return "\n".join(lines)


if __name__ == "__main__":
    from haneul.errors import HaneulError

    try:
        main()
    except HaneulError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
