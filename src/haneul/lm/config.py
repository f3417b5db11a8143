"""Typed configuration and named presets of haneul's decoder-only GPT (HyperCLOVA §2.3, at small scale).

The architecture is the Llama family's (RoPE, RMSNorm, SwiGLU, grouped-query attention), so a config
maps one-to-one onto a Hugging Face ``LlamaConfig``: :meth:`GPTConfig.to_hf` / :meth:`from_hf` convert,
and a saved haneul model is a plain ``LlamaForCausalLM`` folder.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from haneul.errors import InvalidInput

__all__ = ["GPTConfig", "PRESETS"]


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int = 8192
    n_layer: int = 4
    n_head: int = 4
    n_kv_head: int = 4  # < n_head: grouped-query attention
    d_model: int = 128
    d_ff: int = 352  # SwiGLU hidden size
    max_seq_len: int = 512
    rope_theta: float = 10_000.0
    norm_eps: float = 1e-5
    tie_embeddings: bool = True
    head_dim_override: int | None = None  # Llama allows head_dim != d_model / n_head
    bos_token_id: int | None = 0
    eos_token_id: int | None = 0

    def __post_init__(self) -> None:
        if self.head_dim_override is None and self.d_model % self.n_head:
            raise InvalidInput(f"d_model={self.d_model} is not divisible by n_head={self.n_head}; pick matching sizes")
        if self.n_head % self.n_kv_head:
            raise InvalidInput(f"n_head={self.n_head} is not a multiple of n_kv_head={self.n_kv_head}; pick matching sizes")
        if min(self.vocab_size, self.n_layer, self.n_head, self.d_model, self.d_ff, self.max_seq_len) < 1:
            raise InvalidInput(f"config sizes must be positive: {self}")

    @property
    def head_dim(self) -> int:
        return self.head_dim_override or self.d_model // self.n_head

    @classmethod
    def from_name(cls, name: str, **overrides: Any) -> GPTConfig:
        """A named preset (``ko-nano``, ``ko-tiny``, ``ko-small``, ``ko-base``), optionally changed."""
        if name not in PRESETS:
            raise InvalidInput(f"model preset {name!r} is unknown; use one of {', '.join(PRESETS)}")
        return replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})

    def num_params(self) -> int:
        """Parameter count (embeddings counted once when tied)."""
        d, hd = self.d_model, self.head_dim
        attn = d * hd * self.n_head * 2 + d * hd * self.n_kv_head * 2
        mlp = 3 * d * self.d_ff
        layer = attn + mlp + 2 * d
        emb = self.vocab_size * d * (1 if self.tie_embeddings else 2)
        return self.n_layer * layer + emb + d

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs per token (forward + backward), the PaLM appendix-B estimate: 6N + 12·L·d·T."""
        t = seq_len or self.max_seq_len
        n = self.num_params() - self.vocab_size * self.d_model * (0 if self.tie_embeddings else 1)
        return 6.0 * n + 12.0 * self.n_layer * self.n_head * self.head_dim * t

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GPTConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    # -- Hugging Face LlamaConfig mapping
    def to_hf(self) -> dict[str, Any]:
        return {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "vocab_size": self.vocab_size,
            "hidden_size": self.d_model,
            "intermediate_size": self.d_ff,
            "num_hidden_layers": self.n_layer,
            "num_attention_heads": self.n_head,
            "num_key_value_heads": self.n_kv_head,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "max_position_embeddings": self.max_seq_len,
            "rms_norm_eps": self.norm_eps,
            "rope_theta": self.rope_theta,
            "tie_word_embeddings": self.tie_embeddings,
            "attention_bias": False,
            "mlp_bias": False,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "torch_dtype": "float32",
        }

    @classmethod
    def from_hf(cls, hf: dict[str, Any]) -> GPTConfig:
        if hf.get("model_type") not in ("llama", None):
            raise InvalidInput(
                f"model type {hf.get('model_type')!r} is not Llama-compatible; haneul loads LlamaForCausalLM folders"
            )
        scaling = hf.get("rope_scaling") or {}
        if scaling.get("rope_type", scaling.get("type", "default")) != "default" or hf.get("attention_bias") or hf.get("mlp_bias"):
            raise InvalidInput("this Llama variant (rope scaling or biases) is not supported; serve it through transformers")
        d, n_head = int(hf["hidden_size"]), int(hf["num_attention_heads"])
        head_dim = int(hf.get("head_dim") or d // n_head)
        rope = hf.get("rope_theta")
        for nested in ("rope_parameters", "rope_scaling"):
            if rope is None and isinstance(hf.get(nested), dict):
                rope = hf[nested].get("rope_theta")
        eos = hf.get("eos_token_id")
        return cls(
            vocab_size=int(hf["vocab_size"]),
            n_layer=int(hf["num_hidden_layers"]),
            n_head=n_head,
            n_kv_head=int(hf.get("num_key_value_heads") or n_head),
            d_model=d,
            d_ff=int(hf["intermediate_size"]),
            max_seq_len=int(hf.get("max_position_embeddings", 2048)),
            rope_theta=float(rope or 10_000.0),
            norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
            tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
            head_dim_override=None if head_dim * n_head == d else head_dim,
            bos_token_id=hf.get("bos_token_id"),
            eos_token_id=eos[0] if isinstance(eos, list) else eos,
        )


PRESETS: dict[str, GPTConfig] = {
    # ≈1.1M parameters at an 8k vocabulary: unit tests and smoke runs
    "ko-nano": GPTConfig(vocab_size=8192, n_layer=4, n_head=4, n_kv_head=2, d_model=96, d_ff=256, max_seq_len=256),
    # ≈10M: the default Korean model trained on a 2-core CPU in under an hour
    "ko-tiny": GPTConfig(vocab_size=8192, n_layer=10, n_head=8, n_kv_head=4, d_model=256, d_ff=768, max_seq_len=256),
    # ≈50M: one GPU
    "ko-small": GPTConfig(vocab_size=32000, n_layer=12, n_head=8, n_kv_head=4, d_model=512, d_ff=1408, max_seq_len=1024),
    # ≈350M: several GPUs
    "ko-base": GPTConfig(
        vocab_size=32000, n_layer=24, n_head=16, n_kv_head=8, d_model=1024, d_ff=2816, max_seq_len=2048,
        tie_embeddings=False,
    ),
}
