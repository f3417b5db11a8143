"""Binary-coding quantisation (BCQ) of weight matrices, as used by AlphaTuning (section 3.1).

A weight row is cut into groups of ``g`` consecutive input columns and every group vector ``w`` is
approximated by ``q`` binary vectors with their own scales::

    w ≈ Σᵢ αᵢ bᵢ (+ μ)        bᵢ ∈ {−1, +1}ᵍ,  αᵢ ∈ ℝ,  μ ∈ ℝ only for the extended ("offset") form

The codes start from the greedy residual split (``b = sign(r)``, ``α = mean|r|``, ``r ← r − αb``) and
are then refined by alternating two exact sub-problems: the least-squares scales for fixed codes, and
for fixed scales the best code of every weight, which is the nearest of the ``2^q`` levels
``Σᵢ ±αᵢ (+ μ)``. Each step can only lower the squared error. Every group vector of a matrix is
processed at once as one batch; nothing loops over rows.

Codes are kept as bit-planes ``(out, q, in)`` (``True`` = +1) and packed eight to a byte by
:func:`pack_bits` for storage and for the kernels in :mod:`haneul.quant.layers`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from haneul.errors import InvalidInput

if TYPE_CHECKING:
    import torch

MIN_BITS, MAX_BITS = 1, 8
#: Group sizes the paper studies; any divisor of the input dimension is accepted.
GROUP_PRESETS: dict[str, int | None] = {"row": None, "128": 128, "64": 64, "32": 32}

__all__ = [
    "BCQResult",
    "bcq_quantize",
    "bcq_vectors",
    "check_bits",
    "level_patterns",
    "pack_bits",
    "parse_group_size",
    "resolve_group_size",
    "unpack_bits",
]


def check_bits(bits: int) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int) or not MIN_BITS <= bits <= MAX_BITS:
        raise InvalidInput(
            f"bits={bits!r} is outside {MIN_BITS}-{MAX_BITS}; use an integer such as 3 or 4 "
            "(AlphaTuning studies 1-4 bits)"
        )
    return bits


def parse_group_size(text: str | int | None) -> int | None:
    """``"row"``/``None``/``0`` → whole row (``None``); otherwise a positive integer."""
    if text is None or (isinstance(text, str) and text.strip().lower() in {"row", "none", "", "0"}):
        return None
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise InvalidInput(f"group size {text!r} is not a number; use 'row', 128, 64 or 32") from None
    if value == 0:
        return None
    if value < 0:
        raise InvalidInput(f"group size {value} must be positive; use 'row', 128, 64 or 32")
    return value


def resolve_group_size(group_size: int | None, in_features: int, where: str = "") -> int:
    """The concrete group length for a layer with ``in_features`` inputs (``None`` = whole row)."""
    if group_size is None or group_size == 0:
        return in_features
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size <= 0:
        raise InvalidInput(f"group size {group_size!r} must be a positive integer or 'row'")
    if in_features % group_size:
        at = f" of {where}" if where else ""
        fits = [str(g) for g in (256, 128, 64, 32, 16, 8, 4) if in_features % g == 0] + ["'row'"]
        raise InvalidInput(
            f"group size {group_size} does not divide the input dimension {in_features}{at}; "
            f"choose a divisor of {in_features} such as {', '.join(fits)}"
        )
    return group_size


def level_patterns(
    bits: int, device: torch.device | None = None, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """``(2^q, q)`` sign patterns: row ``k`` has ``+1`` at bit ``i`` where ``k`` has bit ``i`` set."""
    import torch

    k = torch.arange(1 << bits, device=device)
    bitmask = (k[:, None] >> torch.arange(bits, device=device)) & 1
    return (bitmask * 2 - 1).to(dtype or torch.float32)


def _solve_scales(
    vectors: torch.Tensor, codes: tuple[torch.Tensor, torch.Tensor], bits: int, offset: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Least-squares ``α`` (and ``μ``) for fixed codes.

    ``vectors`` (R, g); ``codes = (rank, order)`` as from :func:`_nearest_levels`: every weight's
    level is ``order[rank]``, where level ``k`` has ``+1`` in plane ``i`` when bit ``i`` of ``k`` is
    set. With ``p_k`` the sign pattern of level ``k`` (extended by 1 for the offset), the normal
    equations of a row are ``Σ_k n_k p_k p_kᵀ · x = Σ_k s_k p_k`` where ``n_k`` counts the row's
    weights at level ``k`` and ``s_k`` sums them: two histograms replace the (q × g) · (g × q)
    products per row, and they are taken over ranks and only then permuted to levels, (R, 2^q).
    """
    import torch

    n_rows, g = vectors.shape
    n_levels = 1 << bits
    patterns = level_patterns(bits, vectors.device, torch.float64)  # (L, q)
    if offset:
        patterns = torch.cat([patterns, patterns.new_ones(n_levels, 1)], dim=1)  # (L, k)
    k = patterns.shape[1]
    rank, order = codes
    counts = vectors.new_zeros(n_rows, n_levels).scatter_add_(1, rank, torch.ones_like(vectors))
    sums = vectors.new_zeros(n_rows, n_levels).scatter_add_(1, rank, vectors)
    counts = torch.empty_like(counts).scatter_(1, order, counts).double()
    sums = torch.empty_like(sums).scatter_(1, order, sums).double()
    outer = (patterns[:, :, None] * patterns[:, None, :]).view(n_levels, k * k)
    gram = (counts @ outer).view(n_rows, k, k)  # integer counts: exact
    rhs = sums @ patterns  # (R, k)
    # Two bit-planes can coincide (tiny groups, constant vectors); a ridge far below any real
    # scale keeps the system solvable and splits the scale between them.
    eye = torch.eye(k, dtype=gram.dtype, device=gram.device)
    solution = torch.linalg.solve(gram + (1e-9 * g) * eye, rhs).to(vectors.dtype)
    if offset:
        return solution[:, :-1].contiguous(), solution[:, -1].contiguous()
    return solution, None


