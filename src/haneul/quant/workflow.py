"""The AlphaTuning workflow end to end: quantise a model once, adapt it to a task, score it, keep a tiny file.

:func:`quantize_base` is the post-training quantisation step (section 3.1): BCQ on every Linear layer,
saved as the shared base folder. :func:`alphatune_task` is the whole of section 3.2 for one task: load
(or reuse) the base, read the task data and hold some out, score the base, train only the chosen
scales, score again, and write the per-task scale file next to the base (``OUT/base``,
``OUT/tasks/NAME.safetensors``). :func:`evaluate_task` scores a model, a base, or a base with a task
file applied. :func:`write_d2t_set` writes the generated data-to-text set the ``d2t`` task reads.

Each takes a typed config and returns a typed result, so Python code, tests and the ``haneul quant``
commands (which only parse options and print) run the same steps. Progress is reported through
optional callbacks; training also reports loss and metrics through :func:`haneul.report`, so a run
inside a platform session shows up live.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

import haneul
from haneul.errors import InvalidInput
from haneul.quant.alphatuning import (
    AlphaTuneConfig,
    alphatune,
    load_task_alphas,
    parse_train_alpha,
    save_task_alphas,
)
from haneul.quant.bcq import check_bits, parse_group_size
from haneul.quant.model import (
    META,
    _maybe_tokenizer,
    bcq_layers,
    is_quantized_base,
    load_quantized,
    load_source,
    model_weight_bytes,
    quantize_model,
    save_quantized,
)
from haneul.quant.tasks import (
    TASKS,
    DataToTextTask,
    SentimentTask,
    _pad_id,
    batches,
    lm_blocks,
    perplexity,
    read_d2t,
    read_nsmc,
    read_texts,
)

__all__ = [
    "AlphaTuneTaskConfig",
    "AlphaTuneTaskResult",
    "D2TSet",
    "EvalTaskConfig",
    "EvalTaskResult",
    "QuantizeConfig",
    "QuantizeResult",
    "TaskData",
    "WeightSizes",
    "alphatune_task",
    "evaluate_task",
    "load_task_data",
    "quantize_base",
    "task_metrics",
    "weight_sizes",
    "write_d2t_set",
]

#: ``(layer name, layers done, layers in all)`` after each layer is quantised.
LayerProgress = Callable[[str, int, int], None]
#: ``(step, loss)`` after each training step.
StepProgress = Callable[[int, float], None]

Example = tuple[list[int], list[int]]  # (input ids, labels with -100 where nothing is learned)


# ---------------------------------------------------------------------------------------------- sizes


@dataclass(frozen=True)
class WeightSizes:
    """Bytes of a quantised model's weights: the BCQ layers against their fp32 size, and the rest at fp16."""

    quantised_layer_bytes: int
    quantised_layer_fp32_bytes: int
    quantised_layer_ratio_vs_fp32: float
    other_weight_bytes_fp16: int
    total_bytes: int


def weight_sizes(model: nn.Module) -> WeightSizes:
    sizes = model_weight_bytes(model)
    fp32 = sum(m.out_features * m.in_features * 4 for m in bcq_layers(model).values())
    return WeightSizes(
        quantised_layer_bytes=sizes["quantised"],
        quantised_layer_fp32_bytes=fp32,
        quantised_layer_ratio_vs_fp32=fp32 / max(sizes["quantised"], 1),
        other_weight_bytes_fp16=sizes["full_precision"],
        total_bytes=sizes["total"],
    )


# ------------------------------------------------------------------------------------------ task data


@dataclass
class TaskData:
    """One task's data, ready to train on and to score.

    For ``nsmc`` and ``d2t`` ``items`` are the file's rows and ``spec`` the task that turns them into
    examples and metrics; for ``text`` ``items`` are already token blocks and ``spec`` is ``None``.
    """

    task: str
    items: list[Any]
    spec: SentimentTask | DataToTextTask | None = None

    def __len__(self) -> int:
        return len(self.items)

    def split(self, cut: int) -> tuple[TaskData, TaskData]:
        """``(items[:cut], items[cut:])`` as two task data of the same kind."""
        return replace(self, items=self.items[:cut]), replace(self, items=self.items[cut:])

    def training_examples(self, tokenizer: Any) -> list[Example]:
        if self.spec is None:
            return list(self.items)
        return self.spec.train_examples(tokenizer, self.items)


