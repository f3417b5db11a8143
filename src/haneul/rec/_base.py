"""Shared pieces of the embedding recommenders: sparse propagation and the pairwise losses.

Every trainable model here exposes ``propagate(batch=None) -> (user_repr, item_repr, index)`` and
gets BPR / BCE training from :class:`EmbeddingModel`. Propagation multiplies a symmetric normalised
sparse matrix with dense embeddings through :class:`SymSpMM`, whose backward reuses the same CSR
matrix (``A^T = A``), so neither direction loops over edges in Python. ``appnp`` is the
personalised-PageRank propagation of APPNP (Klicpera et al., ICLR 2019) that HGP (Sec. 2.2) runs on
each sub-graph.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class SymSpMM(torch.autograd.Function):
    """``A @ x`` for a symmetric sparse ``A``; the gradient w.r.t. ``x`` is ``A @ grad``."""

    @staticmethod
    def forward(ctx, adj: torch.Tensor, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        ctx.adj = adj
        return adj @ x

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: D102
        return None, ctx.adj @ grad


def spmm(adj: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return SymSpMM.apply(adj, x)


def appnp(adj: torch.Tensor, h: torch.Tensor, k: int, alpha: float) -> torch.Tensor:
    """K steps of ``Z <- (1 - alpha) A Z + alpha H`` from ``Z = H`` (personalised PageRank)."""
    if k == 0:
        return h
    # fold (1 - alpha) into the matrix values once, so each step is one spmm and one fused add
    scaled = _scale(adj, 1.0 - alpha)
    z = h
    for _ in range(k):
        z = torch.add(spmm(scaled, z), h, alpha=alpha)
    return z


def _scale(adj: torch.Tensor, factor: float) -> torch.Tensor:
    if factor == 1.0:
        return adj
    if adj.layout == torch.sparse_csr:
        return torch.sparse_csr_tensor(
            adj.crow_indices(), adj.col_indices(), adj.values() * factor, size=adj.shape, check_invariants=False
        )
    return adj * factor


def lightgcn_propagate(adj: torch.Tensor, h: torch.Tensor, k: int) -> torch.Tensor:
    """LightGCN: the mean of ``A^0 H, A^1 H, ..., A^K H`` (He et al., SIGIR 2020, Eq. 4)."""
    out = h
    z = h
    for _ in range(k):
        z = spmm(adj, z)
        out = out + z
    return out / (k + 1)


class EmbeddingModel(nn.Module):
    """Base class: subclasses implement ``propagate``; this adds scoring and the training loss."""

    n_users: int
    n_items: int
    loss_name: str = "bpr"
    reg: float = 1e-4
    supports_sampling: bool = False  # True when propagate() can work on a batch's sub-graph

    def propagate(
        self, users: np.ndarray | None = None, items: np.ndarray | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return ``(user_repr, item_repr, user_pos, item_pos)``.

        With ``users``/``items`` given, a model may compute only what those nodes need (a sampled
        sub-graph); ``user_pos``/``item_pos`` then index the returned rows for those nodes.
        """
        raise NotImplementedError

    def ego(self, users: torch.Tensor, items: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``(embedding table, row indices)`` pairs the L2 penalty applies to."""
        return []

    def batch_loss(self, users: np.ndarray, pos: np.ndarray, neg: np.ndarray, sampled: bool = False) -> torch.Tensor:
        if sampled and self.supports_sampling:
            zu, zi, upos, ipos = self.propagate(users, np.concatenate([pos, neg]))
            ipos_pos, ipos_neg = ipos[: len(pos)], ipos[len(pos) :]
        else:
            zu, zi, _, _ = self.propagate()
            upos = torch.from_numpy(users)
            ipos_pos, ipos_neg = torch.from_numpy(pos), torch.from_numpy(neg)
        u = zu[upos]
        s_pos = (u * zi[ipos_pos]).sum(-1)
        s_neg = (u * zi[ipos_neg]).sum(-1)
        if self.loss_name == "bpr":
            loss = -F.logsigmoid(s_pos - s_neg).mean()
        else:
            logits = torch.cat([s_pos, s_neg])
            target = torch.cat([torch.ones_like(s_pos), torch.zeros_like(s_neg)])
            loss = F.binary_cross_entropy_with_logits(logits, target)
        if self.reg > 0:
            penalty = sum(_rows_sq(table, idx) for table, idx in self.ego(torch.from_numpy(users), torch.from_numpy(np.concatenate([pos, neg]))))
            loss = loss + self.reg * penalty / (2 * len(users))
        return loss

    @torch.no_grad()
    def final_embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        self.eval()
        zu, zi, _, _ = self.propagate()
        self.train()
        return zu.detach().numpy().astype(np.float32), zi.detach().numpy().astype(np.float32)


def _rows_sq(table: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``sum_b ||table[idx_b]||^2`` without gathering a (batch, dim) copy: row norms times counts."""
    counts = torch.bincount(idx, minlength=table.shape[0]).to(table.dtype)
    return (counts * table.pow(2).sum(1)).sum()
