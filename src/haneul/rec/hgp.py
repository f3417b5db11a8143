"""HGP: tripartite heterogeneous graph propagation for social recommendation.

Kim et al., "Tripartite Heterogeneous Graph Propagation for Large-scale Social Recommendation"
(RecSys 2019 late-breaking results). Reading order follows the paper:

1. input layer (Sec. 2.2): per node type an ID embedding; items may add content features through
   a linear map (hashed token bags, see :func:`item_feature_matrix`);
2. propagation (Sec. 2.2): APPNP personalised PageRank, ``Z <- (1-a) A Z + a H`` for K steps, run
   *separately* on the normalised group-user graph and the user-item graph, so the social signal
   reaches a user through shared groups without smoothing it into every item;
3. fusion (Sec. 2.3): each user now has two embeddings; a small attention network weighs them;
4. prediction (Sec. 2.4): ``p(click) = sigmoid(z_u . z_i)``, trained with BCE (the paper) or BPR.

``social="raw"`` swaps the group-user graph for the raw user-user graph (the "social" baseline that
shows what the groups buy) and ``social="none"`` drops the social side (APPNP on user-item alone).
Training can propagate the whole graph each step or only the exact K-hop sub-graph of a batch.

``propagation="joint"`` is the variant that held up on held-out data: one propagation over the
whole tripartite graph (users, items and groups as nodes of one graph, or users and items plus the
raw user-user links) with LightGCN's filter -- ``D^-1/2 A D^-1/2`` without self-loops, the mean of
layers 0..K -- in place of two APPNP propagations and the attention fusion. A user then hears from
items and groups in every step, and groups carry their members' tastes on to other members. With
``social="none"`` it is exactly LightGCN. The paper's split propagation stays the default
(``"split"``); docs/rec.md has both against LightGCN.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from haneul.errors import InvalidInput
from haneul.rec._base import EmbeddingModel, appnp, lightgcn_propagate
from haneul.rec.graph import joint_adj, norm_adj, norm_adj_square, to_torch

SOCIAL_MODES = ("groups", "raw", "none")
PROPAGATIONS = ("split", "joint")


@dataclass(frozen=True)
class HGPConfig:
    dim: int = 64  # embedding size (RecBole-GNN protocol uses 64)
    k: int = 1  # propagation steps K
    alpha: float = 0.1  # teleport probability
    att_dim: int = 32  # hidden size of the fusion attention
    social: str = "groups"  # groups | raw | none
    loss: str = "bpr"  # bpr | bce
    reg: float = 1e-4  # L2 on the input embeddings of a batch
    feature_buckets: int = 0  # hashed item-content features; 0 turns them off
    propagation: str = "split"  # split: APPNP per sub-graph + attention (the paper); joint: one tripartite graph

    @classmethod
    def from_name(cls, name: str, **overrides) -> HGPConfig:
        if name not in PRESETS:
            raise InvalidInput(f"HGP preset {name!r} is unknown; choose one of {', '.join(PRESETS)}")
        return replace(PRESETS[name], **overrides)

    def __post_init__(self) -> None:
        if self.social not in SOCIAL_MODES:
            raise InvalidInput(f"social={self.social!r} is unknown; choose one of {', '.join(SOCIAL_MODES)}")
        if self.propagation not in PROPAGATIONS:
            raise InvalidInput(f"propagation={self.propagation!r} is unknown; choose one of {', '.join(PROPAGATIONS)}")
        if self.loss not in ("bpr", "bce"):
            raise InvalidInput(f"loss={self.loss!r} is unknown; choose bpr or bce")
        if not 0.0 < self.alpha <= 1.0:
            raise InvalidInput(f"alpha={self.alpha} must be in (0, 1]; the paper uses 0.1")
        if self.k < 0:
            raise InvalidInput(f"k={self.k} must be >= 0 propagation steps")

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


PRESETS: dict[str, HGPConfig] = {
    # APPNP's own defaults (K = 10, alpha = 0.1) with the click (BCE) loss HGP trains with
    "paper": HGPConfig(dim=64, k=10, alpha=0.1, loss="bce"),
    # K = 1 had the best LastFM validation Recall@10 among K = 1, 2, 3 at 30 epochs
    "lastfm": HGPConfig(dim=64, k=1, alpha=0.1, loss="bpr"),
    "scale": HGPConfig(dim=64, k=2, alpha=0.1, loss="bpr", att_dim=16),
    "tiny": HGPConfig(dim=8, k=2, alpha=0.2, att_dim=4),
}


def item_feature_matrix(tokens: list[list[str]], buckets: int) -> sp.csr_matrix:
    """Hash each item's tokens into ``buckets`` columns; rows are L1-normalised bags."""
    import zlib

    rows, cols = [], []
    for r, toks in enumerate(tokens):
        for t in toks:
            rows.append(r)
            cols.append(zlib.crc32(t.encode("utf-8")) % buckets)
    m = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(tokens), buckets))
    m.sum_duplicates()
    s = np.asarray(m.sum(axis=1)).ravel()
    return (sp.diags(np.where(s > 0, 1.0 / np.maximum(s, 1), 0.0).astype(np.float32)) @ m).tocsr()


