"""``haneul quant``: BCQ quantisation, evaluation and AlphaTuning of causal language models.

Only typer, rich and the standard library are imported here; torch and :mod:`haneul.quant` are
imported inside the commands so ``haneul --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="Binary-coding quantisation (BCQ) of language models and AlphaTuning: adapt a quantised model "
    "to a task by training only its scaling factors, keeping one shared base and a tiny file per task.",
    no_args_is_help=True,
)

ModelOpt = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help="'smollm2-135m' (the embedded model), a Hugging Face model folder, or a quantised base folder.",
    ),
]
BitsOpt = Annotated[
    int, typer.Option("--bits", "-q", help="Binary codes per weight (1-8; the paper uses 1-4).")
]
GroupOpt = Annotated[
    str,
    typer.Option(
        "--group-size",
        "-g",
        help="Input columns that share one set of scales: 'row' or a divisor of every layer's input size (128, 64, 32).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]
OffsetOpt = Annotated[bool, typer.Option("--offset/--no-offset", help="Extended BCQ: one offset per group.")]
BlockOpt = Annotated[
    int, typer.Option("--block", help="Tokens per block (text) or max prompt tokens (nsmc).")
]
TaskOpt = Annotated[
    str,
    typer.Option(
        "--task",
        "-t",
        help="'nsmc' (NSMC-format sentiment as generation, metric accuracy), 'text' (LM, perplexity) or "
        "'d2t' (E2E-style data-to-text: BLEU, chrF, slot error rate).",
    ),
]
DataOpt = Annotated[
    Path,
    typer.Option(
        "--data",
        "-d",
        help="Task data: an NSMC TSV (id, document, label; .gz ok) for 'nsmc'; a .txt or .jsonl(.gz) with 'text' "
        "for 'text'; an E2E CSV (mr, ref) or a .jsonl with 'mr' and 'text' for 'd2t' (`haneul quant make-d2t`).",
    ),
]


def _console() -> Console:
    return Console(stderr=False)


def _progress() -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )


def _quantise_with_bar(
    model: Any, bits: int, group: int | None, rounds: int, offset: bool, skip: list[str], head: bool
) -> Any:
    from haneul.quant.model import quantize_model

    with _progress() as bar:
        job = bar.add_task("quantising", total=None)

        def tick(name: str, done: int, total: int) -> None:
            bar.update(job, completed=done, total=total, description=f"quantising {name}")

        return quantize_model(
            model,
            bits=bits,
            group_size=group,
            skip=skip,
            rounds=rounds,
            offset=offset,
            quantize_head=head,
            progress=tick,
        )


def _size_summary(model: Any) -> dict[str, Any]:
    from haneul.quant.model import bcq_layers, model_weight_bytes

    sizes = model_weight_bytes(model)
    layers = bcq_layers(model)
    fp32 = sum(m.out_features * m.in_features * 4 for m in layers.values())
    return {
        "quantised_layer_bytes": sizes["quantised"],
        "quantised_layer_fp32_bytes": fp32,
        "quantised_layer_ratio_vs_fp32": fp32 / max(sizes["quantised"], 1),
        "other_weight_bytes_fp16": sizes["full_precision"],
        "total_bytes": sizes["total"],
    }


@app.command("quantize")
def quantize_cmd(
    model: ModelOpt = "smollm2-135m",
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder to write the quantised base to (replaced if present).")
    ] = Path("quantised-base"),
    bits: BitsOpt = 3,
    group_size: GroupOpt = "64",
    rounds: Annotated[int, typer.Option(help="Alternating refinement rounds after the greedy start.")] = 15,
    offset: OffsetOpt = False,
    skip: Annotated[
        list[str] | None,
        typer.Option("--skip", help="Module name or glob to keep in full precision (repeatable)."),
    ] = None,
    quantize_head: Annotated[
        bool, typer.Option("--quantize-head", help="Quantise the LM head too (unties it).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Post-training BCQ quantisation of every Linear layer; saves the shared base folder."""
    import torch

    from haneul.quant.bcq import check_bits, parse_group_size
    from haneul.quant.model import load_source, save_quantized

    check_bits(bits)
    group = parse_group_size(group_size)
    torch.manual_seed(0)
    net, tokenizer, is_base = load_source(model)
    if is_base:
        from haneul.errors import InvalidInput

        raise InvalidInput(f"{model} is already a quantised base; pass the original model to --model")
    report = _quantise_with_bar(net, bits, group, rounds, offset, list(skip or []), quantize_head)
    checksum = save_quantized(net, out, tokenizer=tokenizer, source=model)
    result = {
        "out": str(out),
        "checksum": checksum,
        "bits": bits,
        "group_size": group_size,
        "layers": len(report.layers),
        "skipped": report.skipped,
        "mean_rel_error": report.mean_rel_error,
        "seconds": report.seconds,
        **_size_summary(net),
    }
    if as_json:
        print(json.dumps(result))
        return
    table = Table(title=f"BCQ q={bits}, group={group_size} → {out}")
    table.add_column("what")
    table.add_column("value", justify="right")
    for key in (
        "layers",
        "mean_rel_error",
        "seconds",
        "quantised_layer_ratio_vs_fp32",
        "total_bytes",
        "checksum",
    ):
        value = result[key]
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    _console().print(table)
    for name, reason in report.skipped:
        _console().print(f"kept {name}: {reason}")


