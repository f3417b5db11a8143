"""Corpus study: how the source and the size of the pre-training corpus shape in-context learning.

HyperCLOVA's follow-up study trained the same model on corpora of different sources, on their
mixtures and on different amounts of each, then asked which ones give in-context learning and
whether validation perplexity predicts it. :func:`run_study` does that for any corpora a user names:

1. one tokenizer is trained on an equal share of every corpus, so per-token losses of all models
   are comparable;
2. each corpus, and each mixture (its parts' documents interleaved one by one), is written to
   ``corpora/<name>.jsonl`` and packed into token shards ``data/<name>/``;
3. each *cell* (a corpus or mixture at one size, the size counted in training tokens) pre-trains the
   preset for one pass over the first ``size`` tokens, is scored on every corpus's validation split
   and on the few-shot task suite (:func:`haneul.evals.run_eval`), and writes ``cells/<cell>/cell.json``;
4. ``results.json``, ``results.md`` and three plots summarise the cells: accuracy against size per
   source, mixtures against their parts, and validation perplexity against accuracy with the
   Pearson / Spearman correlation.

Every stage is kept under the study folder and skipped when already complete, and pre-training
resumes from its checkpoint, so an interrupted study picks up where it stopped. With a platform
server, each cell runs as its own session (``haneul eval corpus-study-cell``), so cells run where
the scheduler has room and report their training curves to the web UI.
"""

from __future__ import annotations

import getpass
import gzip
import json
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from haneul.errors import Conflict, InvalidInput, NotFound
from haneul.io import atomic_open, atomic_write_text

__all__ = ["StudyConfig", "parse_size", "parse_sizes", "plan_cells", "prepare_study", "run_cell", "run_study",
           "summarise", "write_study_reports"]

PLAN = "plan.json"
# a Korean corpus needs well under 3 characters of text per training token with these tokenizers
# (about 1.7 measured); writing 4x the largest size leaves room for the validation share and tokenizers
# that compress better
CHARS_PER_TOKEN_BUDGET = 4.0
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGbB]?)\s*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def parse_size(text: str) -> int:
    """``"250k"``, ``"4M"``, ``"1.5M"``, ``"1G"`` (or ``"1B"``) or plain digits → a token count."""
    m = _SIZE.match(text)
    if not m:
        raise InvalidInput(f"size {text!r} is not a token count; write e.g. 250k, 1M or 4M")
    scale = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "b": 10**9}[m.group(2).lower()]
    value = int(float(m.group(1)) * scale)
    if value < 1:
        raise InvalidInput(f"size {text!r} must be at least one token")
    return value


def parse_sizes(text: str) -> list[int]:
    sizes = sorted({parse_size(part) for part in text.split(",") if part.strip()})
    if not sizes:
        raise InvalidInput("--sizes is empty; give comma-separated token counts, e.g. 1M,4M,16M")
    return sizes


def human_size(tokens: int) -> str:
    """``250000`` → ``"250k"``, ``1500000`` → ``"1.5M"``; counts that do not shorten exactly stay digits."""
    for unit, scale in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        text = f"{tokens / scale:g}"
        if tokens >= scale and parse_size(text + unit) == tokens:
            return text + unit
    return str(tokens)


