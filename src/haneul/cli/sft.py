"""``haneul lm sft``: supervised instruction tuning on chat JSON Lines (full or LoRA).

``register(lm_app)`` adds the command to the ``haneul lm`` group. Only typer and the standard library
are imported here; torch and transformers load when the command runs.
"""

from __future__ import annotations

from pathlib import Path

import typer

from haneul.cli import output
from haneul.cli.options import DeviceOpt, JsonOpt, SeedOpt, auto_device, out_option


def sft_command(
    model: str = typer.Option(..., "--model", "-m", help="Model to tune: a Hugging Face model folder (haneul "
                              "checkpoints are such folders), a model name known to `haneul lm`, or 'smollm2'."),
    data: Path = typer.Option(..., "--data", "-d", help='Chat data, JSON Lines: {"messages": [{"role": '
                              '"system|user|assistant", "content": "..."}]} per line.'),
    out: Path = out_option("Folder for the tuned model (a Hugging Face folder with the chat template; replaced "
                           "atomically when training ends)."),
    lora: bool = typer.Option(False, "--lora", help="Train LoRA adapters (PEFT) instead of all weights; they "
                              "are merged into the saved model."),
    lora_r: int = typer.Option(8, "--lora-r", help="LoRA rank."),
    lora_alpha: int = typer.Option(16, "--lora-alpha", help="LoRA scaling alpha."),
    epochs: float = typer.Option(1.0, "--epochs", help="Passes over the data (ignored when --max-steps is set)."),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Optimizer steps to run."),
    lr: float | None = typer.Option(None, "--lr", help="Peak learning rate (default 2e-5 full, 2e-4 LoRA)."),
    batch_size: int = typer.Option(4, "--batch-size", help="Rows per micro-batch."),
    grad_accum: int = typer.Option(1, "--grad-accum", help="Micro-batches per optimizer step."),
    seq_len: int = typer.Option(1024, "--seq-len", help="Tokens per row; longer conversations are cut."),
    no_pack: bool = typer.Option(False, "--no-pack", help="One conversation per row instead of packing several."),
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    eval_task: str | None = typer.Option(None, "--eval-task", help="Evaluate before and after tuning on these "
                                         "tasks, NAME=PATH[,NAME=PATH] as in `haneul eval run`."),
    eval_limit: int = typer.Option(200, "--eval-limit", help="Items per evaluation task."),
    eval_shots: str = typer.Option("0", "--eval-shots", help="Shot counts for the evaluation, e.g. 0,4."),
    as_json: JsonOpt = False,
) -> None:
    """Instruction-tune MODEL on chat data: loss on assistant turns only, packed rows, full or LoRA."""
    from haneul.lm.sft import SFTConfig, resolve_model_folder, sft

    device = auto_device(device)
    cfg = SFTConfig(epochs=epochs, max_steps=max_steps, lr=lr, batch_size=batch_size, grad_accum=grad_accum,
                    seq_len=seq_len, pack=not no_pack, lora=lora, lora_r=lora_r, lora_alpha=lora_alpha, seed=seed,
                    device=device)
    summary: dict = {"model": model, "out": str(out)}
    evaluate = None
    if eval_task:
        from haneul.evals import EvalConfig, HFBackend, parse_task_arg, run_eval

        runs = parse_task_arg(eval_task)
        eval_cfg = EvalConfig(shots=[int(s) for s in eval_shots.split(",") if s.strip()], limit=eval_limit,
                              bootstrap=200)

        def evaluate(folder: Path) -> dict:
            results = run_eval(HFBackend.from_pretrained(folder, device=device), runs, eval_cfg)
            return {name: {k: cell["mean"] for k, cell in t["shots"].items()} for name, t in results["tasks"].items()}

        summary["eval_before"] = evaluate(resolve_model_folder(model))
    result = sft(model, data, out, cfg)
    summary.update({"steps": result.steps, "first_loss": result.losses[0], "final_loss": result.losses[-1],
                    "conversations": result.conversations, "rows": result.rows, "skipped": result.skipped,
                    "seconds": result.seconds})
    if evaluate is not None:
        summary["eval_after"] = evaluate(out)
    output.emit(summary, as_json=as_json, title=f"haneul lm sft -> {out}")


def register(lm_app: typer.Typer) -> None:
    """Add ``sft`` to the ``haneul lm`` command group."""
    lm_app.command("sft")(sft_command)
