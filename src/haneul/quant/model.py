"""Quantise a whole Hugging Face causal LM with BCQ, and save / load the shared quantised base.

:func:`quantize_model` replaces every ``nn.Linear`` (and GPT-2's ``Conv1D``, which stores its weight
transposed) inside the transformer blocks by a :class:`~haneul.quant.layers.BCQLinear`. Embeddings
and norms stay in full precision; the LM head is kept unless asked for, since most small models tie
it to the embedding. Layers of other kinds that carry a weight are left alone and listed in one
warning. This is the post-training quantisation step of AlphaTuning (section 3.1); the saved base is
what every task shares (section 3.2).

The base folder holds the model ``config.json``, the tokenizer when given, ``bcq.safetensors`` (packed
codes, scales and the unquantised tensors) and ``quant.json`` with the settings, the list of quantised
layers and the base checksum that per-task scale files are checked against.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from haneul.errors import IntegrityError, InvalidInput, NotFound, StorageError
from haneul.io import atomic_dir, sha256_file
from haneul.quant.bcq import check_bits, resolve_group_size
from haneul.quant.layers import BCQLinear

FORMAT = "haneul-bcq/1"
WEIGHTS = "bcq.safetensors"
META = "quant.json"
#: Kept in full precision unless named explicitly; they are tied to the embedding in most small LMs.
HEAD_NAMES = ("lm_head",)
#: Modules that own a weight but are kept in full precision on purpose (not "unsupported").
_KEPT_TYPES = (nn.Embedding, nn.LayerNorm)

__all__ = [
    "LayerStat",
    "QuantReport",
    "base_checksum",
    "bcq_layers",
    "install_bcq_layers",
    "is_quantized_base",
    "load_base_weights",
    "load_quantized",
    "model_weight_bytes",
    "quantize_model",
    "read_base_meta",
    "save_quantized",
]


@dataclass
class LayerStat:
    name: str
    out_features: int
    in_features: int
    rel_error: float
    weight_bytes: int
    fp32_bytes: int


@dataclass
class QuantReport:
    bits: int
    group_size: int | None
    rounds: int
    offset: bool
    layers: list[LayerStat] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    seconds: float = 0.0

    @property
    def mean_rel_error(self) -> float:
        return sum(s.rel_error for s in self.layers) / max(len(self.layers), 1)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["mean_rel_error"] = self.mean_rel_error
        return out


def _is_conv1d(module: nn.Module) -> bool:
    # GPT-2's Conv1D is a linear layer with the weight stored as (in, out).
    return (
        type(module).__name__ == "Conv1D"
        and hasattr(module, "nf")
        and getattr(module, "weight", None) is not None
    )


def _is_norm(module: nn.Module) -> bool:
    return "norm" in type(module).__name__.lower()


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) or p == name or name.endswith("." + p) for p in patterns)


def _set_module(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, module)


def bcq_layers(model: nn.Module) -> dict[str, BCQLinear]:
    return {name: m for name, m in model.named_modules() if isinstance(m, BCQLinear)}


def quantize_model(
    model: nn.Module,
    bits: int = 3,
    group_size: int | None = None,
    skip: Iterable[str] = (),
    rounds: int = 15,
    offset: bool = False,
    quantize_head: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    init: str = "best",
) -> QuantReport:
    """Replace the model's Linear / Conv1D layers by BCQ layers in place and report their errors.

    ``skip`` holds module names or glob patterns (``"*.mlp.down_proj"``) kept in full precision.
    ``init="best"`` refines both the greedy start and a uniform-grid start and keeps the better one
    per group (see :func:`~haneul.quant.bcq.bcq_vectors`); ``"greedy"`` is the paper's start alone.
    Raises :class:`InvalidInput` for bad ``bits`` or a group size that does not divide a layer's input.
    """
    check_bits(bits)
    if rounds < 0:
        raise InvalidInput(f"rounds={rounds} must be >= 0 (15 is the usual setting)")
    skip = list(skip)
    report = QuantReport(bits=bits, group_size=group_size, rounds=rounds, offset=offset)
    targets: list[tuple[str, nn.Module, bool]] = []
    unsupported: list[tuple[str, str]] = []
    for name, module in model.named_modules():
        if not name or isinstance(module, BCQLinear):
            continue
        is_head = name.split(".")[-1] in HEAD_NAMES
        if isinstance(module, nn.Linear) or _is_conv1d(module):
            if _matches(name, skip):
                report.skipped.append((name, "skipped by request"))
            elif is_head and not quantize_head:
                report.skipped.append((name, "LM head kept in full precision"))
            else:
                targets.append((name, module, _is_conv1d(module)))
        elif isinstance(module, _KEPT_TYPES) or _is_norm(module):
            continue
        elif isinstance(getattr(module, "weight", None), torch.Tensor) and not list(module.children()):
            unsupported.append((name, f"unsupported layer type {type(module).__name__}"))
    # Check every group size before touching the model so a bad value leaves it unchanged.
    for name, module, transposed in targets:
        in_features = module.weight.shape[0] if transposed else module.weight.shape[1]
        resolve_group_size(group_size, in_features, name)
    if unsupported:
        report.skipped.extend(unsupported)
        listing = ", ".join(f"{n} ({r.removeprefix('unsupported layer type ')})" for n, r in unsupported)
        warnings.warn(
            f"BCQ skipped {len(unsupported)} unsupported layer(s), kept in full precision: {listing}",
            stacklevel=2,
        )
    start = time.perf_counter()
    for i, (name, module, transposed) in enumerate(targets):
        layer = BCQLinear.from_linear(
            module, bits, group_size, rounds, offset, transposed=transposed, name=name, init=init
        )
        layer.to(module.weight.device)
        _set_module(model, name, layer)
        report.layers.append(
            LayerStat(
                name=name,
                out_features=layer.out_features,
                in_features=layer.in_features,
                rel_error=float(layer.rel_error or 0.0),
                weight_bytes=layer.weight_bytes(),
                fp32_bytes=layer.out_features * layer.in_features * 4,
            )
        )
        if progress is not None:
            progress(name, i + 1, len(targets))
    report.seconds = time.perf_counter() - start
    model.haneul_bcq = {"bits": bits, "group_size": group_size, "offset": offset, "rounds": rounds}  # type: ignore[assignment]
    model.haneul_base_checksum = base_checksum(model)  # type: ignore[assignment]
    return report


def _unique_state(model: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """State dict without the second name of tied tensors; returns (tensors, alias -> kept name)."""
    tensors: dict[str, torch.Tensor] = {}
    seen: dict[tuple[int, int, tuple[int, ...]], str] = {}
    aliases: dict[str, str] = {}
    for name, tensor in model.state_dict().items():
        key = (tensor.data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        if tensor.numel() and key in seen:
            aliases[name] = seen[key]
            continue
        seen[key] = name
        tensors[name] = tensor.detach().contiguous().cpu()
    return tensors, aliases


def base_checksum(model: nn.Module) -> str:
    """sha256 over every (name, dtype, shape, bytes) of the model's state, tied tensors counted once."""
    tensors, _ = _unique_state(model)
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name]
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def model_weight_bytes(model: nn.Module, scale_bytes: int = 2, full_bytes: int = 2) -> dict[str, int]:
    """Bytes of the weights: BCQ layers (codes + scales) and the rest at ``full_bytes`` per value."""
    tensors, _ = _unique_state(model)
    bcq = bcq_layers(model)
    quantised = sum(layer.weight_bytes(scale_bytes) for layer in bcq.values())
    owned = {f"{n}.{k}" for n in bcq for k in ("codes", "alpha", "mu")}
    rest = sum(
        t.numel() * full_bytes for name, t in tensors.items() if name not in owned and t.is_floating_point()
    )
    return {"quantised": quantised, "full_precision": rest, "total": quantised + rest}