def _task_data(
    task: str, data: Path, tokenizer: Any, rows: int | None, block: int, seed: int = 0
) -> dict[str, Any]:
    from haneul.errors import InvalidInput
    from haneul.quant.tasks import DataToTextTask, SentimentTask, lm_blocks, read_d2t, read_nsmc, read_texts

    if tokenizer is None:
        raise InvalidInput(
            "the model folder has no tokenizer; save one beside the model (tokenizer.save_pretrained)"
        )
    if task == "nsmc":
        return {"task": SentimentTask(max_length=block), "rows": read_nsmc(data, limit=rows, seed=seed)}
    if task == "text":
        return {"examples": lm_blocks(tokenizer, read_texts(data, limit=rows), block=block)}
    if task == "d2t":
        spec = DataToTextTask(max_prompt=block, max_target=block)
        return {"task": spec, "rows": read_d2t(data, limit=rows, seed=seed)}
    raise InvalidInput(f"--task {task!r} is not one of nsmc, text, d2t")


def _evaluate(model: Any, tokenizer: Any, bundle: dict[str, Any]) -> dict[str, float]:
    from haneul.quant.tasks import _pad_id, perplexity

    if "task" in bundle:
        spec = bundle["task"]
        if hasattr(spec, "evaluate"):  # data-to-text: BLEU, chrF, slot errors, perplexity
            return dict(spec.evaluate(model, tokenizer, bundle["rows"]))
        return {"accuracy": spec.accuracy(model, tokenizer, bundle["rows"])}
    return {"perplexity": perplexity(model, bundle["examples"], pad_id=_pad_id(tokenizer))}


