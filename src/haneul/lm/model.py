"""haneul's decoder-only GPT (HyperCLOVA §2.3) in the Llama layout: RoPE, RMSNorm, SwiGLU, GQA.

Parameter names follow Hugging Face's ``LlamaForCausalLM`` exactly, so :meth:`GPT.save_pretrained`
writes a folder (``config.json`` + ``model.safetensors``) that ``transformers`` loads as is, and
:meth:`GPT.from_pretrained` reads any such folder back (a haneul checkpoint or, e.g., SmolLM2).

``forward(idx, targets=None) -> (logits, loss)`` is the training path. Generation uses
:meth:`GPT.forward_cached` with a :class:`KVCache`, per-row positions and a key padding mask, so a
batch of prompts of different lengths (left-padded) decodes together.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from haneul.errors import InvalidInput, NotFound
from haneul.lm.config import GPTConfig

__all__ = ["GPT", "KVCache", "RMSNorm"]


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.float32:  # one fused kernel; the same arithmetic as below
            return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)
        # normalise in fp32 as Llama does; the result goes back to the activation dtype
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


def rope_tables(cfg: GPTConfig, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin for ``positions`` ([B, T] ints) -> each [B, 1, T, head_dim] (half-split layout, as HF)."""
    hd = cfg.head_dim
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, hd, 2, device=positions.device, dtype=torch.float32) / hd))
    freqs = positions.float()[..., None] * inv_freq  # [B, T, hd/2]
    emb = torch.cat([freqs, freqs], dim=-1)[:, None]
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rope_cache(cfg: GPTConfig, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sign-folded sin for every position of the context window, each [max_seq_len, head_dim].

    The sin table's first half is negated, so that ``x * cos + x.roll(head_dim // 2, -1) * sin`` is
    :func:`apply_rope` (the same products, exactly) in two fewer operations per call.
    """
    cos, sin = rope_tables(cfg, torch.arange(cfg.max_seq_len, device=device)[None], dtype)
    cos, sin = cos[0, 0], sin[0, 0]
    half = cfg.head_dim // 2
    return cos, torch.cat([-sin[:, :half], sin[:, half:]], dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


@dataclass
class KVCache:
    """Pre-allocated keys/values per layer: [layers][B, n_kv_head, max_len, head_dim]."""

    k: list[torch.Tensor]
    v: list[torch.Tensor]
    length: int = 0

    @classmethod
    def empty(cls, cfg: GPTConfig, batch: int, max_len: int, device: torch.device, dtype: torch.dtype) -> KVCache:
        shape = (batch, cfg.n_kv_head, max_len, cfg.head_dim)
        return cls(
            [torch.empty(shape, device=device, dtype=dtype) for _ in range(cfg.n_layer)],
            [torch.empty(shape, device=device, dtype=dtype) for _ in range(cfg.n_layer)],
        )


class Attention(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        hd = cfg.head_dim
        self.q_proj = nn.Linear(cfg.d_model, cfg.n_head * hd, bias=False)
        self.k_proj = nn.Linear(cfg.d_model, cfg.n_kv_head * hd, bias=False)
        self.v_proj = nn.Linear(cfg.d_model, cfg.n_kv_head * hd, bias=False)
        self.o_proj = nn.Linear(cfg.n_head * hd, cfg.d_model, bias=False)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        cache: KVCache | None = None,
        layer: int = 0,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        B, T, _ = x.shape
        c = self.cfg
        q = self.q_proj(x).view(B, T, c.n_head, c.head_dim).transpose(1, 2)  # [B, H, T, hd]
        k = self.k_proj(x).view(B, T, c.n_kv_head, c.head_dim).transpose(1, 2)  # [B, Hkv, T, hd]
        v = self.v_proj(x).view(B, T, c.n_kv_head, c.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            start = cache.length
            cache.k[layer][:, :, start : start + T] = k
            cache.v[layer][:, :, start : start + T] = v
            k = cache.k[layer][:, :, : start + T]
            v = cache.v[layer][:, :, : start + T]
        # enable_gqa lets several query heads share one key/value head without copying the cache
        gqa = c.n_kv_head != c.n_head
        if mask is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=T > 1, enable_gqa=gqa)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, c.n_head * c.head_dim))


class MLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
        self.up_proj = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
        self.down_proj = nn.Linear(cfg.d_ff, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, **kw: object) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, **kw)  # type: ignore[arg-type]
        return x + self.mlp(self.post_attention_layernorm(x))


class Backbone(nn.Module):
    """Named ``model`` inside :class:`GPT` so parameter names match ``LlamaForCausalLM``."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.config = cfg
        self.model = Backbone(cfg)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        self.apply(self._init_weights)
        # GPT-2's scaled init of the residual projections keeps the residual stream's variance flat
        for name, p in self.named_parameters():
            if name.endswith(("o_proj.weight", "down_proj.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self) -> int:
        return sum(p.numel() for p in {id(p): p for p in self.parameters()}.values())

    # -- training path
    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``idx`` [B, T] token ids -> logits [B, T, V]; with ``targets`` [B, T] also the mean cross-entropy
        (positions whose target is -100 are ignored)."""
        B, T = idx.shape
        if T > self.config.max_seq_len:
            raise InvalidInput(f"sequence length {T} exceeds the context window {self.config.max_seq_len}; shorten it")
        x = self.model.embed_tokens(idx)
        positions = torch.arange(T, device=idx.device)[None].expand(B, T)
        cos, sin = rope_tables(self.config, positions[:1], x.dtype)
        for block in self.model.layers:
            x = block(x, cos, sin)
        logits = self.lm_head(self.model.norm(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100)
        return logits, loss

    # -- generation path
    def fuse_projections(self) -> bool:
        """Keep each layer's q/k/v weights in one matrix and its gate/up weights in another.

        The ``nn.Linear`` weights become views into those matrices (no extra memory; an optimiser or
        ``load_state_dict`` writing them in place updates the fused copy too), so a decoding step runs
        four matrix products per layer instead of seven. Layers that are not plain ``nn.Linear``
        (quantised, LoRA-wrapped) are left alone; returns whether the whole model is fused.
        """
        if self.projections_fused():
            return True
        if not all(type(lin) is nn.Linear for lin in self._fusable()):
            return False
        with torch.inference_mode(False), torch.no_grad():
            for block in self.model.layers:
                a, m = block.self_attn, block.mlp
                a._qkv = _pack(a.q_proj, a.k_proj, a.v_proj)
                m._gate_up = _pack(m.gate_proj, m.up_proj)
        return True

    def projections_fused(self) -> bool:
        """True while every fused matrix still backs the live weights (a ``.to()`` or a replaced
        layer breaks the link, and generation falls back to the separate products)."""
        for block in self.model.layers:
            a, m = block.self_attn, block.mlp
            if not (_backs(getattr(a, "_qkv", None), a.q_proj, a.k_proj, a.v_proj)
                    and _backs(getattr(m, "_gate_up", None), m.gate_proj, m.up_proj)):
                return False
        return True

    def _fusable(self) -> list[nn.Module]:
        out: list[nn.Module] = []
        for block in self.model.layers:
            a, m = block.self_attn, block.mlp
            out += [a.q_proj, a.k_proj, a.v_proj, a.o_proj, m.gate_proj, m.up_proj, m.down_proj]
        return out

    def _rope(self, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        key = (device, dtype, self.config.max_seq_len)
        cached = getattr(self, "_rope_cache", None)
        if cached is None or cached[0] != key:
            with torch.inference_mode(False), torch.no_grad():
                cached = (key, rope_cache(self.config, device, dtype))
            self._rope_cache = cached
        return cached[1]

    @torch.inference_mode()
    def forward_cached(
        self,
        idx: torch.Tensor,
        cache: KVCache,
        positions: torch.Tensor,
        key_mask: torch.Tensor | None = None,
        last_only: bool = False,
        fused: bool = False,
        embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits of the new tokens ``idx`` [B, T] at ``positions`` [B, T], attending to the cache.

        ``key_mask`` [B, cache.length + T] marks real (non-padding) tokens; ``None`` means no padding.
        ``last_only`` computes the logits of the last position only (all a sampler needs after a prompt).
        ``fused`` takes the decoding fast path; the caller vouches for :meth:`projections_fused`.
        ``embeds`` [B, T, d_model] are input vectors that stand in for the tokens' embeddings (a learned
        soft prompt); ``idx`` then only gives the shape.
        """
        B, T = idx.shape
        x = self.model.embed_tokens(idx) if embeds is None else embeds.to(self.model.embed_tokens.weight.dtype)
        total = cache.length + T
        mask = None
        if key_mask is not None or (T > 1 and cache.length > 0):
            ones = torch.ones(T, total, dtype=torch.bool, device=idx.device)
            causal = ones.tril(diagonal=cache.length)
            mask = causal[None, None].expand(B, 1, T, total)
            if key_mask is not None:
                mask = mask & key_mask[:, None, None, :total].bool()
                # a padded query row with no visible key would give NaN; let it see itself
                mask = mask | (causal & ~ones.tril(diagonal=cache.length - 1))[None, None]
        if fused:
            cos_t, sin_t = self._rope(x.device, x.dtype)
            x = self._decode_layers(x, cos_t[positions][:, :, None], sin_t[positions][:, :, None], cache, mask)
        else:
            cos, sin = rope_tables(self.config, positions, x.dtype)
            for i, block in enumerate(self.model.layers):
                x = block(x, cos, sin, cache=cache, layer=i, mask=mask)
        cache.length = total
        if last_only:
            x = x[:, -1:]
        return self.lm_head(self.model.norm(x))

    def _decode_layers(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: KVCache, mask: torch.Tensor | None
    ) -> torch.Tensor:
        """The layers of :meth:`forward_cached` on fused weights, in one loop without module calls
        (at batch 1 a step is short enough that per-call overhead is a visible share of it).
        ``cos``/``sin`` are [B, T, 1, head_dim] from :func:`rope_cache`."""
        c = self.config
        B, T, _ = x.shape
        H, Hkv, hd = c.n_head, c.n_kv_head, c.head_dim
        start, end = cache.length, cache.length + T
        gqa = Hkv != H
        for i, block in enumerate(self.model.layers):
            a, m = block.self_attn, block.mlp
            qkv = F.linear(block.input_layernorm(x), a._qkv).view(B, T, H + 2 * Hkv, hd)
            qk = qkv[:, :, : H + Hkv]
            qk = qk * cos + qk.roll(hd // 2, -1) * sin  # RoPE on queries and keys at once
            q = qk[:, :, :H].transpose(1, 2)  # [B, H, T, hd]
            cache.k[i][:, :, start:end] = qk[:, :, H:].transpose(1, 2)
            cache.v[i][:, :, start:end] = qkv[:, :, H + Hkv :].transpose(1, 2)
            k, v = cache.k[i][:, :, :end], cache.v[i][:, :, :end]
            if mask is None:
                y = F.scaled_dot_product_attention(q, k, v, is_causal=T > 1, enable_gqa=gqa)
            else:
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa)
            x = x + F.linear(y.transpose(1, 2).reshape(B, T, H * hd), a.o_proj.weight)
            gate, up = F.linear(block.post_attention_layernorm(x), m._gate_up).chunk(2, dim=-1)
            x = x + F.linear(F.silu(gate) * up, m.down_proj.weight)
        return x

    # -- Hugging Face folder format
    def save_pretrained(self, out_dir: str | os.PathLike[str], extra: dict[str, object] | None = None) -> Path:
        """Write ``config.json`` + ``model.safetensors`` loadable by ``LlamaForCausalLM.from_pretrained``."""
        from safetensors.torch import save

        from haneul.io import atomic_open, atomic_write_text

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        state = {k: _own_storage(v.detach().cpu()) for k, v in self.state_dict().items()}
        if self.config.tie_embeddings:
            state.pop("lm_head.weight", None)
        with atomic_open(out / "model.safetensors", "wb") as fh:
            fh.write(save(state, metadata={"format": "pt"}))
        hf = self.config.to_hf()
        hf["haneul"] = {"config": self.config.to_dict(), **(extra or {})}
        atomic_write_text(out / "config.json", json.dumps(hf, indent=2, ensure_ascii=False) + "\n")
        return out

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike[str], dtype: torch.dtype = torch.float32) -> GPT:
        """Load a Llama-compatible folder (``config.json`` + ``*.safetensors``)."""
        from safetensors.torch import load_file

        path = Path(folder)
        cfg_file = path / "config.json"
        if not cfg_file.is_file():
            raise NotFound(f"no config.json in {path}; pass a haneul checkpoint or Hugging Face model folder")
        hf = json.loads(cfg_file.read_text())
        cfg = GPTConfig.from_dict(hf["haneul"]["config"]) if "haneul" in hf else GPTConfig.from_hf(hf)
        files = sorted(path.glob("*.safetensors"))
        if not files:
            raise NotFound(f"no *.safetensors weights in {path}; save the model in safetensors format")
        state: dict[str, torch.Tensor] = {}
        for f in files:
            state.update(load_file(str(f)))
        model = cls(cfg)
        if cfg.tie_embeddings:
            state.pop("lm_head.weight", None)
        state = {k: v for k, v in state.items() if not k.endswith("rotary_emb.inv_freq")}
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [m for m in missing if not (cfg.tie_embeddings and m == "lm_head.weight")]
        if missing or unexpected:
            raise InvalidInput(
                f"weights in {path} do not match its config (missing {missing[:3]}, unexpected {unexpected[:3]}); "
                "is it a LlamaForCausalLM folder?"
            )
        return model.to(dtype).eval()



def _pack(*linears: nn.Linear) -> torch.Tensor:
    """Concatenate the weights of ``linears`` row-wise and make each weight a view into the result."""
    packed = torch.cat([lin.weight.detach() for lin in linears], dim=0)
    row = 0
    for lin in linears:
        n = lin.weight.shape[0]
        lin.weight.data = packed[row : row + n]
        row += n
    return packed


def _own_storage(t: torch.Tensor) -> torch.Tensor:
    """``t`` itself, or a copy when it is a view into a bigger buffer (fused projections), which
    safetensors refuses to save."""
    if t.untyped_storage().nbytes() != t.numel() * t.element_size():
        return t.clone()
    return t.contiguous()


def _backs(packed: torch.Tensor | None, *linears: nn.Module) -> bool:
    if packed is None:
        return False
    base, step, row = packed.data_ptr(), packed.element_size() * packed.shape[1], 0
    for lin in linears:
        if type(lin) is not nn.Linear or lin.weight.data_ptr() != base + row * step:
            return False
        row += lin.weight.shape[0]
    return row == packed.shape[0]
