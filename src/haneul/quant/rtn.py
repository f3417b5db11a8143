"""Round-to-nearest (RTN) uniform quantisation: the plain post-training baseline AlphaTuning is compared with.

Each output row is cut into groups of ``g`` input columns, as in BCQ. A group gets one uniform grid of
``2^q`` levels spanning ``[min(w_min, 0), max(w_max, 0)]`` (asymmetric: one scale and an integer zero
point per group; the range always holds 0 so the zero point is a valid code, as in GPTQ's RTN
baseline), and every weight is rounded to the nearest level:

    code = clamp(round(w / s) + z, 0, 2^q − 1)        ŵ = s · (code − z)

Storage counted by :meth:`RTNResult.nbytes`: the codes at ``q`` bits each, the zero points at ``q``
bits each, and the scales at ``scale_bytes`` (fp16 = 2). :func:`rtn_quantize_model` applies it to the
same layers :func:`~haneul.quant.model.quantize_model` would replace and keeps the layers dense, with
their weights set to the reconstruction (simulated quantisation): the metric is that of the quantised
model, the byte count that of its packed form. AlphaTuning (section 4) uses such a uniform quantiser
after LoRA as the "LoRA then PTQ" baseline.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from haneul.errors import InvalidInput
from haneul.quant.bcq import check_bits, resolve_group_size

__all__ = ["RTNResult", "rtn_quantize", "rtn_quantize_model"]


@dataclass
class RTNResult:
    codes: torch.Tensor  # uint8 (out, in), values in 0 … 2^q − 1
    scale: torch.Tensor  # (out, groups)
    zero: torch.Tensor  # uint8 (out, groups), values in 0 … 2^q − 1
    bits: int
    group_size: int
    rel_error: float

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.codes.shape)  # type: ignore[return-value]

    def dequantize(self) -> torch.Tensor:
        out, cols = self.codes.shape
        groups = self.scale.shape[1]
        q = self.codes.view(out, groups, self.group_size).float() - self.zero.float()[..., None]
        return (q * self.scale[..., None]).reshape(out, cols)

    def nbytes(self, scale_bytes: int = 2) -> int:
        """Packed storage: q-bit codes and zero points, ``scale_bytes`` per scale."""
        return (
            math.ceil(self.codes.numel() * self.bits / 8)
            + math.ceil(self.zero.numel() * self.bits / 8)
            + (self.scale.numel() * scale_bytes)
        )


def rtn_quantize(
    weight: torch.Tensor, bits: int, group_size: int | None = None, where: str = ""
) -> RTNResult:
    """Quantise a 2-D ``(out, in)`` weight per row and group of ``group_size`` columns (``None`` = row)."""
    check_bits(bits)
    if weight.dim() != 2:
        raise InvalidInput(f"rtn_quantize needs a 2-D weight (out, in), got shape {tuple(weight.shape)}")
    out, cols = weight.shape
    g = resolve_group_size(group_size, cols, where)
    w = weight.detach().float().reshape(out, cols // g, g)
    top = 2**bits - 1
    lo = w.amin(dim=-1).clamp(max=0.0)
    hi = w.amax(dim=-1).clamp(min=0.0)
    scale = (hi - lo) / top
    # an all-zero group: any scale reconstructs it exactly; 1 avoids dividing by zero
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    zero = torch.round(-lo / scale).clamp(0, top)
    codes = (torch.round(w / scale[..., None]) + zero[..., None]).clamp(0, top)
    result = RTNResult(
        codes=codes.to(torch.uint8).reshape(out, cols),
        scale=scale,
        zero=zero.to(torch.uint8),
        bits=bits,
        group_size=g,
        rel_error=0.0,
    )
    recon = result.dequantize()
    norm = float(weight.float().pow(2).sum())
    result.rel_error = float((weight.float() - recon).pow(2).sum()) / norm if norm > 0 else 0.0
    return result


def rtn_quantize_model(
    model: nn.Module,
    bits: int,
    group_size: int | None = None,
    skip: Iterable[str] = (),
    quantize_head: bool = False,
    scale_bytes: int = 2,
) -> dict[str, dict[str, float | int]]:
    """Round every layer :func:`quantize_model` would quantise, in place; returns per-layer stats.

    The layers stay ``nn.Linear`` (or ``Conv1D``) holding the reconstructed weight. Each entry has
    ``out_features``, ``in_features``, ``bytes`` (packed size) and ``rel_error``. A bad ``bits`` or a
    group size that does not divide some layer's input is refused before anything changes.
    """
    from haneul.quant.model import HEAD_NAMES, _is_conv1d, _matches

    check_bits(bits)
    skip = list(skip)
    targets: list[tuple[str, nn.Module, bool]] = []
    for name, module in model.named_modules():
        if not name or not (isinstance(module, nn.Linear) or _is_conv1d(module)):
            continue
        if _matches(name, skip) or (name.split(".")[-1] in HEAD_NAMES and not quantize_head):
            continue
        targets.append((name, module, _is_conv1d(module)))
    for name, module, transposed in targets:
        resolve_group_size(group_size, module.weight.shape[0 if transposed else 1], name)
    stats: dict[str, dict[str, float | int]] = {}
    with torch.no_grad():
        for name, module, transposed in targets:
            weight = module.weight.T if transposed else module.weight
            result = rtn_quantize(weight, bits, group_size, where=name)
            recon = result.dequantize().to(module.weight.dtype)
            module.weight.copy_(recon.T if transposed else recon)
            stats[name] = {
                "out_features": int(weight.shape[0]),
                "in_features": int(weight.shape[1]),
                "bytes": result.nbytes(scale_bytes),
                "rel_error": result.rel_error,
            }
    return stats
