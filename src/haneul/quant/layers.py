"""``BCQLinear``: a linear layer stored as packed binary codes plus scales (AlphaTuning, section 3).

The frozen binary codes are bit-planes packed eight to a byte (``codes``: uint8 ``(out, q, ⌈in/8⌉)``),
the scales ``alpha`` (``(out, n_groups, q)``) are the only ``nn.Parameter`` that AlphaTuning trains,
and the optional offset ``mu`` (extended BCQ) and the bias stay frozen.

Two forward paths:

* **inference** (no gradient needed): the full fp32 weight is never built. It uses a lookup table
  in the spirit of LUT-GEMM: every run of 8 inputs gets a table of its 256 signed partial sums,
  each packed code byte picks one entry, and the picks are summed per group and scaled by
  ``alpha``. With the C++ kernel built (:mod:`haneul.quant.kernels`) this runs for up to
  ``kernel_max_rows`` input rows; in pure torch only for ``lut_max_rows`` (one row, the decoding
  case). Otherwise it dequantises ``tile_rows`` output rows at a time and multiplies tile by tile.
  On a CPU with AVX-512 or AVX2 the kernel uses 4-input tables held in registers and codes repacked
  once per layer into blocks of 16 output rows (a cache on the layer, rebuilt when the codes or
  scales change; the saved format is unchanged); the kernel path is chosen by CPU features
  (:func:`haneul.quant.kernels.isa`). After its first kernel call a layer without offsets or bias
  keeps a plan, so later calls of the module go straight to the kernel: in a decoding step the
  Python around a call costs as much as the kernel does.
* **training** (gradient wanted): rebuilds the weight differentiably from the frozen codes and the
  current ``alpha``, so gradients reach the chosen scales only. ``train_alpha = k`` lets gradients
  reach only the first ``k`` scales of every group (``k = 1`` is the paper's cheapest setting).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from haneul.errors import InvalidInput
from haneul.quant import kernels as _kernels
from haneul.quant.bcq import BCQResult, bcq_quantize, check_bits, pack_bits, resolve_group_size

__all__ = ["BCQLinear", "byte_sign_table"]

_SIGN_TABLES: dict[tuple[torch.dtype, torch.device], torch.Tensor] = {}
# The AVX2 byte-shuffle kernels' byte position of each of 32 rows (see kernels/lut_avx2_shuffle.h): the order in
# which its widened even / odd byte sums come out as rows 0-7, 8-15, 16-23, 24-31.
_BYTE_OF_ROW = [0, 2, 4, 6, 16, 18, 20, 22, 8, 10, 12, 14, 24, 26, 28, 30,
                1, 3, 5, 7, 17, 19, 21, 23, 9, 11, 13, 15, 25, 27, 29, 31]  # fmt: skip
_ROW_OF_BYTE = sorted(range(32), key=_BYTE_OF_ROW.__getitem__)


def _operand_key(alpha: torch.Tensor, codes: torch.Tensor) -> tuple[int, int, int, int, torch.dtype]:
    """Changes whenever the scales or codes are replaced, converted or updated in place."""
    return alpha.data_ptr(), alpha._version, codes.data_ptr(), codes._version, alpha.dtype


def byte_sign_table(dtype: torch.dtype = torch.float32, device: torch.device | None = None) -> torch.Tensor:
    """``(8, 256)`` matrix: column ``k`` holds the ±1 signs that byte value ``k`` encodes."""
    device = device or torch.device("cpu")
    key = (dtype, device)
    if key not in _SIGN_TABLES:
        k = torch.arange(256, device=device)
        bits = (k[None, :] >> torch.arange(8, device=device)[:, None]) & 1
        _SIGN_TABLES[key] = (bits * 2 - 1).to(dtype)
    return _SIGN_TABLES[key]


class BCQLinear(nn.Module):
    """``y = x Ŵᵀ + b`` with ``Ŵ[o, G] = Σᵢ alpha[o, G, i] · bᵢ[o, G] (+ mu[o, G])``."""

    codes: torch.Tensor
    mu: torch.Tensor | None

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bits: int,
        group_size: int | None = None,
        bias: bool = True,
        offset: bool = False,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.bits = check_bits(bits)
        self.group_size = resolve_group_size(group_size, in_features)
        self.n_groups = in_features // self.group_size
        packed_cols = math.ceil(in_features / 8)
        self.register_buffer(
            "codes", torch.zeros(out_features, bits, packed_cols, dtype=torch.uint8, device=device)
        )
        self.alpha = nn.Parameter(torch.zeros(out_features, self.n_groups, bits, dtype=dtype, device=device))
        self.alpha.requires_grad_(False)  # frozen until set_train_alpha() picks the scales to train
        if offset:
            self.register_buffer("mu", torch.zeros(out_features, self.n_groups, dtype=dtype, device=device))
        else:
            self.mu = None
        self.bias = (
            nn.Parameter(torch.zeros(out_features, dtype=dtype, device=device), requires_grad=False)
            if bias
            else None
        )
        self.train_alpha = bits
        self.tile_rows = 512
        self.lut_max_rows = 1
        self.kernel_max_rows = 16
        self.rel_error: float | None = None

    # -- construction -------------------------------------------------------------------------------
    @classmethod
    def from_result(cls, result: BCQResult, bias: torch.Tensor | None = None) -> BCQLinear:
        out_features, in_features = result.shape
        layer = cls(
            in_features,
            out_features,
            result.bits,
            result.group_size,
            bias=bias is not None,
            offset=result.offset is not None,
            dtype=bias.dtype if bias is not None else torch.float32,
            device=result.codes.device,
        )
        with torch.no_grad():
            layer.codes.copy_(pack_bits(result.codes))
            layer.alpha.copy_(result.alpha)
            if result.offset is not None and layer.mu is not None:
                layer.mu.copy_(result.offset)
            if bias is not None and layer.bias is not None:
                layer.bias.copy_(bias.detach())
        layer.rel_error = result.rel_error
        return layer

    @classmethod
    def from_linear(
        cls,
        linear: nn.Module,
        bits: int,
        group_size: int | None = None,
        rounds: int = 15,
        offset: bool = False,
        transposed: bool = False,
        name: str = "",
        init: str = "best",
    ) -> BCQLinear:
        """Quantise an ``nn.Linear`` (or, with ``transposed=True``, a GPT-2 ``Conv1D`` storing ``(in, out)``)."""
        weight = linear.weight.detach()
        if transposed:
            weight = weight.T
        result = bcq_quantize(
            weight.float(), bits, group_size, rounds=rounds, offset=offset, where=name, init=init
        )
        bias = getattr(linear, "bias", None)
        layer = cls.from_result(result, bias.detach().float() if bias is not None else None)
        return layer.to(linear.weight.dtype)

    # -- scale training -----------------------------------------------------------------------------
    def set_train_alpha(self, k: int | str) -> None:
        """Let gradients reach only the first ``k`` scales per group (``"all"`` = every scale)."""
        k = self.bits if k == "all" else k
        if not isinstance(k, int) or not 1 <= k <= self.bits:
            raise InvalidInput(f"train_alpha={k!r} must be between 1 and bits={self.bits}, or 'all'")
        self.train_alpha = k
        self.alpha.requires_grad_(True)

    def trainable_alpha_count(self) -> int:
        return self.out_features * self.n_groups * self.train_alpha

    def _effective_alpha(self) -> torch.Tensor:
        if self.train_alpha >= self.bits or not self.alpha.requires_grad:
            return self.alpha
        k = self.train_alpha
        return torch.cat([self.alpha[..., :k], self.alpha[..., k:].detach()], dim=-1)

    # -- weights --------------------------------------------------------------------------------------
    def _signs(self, rows: slice, dtype: torch.dtype) -> torch.Tensor:
        """±1 signs ``(r, q, in)`` of the given output rows, one table lookup per code byte."""
        packed = self.codes[rows]
        table = byte_sign_table(dtype, packed.device).T.contiguous()  # (256, 8)
        signs = table.index_select(0, packed.reshape(-1).to(torch.int32))
        signs = signs.view(*packed.shape[:-1], packed.shape[-1] * 8)
        return signs[..., : self.in_features]

    def dequantize(self, rows: slice | None = None, alpha: torch.Tensor | None = None) -> torch.Tensor:
        """The weight ``(rows, in)``; without ``rows`` the full matrix (for checks and export only)."""
        rows = rows if rows is not None else slice(0, self.out_features)
        alpha = (alpha if alpha is not None else self.alpha)[rows]
        signs = self._signs(rows, alpha.dtype)
        r = signs.shape[0]
        signs = signs.view(r, self.bits, self.n_groups, self.group_size)
        # (a broadcast multiply-and-sum is several times faster than einsum for this contraction on CPU)
        weight = (signs * alpha.permute(0, 2, 1).unsqueeze(-1)).sum(dim=1)  # (r, G, g)
        if self.mu is not None:
            weight = weight + self.mu[rows, :, None].to(weight.dtype)
        return weight.reshape(r, self.in_features)

    def weight_bytes(self, scale_bytes: int = 2) -> int:
        """Storage of the layer: packed codes + scales (+ offsets) at ``scale_bytes`` each (fp16 = 2)."""
        n = self.codes.numel()
        n_scales = self.alpha.numel() + (self.mu.numel() if self.mu is not None else 0)
        return n + n_scales * scale_bytes

    # -- forward --------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # A decoding step calls this once per layer and token, where a few microseconds of Python
        # cost as much as the SIMD kernel itself: a layer that ran the kernel once keeps a plan
        # (kernel entry point, repacked operands) and takes it while codes, scales and the kernel
        # path (a forced ISA bumps the generation) are unchanged.
        alpha, codes = self._parameters["alpha"], self._buffers["codes"]
        assert alpha is not None and codes is not None
        if torch.is_grad_enabled() and (alpha.requires_grad or x.requires_grad):
            return self._forward_train(x)
        plan = self.__dict__.get("_plan")
        if (
            plan is not None
            and plan[0] == _operand_key(alpha, codes)
            and plan[1] == _kernels.generation
            and x.numel() <= plan[3]
        ):
            if x.dim() == 2:  # a reshape costs about a microsecond, as much as a small kernel call
                return plan[2](x, *plan[4:])  # returns x's dtype
            out = plan[2](x.reshape(-1, self.in_features), *plan[4:])
            return out.reshape(*x.shape[:-1], self.out_features)
        return self.forward_infer(x)

    def __getstate__(self) -> dict[str, object]:
        # the kernel plan and repacked operands are derived, and hold the extension's function
        state = self.__dict__.copy()
        state.pop("_plan", None)
        state.pop("_kernel_cache", None)
        return state

    def _forward_train(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.dequantize(alpha=self._effective_alpha().to(x.dtype))
        bias = self.bias.to(x.dtype) if self.bias is not None else None
        return F.linear(x, weight, bias)

    def forward_infer(self, x: torch.Tensor, method: str = "auto") -> torch.Tensor:
        """Inference forward (no gradient) that never holds more than ``tile_rows`` dequantised rows."""
        if torch.is_grad_enabled():
            with torch.no_grad():
                return self._forward_infer(x, method)
        # decoding calls this once per layer and token: skip the no_grad context when it is not needed
        return self._forward_infer(x, method)

    def _forward_infer(self, x: torch.Tensor, method: str) -> torch.Tensor:
        lead = x.shape[:-1]
        flat = x.reshape(-1, self.in_features)
        from haneul.quant import kernels

        module = kernels.get()
        if method == "auto":
            lut_ok = self.group_size % 8 == 0 and self.in_features % 8 == 0
            if (
                module is not None
                and flat.shape[0] <= self.kernel_max_rows
                and (lut_ok or (kernels.simd() and self._simd_fits()))
            ):
                method = "kernel"
            else:
                method = "lut" if lut_ok and flat.shape[0] <= self.lut_max_rows else "tiled"
        if method == "kernel":
            out = self._kernel_matmul(flat, module)
            self._make_plan(module)
        elif method == "lut":
            out = self._lut_matmul(flat)
        elif method == "tiled":
            out = self._tiled_matmul(flat)
        else:
            raise InvalidInput(f"method={method!r} is not one of auto, kernel, lut, tiled")
        bias = self._parameters.get("bias", self.__dict__.get("bias"))
        if bias is not None:
            out = out + bias.to(out.dtype)
        return out.reshape(*lead, self.out_features)

    def _make_plan(self, module: object) -> None:
        """Keep what :meth:`forward` needs to call the SIMD kernel directly next time; only for
        layers with neither offsets nor a bias (the plain projections of Llama-family models)."""
        alpha, codes = self._parameters["alpha"], self._buffers["codes"]
        assert alpha is not None and codes is not None
        if not _kernels.simd() or not self._simd_fits():
            return
        if self._buffers.get("mu") is not None or self._parameters.get("bias", self.__dict__.get("bias")) is not None:
            return
        entry, words, alpha_k = self._simd_operands()
        self.__dict__["_plan"] = (
            _operand_key(alpha, codes),
            _kernels.generation,
            entry,
            self.kernel_max_rows * self.in_features, words, alpha_k, self.out_features, self.group_size,
        )  # fmt: skip

    def _simd_fits(self) -> bool:
        # the SIMD paths scale at group ends measured in runs of 4 inputs
        return self.n_groups == 1 or self.group_size % 4 == 0

    def _simd_operands(self) -> tuple[Callable[..., torch.Tensor], torch.Tensor, torch.Tensor]:
        """The chosen SIMD path's entry point and this layer's operands for it. The AVX2 byte-shuffle
        kernels (exact 24-bit tables, or the int8 mode) need input and group sizes that are multiples
        of 8; other layers take the AVX2 fp32-table kernel."""
        chosen = _kernels.isa()
        if chosen in ("avx2", "avx2-int8"):
            if self.group_size % 8 == 0 and self.in_features % 8 == 0:
                name = "avx2_bytes" if chosen == "avx2" else "avx2_int8"
                return _kernels.gemm_entry(name), *self._kernel_operands_bytes()
            chosen = "avx2"
        return _kernels.gemm_entry(chosen), *self._kernel_operands()

    def _kernel_operands_bytes(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes and scales for the AVX2 byte-shuffle kernels, cached until either changes.

        ``bytes`` ``(blocks, in/8, q, 32)``: for every block of 32 output rows, code column and
        bit-plane, the 32 rows' code bytes in the kernel's byte order (``_BYTE_OF_ROW``);
        ``alpha`` ``(blocks, n_groups, q, 32)`` fp32 in row order. Padding rows are zero.
        """
        codes, alpha = self._buffers["codes"], self._parameters["alpha"]
        assert codes is not None and alpha is not None
        cache = self.__dict__.setdefault("_kernel_cache", {"codes_key": None, "alpha_key": None})
        key = (codes.data_ptr(), codes._version)
        if cache.get("bytes_key") != key:
            out, q, cols = codes.shape
            blocks = -(-out // 32)
            padded = F.pad(codes, (0, 0, 0, 0, 0, blocks * 32 - out)).view(blocks, 32, q, cols)
            by_row = padded.permute(0, 3, 2, 1)  # (blocks, cols, q, 32 rows)
            cache["bytes"] = by_row[..., _ROW_OF_BYTE].contiguous()
            cache["bytes_key"] = key
        akey = (alpha.data_ptr(), alpha._version, alpha.dtype)
        if cache.get("alpha8_key") != akey:
            out = alpha.shape[0]
            blocks = -(-out // 32)
            padded = F.pad(alpha.detach().float(), (0, 0, 0, 0, 0, blocks * 32 - out))
            grouped = padded.view(blocks, 32, self.n_groups, self.bits).permute(0, 2, 3, 1)
            cache["alpha8"] = grouped.contiguous()
            cache["alpha8_key"] = akey
        return cache["bytes"], cache["alpha8"]

    def _kernel_operands(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes and scales repacked for the SIMD kernel paths (AVX-512 and AVX2 read the same
        layout), cached until either changes.

        ``words`` ``(blocks, ⌈in/32⌉, q, 64)``: for every block of 16 output rows and every 32 inputs,
        one 64-byte word per bit-plane whose 32-bit lane ``r`` holds the 32 code bits of row
        ``16·block + r`` (so each lane's nibbles index the 16-entry tables of 8 runs of 4 inputs).
        ``alpha`` ``(blocks, n_groups, q, 16)`` in fp32. Padding rows and bytes are zero.
        """
        # direct dict reads: nn.Module attribute lookup costs microseconds, paid per layer and token
        codes, alpha = self._buffers["codes"], self._parameters["alpha"]
        assert codes is not None and alpha is not None
        cache = self.__dict__.get("_kernel_cache")
        if cache is None:
            cache = self.__dict__["_kernel_cache"] = {"codes_key": None, "alpha_key": None}
        key = (codes.data_ptr(), codes._version)
        if cache["codes_key"] != key:
            out, q, cols = codes.shape
            blocks, words = -(-out // 16), -(-self.in_features // 32)
            padded = F.pad(codes, (0, words * 4 - cols, 0, 0, 0, blocks * 16 - out))
            packed = padded.view(blocks, 16, q, words, 4).permute(0, 3, 2, 1, 4)
            cache["words"] = packed.reshape(blocks, words, q, 64).contiguous()
            cache["codes_key"] = key
        akey = (alpha.data_ptr(), alpha._version, alpha.dtype)
        if cache["alpha_key"] != akey:
            out = alpha.shape[0]
            blocks = -(-out // 16)
            padded = F.pad(alpha.detach().float(), (0, 0, 0, 0, 0, blocks * 16 - out))
            grouped = padded.view(blocks, 16, self.n_groups, self.bits).permute(0, 2, 3, 1)
            cache["alpha"] = grouped.contiguous()
            cache["alpha_key"] = akey
        return cache["words"], cache["alpha"]

    def _kernel_matmul(self, x: torch.Tensor, module: object | None = None) -> torch.Tensor:
        from haneul.quant import kernels

        module = module if module is not None else kernels.get()
        if module is not None and kernels.simd() and self._simd_fits():
            entry, words, alpha = self._simd_operands()
            out = entry(x, words, alpha, self.out_features, self.group_size)
        elif module is not None and self.group_size % 8 == 0 and self.in_features % 8 == 0:
            out = module.lut_gemm(x, self.codes, self.alpha.detach(), self.group_size)  # type: ignore[attr-defined]
        else:
            raise InvalidInput(
                "the C++ kernel is not built or does not fit this layer (group and input sizes must be multiples of 8, "
                "or of 4 on a CPU with AVX2 or AVX-512); run `haneul quant build-kernel` or use method='lut' or 'tiled'"
            )
        mu = self._buffers.get("mu")
        if mu is not None:
            group_sums = x.reshape(x.shape[0], self.n_groups, self.group_size).sum(-1)
            out = out + group_sums @ mu.to(x.dtype).T
        return out

    def _tiled_matmul(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.empty(x.shape[0], self.out_features, dtype=x.dtype, device=x.device)
        alpha = self.alpha.to(x.dtype)
        for start in range(0, self.out_features, self.tile_rows):
            rows = slice(start, min(start + self.tile_rows, self.out_features))
            out[:, rows] = x @ self.dequantize(rows, alpha).T
        return out

    def _lut_matmul(self, x: torch.Tensor) -> torch.Tensor:
        if self.group_size % 8:
            raise InvalidInput(
                f"the lookup-table path needs a group size divisible by 8, got {self.group_size}"
            )
        n, d = x.shape
        chunks = d // 8
        # table[b, c, k] = Σₜ sign_t(k) · x[b, 8c + t]: every signed sum one code byte can ask for.
        table = x.reshape(n, chunks, 8) @ byte_sign_table(x.dtype, x.device)  # (n, chunks, 256)
        # The byte at column c of any row indexes table[:, c, :]; offset it into the flattened table.
        # int32 indices keep index_select on its fast path and cost 4 bytes per code byte, transiently.
        base = torch.arange(chunks, device=x.device, dtype=torch.int32) * 256
        index = (self.codes.to(torch.int32) + base).reshape(-1)  # (out*q*chunks,)
        flat_table = table.permute(1, 2, 0).reshape(chunks * 256, n)  # row = one table entry for all n inputs
        picked = flat_table.index_select(0, index)  # (out*q*chunks, n)
        per_byte = self.group_size // 8
        ones = torch.ones(per_byte, 1, dtype=x.dtype, device=x.device)
        # Sum the bytes of one group with a tiny matmul (a last-axis sum of length 8 is slow on CPU).
        grouped = picked.view(-1, per_byte, n).transpose(1, 2) @ ones  # (out*q*G, n, 1)
        grouped = grouped.view(self.out_features, self.bits, self.n_groups, n)
        scales = self.alpha.to(x.dtype).permute(0, 2, 1).unsqueeze(-1)  # (out, q, G, 1)
        out = (grouped * scales).sum(dim=(1, 2)).T
        if self.mu is not None:
            group_sums = x.reshape(n, self.n_groups, self.group_size).sum(-1)  # (n, G)
            out = out + group_sums @ self.mu.to(x.dtype).T
        return out

    def extra_repr(self) -> str:
        group = "row" if self.group_size == self.in_features else str(self.group_size)
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, bits={self.bits}, "
            f"group_size={group}, n_groups={self.n_groups}, offset={self.mu is not None}, "
            f"bias={self.bias is not None}, train_alpha={self.train_alpha}"
        )
