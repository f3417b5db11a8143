"""The evaluation runner: few-shot prompts per seed, scoring, a resumable journal, reports.

For each task, shot count and seed, every item gets its own deterministic demonstrations, is scored
by option log-likelihood (choice and regression tasks, with optional length normalisation and
contextual calibration) or by greedy generation (generation tasks), and its record is appended to
``items.jsonl`` in the output folder before the next item starts. A rerun of the same command reads
that journal and skips finished items, so a crash or a downed endpoint costs only the unfinished
work. Scores are aggregated per seed with bootstrap standard errors, then across seeds (mean and
spread), and written as ``results.json`` and ``results.md`` (atomically). Progress goes through
``haneul.report``, so an evaluation runs as a platform session with live progress.

This implements the zero-/few-shot in-context evaluation protocol of HyperCLOVA (Kim et al., 2021)
and the corpus study that followed it (Shin et al., 2022).
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from haneul.errors import Conflict, InvalidInput
from haneul.evals import metrics as M
from haneul.evals.backends.base import Backend
from haneul.evals.backends.openai import LogprobsUnsupported
from haneul.evals.prompts import build_context, content_free, continuations, sample_demos
from haneul.evals.tasks import get_task, load_task_spec
from haneul.evals.tasks._base import Example, Task, TaskData

NORMALIZATIONS = ("none", "token", "char", "byte")


@dataclass
class TaskRun:
    """A task with the data it is scored on and, optionally, a separate pool of demonstrations."""

    task: Task
    data: Path
    fewshot: Path | None = None
    template: str | None = None
    #: the settings :func:`validate_runs` checked and the rows it parsed (reused instead of rereading)
    checked: tuple[tuple[Any, ...], TaskData] | None = field(default=None, repr=False, compare=False)


@dataclass
class EvalConfig:
    shots: list[int] = field(default_factory=lambda: [0])
    seeds: int = 1
    limit: int | None = None
    normalization: str = "none"
    calibrate: bool = False
    bootstrap: int = 1000
    #: one demonstration set per (task, seed) for every item, instead of a fresh draw per item; the
    #: shared few-shot block is then encoded once per batch
    fixed_demos: bool = False

    def __post_init__(self) -> None:
        if self.normalization not in NORMALIZATIONS:
            raise InvalidInput(f"normalization {self.normalization!r} is not one of {', '.join(NORMALIZATIONS)}")
        if any(k < 0 for k in self.shots) or not self.shots:
            raise InvalidInput(f"shots {self.shots} must be non-negative integers, e.g. --shots 0,1,4,8")
        if self.seeds < 1:
            raise InvalidInput(f"seeds {self.seeds} must be at least 1")
        if self.limit is not None and self.limit < 1:
            raise InvalidInput(f"limit {self.limit} must be at least 1")


def parse_task_arg(arg: str) -> list[TaskRun]:
    """``NAME=PATH[,NAME=PATH...]`` or a YAML spec path (which names its own data)."""
    runs = []
    for part in [p.strip() for p in arg.split(",") if p.strip()]:
        if part.endswith((".yaml", ".yml")) and "=" not in part:
            spec = load_task_spec(part)
            runs.append(TaskRun(spec.task, spec.data, spec.fewshot_data))
            continue
        if "=" not in part:
            raise InvalidInput(f"--task {part!r} needs a data file: write NAME=PATH (e.g. nsmc=ratings_test.txt) or a YAML spec")
        name, path = part.split("=", 1)
        runs.append(TaskRun(get_task(name.strip()), Path(path.strip()).expanduser()))
    return runs


def validate_runs(runs: Sequence[TaskRun], config: EvalConfig) -> list[TaskData]:
    """Read and check every task's data against ``config``; the first problem raises a one-line error.

    ``haneul eval run`` calls this before it loads a model, so a wrong path, a malformed row (named
    by file, line and field), a template naming a missing field or a few-shot pool smaller than the
    largest shot count costs seconds, not a model load. :func:`run_eval` calls it too.
    """
    if not runs:
        raise InvalidInput("no tasks to evaluate; pass --task NAME=PATH")
    names = [r.task.name for r in runs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InvalidInput(f"task {twice[0]!r} is given twice; name each task once")
    checked = []
    for run in runs:
        key = (run.data, run.fewshot, run.template, tuple(config.shots), config.limit)
        if run.checked is None or run.checked[0] != key:
            data = run.task.validate(run.data, fewshot=run.fewshot, shots=config.shots, limit=config.limit,
                                     template=run.template)
            run.checked = (key, data)
        checked.append(run.checked[1])
    return checked


# --------------------------------------------------------------------------------------------------
# scoring one item


def normalise(scores: Sequence[tuple[float, int]], conts: Sequence[str], method: str) -> list[float]:
    if method == "none":
        return [lp for lp, _ in scores]
    if method == "token":
        return [lp / max(n, 1) for lp, n in scores]
    if method == "char":
        return [lp / max(len(c), 1) for (lp, _), c in zip(scores, conts, strict=True)]
    return [lp / max(len(c.encode("utf-8")), 1) for (lp, _), c in zip(scores, conts, strict=True)]


def _log_softmax(xs: Sequence[float]) -> list[float]:
    top = max(xs)
    z = top + math.log(sum(math.exp(x - top) for x in xs))
    return [x - z for x in xs]


def _choose_by_generation(task: Task, backend: Backend, context: str, options: Sequence[str]) -> int:
    """Without log-probabilities: generate, then take the option the answer starts with (or shares most with)."""
    text = backend.generate(context, max_new_tokens=16, stop=("\n",)).strip()
    for i, opt in enumerate(options):
        if text.startswith(opt.strip()):
            return i
    return max(range(len(options)), key=lambda i: M.char_f1(text, options[i]))


@dataclass
class _Scorer:
    backend: Backend
    config: EvalConfig

    def choice_record(
        self, task: Task, example: Example, raw: Sequence[tuple[float, int]], raw_cf: Sequence[tuple[float, int]] | None
    ) -> dict[str, Any]:
        conts = continuations(task, example)
        scores = normalise(raw, conts, self.config.normalization)
        if raw_cf is not None:
            # contextual calibration: divide by the label probabilities given a content-free input
            prior = normalise(raw_cf, conts, self.config.normalization)
            scores = [a - b for a, b in zip(_log_softmax(scores), _log_softmax(prior), strict=True)]
        pred = max(range(len(scores)), key=scores.__getitem__)
        return self._record(task, example, pred, scores)

    def _record(self, task: Task, example: Example, pred: int, scores: list[float]) -> dict[str, Any]:
        if task.kind == "regression":
            values = task.choice_values or tuple(float(o) for o in task.options(example))
            if scores:
                probs = [math.exp(x) for x in _log_softmax(scores)]
                expected = sum(p * v for p, v in zip(probs, values, strict=True))
            else:
                expected = values[pred]
            return {"prediction": expected, "gold": example.score, "scores": scores}
        return {"pred": pred, "label": example.label, "correct": pred == example.label, "scores": scores}

    def generated_record(self, task: Task, example: Example, context: str) -> dict[str, Any]:
        """Generation tasks, and choice tasks on backends without log-probabilities."""
        if task.kind == "generate":
            pred = self.backend.generate(context, task.max_new_tokens, task.stop).strip()
            return {"prediction": pred, "answers": list(example.answers)}
        pred_i = _choose_by_generation(task, self.backend, context, task.options(example))
        return self._record(task, example, pred_i, [])

    def chunk(self, task: Task, pending: list[tuple[Example, str, str | None]]) -> list[dict[str, Any]]:
        if task.kind != "generate" and self.backend.supports_loglikelihood:
            requests: list[tuple[str, Sequence[str]]] = []
            for example, context, cf in pending:
                requests.append((context, continuations(task, example)))
                if cf is not None:
                    requests.append((cf, continuations(task, example)))
            try:
                raw = self.backend.loglikelihood_many(requests)
            except LogprobsUnsupported:
                pass  # the backend now reports supports_loglikelihood = False
            else:
                out, j = [], 0
                for example, _, cf in pending:
                    main = raw[j]
                    prior = raw[j + 1] if cf is not None else None
                    j += 2 if cf is not None else 1
                    out.append(self.choice_record(task, example, main, prior))
                return out
        return [self.generated_record(task, example, context) for example, context, _ in pending]


# --------------------------------------------------------------------------------------------------
# the journal


class Journal:
    """Append-only JSON Lines of finished items; a torn last line (a crash mid-write) is ignored."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.done: dict[str, dict[str, Any]] = {}
        self._fh: Any = None
        if path is not None and path.exists():
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    self.done[rec["key"]] = rec
            self._trim_torn_tail(path)

    @staticmethod
    def _trim_torn_tail(path: Path) -> None:
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(path, "r+b") as fh:
                fh.truncate(data.rfind(b"\n") + 1)

    def add(self, key: str, record: dict[str, Any]) -> None:
        record = {"key": key, **record}
        self.done[key] = record
        if self.path is None:
            return
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._fh.flush()

    def sync(self) -> None:
        if self._fh is not None:
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self.sync()
            self._fh.close()
            self._fh = None


