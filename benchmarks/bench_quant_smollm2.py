"""SmolLM2-135M-Instruct under BCQ: quantisation time, weight sizes, held-out perplexity, generations.

In one run: the fp32 model (the baseline), then BCQ of all Linear layers of the transformer blocks
(the tied embedding / LM head stays in full precision) at 4 and 3 bits with 15 refinement rounds,
for group 64 and for whole rows. For each: seconds to quantise, mean layer reconstruction error,
weight bytes (codes + fp16 scales) against fp32 and fp16, perplexity on a held-out English text
written below (not from any training set we know of), and greedy answers to two chat prompts.

Timings are wall-clock on a CPU that may be shared with other work; quantisation time is the
figure with a target (≤ 2 minutes for q=3, 15 rounds), so the CPU seconds the process used are
recorded beside the wall time: on a busy machine they are the steadier figure.

With ``--recover STEPS`` each 3-bit variant is also AlphaTuned without data: every scale is trained
for STEPS steps on text the fp32 model samples itself (``haneul.quant.tasks.sample_blocks``, the
LLM-QAT recipe) to match the fp32 model's next-token distributions (``--recover-loss kd``, default;
``ce`` fits the sampled tokens instead), and the perplexity on the same held-out text is reported again.

    .venv/bin/python benchmarks/bench_quant_smollm2.py [--quick] [--threads 2] [--recover 100]
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch

from haneul.io import atomic_write_text
from haneul.lm.models.smollm2 import load_smollm2
from haneul.quant.alphatuning import distillation_loss, prepare_alphatuning, train_parameters
from haneul.quant.model import bcq_layers, model_weight_bytes, quantize_model
from haneul.quant.tasks import batches, lm_blocks, perplexity, sample_blocks

OUT = Path(__file__).resolve().parent / "results" / "quant_smollm2.json"

HELD_OUT = """\
The harbour town woke slowly on winter mornings. Fishing boats came back before sunrise, and the
smell of diesel and salt drifted up the narrow streets toward the bakery, where the first loaves
were already cooling on wire racks. Most people in the town had grown up there, and many of them
had never thought of living anywhere else.

A library is more than a room full of books. It is a quiet public space where anyone can sit for
an afternoon without buying anything, read a newspaper, use a computer, or ask a question and
expect a patient answer. When a small town loses its library, it often loses one of the last
places where people of every age still meet.

To make a simple vegetable soup, start by chopping an onion, two carrots and a stick of celery.
Cook them gently in a little olive oil until they are soft, then add a tin of tomatoes, a litre of
stock and a handful of lentils. Let the pot simmer for half an hour, season it with salt and
pepper, and serve it with bread.

Learning a second language as an adult is slow but rewarding. Vocabulary comes first, then the
patterns of grammar, and only much later the feeling of thinking directly in the new language.
Short daily practice works better than long sessions once a week, because memory is strengthened
by repetition spread out over time.

