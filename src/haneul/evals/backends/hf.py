"""Hugging Face causal-LM backend: any local model folder (haneul checkpoints included) or a model
object built in memory.

Option scoring encodes the shared prompt once and reuses its key/value cache for every answer
option: the prompt runs through the model one time, its cache is repeated across the options, and only
the option tokens run a second time (not at all when every option is a single token, because the
prompt's last position already predicts it). Tokenisation follows lm-evaluation-harness so scores
agree: trailing spaces of the context move into the continuation, the continuation's tokens are the
tail of the tokenised ``context + continuation`` after the tokenised context.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from haneul.errors import InvalidInput, NotFound
from haneul.evals.backends.base import Backend, cut_at_stop


class HFBackend(Backend):
    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        name: str = "hf",
        reuse_prefix: bool = True,
        batch_size: int | None = None,
        max_batch_tokens: int = 4096,
        max_logit_positions: int = 512,
    ) -> None:
        import torch

        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.reuse_prefix = reuse_prefix
        #: an optional cap on prompts per forward pass; the token budgets below are what bound memory
        self.batch_size = batch_size
        #: padded tokens per forward pass (prompt rows, or option rows with the prompt they attend to)
        self.max_batch_tokens = max_batch_tokens
        #: option positions whose full-vocabulary logits one pass may hold ((rows, positions, vocab))
        self.max_logit_positions = max_logit_positions
        #: shortest common token prefix worth a separate pass (a fixed few-shot block is far longer)
        self.min_shared_prefix = 16
        self.device = next(model.parameters()).device
        self.max_length = int(getattr(model.config, "max_position_embeddings", 0) or 0) or None
        self._torch = torch
        # transformers 5.2x renamed ``past_key_values`` to ``cache``; accept both spellings
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        # prompt passes need the logits of one position per row, not the whole (B, T, vocab) block
        self._keep_kw = next((k for k in ("logits_to_keep", "num_logits_to_keep") if k in params), None)
        prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        self.prefix_token_id = prefix if prefix is not None else 0

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | None = None, dtype: str | None = None) -> HFBackend:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from haneul.training import pick_device

        folder = Path(path)
        if not (folder / "config.json").exists():
            raise NotFound(f"{folder} is not a Hugging Face model folder (no config.json); pass a saved model folder")
        dev = pick_device(device)
        torch_dtype = getattr(torch, dtype) if dtype else (torch.bfloat16 if dev.type == "cuda" else torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch_dtype).to(dev)
        return cls(model, tokenizer, name=folder.name)

    # -- tokenisation
    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text))

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        spaces = len(context) - len(context.rstrip())
        if spaces:
            continuation = context[-spaces:] + continuation
            context = context[:-spaces]
        if not context:
            return [self.prefix_token_id], list(self.tokenizer.encode(continuation, add_special_tokens=False))
        whole = self._encode(context + continuation)
        ctx = self._encode(context)
        return ctx, whole[len(ctx) :]

    def token_count(self, text: str) -> int:
        return len(self._encode(text))

    # -- scoring
    def loglikelihood(self, context: str, continuations: Sequence[str]) -> list[tuple[float, int]]:
        return self.loglikelihood_many([(context, continuations)])[0]

    def _encode_request(self, context: str, continuations: Sequence[str]) -> tuple[list[int], list[list[int]]]:
        pairs = [self.encode_pair(context, c) for c in continuations]
        ctx = pairs[0][0]
        conts = [p[1] for p in pairs]
        for c in conts:
            if not c:
                raise InvalidInput(f"an answer option encodes to no tokens after {context[-40:]!r}; check the verbaliser")
        if self.max_length:
            # keep the newest context tokens, as lm-evaluation-harness does
            room = self.max_length - max(len(c) for c in conts)
            ctx = ctx[-max(room, 1) :]
        return ctx, conts

    def loglikelihood_many(
        self, requests: Sequence[tuple[str, Sequence[str]]]
    ) -> list[list[tuple[float, int]]]:
        """Score many ``(context, options)`` requests, batching prompts of similar length together."""
        encoded = [self._encode_request(c, opts) for c, opts in requests]
        results: list[list[tuple[float, int]]] = [[] for _ in encoded]
        with self._torch.inference_mode():
            if not self.reuse_prefix:
                for i, (ctx, conts) in enumerate(encoded):
                    results[i] = self._score_full(ctx, conts)
                return results
            for batch in self._token_batches(encoded):
                self._flush(batch, encoded, results)
        return results

    def _token_batches(self, encoded: list[tuple[list[int], list[list[int]]]]) -> list[list[int]]:
        """Group requests so that each forward pass stays within the token budgets.

        Longest prompt first, so a batch pads little and its first pass is its widest. A batch costs
        ``rows x width`` tokens in the prompt pass and, when some option is longer than one token,
        ``option rows x (width + option length)`` in the option pass, whose logits also count against
        ``max_logit_positions``. A request over budget on its own still runs, alone.
        """
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i][0]))
        batches: list[list[int]] = []
        batch: list[int] = []
        rows = longest = 0
        for i in order:
            ctx, conts = encoded[i]
            width = len(encoded[batch[0]][0]) if batch else len(ctx)
            n_rows, n_long = rows + len(conts), max(longest, *(len(c) for c in conts))
            cost = (len(batch) + 1) * width
            if n_long > 1:
                cost = max(cost, n_rows * (width + n_long - 1))
            logits = n_rows * (n_long - 1)
            full = self.batch_size is not None and len(batch) >= self.batch_size
            if batch and (full or cost > self.max_batch_tokens or logits > self.max_logit_positions):
                batches.append(batch)
                batch, rows, longest = [], 0, 0
                n_rows, n_long = len(conts), max(len(c) for c in conts)
            batch.append(i)
            rows, longest = n_rows, n_long
        if batch:
            batches.append(batch)
        return batches

    def _encode_prompts_left_padded(self, items, use_cache: bool = True):
        """Different prompts: left-pad them to one width and run them as one batch."""
        torch = self._torch
        dev = self.device
        width = max(len(ctx) for ctx, _ in items)
        ids = torch.full((len(items), width), self.prefix_token_id, dtype=torch.long, device=dev)
        mask = torch.zeros((len(items), width), dtype=torch.long, device=dev)
        for b, (ctx, _) in enumerate(items):
            ids[b, width - len(ctx) :] = torch.tensor(ctx, device=dev)
            mask[b, width - len(ctx) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=use_cache,
                         **self._keep(1))
        return out, mask, out.logits[:, -1]

    def _encode_prompts_shared(self, items, common: int):
        """Prompts that start alike (a fixed few-shot block): run the common tokens once, then the
        right-padded remainders of all prompts on top of that one cache."""
        torch = self._torch
        dev = self.device
        head = self.model(input_ids=torch.tensor([items[0][0][:common]], device=dev), use_cache=True, **self._keep(1))
        cache = self._cache_of(head)
        cache.batch_repeat_interleave(len(items))
        tails = [ctx[common:] for ctx, _ in items]
        width = max(len(t) for t in tails)
        ids = torch.full((len(items), width), self.prefix_token_id, dtype=torch.long, device=dev)
        tail_mask = torch.zeros((len(items), width), dtype=torch.long, device=dev)
        for b, t in enumerate(tails):
            ids[b, : len(t)] = torch.tensor(t, device=dev)
            tail_mask[b, : len(t)] = 1
        mask = torch.cat([torch.ones((len(items), common), dtype=torch.long, device=dev), tail_mask], dim=1)
        positions = common + torch.arange(width, device=dev)[None, :].expand(len(items), -1)
        ends = sorted({len(t) - 1 for t in tails})
        keep = self._keep(torch.tensor(ends, device=dev)) if self._keep_kw else {}
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                         **{self._cache_kw: cache}, **keep)
        column = [ends.index(len(t) - 1) if keep else len(t) - 1 for t in tails]
        last = out.logits[torch.arange(len(items), device=dev), torch.tensor(column, device=dev)]
        return out, mask, last

    def _keep(self, value):
        return {self._keep_kw: value} if self._keep_kw else {}

    def _cache_of(self, out):
        return next(out[k] for k in (self._cache_kw, "past_key_values", "cache") if out.get(k) is not None)

    def _flush(self, batch: list[int], encoded, results) -> None:
        for i, scored in zip(batch, self._score_shared_prefix([encoded[i] for i in batch]), strict=True):
            results[i] = scored

    def _score_shared_prefix(self, items: list[tuple[list[int], list[list[int]]]]) -> list[list[tuple[float, int]]]:
        """Prompts once (sharing their common token prefix), then every option on the cached prompts."""
        torch = self._torch
        dev = self.device
        lengths = [len(ctx) for ctx, _ in items]
        common = _common_prefix([ctx for ctx, _ in items])
        # each prompt keeps at least its last token, whose logits predict the options' first tokens
        common = min(common, min(lengths) - 1)
        rows = [(b, c) for b, (_, conts) in enumerate(items) for c in conts]
        longest = max(len(c) for _, c in rows)
        if len(items) > 1 and common >= self.min_shared_prefix:
            out, mask, last = self._encode_prompts_shared(items, common)
        else:
            # the prompts' key/value cache is only needed when some option has tokens after its first
            out, mask, last = self._encode_prompts_left_padded(items, use_cache=longest > 1)
        first = torch.log_softmax(last.float(), dim=-1)  # (B, V): each option's 1st token
        scores = [float(first[b, c[0]]) for b, c in rows]
        del last, first
        if longest > 1:
            cache = self._cache_of(out)
            del out
            owner = torch.tensor([b for b, _ in rows], device=dev)
            cache.batch_select_indices(owner)  # one cached prompt per option row
            # options are right-padded: causal attention never lets a real token see a pad after it
            opt = torch.full((len(rows), longest - 1), self.prefix_token_id, dtype=torch.long, device=dev)
            for r, (_, c) in enumerate(rows):
                if len(c) > 1:
                    opt[r, : len(c) - 1] = torch.tensor(c[:-1], device=dev)
            opt_mask = torch.cat([mask[owner], torch.ones_like(opt)], dim=1)
            start = torch.tensor([lengths[b] for b, _ in rows], device=dev)[:, None]
            opt_pos = start + torch.arange(longest - 1, device=dev)[None, :]
            logits = self.model(
                input_ids=opt, attention_mask=opt_mask, position_ids=opt_pos, use_cache=True,
                **{self._cache_kw: cache},
            ).logits  # (R, longest - 1, V)
            del cache
            # log p(token) = logit[token] - logsumexp(logits): gather the option tokens' logits and
            # reduce each position once, instead of holding a log-softmax copy of the whole block
            for r, (_, c) in enumerate(rows):
                if len(c) > 1:
                    tgt = torch.tensor(c[1:], device=dev)
                    part = logits[r, : len(c) - 1].float()
                    picked = part.gather(-1, tgt[:, None])[:, 0]
                    scores[r] += float((picked - torch.logsumexp(part, dim=-1)).sum())
            del logits
        grouped: list[list[tuple[float, int]]] = [[] for _ in items]
        for (b, c), value in zip(rows, scores, strict=True):
            grouped[b].append((value, len(c)))
        return grouped

    def _score_full(self, ctx: list[int], conts: list[list[int]]) -> list[tuple[float, int]]:
        """Reference path: the whole prompt + option for each option (what the prefix cache saves)."""
        torch = self._torch
        out = []
        for c in conts:
            ids = torch.tensor([ctx + c[:-1]], device=self.device)
            # only the last len(c) positions predict the option's tokens: keep just their logits
            logits = self.model(input_ids=ids, use_cache=False, **self._keep(len(c))).logits[0, -len(c) :].float()
            tgt = torch.tensor(c, device=self.device)
            picked = logits.gather(-1, tgt[:, None])[:, 0]
            out.append((float((picked - torch.logsumexp(logits, dim=-1)).sum()), len(c)))
            del logits
        return out

    def generate(self, prompt: str, max_new_tokens: int, stop: Sequence[str]) -> str:
        torch = self._torch
        ids = self._encode(prompt)
        if self.max_length:
            ids = ids[-max(self.max_length - max_new_tokens, 1) :]
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=torch.tensor([ids], device=self.device),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long, device=self.device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id
                if self.tokenizer.pad_token_id is not None
                else self.prefix_token_id,
            )
        text = self.tokenizer.decode(out[0, len(ids) :], skip_special_tokens=True)
        return cut_at_stop(text, stop)


def _common_prefix(seqs: list[list[int]]) -> int:
    first = seqs[0]
    n = min(len(s) for s in seqs)
    for i in range(n):
        tok = first[i]
        if any(s[i] != tok for s in seqs[1:]):
            return i
    return n
