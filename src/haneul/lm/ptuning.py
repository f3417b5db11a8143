"""Prompt-based learning on a frozen LM (HyperCLOVA §5: p-tuning and in-context few-shot prompting).

:func:`ptune` learns a soft prompt (PEFT prompt tuning, or p-tuning with a prompt encoder) for a
classification task expressed through verbalizers — NSMC-format sentiment by default, where label 0
is the word "부정" and label 1 "긍정" — while every weight of the model stays frozen. In the same run
it measures, on the same test examples and the same frozen model, zero-shot and k-shot in-context
prompting, so the two ways of adapting a model without fine-tuning it are compared side by side.
A prediction is the label whose verbalizer has the higher log-likelihood after the prompt.
"""

from __future__ import annotations

import gzip
import json
import os
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from haneul.errors import HaneulError, InvalidInput, NotFound
from haneul.io import atomic_dir

__all__ = ["PTuneConfig", "SOFT_PROMPT_FILE", "load_soft_prompt", "main", "ptune", "read_nsmc"]

#: the learned prompt as plain vectors ``prompt`` [virtual tokens, hidden] (for p-tuning, the prompt
#: encoder's output), so a generator can put it before any prompt without PEFT
SOFT_PROMPT_FILE = "soft_prompt.safetensors"
RECORD_FILE = "haneul-ptune.json"


@dataclass
class PTuneConfig:
    model: str
    train: str
    test: str
    out: str | None = None
    method: str = "prompt-tuning"  # prompt-tuning | p-tuning
    num_virtual_tokens: int = 16
    steps: int = 200
    batch_size: int = 8
    lr: float = 3e-2
    shots: int = 4
    max_train: int | None = 2000
    max_test: int | None = 200
    template: str = "리뷰: {text}\n감정:"
    verbalizers: dict[int, str] = field(default_factory=lambda: {0: " 부정", 1: " 긍정"})
    seed: int = 0