@dataclass
class StudyConfig:
    """What to train and how to score it. ``corpora`` maps a name to its files; ``mixtures`` maps a
    name to the corpus names it interleaves; ``tasks`` is the ``--task`` argument of ``haneul eval run``."""

    corpora: dict[str, list[str]]
    tasks: str
    sizes: list[int]
    mixtures: dict[str, list[str]] = field(default_factory=dict)
    preset: str = "ko-nano"
    shots: list[int] = field(default_factory=lambda: [0, 4])
    seeds: int = 1
    limit: int | None = 200
    fewshot: dict[str, str] = field(default_factory=dict)
    kind: str = "morpheme-bpe"
    vocab_size: int | None = None
    tokenizer_docs: int = 50_000
    batch_size: int | None = None
    seq_len: int | None = None
    lr: float | None = None
    min_steps: int = 20
    eval_batches: int = 20
    seed: int = 0
    workers: int = 1
    device: str = "auto"

    def __post_init__(self) -> None:
        from haneul.lm.recipe import RECIPES

        if not self.corpora:
            raise InvalidInput("no corpus given; name at least one with --corpus NAME=PATH")
        for name in [*self.corpora, *self.mixtures]:
            if not _NAME.match(name):
                raise InvalidInput(f"corpus name {name!r} must be letters, digits, '.', '_' or '-'; rename it")
        clash = set(self.corpora) & set(self.mixtures)
        if clash:
            raise InvalidInput(f"{', '.join(sorted(clash))} names both a corpus and a mixture; rename one")
        for name, parts in self.mixtures.items():
            unknown = [p for p in parts if p not in self.corpora]
            if unknown or len(parts) < 2:
                raise InvalidInput(
                    f"mixture {name!r} must join two or more corpora named with --corpus "
                    f"(unknown: {', '.join(unknown) or 'none'}); write e.g. --mix both=news+reviews"
                )
        if self.preset not in RECIPES:
            raise InvalidInput(f"preset {self.preset!r} is unknown; use one of {', '.join(RECIPES)}")
        if not self.sizes or min(self.sizes) < 1:
            raise InvalidInput("--sizes must be positive token counts, e.g. 1M,4M")
        if not self.shots or min(self.shots) < 0:
            raise InvalidInput(f"shots {self.shots} must be non-negative integers, e.g. 0,4")

    @property
    def sources(self) -> list[str]:
        return [*self.corpora, *self.mixtures]

    def train_settings(self) -> dict[str, Any]:
        from haneul.lm.config import GPTConfig
        from haneul.lm.recipe import RECIPES

        d = RECIPES[self.preset]
        # train on the whole context window: few-shot prompts fill it, so every position must be trained
        context = GPTConfig.from_name(self.preset).max_seq_len
        return {"batch_size": self.batch_size or d["batch_size"], "seq_len": self.seq_len or context,
                "lr": self.lr or d["lr"], "vocab_size": self.vocab_size or d["vocab_size"]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudyConfig:
        return cls(**data)


@dataclass(frozen=True)
class Cell:
    source: str
    size: int

    @property
    def id(self) -> str:
        return f"{self.source}@{human_size(self.size)}"


def plan_cells(cfg: StudyConfig) -> list[Cell]:
    return [Cell(source, size) for source in cfg.sources for size in cfg.sizes]


def cell_steps(cfg: StudyConfig, cell: Cell) -> int:
    """Optimizer steps of one pass over ``cell.size`` tokens (at least ``cfg.min_steps``)."""
    s = cfg.train_settings()
    return max(math.ceil(cell.size / (s["batch_size"] * s["seq_len"])), cfg.min_steps)


# --------------------------------------------------------------------------------------------------
# preparation: plan, corpora, tokenizer, token shards


def _check_plan(out: Path, cfg: StudyConfig) -> None:
    path = out / PLAN
    want = asdict(cfg)
    if path.is_file():
        have = json.loads(path.read_text())
        if have != want:
            changed = sorted(k for k in set(have) | set(want) if have.get(k) != want.get(k))
            raise Conflict(
                f"{out} holds a study with other settings ({', '.join(changed)} differ); "
                "use a new --out folder or the same settings to resume"
            )
        return
    atomic_write_text(path, json.dumps(want, indent=2, ensure_ascii=False) + "\n")


def load_plan(out: str | os.PathLike[str]) -> StudyConfig:
    path = Path(out) / PLAN
    if not path.is_file():
        raise NotFound(f"{path} does not exist; start the study with `haneul eval corpus-study --out {out} ...`")
    return StudyConfig.from_dict(json.loads(path.read_text()))


def _round_robin(streams: Sequence[Iterator[str]]) -> Iterator[str]:
    live = list(streams)
    while live:
        for it in list(live):
            doc = next(it, None)
            if doc is None:
                live.remove(it)
            else:
                yield doc


def _write_corpus(path: Path, docs: Iterator[str], max_chars: int) -> dict[str, int]:
    """Write documents as gzip JSONL until ``max_chars`` characters; atomic, so a crash leaves none."""
    count = chars = 0
    with atomic_open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as fh:
        for doc in docs:
            fh.write((json.dumps({"text": doc}, ensure_ascii=False) + "\n").encode("utf-8"))
            count += 1
            chars += len(doc)
            if chars >= max_chars:
                break
    return {"documents": count, "characters": chars}


def prepare_study(cfg: StudyConfig, out: Path, log: Callable[[str], None] = lambda _: None) -> None:
    """Plan file, per-source corpora, the shared tokenizer and every source's token shards."""
    from haneul.evals import parse_task_arg
    from haneul.io import sha256_file
    from haneul.lm.corpus import check_corpus, iter_corpus
    from haneul.lm.data import prepare_data
    from haneul.lm.tokenizer import train_tokenizer

    # every input is checked before the plan is written: a wrong path must not claim the folder
    for name, files in cfg.corpora.items():
        try:
            check_corpus(files)
        except (InvalidInput, NotFound) as exc:
            raise type(exc)(f"corpus {name!r}: {exc.message}") from exc
    runs = parse_task_arg(cfg.tasks)
    for run in runs:
        extra = cfg.fewshot.get(run.task.name)
        for path in [run.data, *([Path(extra)] if extra else [])]:
            if not path.is_file():
                raise NotFound(f"task {run.task.name!r}: {path} does not exist; pass an existing data file")
    unknown = sorted(set(cfg.fewshot) - {r.task.name for r in runs})
    if unknown:
        raise InvalidInput(f"--fewshot names {', '.join(unknown)}, which are not among the tasks; fix the name")
    out.mkdir(parents=True, exist_ok=True)
    _check_plan(out, cfg)
    settings = cfg.train_settings()
    budget = int(max(cfg.sizes) * CHARS_PER_TOKEN_BUDGET)
    corpora = out / "corpora"
    for name in cfg.sources:
        path = corpora / f"{name}.jsonl.gz"
        if path.is_file():
            continue
        parts = cfg.mixtures.get(name, [name])
        log(f"writing corpus {name}" + (f" ({' + '.join(parts)}, interleaved)" if name in cfg.mixtures else ""))
        docs = _round_robin([iter_corpus(cfg.corpora[p]) for p in parts])
        stats = _write_corpus(path, docs, budget)
        log(f"  {stats['documents']:,} documents, {stats['characters']:,} characters")

    tok_dir = out / "tokenizer"
    if not (tok_dir / "tokenizer.json").is_file():
        log(f"training a shared {cfg.kind} tokenizer ({settings['vocab_size']} tokens) on all corpora")
        sample = _round_robin([iter_corpus([corpora / f"{n}.jsonl.gz"]) for n in cfg.corpora])
        docs = [doc for _, doc in zip(range(cfg.tokenizer_docs), sample, strict=False)]
        train_tokenizer(tok_dir, texts=docs, kind=cfg.kind, vocab_size=settings["vocab_size"])
    tok_sha = sha256_file(tok_dir / "tokenizer.json")
    for name in cfg.sources:
        data_dir = out / "data" / name
        meta_path = data_dir / "meta.json"
        if meta_path.is_file() and json.loads(meta_path.read_text()).get("tokenizer_sha256") == tok_sha:
            continue
        log(f"tokenizing {name}")
        prepare_data(tok_dir, [corpora / f"{name}.jsonl.gz"], data_dir, val_fraction=0.02, seed=cfg.seed,
                     workers=cfg.workers)


# --------------------------------------------------------------------------------------------------
# one cell: pre-train, validation losses, few-shot scores


def _cell_dir(out: Path, cell: Cell) -> Path:
    return out / "cells" / cell.id


def run_cell(
    out: str | os.PathLike[str],
    cell_id: str,
    *,
    log: Callable[[str], None] = lambda _: None,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> dict[str, Any]:
    """Train and score one cell of a prepared study; returns (and writes) its ``cell.json`` record."""
    import torch

    from haneul.evals import EvalConfig, load_backend, parse_task_arg, run_eval
    from haneul.lm.data import TokenData
    from haneul.lm.model import GPT
    from haneul.lm.pretrain import TrainConfig, evaluate_split, pretrain
    from haneul.training import pick_amp_dtype, pick_device

    root = Path(out)
    cfg = load_plan(root)
    cells = {c.id: c for c in plan_cells(cfg)}
    if cell_id not in cells:
        raise NotFound(f"cell {cell_id!r} is not in the study at {root}; cells are {', '.join(cells)}")
    cell = cells[cell_id]
    here = _cell_dir(root, cell)
    record_path = here / "cell.json"
    if record_path.is_file():
        return json.loads(record_path.read_text())
    began = time.perf_counter()
    s = cfg.train_settings()
    data_dir = root / "data" / cell.source
    data = TokenData(data_dir)
    available = data.meta["train"]["tokens"]
    used = min(cell.size, available)
    if used < cell.size:
        log(f"warning: {cell.source} holds {available:,} training tokens, fewer than {cell.size:,}; "
            f"the cell trains {cell.size / available:.1f} passes over them")
    steps = cell_steps(cfg, cell)
    log(f"{cell.id}: pre-training {cfg.preset} for {steps} steps on {used:,} tokens of {cell.source}")
    train = pretrain(
        TrainConfig(
            data=str(data_dir), out=str(here / "train"), preset=cfg.preset, steps=steps,
            batch_size=s["batch_size"], seq_len=s["seq_len"], lr=s["lr"], warmup=max(steps // 10, 1),
            eval_every=steps, eval_batches=cfg.eval_batches, save_every=max(steps // 4, 1), seed=cfg.seed,
            device=cfg.device, train_tokens=used,
        ),
        on_step=on_step,
    )
    if not train["model_dir"]:
        raise InvalidInput(f"cell {cell.id} stopped before its last step; run it again to resume")
    model_dir = Path(train["model_dir"])

    # validation loss of this model on every corpus (same tokenizer, so per-token losses compare)
    device = pick_device(cfg.device)
    amp = pick_amp_dtype("auto", device)
    model = GPT.from_pretrained(model_dir).to(device)
    val: dict[str, Any] = {}
    for name in cfg.corpora:
        held_out = TokenData(root / "data" / name)
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            loss, bpc = evaluate_split(model, held_out, s["batch_size"], s["seq_len"], cfg.eval_batches)
        val[name] = {"loss": loss, "bpc": bpc, "perplexity": math.exp(loss) if math.isfinite(loss) else None}
    del model
    finite = [v["loss"] for v in val.values() if math.isfinite(v["loss"])]
    mean_loss = sum(finite) / len(finite) if finite else float("nan")

    runs = parse_task_arg(cfg.tasks)
    for run in runs:
        if run.task.name in cfg.fewshot:
            run.fewshot = Path(cfg.fewshot[run.task.name])
    log(f"{cell.id}: scoring {', '.join(r.task.name for r in runs)} at {cfg.shots} shots")
    results = run_eval(
        load_backend(str(model_dir), device=None if cfg.device == "auto" else cfg.device),
        runs,
        EvalConfig(shots=list(cfg.shots), seeds=cfg.seeds, limit=cfg.limit, fixed_demos=True),
        here / "eval",
        progress=progress,
    )
    scores = {
        name: {k: {"metric": next(iter(c["mean"])), "value": next(iter(c["mean"].values())),
                   "se": next(iter(c["se"].values()))} for k, c in t["shots"].items()}
        for name, t in results["tasks"].items()
    }
    # prompts that had to drop demonstrations to fit the model's context window, per task
    shortened = {name: t["reduced_shot_prompts"] for name, t in results["tasks"].items() if t["reduced_shot_prompts"]}
    record = {
        "cell": cell.id, "source": cell.source, "kind": "mixture" if cell.source in cfg.mixtures else "corpus",
        "parts": cfg.mixtures.get(cell.source, [cell.source]), "size": cell.size, "steps": train["step"],
        "train_tokens_available": available, "passes": cell.size / used if used else None,
        "params": train["params"], "val_bpc_own": train["val_bpc"], "val": val, "mean_val_loss": mean_loss,
        "mean_val_perplexity": math.exp(mean_loss) if math.isfinite(mean_loss) else None,
        "tasks": scores, "shortened_prompts": shortened, "model_dir": str(model_dir), "seconds": round(time.perf_counter() - began, 1),
    }
    atomic_write_text(record_path, json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return record


# --------------------------------------------------------------------------------------------------
# the whole study


def _run_cells_in_sessions(root: Path, todo: Sequence[Cell], log: Callable[[str], None], poll_s: float) -> None:
    """Submit each unfinished cell as a platform session, then wait for all of them."""
    from haneul.platform.client import Client, inherited_env

    client = Client.from_env()
    env = inherited_env()
    started: dict[str, int] = {}
    for cell in todo:
        session = client.create_session(
            command=[sys.executable, "-m", "haneul", "eval", "corpus-study-cell", str(root.resolve()), cell.id],
            name=f"corpus-study {root.name} {cell.id}", owner=getpass.getuser(), cpus=1.0,
            env=env, cwd=os.getcwd(), snapshot=False,
        )
        started[cell.id] = session["id"]
        log(f"{cell.id}: session {session['id']}")
    failed: list[str] = []
    while started:
        time.sleep(poll_s)
        for cid, sid in list(started.items()):
            status = client.get_session(sid)["status"]
            if status not in ("queued", "running"):
                del started[cid]
                log(f"{cid}: session {sid} {status}")
                if status != "done":
                    failed.append(f"{cid} (session {sid}: {status}; see `haneul logs {sid}`)")
    if failed:
        raise InvalidInput(f"cells failed: {'; '.join(failed)}; fix the cause and run the study again to resume")


def run_study(
    cfg: StudyConfig,
    out: str | os.PathLike[str],
    *,
    sessions: bool = False,
    log: Callable[[str], None] = lambda _: None,
    on_step: Callable[[str, int, int, dict[str, float]], None] | None = None,
    poll_s: float = 2.0,
) -> dict[str, Any]:
    """Prepare, run every unfinished cell (here, or as platform sessions) and write the reports.

    ``on_step(cell_id, step, steps, metrics)`` follows pre-training of cells that run here."""
    root = Path(out)
    prepare_study(cfg, root, log)
    cells = plan_cells(cfg)
    todo = [c for c in cells if not (_cell_dir(root, c) / "cell.json").is_file()]
    if todo and sessions:
        _run_cells_in_sessions(root, todo, log, poll_s)
    else:
        for cell in todo:
            total = cell_steps(cfg, cell)
            step_cb = (lambda step, m, cid=cell.id, n=total: on_step(cid, step, n, m)) if on_step else None
            run_cell(root, cell.id, log=log, on_step=step_cb)
    records = [json.loads((_cell_dir(root, c) / "cell.json").read_text()) for c in cells]
    summary = summarise(cfg, records)
    write_study_reports(root, summary)
    return summary


# --------------------------------------------------------------------------------------------------
# summary, tables and plots


def summarise(cfg: StudyConfig, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Correlations of validation perplexity with few-shot scores, and mixtures against their parts."""
    from haneul.evals.metrics import pearson, spearman

    top = str(max(cfg.shots))
    correlations: dict[str, Any] = {}
    tasks = list(records[0]["tasks"]) if records else []
    for task in tasks:
        pairs = [(r["mean_val_loss"], r["tasks"][task][top]["value"]) for r in records
                 if math.isfinite(r["mean_val_loss"])]
        xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
        enough = len(pairs) >= 3 and len(set(xs)) > 1 and len(set(ys)) > 1
        correlations[task] = {
            "shots": int(top), "cells": len(pairs),
            "pearson": pearson(xs, ys) if enough else None,
            "spearman": spearman(xs, ys) if enough else None,
        }
    by_key = {(r["source"], r["size"]): r for r in records}
    mixtures = []
    for name, parts in cfg.mixtures.items():
        for size in cfg.sizes:
            mix = by_key.get((name, size))
            if mix is None:
                continue
            for task in tasks:
                part_scores = {p: by_key[(p, size)]["tasks"][task][top]["value"] for p in parts if (p, size) in by_key}
                value = mix["tasks"][task][top]["value"]
                mixtures.append({
                    "mixture": name, "size": size, "task": task, "shots": int(top), "value": value,
                    "parts": part_scores,
                    "vs_best_part": value - max(part_scores.values()) if part_scores else None,
                    "vs_mean_of_parts": value - sum(part_scores.values()) / len(part_scores) if part_scores else None,
                })
    return {"config": asdict(cfg), "cells": list(records), "correlations": correlations, "mixtures": mixtures}


def markdown_study(summary: dict[str, Any]) -> str:
    cfg = summary["config"]
    cells = summary["cells"]
    tasks = list(cells[0]["tasks"]) if cells else []
    shots = [str(k) for k in cfg["shots"]]
    lines = [
        "# Corpus study", "",
        f"Preset `{cfg['preset']}`, one shared {cfg['kind']} tokenizer, sizes in training tokens (one pass). "
        f"Tasks: {', '.join(tasks)}; {cfg['limit'] or 'all'} items each, shots {', '.join(shots)}, "
        f"{cfg['seeds']} seed(s). Scores are the task's main metric ± bootstrap standard error.", "",
    ]
    head = ["source", "size", "steps", "val ppl (mean over corpora)", "own val bits/char"]
    head += [f"{t} {k}-shot" for t in tasks for k in shots]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in cells:
        row = [r["source"] + (" (mix)" if r["kind"] == "mixture" else ""), human_size(r["size"]), str(r["steps"]),
               f"{r['mean_val_perplexity']:.1f}" if r["mean_val_perplexity"] else "–",
               f"{r['val_bpc_own']:.3f}" if r["val_bpc_own"] is not None else "–"]
        row += [f"{r['tasks'][t][k]['value']:.3f} ± {r['tasks'][t][k]['se']:.3f}" for t in tasks for k in shots]
        lines.append("| " + " | ".join(row) + " |")
    shortened = {}
    for r in cells:
        for task, n in r.get("shortened_prompts", {}).items():
            shortened[task] = max(shortened.get(task, 0), n)
    if shortened:
        lines += ["", "Prompts cut to fewer demonstrations to fit the context window (most in one cell): "
                  + ", ".join(f"{t} {n}" for t, n in shortened.items()) + "."]
    lines += ["", "## Does validation perplexity predict in-context accuracy?", "",
              "| task | shots | cells | Pearson r | Spearman ρ |", "|---|---|---|---|---|"]
    for task, c in summary["correlations"].items():
        fmt = lambda v: "–" if v is None else f"{v:+.3f}"  # noqa: E731
        lines.append(f"| {task} | {c['shots']} | {c['cells']} | {fmt(c['pearson'])} | {fmt(c['spearman'])} |")
    lines += ["", "Negative r: lower perplexity goes with higher accuracy. Undefined (–) when every cell scores "
              "the same or there are fewer than three cells.", ""]
    if summary["mixtures"]:
        lines += ["## Mixtures against their parts", "",
                  "| mixture | size | task | mixture | parts | vs best part | vs mean of parts |",
                  "|---|---|---|---|---|---|---|"]
        for m in summary["mixtures"]:
            parts = ", ".join(f"{p} {v:.3f}" for p, v in m["parts"].items())
            lines.append(f"| {m['mixture']} | {human_size(m['size'])} | {m['task']} | {m['value']:.3f} | {parts} | "
                         f"{m['vs_best_part']:+.3f} | {m['vs_mean_of_parts']:+.3f} |")
        lines.append("")
    lines += ["Plots: `accuracy_vs_size.png`, `perplexity_vs_accuracy.png`"
              + (", `mixtures.png`" if summary["mixtures"] else "") + "."]
    return "\n".join(lines) + "\n"


def plot_study(out: Path, summary: dict[str, Any]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = summary["cells"]
    if not cells:
        return []
    tasks = list(cells[0]["tasks"])
    top = str(max(summary["config"]["shots"]))
    written: list[Path] = []

    sources = list(dict.fromkeys(r["source"] for r in cells))

    def per_task(name: str, draw: Callable[[Any, str], None]) -> None:
        """One panel per task, drawn by ``draw(ax, task)``, saved as ``name``."""
        fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.4), squeeze=False)
        for ax, task in zip(axes[0], tasks, strict=True):
            draw(ax, task)
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("score")
        axes[0][-1].legend(fontsize=8)
        fig.tight_layout()
        written.append(_save(fig, out / name))
        plt.close(fig)

    def by_size(ax: Any, task: str) -> None:
        for source in sources:
            rows = sorted((r for r in cells if r["source"] == source), key=lambda r: r["size"])
            ax.errorbar([r["size"] for r in rows], [r["tasks"][task][top]["value"] for r in rows],
                        yerr=[r["tasks"][task][top]["se"] for r in rows], marker="o", capsize=3,
                        linestyle="--" if rows[0]["kind"] == "mixture" else "-", label=source)
        ax.set_xscale("log")
        ax.set_xlabel("training tokens")
        ax.set_title(f"{task}, {top}-shot")

    def by_perplexity(ax: Any, task: str) -> None:
        for source in sources:
            rows = [r for r in cells if r["source"] == source and r["mean_val_perplexity"]]
            ax.scatter([r["mean_val_perplexity"] for r in rows], [r["tasks"][task][top]["value"] for r in rows],
                       label=source)
        c = summary["correlations"].get(task, {})
        r_text = "r undefined" if c.get("pearson") is None else f"Pearson r {c['pearson']:+.2f}"
        ax.set_title(f"{task}, {top}-shot ({r_text})")
        ax.set_xlabel("validation perplexity (mean over corpora)")

    per_task("accuracy_vs_size.png", by_size)
    per_task("perplexity_vs_accuracy.png", by_perplexity)

    if summary["mixtures"]:
        groups = summary["mixtures"]
        fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(groups)), 3.4))
        width = 0.8 / (1 + max(len(g["parts"]) for g in groups))
        for i, g in enumerate(groups):
            bars = [(g["mixture"], g["value"]), *g["parts"].items()]
            for j, (label, value) in enumerate(bars):
                ax.bar(i + j * width, value, width, color=f"C{j}", label=label if i == 0 else None)
        ax.set_xticks([i + width * len(groups[0]["parts"]) / 2 for i in range(len(groups))])
        ax.set_xticklabels([f"{g['task']}\n{human_size(g['size'])}" for g in groups], fontsize=8)
        ax.set_ylabel(f"score, {top}-shot")
        ax.set_title("mixture (first bar) vs its parts")
        ax.legend(fontsize=8)
        fig.tight_layout()
        written.append(_save(fig, out / "mixtures.png"))
        plt.close(fig)
    return written


def _save(fig: Any, path: Path) -> Path:
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110)
    return path


def write_study_reports(out: Path, summary: dict[str, Any]) -> None:
    atomic_write_text(out / "results.json", json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    atomic_write_text(out / "results.md", markdown_study(summary))
    plot_study(out, summary)