def save_quantized(
    model: nn.Module, folder: str | os.PathLike[str], tokenizer: Any = None, source: str = ""
) -> str:
    """Write the quantised base atomically (temp folder + rename); returns its checksum."""
    from safetensors.torch import save_file

    target = Path(folder)
    layers = bcq_layers(model)
    if not layers:
        raise InvalidInput("the model has no BCQ layers; run quantize_model(model, bits=...) before saving")
    checksum = getattr(model, "haneul_base_checksum", None) or base_checksum(model)
    tensors, aliases = _unique_state(model)
    config = getattr(model, "config", None)
    if config is None:
        raise InvalidInput("only Hugging Face models (with a .config) can be saved as a quantised base")
    meta = {
        "format": FORMAT,
        "checksum": checksum,
        "source": source,
        "settings": getattr(model, "haneul_bcq", {}),
        "architecture": type(model).__name__,
        "aliases": aliases,
        "layers": {
            name: {
                "in_features": m.in_features,
                "out_features": m.out_features,
                "bits": m.bits,
                "group_size": m.group_size,
                "bias": m.bias is not None,
                "offset": m.mu is not None,
                "dtype": str(m.alpha.dtype).removeprefix("torch."),
            }
            for name, m in layers.items()
        },
    }
    try:
        with atomic_dir(target) as tmp:
            save_file(tensors, str(tmp / WEIGHTS), metadata={"format": FORMAT, "checksum": checksum})
            config.save_pretrained(tmp)
            if tokenizer is not None:
                tokenizer.save_pretrained(tmp)
            meta["weights_sha256"] = sha256_file(tmp / WEIGHTS)
            (tmp / META).write_text(json.dumps(meta, indent=2) + "\n")
    except OSError as exc:
        raise StorageError(
            f"could not write the quantised base to {target}: {exc}; check the path and free space"
        ) from exc
    model.haneul_base_checksum = checksum  # type: ignore[assignment]
    return checksum