def read_nsmc(path: str | os.PathLike[str], limit: int | None = None) -> list[tuple[str, int]]:
    """``(document, label)`` rows of an NSMC-format TSV (``id<TAB>document<TAB>label``, header line; .gz ok)."""
    p = Path(path)
    if not p.is_file():
        raise NotFound(f"data file {p} does not exist; pass an NSMC-format TSV (id, document, label)")
    opener = gzip.open if p.read_bytes()[:2] == b"\x1f\x8b" else open
    rows: list[tuple[str, int]] = []
    with opener(p, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
        for lineno, line in enumerate(fh, start=1):
            parts = line.rstrip("\r\n").split("\t")
            if lineno == 1 and parts[-1] == "label":
                continue
            if len(parts) != 3 or parts[2] not in ("0", "1"):
                raise InvalidInput(f"{p} line {lineno} is not 'id<TAB>document<TAB>label(0/1)'; fix or drop that line")
            if parts[1].strip():
                rows.append((parts[1], int(parts[2])))
            if limit is not None and len(rows) >= limit:
                break
    if not rows:
        raise InvalidInput(f"{p} has no examples; pass an NSMC-format TSV with at least one row")
    return rows


class _Scorer:
    """Batched log-likelihood of each verbalizer after each context."""

    def __init__(self, model: Any, tok: Any, cfg: PTuneConfig, window: int, pad_id: int) -> None:
        self.model, self.tok, self.cfg, self.window, self.pad = model, tok, cfg, window, pad_id
        self.labels = sorted(cfg.verbalizers)
        self.label_ids = {y: tok.encode(cfg.verbalizers[y]) for y in self.labels}

    def batch(self, contexts: Sequence[list[int]], golds: Sequence[int] | None = None) -> tuple[Any, Any, Any]:
        """Right-padded ``(ids, mask, labels)``: one row per context and label (or per context and its
        gold label when ``golds`` is given); ``labels`` marks the verbalizer tokens only."""
        import torch

        room = self.window - self.cfg.num_virtual_tokens
        pairs = [(c, y) for c in contexts for y in self.labels] if golds is None else list(zip(contexts, golds, strict=True))
        seqs = [((c + self.label_ids[y])[-room:], len(self.label_ids[y])) for c, y in pairs]
        T = max(len(s) for s, _ in seqs)
        ids = torch.full((len(seqs), T), self.pad, dtype=torch.long)
        mask = torch.zeros(len(seqs), T, dtype=torch.long)
        labels = torch.full((len(seqs), T), -100, dtype=torch.long)
        for i, (seq, n) in enumerate(seqs):
            ids[i, : len(seq)] = torch.tensor(seq)
            mask[i, : len(seq)] = 1
            labels[i, len(seq) - n : len(seq)] = ids[i, len(seq) - n : len(seq)]
        return ids, mask, labels

    def scores(self, contexts: Sequence[list[int]]) -> Any:
        """[N, n_labels] summed log-probabilities."""
        import torch

        ids, mask, labels = self.batch(contexts)
        with torch.no_grad():
            logits = self.model(input_ids=ids, attention_mask=mask).logits
        logits = logits[:, logits.shape[1] - ids.shape[1] :]  # drop virtual-token positions
        logp = logits[:, :-1].float().log_softmax(-1)
        target = labels[:, 1:]
        picked = torch.gather(logp, 2, target.clamp(min=0)[..., None])[..., 0] * (target != -100)
        return picked.sum(-1).view(len(contexts), len(self.labels))

    def accuracy(self, contexts: Sequence[list[int]], golds: Sequence[int], batch: int = 8) -> float:
        correct = 0
        for i in range(0, len(contexts), batch):
            s = self.scores(contexts[i : i + batch])
            pred = [self.labels[j] for j in s.argmax(-1).tolist()]
            correct += sum(p == g for p, g in zip(pred, golds[i : i + batch], strict=True))
        return correct / len(contexts)


def _load(model: str) -> tuple[Any, Any, Path]:
    from transformers import AutoModelForCausalLM

    from haneul.lm.registry import resolve
    from haneul.lm.tokenizer import load_tokenizer

    source = resolve(model)
    if source.kind == "remote":
        raise InvalidInput(f"model {model!r} is a remote endpoint; prompt tuning needs local weights (a model folder)")
    if source.kind == "bcq":
        raise InvalidInput(f"model {model!r} is a quantised base; prompt tuning needs full weights "
                           "(the model folder it was quantised from)")
    if source.kind == "smollm2":
        from haneul.lm.models.smollm2 import smollm2_dir

        folder = smollm2_dir()
    else:
        folder = Path(source.location)
    hf = AutoModelForCausalLM.from_pretrained(folder)
    return hf, load_tokenizer(folder), folder


def ptune(cfg: PTuneConfig) -> dict[str, Any]:
    """Learn a soft prompt and compare it with zero- and k-shot prompting; returns the accuracies."""
    import torch
    from peft import PromptEncoderConfig, PromptTuningConfig, TaskType, get_peft_model

    import haneul

    if cfg.method not in ("prompt-tuning", "p-tuning"):
        raise InvalidInput(f"method {cfg.method!r} is unknown; use prompt-tuning or p-tuning")
    train = read_nsmc(cfg.train, cfg.max_train)
    test = read_nsmc(cfg.test, cfg.max_test)
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    base, tok, folder = _load(cfg.model)
    base.eval()
    for p in base.parameters():
        p.requires_grad_(False)
    window = int(getattr(base.config, "max_position_embeddings", 2048))
    pad = base.config.eos_token_id if isinstance(base.config.eos_token_id, int) else 0

    def ctx(text: str) -> list[int]:
        return tok.encode(cfg.template.format(text=text))

    golds = [y for _, y in test]
    zero_ctx = [ctx(t) for t, _ in test]
    demo_ctx = []
    for text, _ in test:
        demos = rng.sample(train, cfg.shots) if cfg.shots else []
        prefix = "".join(cfg.template.format(text=t) + cfg.verbalizers[y] + "\n" for t, y in demos)
        demo_ctx.append(tok.encode(prefix + cfg.template.format(text=text)))
    frozen = _Scorer(base, tok, PTuneConfig(**{**asdict(cfg), "num_virtual_tokens": 0}), window, pad)
    zero_shot = frozen.accuracy(zero_ctx, golds)
    few_shot = frozen.accuracy(demo_ctx, golds)

    if cfg.method == "prompt-tuning":
        peft_cfg: Any = PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=cfg.num_virtual_tokens)
    else:
        peft_cfg = PromptEncoderConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=cfg.num_virtual_tokens,
                                       encoder_hidden_size=int(base.config.hidden_size))
    model = get_peft_model(base, peft_cfg)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    scorer = _Scorer(model, tok, cfg, window, pad)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=0.0)
    losses = []
    model.train()
    for step in range(1, cfg.steps + 1):
        batch = [train[rng.randrange(len(train))] for _ in range(cfg.batch_size)]
        ids, mask, labels = scorer.batch([ctx(t) for t, _ in batch], [y for _, y in batch])
        out = model(input_ids=ids, attention_mask=mask, labels=labels)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(out.loss.item())
        haneul.report(step=step, ptune_loss=losses[-1])
    model.eval()
    tuned = scorer.accuracy(zero_ctx, golds)
    result = {
        "model": cfg.model,
        "method": cfg.method,
        "num_virtual_tokens": cfg.num_virtual_tokens,
        "trainable_params": trainable,
        "train_examples": len(train),
        "test_examples": len(test),
        "accuracy": {"zero_shot": zero_shot, f"{cfg.shots}_shot_icl": few_shot, cfg.method: tuned},
        "first_loss": losses[0] if losses else None,
        "final_loss": sum(losses[-10:]) / len(losses[-10:]) if losses else None,
    }
    haneul.report(step=cfg.steps, ptune_accuracy=tuned, icl_accuracy=few_shot, zero_shot_accuracy=zero_shot)
    if cfg.out:
        out = Path(cfg.out)
        record = {**result, "config": asdict(cfg), "base": str(Path(folder).resolve())}
        from safetensors.torch import save_file

        with torch.no_grad():
            vectors = model.get_prompt(batch_size=1)[0].detach().float().contiguous()
        with atomic_dir(out) as tmp:
            model.save_pretrained(tmp)
            save_file({"prompt": vectors}, str(tmp / SOFT_PROMPT_FILE))
            (tmp / RECORD_FILE).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        result["saved"] = str(out)
    return result


