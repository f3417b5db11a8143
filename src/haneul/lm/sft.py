"""Supervised instruction tuning (SFT) of a causal LM on chat data, as in HyperCLOVA X's instruction
tuning stage: a chat template, a loss on the assistant turns only, sequence packing, and full or LoRA
(PEFT) training. The result is an ordinary Hugging Face model folder with the chat template stored in
its tokenizer, so ``haneul.lm``'s OpenAI-compatible server and ``haneul eval`` can use it as is.

Data is JSON Lines, one conversation a line: ``{"messages": [{"role": "user", "content": "..."},
{"role": "assistant", "content": "..."}]}`` with roles ``system``, ``user`` and ``assistant``.

Packing concatenates conversations into rows of ``seq_len`` tokens; position ids restart at every
conversation, which recent transformers versions turn into a block-diagonal attention mask, so packed
conversations do not attend to each other.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from haneul.errors import InvalidInput, NotFound

ROLES = ("system", "user", "assistant")
IGNORE = -100
START, END = "<|im_start|>", "<|im_end|>"
# ChatML, the format SmolLM2-Instruct and many open models use; stored in the saved tokenizer so the
# server renders prompts exactly the way training did.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


@dataclass
class SFTConfig:
    """Instruction-tuning settings; ``lr=None`` picks 2e-5 for full training and 2e-4 for LoRA."""

    epochs: float = 1.0
    max_steps: int | None = None
    lr: float | None = None
    batch_size: int = 4
    grad_accum: int = 1
    seq_len: int = 1024
    pack: bool = True
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    lora: bool = False
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_targets: list[str] | str = "all-linear"
    seed: int = 0
    device: str | None = None
    log_every: int = 10

    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (2e-4 if self.lora else 2e-5)


@dataclass
class SFTResult:
    out: Path
    steps: int
    losses: list[float] = field(default_factory=list)
    conversations: int = 0
    skipped: int = 0
    rows: int = 0
    seconds: float = 0.0


# --------------------------------------------------------------------------------------------------
# data


def load_chat_jsonl(path: str | Path) -> list[list[dict[str, str]]]:
    """Read conversations; a line that is not a valid conversation names the file, line and field."""
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"chat data {path} does not exist; pass a JSON Lines file of {{\"messages\": [...]}}")
    out = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path} line {lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"{where}: not valid JSON ({exc.msg}); fix the line") from None
            messages = obj.get("messages") if isinstance(obj, dict) else None
            if not isinstance(messages, list) or not messages:
                raise InvalidInput(f"{where}: missing field 'messages' (a non-empty list of {{role, content}})")
            for i, msg in enumerate(messages):
                if not isinstance(msg, dict) or "role" not in msg:
                    raise InvalidInput(f"{where}: messages[{i}] is missing field 'role'")
                if msg["role"] not in ROLES:
                    raise InvalidInput(f"{where}: messages[{i}].role {msg['role']!r} is not one of {', '.join(ROLES)}")
                if not isinstance(msg.get("content"), str):
                    raise InvalidInput(f"{where}: messages[{i}] is missing field 'content' (a string)")
            if not any(m["role"] == "assistant" for m in messages):
                raise InvalidInput(f"{where}: no assistant message, so there is nothing to learn; add one or drop the line")
            out.append([{"role": m["role"], "content": m["content"]} for m in messages])
    if not out:
        raise InvalidInput(f"chat data {path} holds no conversations")
    return out


def chat_segments(messages: Sequence[dict[str, str]]) -> list[tuple[str, bool]]:
    """The conversation as ChatML text pieces, each marked trainable (assistant reply) or not."""
    segments = []
    for msg in messages:
        segments.append((f"{START}{msg['role']}\n", False))
        segments.append((f"{msg['content']}{END}\n", msg["role"] == "assistant"))
    return segments


def encode_chat(tokenizer: Any, messages: Sequence[dict[str, str]], max_len: int) -> tuple[list[int], list[int]]:
    """Token ids and labels; labels are ``-100`` everywhere except the assistant replies (and their end marker)."""
    ids: list[int] = []
    labels: list[int] = []
    if getattr(tokenizer, "bos_token_id", None) is not None and getattr(tokenizer, "add_bos_token", False):
        ids.append(tokenizer.bos_token_id)
        labels.append(IGNORE)
    for text, trainable in chat_segments(messages):
        piece = tokenizer.encode(text, add_special_tokens=False)
        ids.extend(piece)
        labels.extend(piece if trainable else [IGNORE] * len(piece))
    return ids[:max_len], labels[:max_len]


def pack(
    examples: Sequence[tuple[list[int], list[int]]], seq_len: int
) -> list[tuple[list[int], list[int], list[int]]]:
    """Greedily fill rows of at most ``seq_len`` tokens with whole conversations.

    Returns ``(ids, labels, position_ids)`` per row; positions restart at each conversation.
    """
    rows: list[tuple[list[int], list[int], list[int]]] = []
    ids: list[int] = []
    labels: list[int] = []
    pos: list[int] = []
    for ex_ids, ex_labels in examples:
        if ids and len(ids) + len(ex_ids) > seq_len:
            rows.append((ids, labels, pos))
            ids, labels, pos = [], [], []
        ids = ids + ex_ids
        labels = labels + ex_labels
        pos = pos + list(range(len(ex_ids)))
    if ids:
        rows.append((ids, labels, pos))
    return rows


def _collate(rows, pad_id: int, torch: Any) -> dict[str, Any]:
    width = max(len(r[0]) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    pos = torch.zeros((len(rows), width), dtype=torch.long)
    for b, (i, lab, p) in enumerate(rows):
        ids[b, : len(i)] = torch.tensor(i)
        labels[b, : len(lab)] = torch.tensor(lab)
        pos[b, : len(p)] = torch.tensor(p)
        # the padding tail counts as its own short sequence, which keeps it out of real tokens' attention
        pos[b, len(p) :] = torch.arange(width - len(p))
    return {"input_ids": ids, "labels": labels, "position_ids": pos}


# --------------------------------------------------------------------------------------------------
# models


def resolve_model_folder(spec: str) -> Path:
    """A Hugging Face folder for ``spec``: a path, ``smollm2``, or a name known to ``haneul lm``."""
    path = Path(spec).expanduser()
    if (path / "config.json").is_file():
        return path
    if spec.lower() in ("smollm2", "smollm2-135m"):
        from haneul.lm.models.smollm2 import smollm2_dir

        return smollm2_dir()
    try:
        from haneul.lm.registry import resolve
    except ImportError:
        resolve = None
    if resolve is not None:
        source = resolve(spec)
        if source.kind == "smollm2":
            from haneul.lm.models.smollm2 import smollm2_dir

            return smollm2_dir()
        if source.kind == "folder":
            return Path(source.location)
        if source.kind == "bcq":
            raise InvalidInput(f"model {spec!r} is a quantised base; instruction tuning needs full weights "
                               "(the model folder it was quantised from)")
        raise InvalidInput(f"model {spec!r} is a remote endpoint; instruction tuning needs local weights (a model folder)")
    raise NotFound(f"model {spec!r} not found; pass a Hugging Face model folder or 'smollm2'")


def sft(
    model: str | Path | Any,
    data: str | Path | Sequence[Sequence[dict[str, str]]],
    out: str | Path,
    config: SFTConfig | None = None,
    tokenizer: Any = None,
    on_step: Callable[[int, float], None] | None = None,
) -> SFTResult:
    """Instruction-tune ``model`` (a folder / name, or a model object with ``tokenizer``) and save it to ``out``."""
    import torch

    import haneul
    from haneul.training import pick_device, warmup_decay

    cfg = config or SFTConfig()
    if cfg.seq_len < 8 or cfg.batch_size < 1 or cfg.grad_accum < 1:
        raise InvalidInput("seq_len must be >= 8 and batch_size, grad_accum >= 1; fix the options")
    torch.manual_seed(cfg.seed)
    if isinstance(model, str | Path):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = resolve_model_folder(str(model))
        tokenizer = AutoTokenizer.from_pretrained(folder)
        net = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    else:
        if tokenizer is None:
            raise InvalidInput("pass the tokenizer together with an in-memory model")
        net = model
    device = pick_device(cfg.device)
    net.to(device)

    conversations = load_chat_jsonl(data) if isinstance(data, str | Path) else [list(c) for c in data]
    encoded, skipped = [], 0
    for conv in conversations:
        ids, labels = encode_chat(tokenizer, conv, cfg.seq_len)
        if all(lab == IGNORE for lab in labels):
            skipped += 1  # the assistant reply fell past seq_len
            continue
        encoded.append((ids, labels))
    if not encoded:
        raise InvalidInput(f"no conversation has an assistant reply within seq_len={cfg.seq_len}; raise --seq-len")
    rows = pack(encoded, cfg.seq_len) if cfg.pack else [(i, lab, list(range(len(i)))) for i, lab in encoded]

    if cfg.lora:
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                          target_modules=cfg.lora_targets, task_type="CAUSAL_LM")
        net = get_peft_model(net, lora)
    net.train()
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate(), weight_decay=cfg.weight_decay)
    batches_per_epoch = math.ceil(len(rows) / cfg.batch_size)
    steps = cfg.max_steps or max(1, math.ceil(cfg.epochs * batches_per_epoch / cfg.grad_accum))
    warmup = int(cfg.warmup_ratio * steps)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    gen = torch.Generator().manual_seed(cfg.seed)
    order: list[int] = []
    result = SFTResult(out=Path(out), steps=steps, conversations=len(encoded), skipped=skipped, rows=len(rows))
    started = time.perf_counter()
    for step in range(steps):
        lr = warmup_decay(step, total=steps, warmup=warmup, peak=cfg.learning_rate())
        for group in opt.param_groups:
            group["lr"] = lr
        total_loss = 0.0
        for _ in range(cfg.grad_accum):
            if len(order) < cfg.batch_size:
                order += torch.randperm(len(rows), generator=gen).tolist()
            picked, order = order[: cfg.batch_size], order[cfg.batch_size :]
            batch = {k: v.to(device) for k, v in _collate([rows[i] for i in picked], pad_id, torch).items()}
            loss = net(**batch, use_cache=False).loss / cfg.grad_accum
            loss.backward()
            total_loss += float(loss.detach())
        torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        opt.step()
        opt.zero_grad(set_to_none=True)
        result.losses.append(total_loss)
        if on_step is not None:
            on_step(step, total_loss)
        if step % cfg.log_every == 0 or step == steps - 1:
            haneul.report(step=step, loss=total_loss, lr=lr)
    result.seconds = time.perf_counter() - started
    if cfg.lora:
        net = net.merge_and_unload()
    net.eval()
    save_model(net, tokenizer, Path(out), {"sft": asdict(cfg), "steps": steps, "final_loss": result.losses[-1],
                                           "conversations": len(encoded), "skipped": skipped})
    return result


def save_model(model: Any, tokenizer: Any, out: Path, info: dict[str, Any]) -> None:
    """Write the model folder next to ``out`` and rename it into place, so ``out`` is never half-written."""
    from haneul.io import atomic_dir

    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.chat_template = CHAT_TEMPLATE
        tokenizer.save_pretrained(tmp)
        (tmp / "haneul-sft.json").write_text(
            json.dumps(info, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8"
        )


__all__ = [
    "CHAT_TEMPLATE",
    "SFTConfig",
    "SFTResult",
    "chat_segments",
    "encode_chat",
    "load_chat_jsonl",
    "pack",
    "resolve_model_folder",
    "save_model",
    "sft",
]