def is_quantized_base(folder: str | os.PathLike[str]) -> bool:
    return (Path(folder) / META).is_file()


def read_base_meta(folder: str | os.PathLike[str], verify: bool = True) -> dict[str, Any]:
    """The base's ``quant.json``, after checking its format and (with ``verify``) the weights' sha256."""
    folder = Path(folder)
    if not is_quantized_base(folder):
        raise NotFound(
            f"{folder} is not a quantised base (no {META}); create one with `haneul quant quantize`"
        )
    meta: dict[str, Any] = json.loads((folder / META).read_text())
    if meta.get("format") != FORMAT:
        raise InvalidInput(
            f"{folder / META} has format {meta.get('format')!r}, expected {FORMAT!r}; re-quantise the model"
        )
    if verify and meta.get("weights_sha256") and sha256_file(folder / WEIGHTS) != meta["weights_sha256"]:
        raise IntegrityError(f"{folder / WEIGHTS} does not match its recorded sha256; re-create the base")
    return meta


def install_bcq_layers(model: nn.Module, layers: dict[str, dict[str, Any]]) -> None:
    """Replace each module named in the base's ``layers`` (``quant.json``) by an empty
    :class:`BCQLinear` of that spec, ready for the saved codes and scales."""
    for name, spec in layers.items():
        dtype = getattr(torch, spec.get("dtype", "float32"))
        layer = BCQLinear(
            spec["in_features"],
            spec["out_features"],
            spec["bits"],
            spec["group_size"],
            bias=spec["bias"],
            offset=spec["offset"],
            dtype=dtype,
        )
        try:
            _set_module(model, name, layer)
        except AttributeError:
            raise IntegrityError(
                f"the quantised layer {name!r} does not exist in a {type(model).__name__}; re-create the base"
            ) from None