def load_task_data(
    task: str, path: Path, tokenizer: Any, *, rows: int | None = None, block: int = 128, seed: int = 0
) -> TaskData:
    """Read ``path`` as data of ``task`` (``nsmc``, ``text`` or ``d2t``); at most ``rows`` rows, seeded."""
    if tokenizer is None:
        raise InvalidInput(
            "the model folder has no tokenizer; save one beside the model (tokenizer.save_pretrained)"
        )
    if task == "nsmc":
        return TaskData(task, read_nsmc(path, limit=rows, seed=seed), SentimentTask(max_length=block))
    if task == "text":
        return TaskData(task, lm_blocks(tokenizer, read_texts(path, limit=rows), block=block))
    if task == "d2t":
        spec = DataToTextTask(max_prompt=block, max_target=block)
        return TaskData(task, read_d2t(path, limit=rows, seed=seed), spec)
    raise InvalidInput(f"--task {task!r} is not one of {', '.join(TASKS)}")


def task_metrics(model: nn.Module, tokenizer: Any, data: TaskData) -> dict[str, float]:
    """Accuracy (nsmc), perplexity (text), or BLEU / chrF / slot error rate / perplexity (d2t)."""
    if isinstance(data.spec, DataToTextTask):
        return dict(data.spec.evaluate(model, tokenizer, data.items))
    if isinstance(data.spec, SentimentTask):
        return {"accuracy": data.spec.accuracy(model, tokenizer, data.items)}
    return {"perplexity": perplexity(model, data.items, pad_id=_pad_id(tokenizer))}


# ------------------------------------------------------------------------------------------- quantise


@dataclass(frozen=True)
class QuantizeConfig:
    """Post-training BCQ of every Linear layer of ``model``, saved as the shared base folder ``out``."""

    model: str = "smollm2-135m"  # 'smollm2-135m', a Hugging Face model folder
    out: Path = Path("quantised-base")  # replaced if present
    bits: int = 3
    group_size: int | str | None = 64  # 'row' (or None) or a divisor of every layer's input size
    rounds: int = 15  # alternating refinement rounds after the greedy start
    offset: bool = False  # extended BCQ: one offset per group
    skip: tuple[str, ...] = ()  # module names or globs kept in full precision
    quantize_head: bool = False
    seed: int = 0


@dataclass
class QuantizeResult:
    out: Path
    checksum: str
    bits: int
    group_size: int | str | None  # as given
    layers: int
    skipped: list[tuple[str, str]]  # (module name, why it stayed in full precision)
    mean_rel_error: float
    seconds: float
    sizes: WeightSizes

    def to_dict(self) -> dict[str, Any]:
        """The flat record ``haneul quant quantize --json`` prints."""
        return {
            "out": str(self.out),
            "checksum": self.checksum,
            "bits": self.bits,
            "group_size": self.group_size,
            "layers": self.layers,
            "skipped": [list(s) for s in self.skipped],
            "mean_rel_error": self.mean_rel_error,
            "seconds": self.seconds,
            **asdict(self.sizes),
        }


def quantize_base(config: QuantizeConfig, *, on_layer: LayerProgress | None = None) -> QuantizeResult:
    """Quantise ``config.model`` with BCQ and save it to ``config.out``; refuses an already quantised base."""
    check_bits(config.bits)
    group = parse_group_size(config.group_size)
    torch.manual_seed(config.seed)
    net, tokenizer, is_base = load_source(config.model)
    if is_base:
        raise InvalidInput(f"{config.model} is already a quantised base; pass the original model to --model")
    report = quantize_model(
        net, bits=config.bits, group_size=group, skip=list(config.skip), rounds=config.rounds,
        offset=config.offset, quantize_head=config.quantize_head, progress=on_layer,
    )  # fmt: skip
    checksum = save_quantized(net, config.out, tokenizer=tokenizer, source=config.model)
    return QuantizeResult(
        out=Path(config.out),
        checksum=checksum,
        bits=config.bits,
        group_size=config.group_size,
        layers=len(report.layers),
        skipped=list(report.skipped),
        mean_rel_error=report.mean_rel_error,
        seconds=report.seconds,
        sizes=weight_sizes(net),
    )


# ------------------------------------------------------------------------------------------- evaluate


@dataclass(frozen=True)
class EvalTaskConfig:
    """Score ``model`` (a model, a quantised base, or a base with ``task_file`` applied) on ``data``."""

    data: Path
    model: str = "smollm2-135m"
    task: str = "text"
    task_file: Path | None = None  # AlphaTuning scales applied to the quantised base first
    rows: int | None = None  # at most this many rows / lines of the data
    block: int = 128  # tokens per block (text) or max prompt tokens (nsmc, d2t)
    seed: int = 0