The bridge over the river was built more than a hundred years ago. Its stone arches have survived
floods, storms and the weight of traffic that its engineers could never have imagined. Every few
years the town council debates whether to replace it, and every time the people who live nearby
argue that it should be repaired instead.
"""

PROMPTS = ["What is the capital of France?", "Name three colours of the rainbow."]


def generate(model, tokenizer, prompt: str, tokens: int) -> str:
    msgs = [{"role": "user", "content": prompt}]
    batch = tokenizer.apply_chat_template(
        msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=tokens, do_sample=False)
    return tokenizer.decode(out[0, batch["input_ids"].shape[1] :], skip_special_tokens=True).strip()


def fp_bytes(model, per_value: int) -> int:
    seen, total = set(), 0
    for p in model.parameters():
        if p.data_ptr() not in seen:
            seen.add(p.data_ptr())
            total += p.numel() * per_value
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="q=4 and q=3, group 32 with offset, 2 rounds, short text and answers",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--recover", type=int, default=0, metavar="STEPS",
                        help="also AlphaTune every 3-bit variant for STEPS steps on the fp32 model's own samples")
    parser.add_argument("--samples", type=int, default=64, help="self-generated blocks for --recover")
    parser.add_argument("--recover-loss", choices=("kd", "ce"), default="kd",
                        help="--recover objective: distil the fp32 model's distributions (kd) or its sampled tokens (ce)")
    parser.add_argument("--recover-lr", type=float, default=1e-3, help="peak learning rate for --recover")
    parser.add_argument("--only", default=None, help="comma-separated variant labels to run, e.g. 3/32o,3/row")
    parser.add_argument("--init", choices=("best", "greedy"), default="best",
                        help="BCQ start: best of greedy and uniform-grid starts (default), or greedy only (half the time)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    t0 = time.perf_counter()
    base, tokenizer = load_smollm2()
    load_s = time.perf_counter() - t0
    text = HELD_OUT if not args.quick else HELD_OUT[:600]
    blocks = lm_blocks(tokenizer, [p.replace("\n", " ") for p in text.split("\n\n")], block=256)
    gen_tokens = 6 if args.quick else 12
    fp32_linear = sum(
        m.weight.numel() * 4
        for n, m in base.named_modules()
        if isinstance(m, torch.nn.Linear) and "lm_head" not in n
    )
    rows = [
        {
            "variant": "fp32",
            "perplexity": perplexity(base, blocks, pad_id=tokenizer.pad_token_id or 0),
            "answers": [generate(base, tokenizer, p, gen_tokens) for p in PROMPTS],
            "weight_bytes": fp_bytes(base, 4),
        }
    ]
    print(f"fp32: ppl {rows[0]['perplexity']:.2f}  {rows[0]['answers']}")
    write(args, load_s, blocks, fp32_linear, rows)
    # (bits, group, rounds, offset); the packaged weights are GGUF Q4_1 (16 levels + a minimum per 32
    # weights), which extended BCQ (offset) with groups of 32 matches at 4 bits.
    settings = (
        [(4, 32, 2, True), (3, 32, 2, True)]
        if args.quick
        else [(4, 32, 15, True), (3, 32, 15, True), (4, 64, 15, False), (3, 64, 15, False), (3, None, 15, False)]
    )
    if args.only:
        wanted = {w.strip() for w in args.only.split(",")}
        settings = [st for st in settings if f"{st[0]}/{st[1] or 'row'}{'o' if st[3] else ''}" in wanted]
    calibration = None
    if args.recover:
        t0 = time.perf_counter()
        calibration = sample_blocks(base, tokenizer, count=args.samples, length=128, batch_size=16, seed=0)
        print(f"sampled {args.samples} calibration blocks from the fp32 model in {time.perf_counter() - t0:.0f}s")
    for bits, group, rounds, offset in settings:
        model = copy.deepcopy(base)
        cpu0 = time.process_time()
        report = quantize_model(model, bits=bits, group_size=group, rounds=rounds, offset=offset, init=args.init)
        cpu_s = time.process_time() - cpu0
        sizes = model_weight_bytes(model, scale_bytes=2, full_bytes=2)
        row = {
            "variant": f"bcq q={bits} g={group or 'row'}{' offset' if offset else ''}",
            "offset": offset,
            "bits": bits,
            "group_size": group or "row",
            "rounds": rounds,
            "init": args.init,
            "quantise_seconds": report.seconds,
            # CPU seconds of this process (all threads): unlike wall time, not inflated by other work
            "quantise_cpu_seconds": cpu_s,
            "layers": len(report.layers),
            "mean_layer_rel_error": report.mean_rel_error,
            "linear_bytes": sizes["quantised"],
            "linear_ratio_vs_fp32": fp32_linear / sizes["quantised"],
            "model_bytes_fp16_rest": sizes["total"],
            "model_ratio_vs_fp32": rows[0]["weight_bytes"] / sizes["total"],
            "model_ratio_vs_fp16": fp_bytes(base, 2) / sizes["total"],
        }
        row["perplexity"] = perplexity(model, blocks, pad_id=tokenizer.pad_token_id or 0)
        row["perplexity_ratio_vs_fp32"] = row["perplexity"] / rows[0]["perplexity"]
        row["answers"] = [generate(model, tokenizer, p, gen_tokens) for p in PROMPTS]
        if calibration is not None and bits == 3:
            prepare_alphatuning(model, "all")
            params = [layer.alpha for layer in bcq_layers(model).values()]
            losses, seconds = train_parameters(
                model, params, batches(calibration, 4, args.recover, seed=0), steps=args.recover, lr=args.recover_lr,
                warmup_steps=max(args.recover // 10, 1), grad_clip=1.0,
                loss_fn=distillation_loss(base) if args.recover_loss == "kd" else None,
            )
            row["recovered"] = {
                "steps": args.recover, "calibration_blocks": len(calibration), "block_tokens": 128,
                "loss": args.recover_loss, "lr": args.recover_lr,
                "trainable_params": sum(p.numel() for p in params), "train_seconds": seconds,
                "first_loss": losses[0], "final_loss": losses[-1],
                "perplexity": perplexity(model, blocks, pad_id=tokenizer.pad_token_id or 0),
                "answers": [generate(model, tokenizer, p, gen_tokens) for p in PROMPTS],
            }
            row["recovered"]["perplexity_ratio_vs_fp32"] = row["recovered"]["perplexity"] / rows[0]["perplexity"]
            print(f"  recovered: ppl {row['recovered']['perplexity']:.2f} after {args.recover} steps "
                  f"({seconds:.0f}s)  {row['recovered']['answers']}")
        rows.append(row)
        write(args, load_s, blocks, fp32_linear, rows)  # after every variant, so a long run keeps its results
        print(
            f"{row['variant']}: quantise {report.seconds:.1f}s wall, {cpu_s:.1f}s cpu  rel err {report.mean_rel_error:.4f}  "
            f"linear {row['linear_ratio_vs_fp32']:.2f}x smaller  ppl {row['perplexity']:.2f}  {row['answers']}"
        )
        del model
    write(args, load_s, blocks, fp32_linear, rows)
    print("wrote results")


def write(args: argparse.Namespace, load_s: float, blocks: list, fp32_linear: int, rows: list) -> None:
    result = {
        "benchmark": "quant_smollm2",
        "quick": args.quick,
        "threads": args.threads,
        "load_seconds": load_s,
        "held_out_tokens": sum(len(b[0]) for b in blocks),
        "fp32_linear_bytes": fp32_linear,
        "rows": rows,
    }
    out = OUT if not args.quick else OUT.with_name("quant_smollm2_quick.json")
    if args.only:
        tag = "".join(c if c.isalnum() else "-" for c in args.only) + ("_greedy" if args.init == "greedy" else "")
        tag += f"_recover{args.recover}{'' if args.recover_loss == 'kd' else '_ce'}" if args.recover else ""
        out = out.with_name(f"{out.stem}_{tag}.json")
    atomic_write_text(out, json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