# --------------------------------------------------------------------------------------------------
# the run


def _fit_demos(
    backend: Backend, task: Task, example: Example, demos: list[Example], template: str | None
) -> tuple[str, list[Example]]:
    """Drop demonstrations (last first) until the prompt and the longest answer fit the model."""
    context = build_context(task, example, demos, template)
    if backend.max_length is None:
        return context, demos
    longest = max((len(c) for c in continuations(task, example)), default=0) if task.kind != "generate" else 0
    tail = "x" * longest if task.kind != "generate" else ""
    budget = backend.max_length - (task.max_new_tokens if task.kind == "generate" else 0)
    while True:
        n = backend.token_count(context + tail)
        if n is None or n <= budget:
            return context, demos
        if not demos:
            raise InvalidInput(
                f"task {task.name!r} item {example.id!r} needs {n} tokens but the model's context is "
                f"{backend.max_length}; use a model with a longer context or shorten that input"
            )
        demos = demos[:-1]
        context = build_context(task, example, demos, template)


def run_eval(
    backend: Backend,
    runs: Sequence[TaskRun],
    config: EvalConfig,
    out_dir: str | Path | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    chunk_size: int = 32,
) -> dict[str, Any]:
    """Score ``runs`` with ``backend``; return the results dict (also written to ``out_dir``).

    Items are scored ``chunk_size`` at a time (so the backend can batch them) and journalled as each
    chunk finishes; a crash loses at most the chunk in flight.
    """
    import haneul

    out = Path(out_dir) if out_dir is not None else None
    fingerprint = {
        "model": backend.name,
        "tasks": [[r.task.name, str(r.data), str(r.fewshot or ""), r.template or r.task.template] for r in runs],
        "shots": list(config.shots),
        "seeds": config.seeds,
        "limit": config.limit,
        "normalization": config.normalization,
        "calibrate": config.calibrate,
        "fixed_demos": config.fixed_demos,
    }
    if out is not None:
        _check_fingerprint(out, fingerprint)
    journal = Journal(out / "items.jsonl" if out is not None else None)
    scorer = _Scorer(backend, config)

    plans = []
    for run, data in zip(runs, validate_runs(runs, config), strict=True):
        items = data.examples[: config.limit] if config.limit else data.examples
        plans.append((run, items, data.pool))
    # zero-shot prompts do not depend on the seed, so one seed is enough for them
    cells = [(run, items, pool, k, s) for run, items, pool in plans for k in config.shots
             for s in (range(config.seeds) if k > 0 else range(1))]
    total = sum(len(items) for _, items, _, _, _ in cells)
    done = sum(1 for run, items, _, k, s in cells for i in range(len(items))
               if _key(run.task.name, k, s, i) in journal.done)
    reduced: dict[str, int] = {}
    started = time.perf_counter()
    scored = 0
    pending: list[tuple[str, int, Example, str, str | None, int]] = []

    def flush(task: Task, k: int, seed: int) -> None:
        nonlocal done, scored
        if not pending:
            return
        records = scorer.chunk(task, [(ex, ctx, cf) for _, _, ex, ctx, cf, _ in pending])
        for (key, i, example, _, _, used), record in zip(pending, records, strict=True):
            record.update({"task": task.name, "shots": k, "seed": seed, "index": i, "id": example.id,
                           "shots_used": used})
            journal.add(key, record)
            done += 1
            scored += 1
        journal.sync()
        pending.clear()
        if progress is not None:
            progress(done, total, task.name)
        haneul.report(step=done, eval_done=done, eval_total=total)

    try:
        for run, items, pool, k, seed in cells:
            task = run.task
            fixed = sample_demos(pool, k, seed, task.name, -1, exclude_self=False) if config.fixed_demos else None
            for i, example in enumerate(items):
                key = _key(task.name, k, seed, i)
                if key in journal.done:
                    continue
                if fixed is not None and not any(d is example for d in fixed):
                    demos = fixed
                else:  # per-item draw (also for an item that is itself one of the fixed demonstrations)
                    demos = sample_demos(pool, k, seed, task.name, i, exclude_self=run.fewshot is None)
                context, used = _fit_demos(backend, task, example, demos, run.template)
                if len(used) < k:
                    reduced[task.name] = reduced.get(task.name, 0) + 1
                cf = None
                if config.calibrate and task.kind != "generate" and task.choices:
                    cf = build_context(task, content_free(task, example), used, run.template)
                pending.append((key, i, example, context, cf, len(used)))
                if len(pending) >= chunk_size:
                    flush(task, k, seed)
            flush(task, k, seed)
    finally:
        journal.close()
    elapsed = time.perf_counter() - started
    for name, count in reduced.items():
        warnings.warn(f"task {name}: {count} prompts did not fit the model's context and used fewer shots", stacklevel=2)

    results = _summarise(plans, config, journal, fingerprint, reduced)
    results["timing"] = {"scored_items": scored, "seconds": elapsed,
                         "items_per_s": scored / elapsed if elapsed > 0 and scored else None}
    haneul.report(step=done, eval_done=done, eval_total=total, **_flat_metrics(results))
    if out is not None:
        write_reports(out, results)
    return results