def load_soft_prompt(folder: str | os.PathLike[str]) -> tuple[Path, Any, dict[str, Any]]:
    """``(base model folder, prompt vectors [virtual tokens, hidden], record)`` of a folder :func:`ptune` saved."""
    from safetensors.torch import load_file

    path = Path(folder)
    if not (path / RECORD_FILE).is_file() or not (path / SOFT_PROMPT_FILE).is_file():
        raise NotFound(f"{path} is not a learned soft prompt (no {RECORD_FILE} and {SOFT_PROMPT_FILE}); "
                       "make one with `haneul lm ptune --out`")
    record = json.loads((path / RECORD_FILE).read_text(encoding="utf-8"))
    base = Path(record["base"])
    if not base.is_dir():
        raise NotFound(f"the soft prompt in {path} was learned on {base}, which no longer exists; restore that model")
    return base, load_file(str(path / SOFT_PROMPT_FILE))["prompt"], record


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m haneul.lm.ptuning CONFIG.json``: :func:`ptune` with a JSON :class:`PTuneConfig` (how the
    studio runs it as a platform session); prints the result as JSON."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m haneul.lm.ptuning CONFIG.json", file=sys.stderr)
        return 2
    try:
        fields = json.loads(Path(args[0]).read_text(encoding="utf-8"))
        if "verbalizers" in fields:  # JSON object keys are strings
            fields["verbalizers"] = {int(k): v for k, v in fields["verbalizers"].items()}
        result = ptune(PTuneConfig(**fields))
    except (OSError, ValueError, TypeError) as exc:
        print(f"error: cannot run p-tuning from {args[0]}: {exc}", file=sys.stderr)
        return 2
    except HaneulError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