@app.command("eval")
def eval_cmd(
    model: ModelOpt = "smollm2-135m",
    task: TaskOpt = "text",
    data: DataOpt = Path("eval.txt"),
    task_file: Annotated[
        Path | None,
        typer.Option("--task-file", help="AlphaTuning scales to apply to the quantised base first."),
    ] = None,
    rows: Annotated[int | None, typer.Option(help="Use at most this many rows / lines of the data.")] = None,
    block: BlockOpt = 128,
    as_json: JsonOpt = False,
) -> None:
    """Perplexity (text), accuracy (nsmc) or BLEU / chrF / slot errors (d2t) of a model, a quantised base,
    or base + task scales."""
    import torch

    from haneul.quant.model import load_source

    torch.manual_seed(0)
    net, tokenizer, is_base = load_source(model)
    if task_file is not None:
        from haneul.errors import InvalidInput
        from haneul.quant.alphatuning import load_task_alphas

        if not is_base:
            raise InvalidInput(
                "--task-file needs a quantised base as --model (the folder `haneul quant quantize` wrote)"
            )
        load_task_alphas(net, task_file)
    bundle = _task_data(task, data, tokenizer, rows, block)
    metrics = _evaluate(net, tokenizer, bundle)
    result = {"model": model, "task": task, "task_file": str(task_file) if task_file else None, **metrics}
    if as_json:
        print(json.dumps(result))
        return
    table = Table(title=f"{task} on {data.name}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(key, f"{value:.4f}")
    _console().print(table)


@app.command("alphatune")
def alphatune_cmd(
    model: ModelOpt = "smollm2-135m",
    task: TaskOpt = "nsmc",
    data: DataOpt = Path("ratings_train.txt.gz"),
    eval_data: Annotated[
        Path | None,
        typer.Option("--eval-data", help="Held-out data in the same format (default: a slice of --data)."),
    ] = None,
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Folder for the shared base (out/base) and task files (out/tasks)."),
    ] = Path("alphatuning"),
    name: Annotated[str | None, typer.Option(help="Task file name (default: the task).")] = None,
    bits: BitsOpt = 3,
    group_size: GroupOpt = "64",
    rounds: Annotated[int, typer.Option(help="BCQ refinement rounds when quantising.")] = 15,
    offset: OffsetOpt = False,
    train_alpha: Annotated[
        str, typer.Option("--train-alpha", help="How many scales per group to train: 1 (cheapest) or 'all'.")
    ] = "1",
    alpha_layers: Annotated[
        list[str] | None,
        typer.Option(
            "--alpha-layers",
            help="Glob of the layers whose scales train, e.g. '*.mlp.*' (repeatable; default: every layer).",
        ),
    ] = None,
    steps: Annotated[int, typer.Option(help="Optimiser steps.")] = 200,
    lr: Annotated[
        float, typer.Option(help="Peak learning rate for the scales (linear warm-up and decay).")
    ] = 1e-3,
    batch_size: Annotated[int, typer.Option(help="Examples per step.")] = 8,
    rows: Annotated[int | None, typer.Option(help="Training rows / lines to use (default: all).")] = 2000,
    eval_rows: Annotated[int, typer.Option(help="Held-out rows / lines to score.")] = 200,
    block: BlockOpt = 128,
    seed: Annotated[int, typer.Option(help="Seed for sampling and batching.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """PTQ with BCQ, then train only the chosen scales on a task; saves base once + a per-task scale file."""
    import torch

    import haneul
    from haneul.errors import InvalidInput
    from haneul.quant.alphatuning import AlphaTuneConfig, alphatune, parse_train_alpha, save_task_alphas
    from haneul.quant.bcq import check_bits, parse_group_size
    from haneul.quant.model import is_quantized_base, load_quantized, load_source, save_quantized
    from haneul.quant.tasks import _pad_id, batches

    check_bits(bits)
    group = parse_group_size(group_size)
    k = parse_train_alpha(train_alpha)
    if k != "all" and k > bits:
        raise InvalidInput(f"--train-alpha {k} exceeds --bits {bits}; use at most {bits} or 'all'")
    torch.manual_seed(seed)
    base_dir = out / "base"
    wanted = {"bits": bits, "group_size": group, "offset": offset, "rounds": rounds}
    reused = False
    if (
        is_quantized_base(base_dir)
        and json.loads((base_dir / "quant.json").read_text()).get("source") == model
    ):
        net, meta = load_quantized(base_dir)
        if meta.get("settings") != wanted:
            raise InvalidInput(
                f"{base_dir} holds a base quantised with {meta.get('settings')}, not {wanted}; choose another --out"
            )
        from haneul.quant.model import _maybe_tokenizer

        tokenizer, is_base, reused = _maybe_tokenizer(base_dir), True, True
    else:
        net, tokenizer, is_base = load_source(model)
    if not is_base:
        _quantise_with_bar(net, bits, group, rounds, offset, [], False)
        save_quantized(net, base_dir, tokenizer=tokenizer, source=model)
    elif not reused:
        base_dir = Path(model)
    data_bundle = _task_data(
        task, data, tokenizer, None if rows is None else rows + (0 if eval_data else eval_rows), block, seed
    )
    if eval_data is not None:
        eval_bundle = _task_data(task, eval_data, tokenizer, eval_rows, block, seed)
    else:  # hold out the tail of --data
        key = "rows" if "rows" in data_bundle else "examples"
        items = data_bundle[key]
        if len(items) < 2:
            raise InvalidInput(f"{data} has too few rows to hold some out; give --eval-data")
        cut = max(len(items) - eval_rows, len(items) // 2)
        eval_bundle = {**data_bundle, key: items[cut:]}
        data_bundle = {**data_bundle, key: items[:cut]}
    examples = (
        data_bundle["task"].train_examples(tokenizer, data_bundle["rows"])
        if "task" in data_bundle
        else data_bundle["examples"]
    )
    before = _evaluate(net, tokenizer, eval_bundle)
    config = AlphaTuneConfig(
        train_alpha=k,
        layers=tuple(alpha_layers) if alpha_layers else None,
        steps=steps,
        lr=lr,
        warmup_steps=min(10, steps // 10),
    )
    with _progress() as bar:
        job = bar.add_task("alphatuning", total=steps)
        result = alphatune(
            net,
            batches(examples, batch_size, steps, pad_id=_pad_id(tokenizer), seed=seed),
            config,
            on_step=lambda step, loss: bar.update(
                job, completed=step + 1, description=f"alphatuning loss {loss:.3f}"
            ),
        )
    after = _evaluate(net, tokenizer, eval_bundle)
    haneul.report(step=result["steps"], **{f"eval_{key}": value for key, value in after.items()})
    task_path = out / "tasks" / f"{name or task}.safetensors"
    metrics = {**{f"before_{k_}": v for k_, v in before.items()}, **after}
    save_task_alphas(net, task_path, k, task=task, metrics=metrics)
    summary = {
        "base": str(base_dir),
        "task_file": str(task_path),
        "task_file_bytes": task_path.stat().st_size,
        "trainable_params": result["trainable_params"],
        "steps": result["steps"],
        "final_loss": result["final_loss"],
        "train_seconds": result["seconds"],
        "before": before,
        "after": after,
    }
    if as_json:
        print(json.dumps(summary))
        return
    table = Table(title=f"AlphaTuning {task}: q={bits}, group={group_size}, train-alpha={train_alpha}")
    table.add_column("what")
    table.add_column("value", justify="right")
    for key, value in summary.items():
        if isinstance(value, dict):
            value = ", ".join(f"{m}={v:.4f}" for m, v in value.items())
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    _console().print(table)


@app.command("make-d2t")
def make_d2t_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for train.jsonl and test.jsonl.")] = Path("d2t"),
    rows: Annotated[int, typer.Option(help="Training examples.")] = 2000,
    test_rows: Annotated[int, typer.Option(help="Test examples (restaurants and landmarks unseen in training).")] = 200,
    seed: Annotated[int, typer.Option(help="Seed; the same seed writes the same files.")] = 0,
    lang: Annotated[
        str,
        typer.Option(help="'ko': Korean values and sentences; 'en': English, over the E2E challenge's own values."),
    ] = "ko",
) -> None:
    """Write an E2E-style data-to-text set (restaurant slots -> sentences) for `--task d2t`."""
    from haneul.errors import InvalidInput
    from haneul.io import atomic_write_text
    from haneul.quant.d2t_data import LANGS, generate, mr_string

    if lang not in LANGS:
        raise InvalidInput(f"--lang {lang!r} is not one of {', '.join(LANGS)}")
    if rows < 1 or test_rows < 1:
        raise InvalidInput(f"--rows {rows} / --test-rows {test_rows}: give at least 1 of each")
    out.mkdir(parents=True, exist_ok=True)
    for split, n, split_seed in (("train", rows, seed), ("test", test_rows, seed + 1)):
        lines = [
            json.dumps({"mr": mr_string(r["mr"]), "text": r["text"]}, ensure_ascii=False)
            for r in generate(n, seed=split_seed, split=split, lang=lang)
        ]
        atomic_write_text(out / f"{split}.jsonl", "\n".join(lines) + "\n")
    _console().print(f"wrote {rows} training and {test_rows} test examples to {out}/train.jsonl, test.jsonl")


@app.command("build-kernel")
def build_kernel_cmd(
    verbose: Annotated[bool, typer.Option("--verbose", help="Show the compiler output.")] = False,
) -> None:
    """Compile the optional C++ lookup-table kernel into HANEUL_HOME/kernels (needs a C++ compiler)."""
    from haneul.quant import kernels

    with Console(stderr=True).status("compiling the BCQ kernel (about a minute)"):
        kernels.build(verbose=verbose)
    _console().print(f"built {kernels.build_dir()}")
