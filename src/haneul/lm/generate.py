"""Text generation with a KV cache (HyperCLOVA §4 serving): sampling controls, stop strings, streaming,
batched prompts and seeds.

:class:`Generator` pairs a :class:`~haneul.lm.model.GPT` with its tokenizer. A batch of prompts is
left-padded and decoded together (per-row positions and a key padding mask keep each row identical to
decoding it alone). Sampling follows the usual order: repetition penalty (CTRL's rule, as in
``transformers``), temperature, top-k, top-p; temperature 0 is greedy. Streaming yields text deltas,
holding back bytes of an unfinished UTF-8 character and any tail that could still become a stop string.
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator as TextStream
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from haneul.errors import InvalidInput, NotFound
from haneul.lm.model import GPT, KVCache

__all__ = ["SamplingParams", "Completion", "Generator", "render_chat"]


@dataclass
class SamplingParams:
    max_tokens: int = 64
    temperature: float = 1.0
    top_k: int = 0  # 0: off
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    stop_at_eos: bool = True

    def check(self) -> SamplingParams:
        if self.max_tokens < 0:
            raise InvalidInput(f"max_tokens={self.max_tokens} must be >= 0")
        if self.temperature < 0:
            raise InvalidInput(f"temperature={self.temperature} must be >= 0 (0 is greedy)")
        if not 0 < self.top_p <= 1:
            raise InvalidInput(f"top_p={self.top_p} must be in (0, 1]")
        if self.top_k < 0:
            raise InvalidInput(f"top_k={self.top_k} must be >= 0 (0 turns it off)")
        if self.repetition_penalty <= 0:
            raise InvalidInput(f"repetition_penalty={self.repetition_penalty} must be > 0 (1 turns it off)")
        return self


@dataclass
class Completion:
    text: str
    token_ids: list[int]
    prompt_tokens: int
    finish_reason: str  # "stop" (end-of-text or a stop string) or "length"


def _stop_cut(text: str, stops: Sequence[str]) -> int | None:
    """Index where the earliest stop string starts in ``text``, or None."""
    hits = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(hits) if hits else None


def _held_back(text: str, stops: Sequence[str]) -> int:
    """How many trailing characters could still grow into a stop string."""
    keep = 0
    for s in stops:
        for n in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:n]):
                keep = max(keep, n)
                break
    return keep


def sample_next(logits: torch.Tensor, context: torch.Tensor | None, p: SamplingParams, gen: torch.Generator | None) -> torch.Tensor:
    """Choose one token per row from ``logits`` [B, V]; ``context`` [B, L] are tokens seen so far."""
    logits = logits.float()
    if p.repetition_penalty != 1.0 and context is not None and context.numel():
        seen = torch.gather(logits, 1, context)
        seen = torch.where(seen > 0, seen / p.repetition_penalty, seen * p.repetition_penalty)
        logits = logits.scatter(1, context, seen)
    if p.temperature == 0:
        return logits.argmax(-1)
    logits = logits / p.temperature
    if p.top_k and p.top_k < logits.size(-1):
        kth = torch.topk(logits, p.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if p.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        # drop a token when the tokens before it already cover top_p (the first always stays)
        drop = (cum - sorted_logits.softmax(-1)) >= p.top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(1, order, sorted_logits)
    probs = logits.softmax(-1)
    return torch.multinomial(probs, 1, generator=gen).squeeze(-1)


class Generator:
    """A model and its tokenizer, ready to complete prompts."""

    def __init__(self, model: GPT, tokenizer: Any, *, name: str = "model", chat_template: str | None = None) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.chat_template = chat_template
        self.soft_prompt: torch.Tensor | None = None  # learned vectors put before every prompt
        eos = model.config.eos_token_id
        self.eos_ids = {int(eos)} if eos is not None else set()
        try:  # a tokenizer without an end-of-text token (e.g. one that uses </s>) has no eos_id
            tok_eos = getattr(tokenizer, "eos_id", None)
            if tok_eos is not None:
                self.eos_ids.add(int(tok_eos))
        except (TypeError, LookupError):
            pass
        for special in ("<|im_end|>",):
            tid = tokenizer.token_to_id(special)
            if tid is not None:
                self.eos_ids.add(int(tid))

    @property
    def context_window(self) -> int:
        """Tokens a prompt and its answer may take: the model's window less a soft prompt's vectors."""
        taken = 0 if self.soft_prompt is None else int(self.soft_prompt.shape[0])
        return self.model.config.max_seq_len - taken

    def with_soft_prompt(self, vectors: torch.Tensor) -> Generator:
        """Put ``vectors`` [n, d_model] (a soft prompt learned by :func:`haneul.lm.ptuning.ptune`) before
        every prompt, at positions 0..n-1 as in training; the prompt's tokens follow at n, n+1, ..."""
        d_model = self.model.config.d_model
        if vectors.dim() != 2 or vectors.shape[1] != d_model or not 0 < vectors.shape[0] < self.model.config.max_seq_len:
            raise InvalidInput(f"a soft prompt of shape {tuple(vectors.shape)} does not fit {self.name} "
                               f"(hidden size {d_model}); learn it on this model")
        self.soft_prompt = vectors.detach().to(next(self.model.parameters()).dtype)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike[str], *, name: str | None = None, dtype: torch.dtype = torch.float32) -> Generator:
        """Load a haneul model folder or any Llama-compatible Hugging Face folder with a tokenizer.json."""
        from haneul.lm.tokenizer import load_tokenizer

        path = Path(folder)
        if not (path / "tokenizer.json").is_file():
            raise NotFound(f"no tokenizer.json in {path}; a servable model folder needs its tokenizer beside the weights")
        model = GPT.from_pretrained(path, dtype=dtype)
        tok = load_tokenizer(path)
        return cls(model, tok, name=name or path.name, chat_template=_read_chat_template(path))

    @classmethod
    def from_hf(cls, hf_model: Any, hf_tokenizer: Any, *, name: str = "model") -> Generator:
        """Wrap an in-memory ``transformers`` Llama model and its fast tokenizer (weights are copied)."""
        from haneul.lm.config import GPTConfig
        from haneul.lm.tokenizer import HaneulTokenizer

        cfg = GPTConfig.from_hf(hf_model.config.to_dict())
        model = GPT(cfg)
        state = {k: v for k, v in hf_model.state_dict().items() if not k.endswith("rotary_emb.inv_freq")}
        if cfg.tie_embeddings:
            state["lm_head.weight"] = state["model.embed_tokens.weight"]
        model.load_state_dict(state)
        model = model.to(next(hf_model.parameters()).dtype)
        tok = HaneulTokenizer(hf_tokenizer.backend_tokenizer, {"kind": "external"})
        template = getattr(hf_tokenizer, "chat_template", None)
        return cls(model, tok, name=name, chat_template=template if isinstance(template, str) else None)

    @classmethod
    def from_quantized(
        cls,
        folder: str | os.PathLike[str],
        *,
        alphas: str | os.PathLike[str] | None = None,
        name: str | None = None,
    ) -> Generator:
        """Load a BCQ quantised base (``haneul quant quantize``) into haneul's GPT, optionally with an
        AlphaTuning task file's scales (AlphaTuning §3.2: one shared base, a small file per task).

        The quantised projections stay packed :class:`~haneul.quant.layers.BCQLinear` layers, so
        decoding runs the lookup-table kernel on the codes; everything else is the dense model. The
        base's weights and checksum are verified, and a task file must name this base's checksum.
        """
        from haneul.lm.config import GPTConfig
        from haneul.lm.tokenizer import load_tokenizer
        from haneul.quant.model import install_bcq_layers, load_base_weights, read_base_meta

        path = Path(folder)
        meta = read_base_meta(path)
        if not (path / "tokenizer.json").is_file():
            raise NotFound(
                f"no tokenizer.json in the quantised base {path}; copy the source model's tokenizer files into it "
                "(or quantise again from a folder that has them)"
            )
        cfg = GPTConfig.from_hf(json.loads((path / "config.json").read_text(encoding="utf-8")))
        model = GPT(cfg)
        install_bcq_layers(model, meta["layers"])
        load_base_weights(model, path, meta)
        if alphas is not None:
            _apply_task_alphas(model, Path(alphas), path, meta["checksum"])
        return cls(model, load_tokenizer(path), name=name or path.name, chat_template=_read_chat_template(path))

    # -- prompts
    def encode_prompt(self, prompt: str) -> list[int]:
        ids = self.tokenizer.encode(prompt)
        if not ids:
            # an empty prompt starts from the end-of-text token, as a new document would
            ids = [min(self.eos_ids)] if self.eos_ids else [0]
        return ids

    def check_length(self, n_prompt: int) -> None:
        if n_prompt >= self.context_window:
            raise InvalidInput(
                f"the prompt has {n_prompt} tokens but {self.name}'s context window is {self.context_window}; "
                "shorten the prompt"
            )

    # -- generation
    @torch.inference_mode()
    def _run(self, prompts: Sequence[str], p: SamplingParams) -> Iterator[tuple[int, list[int], str | None]]:
        """Yield ``(row, new_token_ids_so_far, finish_reason or None)`` for every row after each step."""
        p.check()
        encoded = [self.encode_prompt(x) for x in prompts]
        for ids in encoded:
            self.check_length(len(ids))
        B = len(encoded)
        longest = max(len(e) for e in encoded)
        budget = min(p.max_tokens, self.context_window - longest)
        out: list[list[int]] = [[] for _ in range(B)]
        if budget <= 0:
            for r in range(B):
                yield r, out[r], "length"
            return
        dev = self.device
        idx = torch.zeros(B, longest, dtype=torch.long)
        key_mask = torch.zeros(B, longest + budget, dtype=torch.long)
        for r, ids in enumerate(encoded):
            idx[r, longest - len(ids) :] = torch.tensor(ids)
            key_mask[r, longest - len(ids) :] = 1
        idx, key_mask = idx.to(dev), key_mask.to(dev)
        padded = any(len(e) != longest for e in encoded)
        positions = (key_mask[:, :longest].cumsum(-1) - 1).clamp(min=0)
        gen = None
        if p.seed is not None:
            gen = torch.Generator(device=dev)
            gen.manual_seed(p.seed)
        dtype = next(self.model.parameters()).dtype
        n_soft = 0 if self.soft_prompt is None else int(self.soft_prompt.shape[0])
        cache = KVCache.empty(self.model.config, B, n_soft + longest + budget, dev, dtype)
        fused = self.model.fuse_projections()
        if self.soft_prompt is not None:  # the learned vectors first, at positions 0..n-1, for every row
            soft = self.soft_prompt.to(dev)[None].expand(B, n_soft, -1)
            first = torch.arange(n_soft, device=dev)[None].expand(B, n_soft)
            self.model.forward_cached(first, cache, first, None, last_only=True, fused=fused, embeds=soft)
            key_mask = torch.cat([torch.ones(B, n_soft, dtype=key_mask.dtype, device=dev), key_mask], dim=1)
            positions = positions + n_soft
        done = [False] * B
        context = idx
        logits = self.model.forward_cached(
            idx, cache, positions, key_mask[:, : n_soft + longest] if padded else None, last_only=True, fused=fused
        )[:, -1]
        pos = positions[:, -1:]
        for step in range(budget):
            nxt = sample_next(logits, context if p.repetition_penalty != 1.0 else None, p, gen)
            for r in range(B):
                if done[r]:
                    continue
                tok = int(nxt[r])
                if p.stop_at_eos and tok in self.eos_ids:
                    done[r] = True
                    yield r, out[r], "stop"
                    continue
                out[r].append(tok)
                if step == budget - 1:
                    done[r] = True
                    yield r, out[r], "length"
                else:
                    yield r, out[r], None
            if all(done):
                return
            context = torch.cat([context, nxt[:, None]], dim=1)
            pos = pos + 1
            mask = key_mask[:, : cache.length + 1] if padded else None
            logits = self.model.forward_cached(nxt[:, None], cache, pos, mask, fused=fused)[:, -1]

    def generate(self, prompts: str | Sequence[str], params: SamplingParams | None = None, **kw: Any) -> list[Completion]:
        """Complete one prompt or a batch; returns one :class:`Completion` per prompt."""
        p = params or SamplingParams(**kw)
        batch = [prompts] if isinstance(prompts, str) else list(prompts)
        if not batch:
            return []
        results: dict[int, Completion] = {}
        runner = self._run(batch, p)
        for r, ids, reason in runner:
            if r in results:
                continue
            text = None
            if p.stop:
                text = self.tokenizer.decode(ids)
                cut = _stop_cut(text, p.stop)
                if cut is not None:
                    results[r] = Completion(text[:cut], list(ids), 0, "stop")
            if reason is not None and r not in results:
                results[r] = Completion(text if text is not None else self.tokenizer.decode(ids), list(ids), 0, reason)
            if len(results) == len(batch):
                runner.close()  # every row has finished or hit a stop string
                break
        for r, prompt in enumerate(batch):
            results[r].prompt_tokens = len(self.encode_prompt(prompt))
        return [results[r] for r in range(len(batch))]

    def stream(self, prompt: str, params: SamplingParams | None = None, **kw: Any) -> TextStream[str, None, str]:
        """Yield the completion of ``prompt`` as text deltas while it is generated.

        The generator's return value is the finish reason: ``"stop"`` or ``"length"``.
        """
        p = params or SamplingParams(**kw)
        sent = 0
        for _, ids, reason in self._run([prompt], p):
            finished = reason is not None
            text = self.tokenizer.decode(ids)
            cut = _stop_cut(text, p.stop) if p.stop else None
            if cut is not None:
                if cut > sent:
                    yield text[sent:cut]
                return "stop"
            safe = len(text)
            if not finished:
                while safe > 0 and text[safe - 1] == "\ufffd":  # an unfinished UTF-8 character
                    safe -= 1
                safe -= _held_back(text[:safe], p.stop)
            if safe > sent:
                yield text[sent:safe]
                sent = safe
            if finished:
                return reason or "stop"
        return "length"

    # -- chat
    def render_chat(self, messages: Sequence[dict[str, str]]) -> str:
        return render_chat(self.chat_template, messages)


