"""Multiple-choice scoring throughput and agreement: haneul.evals vs EleutherAI lm-evaluation-harness.

Both systems score the *same* requests (the same few-shot NSMC prompts built by haneul.evals, the
same two verbalised options) with the same model on the same machine in one run; lm-evaluation-
harness is driven through its ``HFLM.loglikelihood`` API so only the scoring engines differ. We
report examples/s for each, the ratio, the accuracies and the largest per-option log-likelihood
difference. haneul is also timed with its shared-prefix cache switched off, to show what the cache
buys. Timings on a shared CPU are noisy: read the ratios, which are measured in the same run.

    .venv/bin/python benchmarks/bench_evals_mc.py            # SmolLM2-135M, NSMC 4-shot, 64 items
    .venv/bin/python benchmarks/bench_evals_mc.py --quick    # a small random Llama, 16 items
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from haneul.io import atomic_write_text  # noqa: E402

SYNTHETIC = [
    ("정말 재미있고 감동적인 영화였다 배우들 연기가 최고", 1),
    ("시간이 아까운 영화 지루하고 내용도 없다", 0),
    ("음악과 영상미가 아름다워서 또 보고 싶다", 1),
    ("스토리가 엉망이고 결말도 이해가 안 된다", 0),
    ("가족과 함께 보기 좋은 따뜻한 영화", 1),
    ("연기가 어색하고 대사가 유치했다", 0),
]


def load_items(n: int):
    from haneul.evals import get_task

    task = get_task("nsmc")
    shared = ROOT.parent / "shared" / "data" / "nsmc" / "ratings_test.txt.gz"
    if shared.exists():
        examples = task.load(shared)
        source = str(shared)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            f = Path(tmp) / "nsmc.txt"
            rows = [(str(i), *SYNTHETIC[i % len(SYNTHETIC)]) for i in range(max(n, 16))]
            f.write_text("id\tdocument\tlabel\n" + "".join(f"{i}\t{d}\t{y}\n" for i, d, y in rows), encoding="utf-8")
            examples = task.load(f)
        source = "synthetic"
    return task, examples, source


def build_model(quick: bool, folder: Path) -> str:
    import torch

    if not quick:
        try:
            from haneul.lm.models.smollm2 import smollm2_dir

            return str(smollm2_dir())
        except Exception as exc:  # noqa: BLE001 - fall back to the random model, and say so
            print(f"SmolLM2 unavailable ({exc}); using a random Llama", file=sys.stderr)
    from transformers import LlamaConfig, LlamaForCausalLM

    from haneul.evals.testing import SAMPLE_TEXTS, tiny_tokenizer

    tok = tiny_tokenizer([*SAMPLE_TEXTS, *(d for d, _ in SYNTHETIC)], vocab_size=600)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small random model and few items (< 1 minute)")
    parser.add_argument("--items", type=int, default=None, help="items to score (default 64, quick 32)")
    parser.add_argument("--shots", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8, help="batch size (prompts) for both systems")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--fixed-demos", action="store_true",
                        help="one demonstration set for all items (haneul eval run --fixed-demos), not one per item")
    parser.add_argument("--skip-no-cache", action="store_true", help="do not time haneul without its prefix cache")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per system, best kept (default 2, quick 1)")
    parser.add_argument("--out", default=None, help="result file (default benchmarks/results/evals_mc[_quick].json)")
    args = parser.parse_args()
    n = args.items or (16 if args.quick else 64)
    stem = "evals_mc" + ("_fixed" if args.fixed_demos else "") + ("_quick" if args.quick else "")
    out_file = args.out or str(ROOT / "benchmarks" / "results" / f"{stem}.json")
    rounds = args.rounds or (1 if args.quick else 2)

    import torch

    torch.manual_seed(0)
    from haneul.evals.backends.hf import HFBackend
    from haneul.evals.prompts import build_context, continuations, sample_demos

    task, examples, source = load_items(n)
    items = examples[:n]
    requests = []
    fixed = sample_demos(examples, args.shots, seed=0, task_name=task.name, index=-1, exclude_self=False)
    for i, ex in enumerate(items):
        if args.fixed_demos and not any(d is ex for d in fixed):
            demos = fixed
        else:
            demos = sample_demos(examples, args.shots, seed=0, task_name=task.name, index=i, exclude_self=True)
        requests.append((build_context(task, ex, demos), continuations(task, ex), ex.label))

    with tempfile.TemporaryDirectory() as tmp:
        model_path = build_model(args.quick, Path(tmp) / "model")
        dtype = torch.float32
        ours = HFBackend.from_pretrained(model_path, device=args.device, dtype="float32")
        ours.batch_size = args.batch_size
        naive = HFBackend(ours.model, ours.tokenizer, name="no-cache", reuse_prefix=False)

        cpu: dict[str, float] = {}

        def run_ours(backend):
            t, c = time.perf_counter(), time.process_time()
            out = backend.loglikelihood_many([(c, opts) for c, opts, _ in requests])
            cpu[backend.name] = min(cpu.get(backend.name, float("inf")), time.process_time() - c)
            return [[lp for lp, _ in s] for s in out], time.perf_counter() - t

        ours.loglikelihood_many([(c, opts) for c, opts, _ in requests[:2]])  # warm-up (thread pools)
        # alternate the systems over rounds and keep each one's best, so a busy moment on the
        # shared CPU does not land on one system only
        ours_s = naive_s = float("inf")
        for _ in range(rounds):
            ours_scores, s1 = run_ours(ours)
            naive_scores, s2 = (ours_scores, float("nan")) if args.skip_no_cache else run_ours(naive)
            ours_s, naive_s = min(ours_s, s1), min(naive_s, s2)
            print(f"haneul {s1:.1f}s, without prefix cache {s2:.1f}s", file=sys.stderr)

        baseline: dict = {"installed": False}
        try:
            from lm_eval.api.instance import Instance
            from lm_eval.models.huggingface import HFLM
        except ImportError:
            print("lm-evaluation-harness is not installed; skipping the baseline", file=sys.stderr)
        else:
            ref = HFLM(pretrained=model_path, device=args.device, batch_size=args.batch_size, dtype=dtype)
            flat = [(c, o) for c, opts, _ in requests for o in opts]
            inst = [Instance(request_type="loglikelihood", doc={}, arguments=p, idx=j) for j, p in enumerate(flat)]
            ref_s = ref_cpu = float("inf")
            for _ in range(rounds):
                t, c = time.perf_counter(), time.process_time()
                out = ref.loglikelihood(inst, disable_tqdm=True)
                ref_s = min(ref_s, time.perf_counter() - t)
                ref_cpu = min(ref_cpu, time.process_time() - c)
                print(f"lm-evaluation-harness {ref_s:.1f}s", file=sys.stderr)
            it = iter(lp for lp, _ in out)
            ref_scores = [[next(it) for _ in opts] for _, opts, _ in requests]
            baseline = {"installed": True, "seconds": ref_s, "cpu_seconds": ref_cpu, "examples_per_s": n / ref_s,
                        "batch_size": args.batch_size, "scores": ref_scores}

    def accuracy(scores):
        return 100.0 * sum(max(range(len(s)), key=s.__getitem__) == y
                           for s, (_, _, y) in zip(scores, requests, strict=True)) / n

    result = {
        "benchmark": "evals_mc",
        "quick": args.quick,
        "model": Path(model_path).name if not args.quick else "random-llama-4x256",
        "task": "nsmc", "data": source, "items": n, "shots": args.shots, "fixed_demos": args.fixed_demos, "device": args.device,
        "machine": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads(),
        "rounds": rounds,
        "haneul": {"seconds": ours_s, "cpu_seconds": cpu[ours.name], "examples_per_s": n / ours_s,
                   "accuracy": accuracy(ours_scores)},
        "haneul_no_prefix_cache": {"seconds": naive_s, "examples_per_s": n / naive_s,
                                   "accuracy": accuracy(naive_scores)},
        "note": "timings on a shared CPU are noisy; compare the ratios, which come from the same run",
    }
    if baseline["installed"]:
        ref_scores = baseline.pop("scores")
        flat_ours = [x for s in ours_scores for x in s]
        flat_ref = [x for s in ref_scores for x in s]
        result["lm_eval"] = {**baseline, "accuracy": accuracy(ref_scores)}
        result["speedup_vs_lm_eval"] = baseline["seconds"] / ours_s
        # process CPU time is far less sensitive than wall time to other jobs on a shared machine
        result["cpu_time_ratio_vs_lm_eval"] = baseline["cpu_seconds"] / cpu[ours.name]
        result["accuracy_gap_points"] = abs(accuracy(ours_scores) - accuracy(ref_scores))
        result["max_abs_loglik_diff"] = max(abs(a - b) for a, b in zip(flat_ours, flat_ref, strict=True))
        result["agree_within_0_5_points"] = result["accuracy_gap_points"] <= 0.5
    else:
        result["lm_eval"] = {"installed": False, "note": "pip install lm-eval to measure the baseline"}
    result["speedup_vs_no_cache"] = naive_s / ours_s
    if args.skip_no_cache:
        result["haneul_no_prefix_cache"] = {"skipped": True}
        result["speedup_vs_no_cache"] = None
    atomic_write_text(out_file, json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "note"}, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
