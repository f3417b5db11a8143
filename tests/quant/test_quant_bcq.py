from __future__ import annotations

import itertools

import pytest
import torch

from haneul.errors import InvalidInput
from haneul.quant.bcq import bcq_quantize, bcq_vectors, pack_bits, parse_group_size, unpack_bits


def naive_bcq_row(
    w: torch.Tensor, bits: int, rounds: int, offset: bool
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Reference BCQ of one vector with plain loops: lstsq for the scales, brute force for the codes."""
    mu = float(w.mean()) if offset else 0.0
    r = w - mu
    signs, alphas = [], []
    for _ in range(bits):
        b = torch.where(r >= 0, 1.0, -1.0).double()
        a = float(r.abs().mean())
        signs.append(b)
        alphas.append(a)
        r = r - a * b
    B = torch.stack(signs)  # (q, g)
    alpha = torch.tensor(alphas, dtype=torch.float64)
    patterns = list(itertools.product([-1.0, 1.0], repeat=bits))

    def solve(B: torch.Tensor) -> tuple[torch.Tensor, float]:
        design = (
            B.T if not offset else torch.cat([B.T, torch.ones(B.shape[1], 1, dtype=torch.float64)], dim=1)
        )
        sol = torch.linalg.lstsq(design, w[:, None]).solution[:, 0]
        return (sol[:bits], float(sol[bits])) if offset else (sol, 0.0)

    if rounds:
        for _ in range(rounds):
            alpha, mu = solve(B)
            cols = []
            for value in w.tolist():
                best = min(
                    patterns,
                    key=lambda p: abs(
                        value - (mu + sum(pi * ai for pi, ai in zip(p, alpha.tolist(), strict=True)))
                    ),
                )
                cols.append(torch.tensor(best, dtype=torch.float64))
            B = torch.stack(cols, dim=1)
        alpha, mu = solve(B)
    return B, alpha, mu


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5])  # 5: binary search over the levels, not counting
@pytest.mark.parametrize("offset", [False, True])
@pytest.mark.parametrize("rounds", [0, 3])
def test_vectorised_matches_naive_loop(bits: int, offset: bool, rounds: int) -> None:
    torch.manual_seed(bits * 10 + rounds)
    V = torch.randn(6, 16, dtype=torch.float64)
    signs, alpha, mu = bcq_vectors(V, bits, rounds, offset)
    for i in range(V.shape[0]):
        B, a, m = naive_bcq_row(V[i], bits, rounds, offset)
        assert torch.equal(signs[i], B)
        torch.testing.assert_close(alpha[i], a, rtol=1e-6, atol=1e-7)
        if offset:
            assert float(mu[i]) == pytest.approx(m, abs=1e-7)


def test_two_bit_vector_is_exact() -> None:
    # 3 = 2+1, 1 = 2-1, -1 = -2+1, -3 = -2-1: greedy finds α = (2, 1) with no error.
    res = bcq_quantize(torch.tensor([[3.0, 1.0, -1.0, -3.0]]), bits=2, rounds=0)
    torch.testing.assert_close(res.alpha[0, 0], torch.tensor([2.0, 1.0]))
    assert res.codes[0].tolist() == [[True, True, False, False], [True, False, True, False]]
    assert res.rel_error == pytest.approx(0.0, abs=1e-12)


def test_one_bit_scale_is_mean_absolute_value() -> None:
    res = bcq_quantize(torch.tensor([[4.0, -2.0, 1.0, -1.0]]), bits=1, rounds=5)
    assert float(res.alpha[0, 0, 0]) == pytest.approx(2.0)
    # error = (2² + 0 + 1 + 1) / (16 + 4 + 1 + 1)
    assert res.rel_error == pytest.approx(6 / 22)


def test_offset_represents_a_shifted_grid_exactly() -> None:
    w = torch.tensor([[0.0, 1.0, 2.0, 3.0, 3.0, 0.0, 1.0, 2.0]])
    plain = bcq_quantize(w, bits=2, rounds=10)
    extended = bcq_quantize(w, bits=2, rounds=10, offset=True)
    assert plain.rel_error > 0.01
    assert extended.rel_error == pytest.approx(0.0, abs=1e-10)
    assert float(extended.offset[0, 0]) == pytest.approx(1.5)
    torch.testing.assert_close(extended.dequantize(), w)


def test_groups_get_their_own_scales() -> None:
    # first group is ±1, second group is ±10: per-group 1-bit BCQ is exact, per-row is not.
    w = torch.tensor([[1.0, -1.0, 1.0, -1.0, 10.0, -10.0, -10.0, 10.0]])
    grouped = bcq_quantize(w, bits=1, group_size=4, rounds=2)
    assert grouped.alpha.shape == (1, 2, 1)
    torch.testing.assert_close(grouped.alpha[0, :, 0], torch.tensor([1.0, 10.0]))
    assert grouped.rel_error == pytest.approx(0.0, abs=1e-12)
    # one scale for the row: every weight is off by 4.5, error = 8 · 4.5² / (4 · 1 + 4 · 100)
    assert bcq_quantize(w, bits=1, rounds=2).rel_error == pytest.approx(162 / 404)


def test_refinement_never_increases_error_and_helps() -> None:
    torch.manual_seed(0)
    W = torch.randn(64, 128)
    errors = [
        bcq_quantize(W, bits=3, group_size=32, rounds=r, init="greedy").rel_error for r in (0, 1, 3, 15)
    ]
    assert all(b <= a + 1e-7 for a, b in zip(errors, errors[1:], strict=False))
    assert errors[-1] < 0.8 * errors[0]
    # 3-bit on a Gaussian: the optimal non-uniform quantiser reaches ≈ 0.0345; BCQ gets near it
    assert 0.025 < errors[-1] < 0.045


@pytest.mark.parametrize("bits", [0, 9, -1, 2.5, True])
def test_bits_outside_range_are_rejected(bits: object) -> None:
    with pytest.raises(InvalidInput, match="outside 1-8"):
        bcq_quantize(torch.randn(4, 8), bits=bits)  # type: ignore[arg-type]


def test_group_that_does_not_divide_is_rejected() -> None:
    with pytest.raises(
        InvalidInput, match="group size 5 does not divide the input dimension 12; choose a divisor of 12"
    ):
        bcq_quantize(torch.randn(4, 12), bits=2, group_size=5)


def test_parse_group_size() -> None:
    assert parse_group_size("row") is None and parse_group_size("0") is None
    assert parse_group_size("64") == 64
    with pytest.raises(InvalidInput):
        parse_group_size("big")
    with pytest.raises(InvalidInput):
        parse_group_size("-4")


def test_pack_bits_layout_and_roundtrip() -> None:
    bits = torch.tensor([1, 0, 0, 0, 0, 0, 0, 0, 1, 1], dtype=torch.bool)
    assert pack_bits(bits).tolist() == [1, 3]
    assert pack_bits(torch.tensor([0, 1, 1], dtype=torch.bool)).tolist() == [6]
    torch.manual_seed(1)
    planes = torch.rand(3, 2, 21) > 0.5
    packed = pack_bits(planes)
    assert packed.shape == (3, 2, 3) and packed.dtype == torch.uint8
    assert torch.equal(unpack_bits(packed, 21), planes)


def test_best_start_beats_greedy_on_outliers() -> None:
    torch.manual_seed(0)
    W = torch.distributions.StudentT(3.0).sample((32, 64))  # heavy tails, like the weights of real LMs
    greedy = bcq_quantize(W, bits=3, group_size=64, rounds=2, init="greedy")
    best = bcq_quantize(W, bits=3, group_size=64, rounds=2, init="best")
    assert best.rel_error < 0.7 * greedy.rel_error
    g_max = float((greedy.dequantize() - W).abs().max())
    b_max = float((best.dequantize() - W).abs().max())
    assert b_max < g_max
    with pytest.raises(InvalidInput, match="init"):
        bcq_quantize(W, bits=3, init="random")