@dataclass
class EvalTaskResult:
    model: str
    task: str
    task_file: Path | None
    metrics: dict[str, float]  # which metrics depends on the task

    def to_dict(self) -> dict[str, Any]:
        """The flat record ``haneul quant eval --json`` prints: the metrics beside what was scored."""
        where = str(self.task_file) if self.task_file else None
        return {"model": self.model, "task": self.task, "task_file": where, **self.metrics}


def evaluate_task(config: EvalTaskConfig) -> EvalTaskResult:
    torch.manual_seed(config.seed)
    net, tokenizer, is_base = load_source(config.model)
    if config.task_file is not None:
        if not is_base:
            raise InvalidInput(
                "--task-file needs a quantised base as --model (the folder `haneul quant quantize` wrote)"
            )
        load_task_alphas(net, config.task_file)
    data = load_task_data(config.task, config.data, tokenizer, rows=config.rows, block=config.block)
    return EvalTaskResult(config.model, config.task, config.task_file, task_metrics(net, tokenizer, data))


# ------------------------------------------------------------------------------------------ alphatune


@dataclass(frozen=True)
class AlphaTuneTaskConfig:
    """Quantise ``model`` once into ``out/base`` (reused while the settings match), then adapt it to one task.

    Only the scales are trained (``train_alpha`` per group: 1, the paper's cheapest setting, up to
    ``bits``, or ``"all"``), optionally only in the layers that ``alpha_layers`` globs name. Held-out
    rows come from ``eval_data``, else from the tail of ``data``.
    """

    data: Path
    model: str = "smollm2-135m"  # 'smollm2-135m', a Hugging Face model folder, or a quantised base
    task: str = "nsmc"  # nsmc, text or d2t
    eval_data: Path | None = None
    out: Path = Path("alphatuning")
    name: str | None = None  # task file name (default: the task)
    bits: int = 3
    group_size: int | str | None = 64
    rounds: int = 15
    offset: bool = False
    train_alpha: int | str = 1
    alpha_layers: tuple[str, ...] | None = None
    steps: int = 200
    lr: float = 1e-3  # peak; linear warm-up and decay
    batch_size: int = 8
    rows: int | None = 2000  # training rows / lines (None: all)
    eval_rows: int = 200
    block: int = 128
    seed: int = 0

    @property
    def task_path(self) -> Path:
        return Path(self.out) / "tasks" / f"{self.name or self.task}.safetensors"