def _nearest_levels(
    vectors: torch.Tensor, alpha: torch.Tensor, mu: torch.Tensor | None, bits: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest of the 2^q levels for every weight, as ``(rank (R, g), order (R, 2^q))``.

    ``rank`` is the position of the weight's level among its row's levels in ascending order and
    ``order`` maps positions to levels; the level index itself (``order[rank]``, a gather over all
    weights) is needed only once, at the end (:func:`_level_index`).
    """
    import torch

    n_levels = 1 << bits
    patterns = level_patterns(bits, vectors.device, vectors.dtype)  # (L, q)
    levels = alpha @ patterns.T  # (R, L)
    if mu is not None:
        levels = levels + mu[:, None]
    sorted_levels, order = torch.sort(levels, dim=-1)
    mids = (sorted_levels[:, 1:] + sorted_levels[:, :-1]) * 0.5
    if bits <= 4:
        # with at most 15 boundaries, counting the ones below each weight beats a binary search
        pos = torch.zeros(vectors.shape, dtype=torch.uint8, device=vectors.device)
        for j in range(n_levels - 1):
            pos += vectors > mids[:, j : j + 1]
        pos = pos.long()
    else:
        pos = torch.searchsorted(mids.contiguous(), vectors.contiguous())
    return pos, order


def _codes_of_signs(signs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Signs (R, q, g) of ±1 → codes ``(level index, identity order)`` for :func:`_solve_scales`."""
    import torch

    n_rows, bits, g = signs.shape
    index = torch.zeros(n_rows, g, dtype=torch.int64, device=signs.device)
    for i in range(bits):
        index += (signs[:, i] > 0).long() << i
    return index, torch.arange(1 << bits, device=signs.device).expand(n_rows, -1)


def _signs(codes: tuple[torch.Tensor, torch.Tensor], bits: int, dtype: torch.dtype) -> torch.Tensor:
    """Codes → signs (R, q, g) of ±1: bit ``i`` of a weight's level is its sign in plane ``i``."""
    import torch

    rank, order = codes
    # uint8 shifts are far cheaper than int64 ones, and 2^q <= 256 levels always fit
    level = torch.gather(order.to(torch.uint8), 1, rank)
    signs = torch.empty(rank.shape[0], bits, rank.shape[1], dtype=dtype, device=rank.device)
    for i in range(bits):
        signs[:, i] = (level >> i) & 1
    return signs.mul_(2).sub_(1)


def bcq_vectors(
    vectors: torch.Tensor, bits: int, rounds: int = 15, offset: bool = False, init: str = "greedy"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Quantise each row of ``vectors`` (R, g): returns ``(signs (R, q, g), alpha (R, q), mu (R,) | None)``.

    ``init="best"`` also refines a start from the uniform grid that spans each vector's largest
    magnitude (scales ``s, 2s, 4s, …``) and keeps, per vector, whichever ends with the lower error;
    it costs twice the time and helps vectors with outliers, which the greedy start clips.
    """
    import torch

    check_bits(bits)
    if rounds < 0:
        raise InvalidInput(f"rounds={rounds} must be >= 0")
    if init not in {"greedy", "best"}:
        raise InvalidInput(f"init={init!r} is not one of greedy, best")
    if init == "best":
        n = vectors.shape[0]
        both = torch.cat([vectors, vectors]).detach()
        s_g, a_g, mu_g = bcq_vectors(vectors, bits, 0, offset)
        centred = vectors - mu_g[:, None] if mu_g is not None else vectors
        step = centred.abs().amax(dim=-1) / ((1 << bits) - 1)
        a_u = step[:, None] * (2.0 ** torch.arange(bits, dtype=vectors.dtype, device=vectors.device))
        c_g = _codes_of_signs(s_g)
        c_u = _nearest_levels(vectors, a_u.flip(-1).contiguous(), mu_g, bits)
        codes = (torch.cat([c_g[0], c_u[0]]), torch.cat([c_g[1], c_u[1]]))
        for _ in range(rounds):
            alpha, mu = _solve_scales(both, codes, bits, offset)
            codes = _nearest_levels(both, alpha, mu, bits)
        alpha, mu = _solve_scales(both, codes, bits, offset)
        signs = _signs(codes, bits, vectors.dtype)
        approx = (signs * alpha[:, :, None]).sum(1) + (mu[:, None] if mu is not None else 0)
        err = (approx - both).pow(2).sum(-1).view(2, n)
        pick = (err[1] < err[0]).long()  # 1: the uniform start won
        rows = torch.arange(n, device=vectors.device) + pick * n
        return signs[rows], alpha[rows], (mu[rows] if mu is not None else None)
    vectors = vectors.detach()
    n, g = vectors.shape
    mu = vectors.mean(dim=-1) if offset else None
    residual = vectors - mu[:, None] if mu is not None else vectors.clone()
    signs = torch.empty(n, bits, g, dtype=vectors.dtype, device=vectors.device)
    alpha = torch.empty(n, bits, dtype=vectors.dtype, device=vectors.device)
    for i in range(bits):  # greedy: each bit-plane explains what the previous ones left over
        b = torch.where(residual >= 0, 1.0, -1.0).to(vectors.dtype)
        a = residual.abs().mean(dim=-1)
        signs[:, i] = b
        alpha[:, i] = a
        residual -= a[:, None] * b
    if rounds == 0:
        return signs, alpha, mu
    codes = _codes_of_signs(signs)
    for _ in range(rounds):
        alpha, mu = _solve_scales(vectors, codes, bits, offset)
        codes = _nearest_levels(vectors, alpha, mu, bits)
    alpha, mu = _solve_scales(vectors, codes, bits, offset)
    return _signs(codes, bits, vectors.dtype), alpha, mu


@dataclass
class BCQResult:
    """A quantised ``(out, in)`` matrix: bit-planes, scales and (optionally) offsets per group."""

    codes: torch.Tensor  # (out, q, in) bool, True = +1
    alpha: torch.Tensor  # (out, n_groups, q)
    offset: torch.Tensor | None  # (out, n_groups) or None
    group_size: int
    mse: float
    rel_error: float  # ||W − Ŵ||² / ||W||²

    @property
    def bits(self) -> int:
        return int(self.codes.shape[1])

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.codes.shape[0]), int(self.codes.shape[2])

    def dequantize(self) -> torch.Tensor:
        return dequantize(self.codes, self.alpha, self.offset, self.group_size)


def dequantize(
    codes: torch.Tensor, alpha: torch.Tensor, offset: torch.Tensor | None, group_size: int
) -> torch.Tensor:
    """Rebuild the ``(rows, in)`` matrix from bit-planes ``(rows, q, in)`` and ``alpha (rows, G, q)``."""
    rows, bits, cols = codes.shape
    n_groups = cols // group_size
    signs = codes.to(alpha.dtype) * 2 - 1
    signs = signs.view(rows, bits, n_groups, group_size)
    weight = (signs * alpha.permute(0, 2, 1)[..., None]).sum(dim=1)  # (rows, G, g)
    if offset is not None:
        weight = weight + offset[..., None]
    return weight.reshape(rows, cols)


def bcq_quantize(
    weight: torch.Tensor,
    bits: int,
    group_size: int | None = None,
    rounds: int = 15,
    offset: bool = False,
    where: str = "",
    init: str = "best",
) -> BCQResult:
    """BCQ of a ``(out, in)`` weight matrix with per-row, per-group scales (all groups at once)."""
    import torch

    check_bits(bits)
    if weight.dim() != 2:
        raise InvalidInput(f"BCQ needs a 2-D weight matrix, got shape {tuple(weight.shape)}")
    out_features, in_features = weight.shape
    g = resolve_group_size(group_size, in_features, where)
    n_groups = in_features // g
    work = weight.detach().to(torch.float64 if weight.dtype == torch.float64 else torch.float32)
    signs, alpha, mu = bcq_vectors(work.reshape(out_features * n_groups, g), bits, rounds, offset, init)
    codes = (
        (signs > 0)
        .view(out_features, n_groups, bits, g)
        .permute(0, 2, 1, 3)
        .reshape(out_features, bits, in_features)
    )
    alpha = alpha.view(out_features, n_groups, bits)
    mu = mu.view(out_features, n_groups) if mu is not None else None
    approx = dequantize(codes, alpha, mu, g)
    err = (work - approx).pow(2)
    denom = float(work.pow(2).sum())
    return BCQResult(
        codes=codes.contiguous(),
        alpha=alpha.contiguous(),
        offset=mu,
        group_size=g,
        mse=float(err.mean()),
        rel_error=float(err.sum()) / denom if denom > 0 else 0.0,
    )


def pack_bits(bits_tensor: torch.Tensor) -> torch.Tensor:
    """Pack a bool tensor ``(..., n)`` into uint8 ``(..., ceil(n/8))``; bit ``t`` of byte ``c`` is element ``8c+t``."""
    import torch

    n = bits_tensor.shape[-1]
    pad = (-n) % 8
    flat = bits_tensor.to(torch.uint8)
    if pad:
        flat = torch.nn.functional.pad(flat, (0, pad))
    flat = flat.view(*flat.shape[:-1], -1, 8)
    weights = torch.tensor([1 << t for t in range(8)], dtype=torch.uint8, device=flat.device)
    return (flat * weights).sum(dim=-1, dtype=torch.uint8)


def unpack_bits(packed: torch.Tensor, n: int) -> torch.Tensor:
    """Inverse of :func:`pack_bits`: uint8 ``(..., m)`` → bool ``(..., n)``."""
    import torch

    shifts = torch.arange(8, dtype=torch.uint8, device=packed.device)
    bits = (packed.unsqueeze(-1) >> shifts) & 1
    return bits.reshape(*packed.shape[:-1], -1)[..., :n].bool()