def load_base_weights(model: nn.Module, folder: str | os.PathLike[str], meta: dict[str, Any], verify: bool = True) -> None:
    """Load ``bcq.safetensors`` into a model whose layers :func:`install_bcq_layers` replaced, tie the
    aliased tensors again, record the base checksum and (with ``verify``) check it; eval mode after."""
    from safetensors.torch import load_file

    folder = Path(folder)
    tensors = load_file(str(folder / WEIGHTS))
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    missing = [m for m in missing if m not in meta.get("aliases", {})]
    if missing or unexpected:
        raise IntegrityError(
            f"{folder} does not fit its config (missing {missing[:3]}, unexpected {unexpected[:3]}); re-create the base"
        )
    tie = getattr(model, "tie_weights", None)  # transformers models; haneul's GPT ties at construction
    if meta.get("aliases") and callable(tie):
        tie()
    model.eval()
    model.haneul_bcq = meta.get("settings", {})  # type: ignore[assignment]
    model.haneul_base_checksum = meta["checksum"]  # type: ignore[assignment]
    if verify and base_checksum(model) != meta["checksum"]:
        raise IntegrityError(
            f"the model rebuilt from {folder} does not match the base checksum; re-create the base"
        )
    for layer in bcq_layers(model).values():
        layer.alpha.requires_grad_(False)


def load_quantized(folder: str | os.PathLike[str], verify: bool = True) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the quantised model from a base folder; returns ``(model, meta)`` in eval mode."""
    from transformers import AutoConfig, AutoModelForCausalLM

    meta = read_base_meta(folder, verify)
    config = AutoConfig.from_pretrained(folder)
    model = AutoModelForCausalLM.from_config(config)
    install_bcq_layers(model, meta["layers"])
    load_base_weights(model, folder, meta, verify)
    return model, meta


def load_source(spec: str) -> tuple[nn.Module, Any, bool]:
    """Resolve ``--model``: a quantised base folder, ``smollm2-135m``, or a Hugging Face model folder.

    Returns ``(model, tokenizer or None, is_quantised_base)``; the model is in eval mode.
    """
    from haneul.lm.models.smollm2 import NAME as SMOLLM2
    from haneul.lm.models.smollm2 import load_smollm2

    path = Path(spec).expanduser()
    if path.is_dir() and is_quantized_base(path):
        model, _ = load_quantized(path)
        return model, _maybe_tokenizer(path), True
    if spec in {SMOLLM2, "smollm2"}:
        model, tokenizer = load_smollm2()
        return model, tokenizer, False
    if path.is_dir() and (path / "config.json").is_file():
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        model.eval()
        return model, _maybe_tokenizer(path), False
    raise NotFound(
        f"model {spec!r} is neither '{SMOLLM2}', a Hugging Face model folder nor a quantised base; "
        "pass one of those to --model"
    )


class HaneulTokenizerAdapter:
    """The calls the quantisation and task code make on a Hugging Face tokenizer, answered by
    haneul's own tokenizer: a haneul model folder ships a morpheme-aware tokenizer whose mecab-ko
    pre-split only :class:`~haneul.lm.tokenizer.HaneulTokenizer` applies, and the model was trained
    on that split (plain ``transformers`` would skip it)."""

    def __init__(self, tok: Any) -> None:
        self._tok = tok
        self.eos_token_id = tok.eos_id
        self.pad_token_id = tok.eos_id

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return list(self._tok.encode(text))

    def decode(self, ids: Any, skip_special_tokens: bool = False) -> str:
        return str(self._tok.decode(list(ids), skip_special_tokens=skip_special_tokens))

    def save_pretrained(self, folder: str | os.PathLike[str]) -> None:
        self._tok.save(folder)


def _maybe_tokenizer(path: Path) -> Any:
    if not any((path / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "vocab.json")):
        return None
    if (path / "haneul.json").is_file():  # a haneul tokenizer (morpheme-aware or not)
        from haneul.lm.tokenizer import load_tokenizer

        return HaneulTokenizerAdapter(load_tokenizer(path))
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)