@dataclass
class AlphaTuneTaskResult:
    base: Path  # the base the task file belongs to
    task_file: Path
    task_file_bytes: int
    trainable_params: int
    steps: int
    final_loss: float
    train_seconds: float
    before: dict[str, float]  # held-out metrics of the base
    after: dict[str, float]  # held-out metrics with the trained scales
    losses: list[float] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The record ``haneul quant alphatune --json`` prints (without the per-step losses)."""
        return {
            "base": str(self.base),
            "task_file": str(self.task_file),
            "task_file_bytes": self.task_file_bytes,
            "trainable_params": self.trainable_params,
            "steps": self.steps,
            "final_loss": self.final_loss,
            "train_seconds": self.train_seconds,
            "before": dict(self.before),
            "after": dict(self.after),
        }


def _load_or_quantise_base(
    config: AlphaTuneTaskConfig, group: int | None, on_layer: LayerProgress | None
) -> tuple[nn.Module, Any, Path]:
    """The quantised model, its tokenizer and the base folder; quantises and saves only when needed.

    ``out/base`` is reused when it was made from the same model with the same settings (so every task
    of a run shares one base); a quantised base given as ``model`` is used where it is.
    """
    base_dir = Path(config.out) / "base"
    wanted = {"bits": config.bits, "group_size": group, "offset": config.offset, "rounds": config.rounds}
    if (
        is_quantized_base(base_dir)
        and json.loads((base_dir / META).read_text()).get("source") == config.model
    ):
        net, meta = load_quantized(base_dir)
        if meta.get("settings") != wanted:
            raise InvalidInput(
                f"{base_dir} holds a base quantised with {meta.get('settings')}, not {wanted}; "
                "choose another --out"
            )
        return net, _maybe_tokenizer(base_dir), base_dir
    net, tokenizer, is_base = load_source(config.model)
    if is_base:
        return net, tokenizer, Path(config.model)
    quantize_model(
        net, bits=config.bits, group_size=group, rounds=config.rounds, offset=config.offset, progress=on_layer
    )
    save_quantized(net, base_dir, tokenizer=tokenizer, source=config.model)
    return net, tokenizer, base_dir


def _train_and_held_out(config: AlphaTuneTaskConfig, tokenizer: Any) -> tuple[TaskData, TaskData]:
    """The training data and the held-out data: ``eval_data`` when given, else the tail of ``data``."""
    wanted = None if config.rows is None else config.rows + (0 if config.eval_data else config.eval_rows)
    train = load_task_data(
        config.task, config.data, tokenizer, rows=wanted, block=config.block, seed=config.seed
    )
    if config.eval_data is not None:
        held_out = load_task_data(
            config.task,
            config.eval_data,
            tokenizer,
            rows=config.eval_rows,
            block=config.block,
            seed=config.seed,
        )
        return train, held_out
    if len(train) < 2:
        raise InvalidInput(f"{config.data} has too few rows to hold some out; give --eval-data")
    return train.split(max(len(train) - config.eval_rows, len(train) // 2))


def alphatune_task(
    config: AlphaTuneTaskConfig,
    *,
    on_layer: LayerProgress | None = None,
    on_step: StepProgress | None = None,
) -> AlphaTuneTaskResult:
    """Quantise (or reuse the base), train the task's scales, score before and after, save the task file."""
    check_bits(config.bits)
    group = parse_group_size(config.group_size)
    k = parse_train_alpha(config.train_alpha)
    if k != "all" and k > config.bits:
        raise InvalidInput(
            f"--train-alpha {k} exceeds --bits {config.bits}; use at most {config.bits} or 'all'"
        )
    torch.manual_seed(config.seed)
    net, tokenizer, base_dir = _load_or_quantise_base(config, group, on_layer)
    train, held_out = _train_and_held_out(config, tokenizer)
    examples = train.training_examples(tokenizer)
    before = task_metrics(net, tokenizer, held_out)
    training = AlphaTuneConfig(
        train_alpha=k,
        layers=tuple(config.alpha_layers) if config.alpha_layers else None,
        steps=config.steps,
        lr=config.lr,
        warmup_steps=min(10, config.steps // 10),
    )
    trained = alphatune(
        net,
        batches(examples, config.batch_size, config.steps, pad_id=_pad_id(tokenizer), seed=config.seed),
        training,
        on_step=on_step,
    )
    after = task_metrics(net, tokenizer, held_out)
    haneul.report(step=trained["steps"], **{f"eval_{key}": value for key, value in after.items()})
    task_path = config.task_path
    metrics = {**{f"before_{key}": value for key, value in before.items()}, **after}
    save_task_alphas(net, task_path, k, task=config.task, metrics=metrics)
    return AlphaTuneTaskResult(
        base=base_dir,
        task_file=task_path,
        task_file_bytes=task_path.stat().st_size,
        trainable_params=trained["trainable_params"],
        steps=trained["steps"],
        final_loss=trained["final_loss"],
        train_seconds=trained["seconds"],
        before=before,
        after=after,
        losses=list(trained["losses"]),
    )


# ---------------------------------------------------------------------------------------- d2t data set


@dataclass(frozen=True)
class D2TSet:
    train: Path
    test: Path
    train_rows: int
    test_rows: int


def write_d2t_set(
    out: Path, *, rows: int = 2000, test_rows: int = 200, seed: int = 0, lang: str = "ko"
) -> D2TSet:
    """Write ``out/train.jsonl`` and ``out/test.jsonl`` of generated E2E-style rows (``{"mr", "text"}``).

    The test split uses restaurants and landmarks unseen in training; the same seed writes the same files.
    """
    from haneul.io import atomic_write_text
    from haneul.quant.d2t_data import LANGS, generate, mr_string

    if lang not in LANGS:
        raise InvalidInput(f"--lang {lang!r} is not one of {', '.join(LANGS)}")
    if rows < 1 or test_rows < 1:
        raise InvalidInput(f"--rows {rows} / --test-rows {test_rows}: give at least 1 of each")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for split, n, split_seed in (("train", rows, seed), ("test", test_rows, seed + 1)):
        lines = [
            json.dumps({"mr": mr_string(r["mr"]), "text": r["text"]}, ensure_ascii=False)
            for r in generate(n, seed=split_seed, split=split, lang=lang)
        ]
        atomic_write_text(out / f"{split}.jsonl", "\n".join(lines) + "\n")
    return D2TSet(train=out / "train.jsonl", test=out / "test.jsonl", train_rows=rows, test_rows=test_rows)