class _Graph:
    """One normalised sub-graph with its node layout, and exact K-hop sub-graph extraction."""

    def __init__(self, adj: sp.csr_matrix, k: int) -> None:
        self.adj = adj
        self.k = k
        self.torch = to_torch(adj)
        self._pattern: sp.csr_matrix | None = None  # 0/1 copy, built on first use by sampled training

    def khop(self, seeds: np.ndarray) -> np.ndarray:
        if self._pattern is None:
            self._pattern = self.adj.copy()
            self._pattern.data[:] = 1.0
        mask = np.zeros(self.adj.shape[0], dtype=np.float32)
        mask[seeds] = 1.0
        for _ in range(self.k):
            mask = np.maximum(mask, (self._pattern @ mask > 0).astype(np.float32))
        return np.flatnonzero(mask)

    def sub(self, nodes: np.ndarray) -> torch.Tensor:
        # keeping the global normalisation makes the seeds' K-step output exact: a node at
        # distance j only needs its neighbours' values after K - j - 1 steps, all inside the set
        return to_torch(self.adj[nodes][:, nodes])


class HGP(EmbeddingModel):
    """Group-user-item propagation with attention fusion; see the module docstring."""

    supports_sampling = True

    def __init__(
        self,
        config: HGPConfig,
        n_users: int,
        n_items: int,
        user_item: np.ndarray,
        group_user: np.ndarray | None = None,
        social: np.ndarray | None = None,
        item_features: sp.csr_matrix | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.config = config
        self.n_users, self.n_items = n_users, n_items
        self.loss_name, self.reg = config.loss, config.reg
        d = config.dim
        self.user_emb = nn.Embedding(n_users, d)
        self.item_emb = nn.Embedding(n_items, d)
        nn.init.normal_(self.user_emb.weight, std=0.1)
        nn.init.normal_(self.item_emb.weight, std=0.1)
        # input layer: content features through a linear map, added to the item ID embedding
        self.item_features = None
        if item_features is not None and config.feature_buckets > 0:
            self.item_features = to_torch(item_features)
            self.feature_proj = nn.Linear(item_features.shape[1], d, bias=False)
            nn.init.zeros_(self.feature_proj.weight)
        self.ui = _Graph(norm_adj(user_item[:, 0], user_item[:, 1], n_users, n_items), config.k)
        # the social sub-graph: users first, then groups (none for the raw user-user graph)
        self.social_graph: _Graph | None = None
        self.n_groups = 0
        if config.social == "groups":
            if group_user is None or len(group_user) == 0:
                raise InvalidInput("HGP with social='groups' needs group memberships; build them with detect_groups()")
            self.n_groups = int(group_user[:, 0].max()) + 1
            self.group_emb = nn.Embedding(self.n_groups, d)
            nn.init.normal_(self.group_emb.weight, std=0.1)
            self.social_graph = _Graph(norm_adj(group_user[:, 1], group_user[:, 0], n_users, self.n_groups), config.k)
        elif config.social == "raw":
            if social is None:
                raise InvalidInput("the social variant needs user-user links; the data set has no .net file")
            self.social_graph = _Graph(norm_adj_square(social[:, 0], social[:, 1], n_users), config.k)
        if self.social_graph is not None:
            # fusion (Sec. 2.3): score each view with q . tanh(W z + b), softmax over the views
            self.att = nn.Linear(d, config.att_dim)
            self.att_q = nn.Parameter(torch.randn(config.att_dim) * 0.1)
        self.joint: torch.Tensor | None = None
        if config.propagation == "joint":
            self.joint = to_torch(joint_adj(user_item, n_users, n_items, group_user if config.social == "groups" else None,
                                            social if config.social == "raw" else None))

    # -- input layer
    def item_input(self, idx: torch.Tensor | None = None) -> torch.Tensor:
        h = self.item_emb.weight
        if self.item_features is not None:
            # (n_items, buckets) sparse @ (buckets, d): the linear map of the hashed token bag
            h = h + self.item_features @ self.feature_proj.weight.T
        return h if idx is None else h[idx]

    def social_input(self) -> torch.Tensor:
        if self.config.social == "groups":
            return torch.cat([self.user_emb.weight, self.group_emb.weight])
        return self.user_emb.weight

    # -- fusion
    def fuse(self, views: torch.Tensor) -> torch.Tensor:
        """``views`` is (U, 2, d): the user-item and social view of each user -> (U, d)."""
        weights = torch.softmax(torch.tanh(self.att(views)) @ self.att_q, dim=1)  # (U, 2)
        return (weights.unsqueeze(-1) * views).sum(1)

    # -- propagation
    def propagate(self, users: np.ndarray | None = None, items: np.ndarray | None = None):
        cfg = self.config
        nu = self.n_users
        if self.joint is not None:
            # one graph, so no sub-graph saving: a batch reads its rows from the full propagation
            parts = [self.user_emb.weight, self.item_input()]
            if cfg.social == "groups":
                parts.append(self.group_emb.weight)
            z = lightgcn_propagate(self.joint, torch.cat(parts), cfg.k)  # (U + I [+ G], d)
            zu, zi = z[:nu], z[nu : nu + self.n_items]
            if users is None:
                return zu, zi, torch.arange(nu), torch.arange(self.n_items)
            return zu, zi, torch.from_numpy(np.asarray(users)), torch.from_numpy(np.asarray(items))
        if users is None:
            h_ui = torch.cat([self.user_emb.weight, self.item_input()])
            z_ui = appnp(self.ui.torch, h_ui, cfg.k, cfg.alpha)
            zu, zi = z_ui[:nu], z_ui[nu:]
            if self.social_graph is not None:
                z_s = appnp(self.social_graph.torch, self.social_input(), cfg.k, cfg.alpha)[:nu]
                zu = self.fuse(torch.stack([zu, z_s], dim=1))
            ar_u = torch.arange(nu)
            return zu, zi, ar_u, torch.arange(self.n_items)
        # sampled: only the K-hop sub-graphs around this batch's users and items
        users_u, u_inv = np.unique(users, return_inverse=True)
        items_u, i_inv = np.unique(items, return_inverse=True)
        seeds = np.concatenate([users_u, items_u + nu])
        nodes = self.ui.khop(seeds)
        h_all_items = self.item_input()
        h = torch.cat([self.user_emb.weight, h_all_items])[torch.from_numpy(nodes)]
        z = appnp(self.ui.sub(nodes), h, cfg.k, cfg.alpha)
        zu = z[torch.from_numpy(np.searchsorted(nodes, users_u))]
        zi = z[torch.from_numpy(np.searchsorted(nodes, items_u + nu))]
        if self.social_graph is not None:
            snodes = self.social_graph.khop(users_u)
            hs = self.social_input()[torch.from_numpy(snodes)]
            zs = appnp(self.social_graph.sub(snodes), hs, cfg.k, cfg.alpha)
            zs = zs[torch.from_numpy(np.searchsorted(snodes, users_u))]
            zu = self.fuse(torch.stack([zu, zs], dim=1))
        return zu, zi, torch.from_numpy(u_inv), torch.from_numpy(i_inv)

    def ego(self, users: torch.Tensor, items: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(self.user_emb.weight, users), (self.item_emb.weight, items)]

    @torch.no_grad()
    def attention_weights(self) -> np.ndarray | None:
        """Per user, the fusion weight of (user-item view, social view); None without a social side
        or with the joint propagation (which has no fusion)."""
        if self.social_graph is None or self.joint is not None:
            return None
        cfg = self.config
        nu = self.n_users
        z_ui = appnp(self.ui.torch, torch.cat([self.user_emb.weight, self.item_input()]), cfg.k, cfg.alpha)[:nu]
        z_s = appnp(self.social_graph.torch, self.social_input(), cfg.k, cfg.alpha)[:nu]
        views = torch.stack([z_ui, z_s], dim=1)
        return torch.softmax(torch.tanh(self.att(views)) @ self.att_q, dim=1).numpy()


__all__ = ["HGP", "HGPConfig", "PRESETS", "PROPAGATIONS", "SOCIAL_MODES", "item_feature_matrix"]