def _key(task: str, shots: int, seed: int, index: int) -> str:
    return f"{task}|{shots}|{seed}|{index}"


def _check_fingerprint(out: Path, fingerprint: dict[str, Any]) -> None:
    from haneul.io import atomic_write_text

    run_file = out / "run.json"
    if run_file.exists():
        previous = json.loads(run_file.read_text(encoding="utf-8"))
        if previous != fingerprint:
            changed = sorted(k for k in fingerprint if previous.get(k) != fingerprint[k])
            raise Conflict(
                f"{out} holds a run with different settings ({', '.join(changed)}); "
                "pass a new --out folder to start afresh, or the same settings to resume"
            )
        return
    atomic_write_text(run_file, json.dumps(fingerprint, ensure_ascii=False, indent=2))


def _summarise(plans, config: EvalConfig, journal: Journal, fingerprint, reduced) -> dict[str, Any]:
    tasks: dict[str, Any] = {}
    for run, items, _ in plans:
        task = run.task
        per_shots: dict[str, Any] = {}
        for k in config.shots:
            seeds = range(config.seeds) if k > 0 else range(1)
            per_seed: dict[str, Any] = {}
            for s in seeds:
                recs = [journal.done[_key(task.name, k, s, i)] for i in range(len(items))]
                scores = M.aggregate(task.metric, recs)
                se = M.bootstrap_stderr(task.metric, recs, n_resamples=config.bootstrap, seed=s)
                per_seed[str(s)] = {**scores, **{f"{m}_se": v for m, v in se.items()}}
            names = list(M.aggregate(task.metric, [journal.done[_key(task.name, k, 0, 0)]]).keys())
            mean = {m: _mean([per_seed[s][m] for s in per_seed]) for m in names}
            se_mean = {m: _mean([per_seed[s][f"{m}_se"] for s in per_seed]) for m in names}
            spread = {m: _std([per_seed[s][m] for s in per_seed]) for m in names}
            per_shots[str(k)] = {"mean": mean, "se": se_mean, "seed_std": spread, "seeds": per_seed}
        tasks[task.name] = {
            "metric": task.metric, "kind": task.kind, "n": len(items), "data": str(run.data),
            "shots": per_shots, "reduced_shot_prompts": reduced.get(task.name, 0),
        }
    return {"model": fingerprint["model"], "config": asdict(config), "tasks": tasks}


