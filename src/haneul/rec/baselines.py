"""Baselines trained and evaluated by the same runner as HGP.

- ``pop``: item popularity in the training split (no learning);
- ``bpr``: BPR matrix factorisation (Rendle et al., UAI 2009);
- ``lightgcn``: LightGCN (He et al., SIGIR 2020), a sparse implementation of torch_geometric's
  ``LGConv`` layer (the tests check it against ``LGConv``) averaged over K+1 layers;
- ``social``: HGP propagating over the raw user-user graph instead of groups, which isolates what
  the tripartite graph buys (HGP paper, Sec. 2.1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from haneul.rec._base import EmbeddingModel, lightgcn_propagate
from haneul.rec.graph import norm_adj, to_torch


class Popularity:
    """Scores every item by its number of training interactions, the same for every user."""

    def __init__(self, n_users: int, n_items: int, user_item: np.ndarray) -> None:
        self.n_users, self.n_items = n_users, n_items
        self.counts = np.bincount(user_item[:, 1], minlength=n_items).astype(np.float32)

    def final_embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        # a rank-1 factorisation: every user is [1], item i is [log(1 + count_i)]; dot products
        # order items by popularity, and AUC/F1 see a monotone score
        return np.ones((self.n_users, 1), dtype=np.float32), np.log1p(self.counts)[:, None].astype(np.float32)


@dataclass(frozen=True)
class MFConfig:
    dim: int = 64
    k: int = 3  # LightGCN layers (unused by BPR-MF)
    loss: str = "bpr"
    reg: float = 1e-4


class BPRMF(EmbeddingModel):
    def __init__(self, config: MFConfig, n_users: int, n_items: int, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.config = config
        self.n_users, self.n_items = n_users, n_items
        self.loss_name, self.reg = config.loss, config.reg
        self.user_emb = nn.Embedding(n_users, config.dim)
        self.item_emb = nn.Embedding(n_items, config.dim)
        nn.init.normal_(self.user_emb.weight, std=0.1)
        nn.init.normal_(self.item_emb.weight, std=0.1)

    def propagate(self, users=None, items=None):
        return self.user_emb.weight, self.item_emb.weight, torch.arange(self.n_users), torch.arange(self.n_items)

    def ego(self, users: torch.Tensor, items: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(self.user_emb.weight, users), (self.item_emb.weight, items)]


class LightGCN(BPRMF):
    """BPR-MF's embeddings smoothed by K rounds of ``D^-1/2 A D^-1/2`` on the user-item graph."""

    def __init__(self, config: MFConfig, n_users: int, n_items: int, user_item: np.ndarray, seed: int = 0) -> None:
        super().__init__(config, n_users, n_items, seed=seed)
        self.adj = to_torch(norm_adj(user_item[:, 0], user_item[:, 1], n_users, n_items, self_loops=False))

    def propagate(self, users=None, items=None):
        h = torch.cat([self.user_emb.weight, self.item_emb.weight])
        z = lightgcn_propagate(self.adj, h, self.config.k)
        return z[: self.n_users], z[self.n_users :], torch.arange(self.n_users), torch.arange(self.n_items)


__all__ = ["BPRMF", "LightGCN", "MFConfig", "Popularity"]
