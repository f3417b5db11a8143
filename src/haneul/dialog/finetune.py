"""Fine-tune a causal LM into a session summariser on (dialogue, summary) pairs (Keep Me Updated §3.1).

Every session of a CareCall-memory-format file becomes one chat example: the user turn is the
memory before the session plus the dialogue as "시스템: …" / "사용자: …" lines
(:func:`~haneul.dialog.summarizer.finetune_prompt`), the assistant turn the session's summary, one
sentence per line, or "없음" when the session brought nothing new. Training is haneul's supervised
fine-tuning (:func:`haneul.lm.sft.sft`: loss on the answer only, packing, full or LoRA), so the
result is an ordinary model folder that :class:`~haneul.dialog.summarizer.FineTunedSummarizer`
loads and that ``haneul lm serve`` can serve. Metrics go through ``haneul.report`` (a platform
session when run under ``haneul run``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from haneul.dialog.summarizer import summary_examples
from haneul.errors import InvalidInput

MARKER = "haneul-summarizer.json"


@dataclass
class SummarizerTrainConfig:
    """Fine-tuning settings; ``lr=None`` lets SFT pick (2e-5 full, 2e-4 LoRA)."""

    steps: int = 200
    lr: float | None = None
    batch_size: int = 4
    seq_len: int = 1024
    lora: bool = False
    seed: int = 0
    device: str | None = None
    warmup_ratio: float = 0.03


def train_summarizer(
    episodes: Sequence[Sequence[Any]],
    base: str | Path | Any,
    out: str | Path,
    config: SummarizerTrainConfig | None = None,
    *,
    tokenizer: Any = None,
    on_step: Callable[[int, float], None] | None = None,
) -> dict[str, Any]:
    """Fine-tune ``base`` (a model folder / name, or an in-memory model with ``tokenizer``) and save to ``out``."""
    from haneul.io import atomic_write_text
    from haneul.lm.sft import SFTConfig, sft

    cfg = config or SummarizerTrainConfig()
    if cfg.steps < 1:
        raise InvalidInput(f"--steps {cfg.steps} must be at least 1")
    examples = summary_examples(episodes)
    if not examples:
        raise InvalidInput("the data holds no sessions to learn from; pass CareCall-memory-format files with sessions")
    sft_cfg = SFTConfig(max_steps=cfg.steps, lr=cfg.lr, batch_size=cfg.batch_size, seq_len=cfg.seq_len, lora=cfg.lora,
                        seed=cfg.seed, device=cfg.device, warmup_ratio=cfg.warmup_ratio)
    result = sft(base, examples, out, sft_cfg, tokenizer=tokenizer, on_step=on_step)
    empty = sum(1 for ex in examples if ex[1]["content"] == "없음")
    info = {
        "kind": "dialog-summarizer", "base": str(base) if isinstance(base, str | Path) else type(base).__name__,
        "sessions": len(examples), "sessions_without_news": empty, "skipped_too_long": result.skipped,
        "steps": result.steps, "first_loss": result.losses[0], "final_loss": result.losses[-1],
        "seconds": round(result.seconds, 2), "config": asdict(cfg), "path": str(Path(out)),
    }
    atomic_write_text(Path(out) / MARKER, json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    return info


__all__ = ["SummarizerTrainConfig", "train_summarizer"]