def _mean(xs: Sequence[float]) -> float:
    return float(sum(xs) / len(xs)) if xs else 0.0


def _std(xs: Sequence[float]) -> float:
    if len(xs) < 2:
        return 0.0
    m = _mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def _flat_metrics(results: dict[str, Any]) -> dict[str, float]:
    flat = {}
    for name, t in results["tasks"].items():
        for k, cell in t["shots"].items():
            for m, v in cell["mean"].items():
                flat[f"{name}.{k}shot.{m}"] = v
    return flat


# --------------------------------------------------------------------------------------------------
# reports


def markdown_report(results: dict[str, Any]) -> str:
    lines = [f"# Evaluation of `{results['model']}`", ""]
    cfg = results["config"]
    lines.append(
        f"shots {cfg['shots']}, seeds {cfg['seeds']}, limit {cfg['limit']}, normalisation {cfg['normalization']}, "
        f"calibration {'on' if cfg['calibrate'] else 'off'}; values are mean over seeds ± bootstrap standard "
        "error (seed spread in brackets)."
    )
    lines.append("")
    for name, t in results["tasks"].items():
        metrics = list(next(iter(t["shots"].values()))["mean"].keys())
        lines += [f"## {name} (n={t['n']})", "", "| shots | " + " | ".join(metrics) + " |",
                  "|---|" + "---|" * len(metrics)]
        for k, cell in t["shots"].items():
            vals = [f"{cell['mean'][m]:.2f} ± {cell['se'][m]:.2f} ({cell['seed_std'][m]:.2f})" for m in metrics]
            lines.append(f"| {k} | " + " | ".join(vals) + " |")
        if t["reduced_shot_prompts"]:
            lines.append(f"\n{t['reduced_shot_prompts']} prompts used fewer shots to fit the model's context.")
        lines.append("")
    return "\n".join(lines)


def write_reports(out: Path, results: dict[str, Any]) -> None:
    from haneul.io import atomic_write_text

    atomic_write_text(out / "results.json", json.dumps(results, ensure_ascii=False, indent=2))
    atomic_write_text(out / "results.md", markdown_report(results))