def render_chat(template: str | None, messages: Sequence[dict[str, str]], add_generation_prompt: bool = True) -> str:
    """Render chat ``messages`` with a Jinja2 chat template (ChatML when the model has none)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from haneul.lm.tokenizer import CHAT_TEMPLATE

    def raise_exception(message: str) -> None:
        raise InvalidInput(f"chat template error: {message}")

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template or CHAT_TEMPLATE).render(
        messages=list(messages), add_generation_prompt=add_generation_prompt, bos_token="", eos_token=""
    )


def _apply_task_alphas(model: GPT, task_file: Path, base: Path, checksum: str) -> None:
    """Put an AlphaTuning task file's scales into ``model``; the file must have been trained on this base."""
    from haneul.quant.alphatuning import load_task_alphas, read_task_meta

    trained_on = str(read_task_meta(task_file).get("base_checksum"))
    if trained_on != checksum:
        raise InvalidInput(
            f"task file {task_file} was trained on base {trained_on[:12]}, but {base} is base {checksum[:12]}; "
            "pass the task file made for this base"
        )
    load_task_alphas(model, task_file)


def _read_chat_template(folder: Path) -> str | None:
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    cfg = folder / "tokenizer_config.json"
    if cfg.is_file():
        value = json.loads(cfg.read_text(encoding="utf-8")).get("chat_template")
        if isinstance(value, str):
            return value
        if isinstance(value, list):  # named templates: take the default one
            for item in value:
                if item.get("name") == "default":
                    return str(item["template"])
    return None
