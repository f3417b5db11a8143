"""The default Korean model recipe (HyperCLOVA §2, end to end at small scale): tokenizer → data → pre-training → a servable model.

:func:`run_recipe` trains a morpheme-aware tokenizer on the corpus, packs the corpus into token shards,
pre-trains a preset GPT on them and copies the result (weights, config, tokenizer) to
``HANEUL_HOME/models/<name>``, where ``haneul lm models`` / ``haneul lm serve`` / the platform's
``/v1`` routes find it. Each stage's output is kept under ``HANEUL_HOME/runs/lm/<name>`` and reused when
it is already complete, and pre-training resumes from its checkpoint, so an interrupted recipe picks up
where it stopped.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from typing import Any

from haneul.errors import InvalidInput
from haneul.io import atomic_dir, sha256_file

__all__ = ["RECIPES", "run_recipe"]

# Defaults per preset, sized so that ko-tiny on the 24M-character review corpus fits ~45 minutes on 2 CPU cores.
RECIPES: dict[str, dict[str, Any]] = {
    "ko-nano": {"vocab_size": 4096, "steps": 300, "batch_size": 16, "seq_len": 128, "lr": 3e-3, "warmup": 30},
    "ko-tiny": {"vocab_size": 8192, "steps": 1500, "batch_size": 16, "seq_len": 256, "lr": 2e-3, "warmup": 100,
                "max_seconds": 35 * 60},
    "ko-small": {"vocab_size": 32000, "steps": 20000, "batch_size": 32, "seq_len": 1024, "lr": 6e-4, "warmup": 1000},
    "ko-base": {"vocab_size": 32000, "steps": 100000, "batch_size": 64, "seq_len": 2048, "lr": 3e-4, "warmup": 2000},
}


def run_recipe(
    preset: str,
    corpus: Sequence[str | os.PathLike[str]],
    *,
    name: str | None = None,
    kind: str = "morpheme-bpe",
    vocab_size: int | None = None,
    steps: int | None = None,
    batch_size: int | None = None,
    seq_len: int | None = None,
    lr: float | None = None,
    max_docs: int | None = None,
    tokenizer_docs: int | None = 200_000,
    workers: int = 1,
    model_overrides: dict[str, Any] | None = None,
    max_seconds: float | None = None,
    eval_every: int | None = None,
    sample_prompt: str | None = "이 영화는",
    log: Callable[[str], None] = lambda _: None,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Run the whole recipe and register the model as ``name`` (default: the preset's name)."""
    from haneul.lm.data import prepare_data, read_meta
    from haneul.lm.pretrain import TrainConfig, pretrain
    from haneul.lm.registry import models_dir
    from haneul.lm.tokenizer import train_tokenizer
    from haneul.settings import get_settings

    if preset not in RECIPES:
        raise InvalidInput(f"recipe {preset!r} is unknown; use one of {', '.join(RECIPES)}")
    d = RECIPES[preset]
    name = name or preset
    work = get_settings().home / "runs" / "lm" / name
    work.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    vocab = vocab_size or d["vocab_size"]

    tok_dir = work / "tokenizer"
    tok_meta = json.loads((tok_dir / "haneul.json").read_text()) if (tok_dir / "haneul.json").is_file() else {}
    if tok_meta.get("requested_vocab_size") != vocab or tok_meta.get("kind") != kind:
        log(f"training a {kind} tokenizer ({vocab} tokens)")
        limits = [x for x in (max_docs, tokenizer_docs) if x is not None]
        train_tokenizer(tok_dir, files=[str(c) for c in corpus], kind=kind, vocab_size=vocab, max_docs=min(limits) if limits else None)
        # a new tokenizer makes the token shards and any checkpoint stale
        for stale in (work / "data", work / "train"):
            if stale.exists():
                shutil.rmtree(stale)
    data_dir = work / "data"
    data_meta = json.loads((data_dir / "meta.json").read_text()) if (data_dir / "meta.json").is_file() else {}
    if data_meta.get("tokenizer_sha256") != sha256_file(tok_dir / "tokenizer.json"):
        log("tokenizing the corpus into token shards")
        prepare_data(tok_dir, corpus, data_dir, val_fraction=0.01, workers=workers, max_docs=max_docs)
    meta = read_meta(data_dir)
    log(f"{meta['train']['tokens']:,} training tokens, {meta['val']['tokens']:,} validation tokens")

    n_steps = steps or d["steps"]
    cfg = TrainConfig(
        data=str(data_dir),
        out=str(work / "train"),
        preset=preset,
        model=dict(model_overrides or {}),
        steps=n_steps,
        batch_size=batch_size or d["batch_size"],
        seq_len=seq_len or d["seq_len"],
        lr=lr or d["lr"],
        warmup=min(d["warmup"], max(n_steps // 10, 1)),
        eval_every=eval_every or max(n_steps // 10, 1),
        save_every=max(n_steps // 10, 1),
        max_seconds=max_seconds if max_seconds is not None else d.get("max_seconds"),
        fit_to_budget=True,
    )
    log(f"pre-training {preset} for {n_steps} steps")
    result = pretrain(cfg, on_step=on_step)
    if not result["model_dir"]:
        return {**result, "name": name, "registered": None}

    target = models_dir() / name
    with atomic_dir(target) as tmp:
        shutil.copytree(result["model_dir"], tmp, dirs_exist_ok=True)
        facts = {
            "name": name,
            "preset": preset,
            "tokenizer_kind": kind,
            "val_loss": result["val_loss"],
            "val_bpc": result["val_bpc"],
            "train_tokens": meta["train"]["tokens"],
            "steps": result["step"],
            "stopped_by_time_budget": result["out_of_time"],
            "seconds": round(time.perf_counter() - began, 1),
            "corpus": [os.path.basename(str(c)) for c in corpus],
        }
        (tmp / "haneul-model.json").write_text(json.dumps(facts, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    summary = {**facts, "registered": str(target), "params": result["params"]}
    if sample_prompt:
        from haneul.lm.generate import Generator

        gen = Generator.from_pretrained(target, name=name)
        summary["sample"] = sample_prompt + gen.generate(sample_prompt, max_tokens=40, temperature=0.8, top_p=0.95, seed=0)[0].text
    log(f"registered {name} at {target}")
    return summary
