"""``haneul quant``: BCQ quantisation, evaluation and AlphaTuning of causal language models.

Each command turns its options into a config of :mod:`haneul.quant.workflow`, runs it with progress
bars, and prints the result. Only typer, rich and the standard library are imported here; the
workflow (and torch) load inside the commands so ``haneul --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from haneul.cli import output
from haneul.cli.options import JsonOpt, SeedOpt, Typer, out_option

LayerProgress = Callable[[str, int, int], None]
StepProgress = Callable[[int, float], None]

app = Typer(
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
        help="Input columns that share one set of scales: 'row' or a divisor of every layer's input size "
        "(128, 64, 32).",
    ),
]
OffsetOpt = Annotated[bool, typer.Option("--offset/--no-offset", help="Extended BCQ: one offset per group.")]
BlockOpt = Annotated[
    int, typer.Option("--block", help="Tokens per block (text) or max prompt tokens (nsmc, d2t).")
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
        help="Task data: an NSMC TSV (id, document, label; .gz ok) for 'nsmc'; a .txt or .jsonl(.gz) with "
        "'text' for 'text'; an E2E CSV (mr, ref) or a .jsonl with 'mr' and 'text' for 'd2t' "
        "(`haneul quant make-d2t`).",
    ),
]
RoundsOpt = Annotated[
    int, typer.Option("--rounds", help="Alternating BCQ refinement rounds after the greedy start.")
]


@contextmanager
def _bars(steps: int | None = None) -> Iterator[tuple[LayerProgress, StepProgress]]:
    """Progress callbacks for the workflow: a bar for quantising and one for ``steps`` training steps."""
    with output.progress() as bar:
        ids: dict[str, int] = {}

        def on_layer(name: str, done: int, total: int) -> None:
            if "quantise" not in ids:
                ids["quantise"] = bar.add_task("quantising", total=total)
            bar.update(ids["quantise"], completed=done, total=total, description=f"quantising {name}")

        def on_step(step: int, loss: float) -> None:
            if "train" not in ids:
                ids["train"] = bar.add_task("alphatuning", total=steps)
            bar.update(ids["train"], completed=step + 1, description=f"alphatuning loss {loss:.3f}")

        yield on_layer, on_step


@app.command("quantize")
def quantize_cmd(
    model: ModelOpt = "smollm2-135m",
    out: Annotated[
        Path, out_option("Folder to write the quantised base to (replaced if present).")
    ] = Path("quantised-base"),
    bits: BitsOpt = 3,
    group_size: GroupOpt = "64",
    rounds: RoundsOpt = 15,
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
    from haneul.quant.workflow import QuantizeConfig, quantize_base

    config = QuantizeConfig(
        model=model, out=out, bits=bits, group_size=group_size, rounds=rounds, offset=offset,
        skip=tuple(skip or ()), quantize_head=quantize_head,
    )  # fmt: skip
    with _bars() as (on_layer, _):
        result = quantize_base(config, on_layer=on_layer)

    def show() -> None:
        record = result.to_dict()
        shown = ("layers", "mean_rel_error", "seconds", "quantised_layer_ratio_vs_fp32", "total_bytes")
        title = f"BCQ q={bits}, group={group_size} → {out}"
        output.print_fields({key: record[key] for key in (*shown, "checksum")}, title=title)
        for name, reason in result.skipped:
            output.say(f"kept {name}: {reason}")

    output.emit(result, as_json=as_json, show=show)


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
    from haneul.quant.workflow import EvalTaskConfig, evaluate_task

    config = EvalTaskConfig(data=data, model=model, task=task, task_file=task_file, rows=rows, block=block)
    result = evaluate_task(config)
    output.emit(
        result,
        as_json=as_json,
        show=lambda: output.print_table(
            list(result.metrics.items()),
            columns=["metric", "value"],
            right=["value"],
            formats={"metric": str, "value": lambda v: f"{v:.4f}"},
            title=f"{task} on {data.name}",
        ),
    )


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
        Path, out_option("Folder for the shared base (out/base) and task files (out/tasks).")
    ] = Path("alphatuning"),
    name: Annotated[str | None, typer.Option(help="Task file name (default: the task).")] = None,
    bits: BitsOpt = 3,
    group_size: GroupOpt = "64",
    rounds: RoundsOpt = 15,
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
    seed: SeedOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """PTQ with BCQ, then train only the chosen scales on a task; saves base once + a per-task scale file."""
    from haneul.quant.workflow import AlphaTuneTaskConfig, alphatune_task

    config = AlphaTuneTaskConfig(
        data=data, model=model, task=task, eval_data=eval_data, out=out, name=name, bits=bits,
        group_size=group_size, rounds=rounds, offset=offset, train_alpha=train_alpha,
        alpha_layers=tuple(alpha_layers) if alpha_layers else None, steps=steps, lr=lr, batch_size=batch_size,
        rows=rows, eval_rows=eval_rows, block=block, seed=seed,
    )  # fmt: skip
    with _bars(steps) as (on_layer, on_step):
        result = alphatune_task(config, on_layer=on_layer, on_step=on_step)
    title = f"AlphaTuning {task}: q={bits}, group={group_size}, train-alpha={train_alpha}"
    output.emit(result, as_json=as_json, title=title)


@app.command("make-d2t")
def make_d2t_cmd(
    out: Annotated[Path, out_option("Folder for train.jsonl and test.jsonl.")] = Path("d2t"),
    rows: Annotated[int, typer.Option(help="Training examples.")] = 2000,
    test_rows: Annotated[
        int, typer.Option(help="Test examples (restaurants and landmarks unseen in training).")
    ] = 200,
    seed: SeedOpt = 0,
    lang: Annotated[
        str,
        typer.Option(
            help="'ko': Korean values and sentences; 'en': English, over the E2E challenge's own values."
        ),
    ] = "ko",
    as_json: JsonOpt = False,
) -> None:
    """Write an E2E-style data-to-text set (restaurant slots -> sentences) for `--task d2t`."""
    from haneul.quant.workflow import write_d2t_set

    written = write_d2t_set(out, rows=rows, test_rows=test_rows, seed=seed, lang=lang)
    output.emit(
        written,
        as_json=as_json,
        show=lambda: output.say(
            f"wrote {rows} training and {test_rows} test examples to {out}/train.jsonl, test.jsonl"
        ),
    )


@app.command("build-kernel")
def build_kernel_cmd(
    verbose: Annotated[bool, typer.Option("--verbose", help="Show the compiler output.")] = False,
) -> None:
    """Compile the optional C++ lookup-table kernel into HANEUL_HOME/kernels (needs a C++ compiler)."""
    from haneul.quant import kernels

    with output.stderr().status("compiling the BCQ kernel (about a minute)"):
        kernels.build(verbose=verbose)
    output.say(f"built {kernels.build_dir()}")
