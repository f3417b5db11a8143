"""The group-user-item tripartite graph: group construction, normalised adjacency, synthetic graphs.

HGP (Kim et al., RecSys 2019, Sec. 2.1) replaces dense user-user friendship links by user-group
memberships, which cuts the edge count and the number of paths propagation has to follow. When the
data carries no explicit groups they are found by community detection (Leiden or Louvain, from
``leidenalg`` / ``python-igraph``) on the user-user graph. This module also builds the symmetric
normalised adjacency matrices that personalised-PageRank propagation multiplies with, and a
generator of power-law tripartite graphs at the paper's size (Sec. 3: 1,645,279 nodes, 4,711,208
edges) for the scale benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from haneul.errors import InvalidInput

COMMUNITY_METHODS = ("leiden", "louvain")

PAPER_NODES = 1_645_279
PAPER_EDGES = 4_711_208


@dataclass
class GroupResult:
    """Group membership found by community detection, and what it saves."""

    membership: np.ndarray  # (n_users,) group id of each user; isolated users get their own group
    n_groups: int  # communities, singletons included
    social_edges: int  # undirected user-user links in the input
    group_edges: int  # group-user links replacing them (only groups with >= 2 members are kept)
    modularity: float

    @property
    def kept_groups(self) -> int:
        """Communities with at least two members (the groups that become graph nodes)."""
        return int((np.bincount(self.membership, minlength=self.n_groups) >= 2).sum())

    @property
    def reduction(self) -> float:
        """Fraction of social edges removed by replacing them with group memberships."""
        return 1.0 - self.group_edges / self.social_edges if self.social_edges else 0.0

    def pairs(self) -> np.ndarray:
        """``(M, 2)`` array of ``(group, user)`` for groups with at least two members."""
        sizes = np.bincount(self.membership, minlength=self.n_groups)
        keep = sizes[self.membership] >= 2
        users = np.flatnonzero(keep)
        _, dense = np.unique(self.membership[users], return_inverse=True)
        return np.stack([dense, users], axis=1).astype(np.int64)


def detect_groups(
    social: np.ndarray, n_users: int, method: str = "leiden", resolution: float = 1.0, seed: int = 0
) -> GroupResult:
    """Partition the user-user graph into communities; each community becomes one group.

    ``social`` is an ``(E, 2)`` array of undirected links. Leiden optimises modularity with
    ``resolution`` as the resolution parameter (higher gives more, smaller groups).
    """
    import igraph as ig

    if method not in COMMUNITY_METHODS:
        raise InvalidInput(f"community method {method!r} is unknown; choose one of {', '.join(COMMUNITY_METHODS)}")
    graph = ig.Graph(n=n_users, edges=np.asarray(social, dtype=np.int64).tolist(), directed=False)
    if method == "leiden":
        import leidenalg

        part = leidenalg.find_partition(
            graph, leidenalg.RBConfigurationVertexPartition, resolution_parameter=resolution, seed=seed, n_iterations=-1
        )
        membership = np.asarray(part.membership, dtype=np.int64)
    else:
        import random

        # igraph's Louvain draws from Python's global RNG; seed it so groups are reproducible
        random.seed(seed)
        ig.set_random_number_generator(random)
        membership = np.asarray(graph.community_multilevel(resolution=resolution).membership, dtype=np.int64)
    n_groups = int(membership.max()) + 1 if len(membership) else 0
    modularity = float(graph.modularity(membership.tolist())) if len(social) else 0.0
    res = GroupResult(membership, n_groups, len(social), 0, modularity)
    res.group_edges = len(res.pairs())
    return res


@dataclass(frozen=True)
class GroupStats:
    """What a set of groups looks like next to the social graph it stands for."""

    groups: int  # groups that are graph nodes (two or more members)
    size_min: int
    size_median: float
    size_max: int
    users: int
    users_without_friends: int  # users with no social link at all
    users_in_no_group: int  # users HGP's social view cannot reach (no friends, or a singleton community)
    edges_inside: float  # fraction of social links whose two ends share a group (1.0 when there are no links)

    def as_dict(self) -> dict[str, float]:
        """Flat keys for metrics tables and JSON (``users`` is left out: the data set gives it)."""
        return {"groups": self.groups, "group_size_min": self.size_min, "group_size_median": self.size_median,
                "group_size_max": self.size_max, "users_without_friends": self.users_without_friends,
                "users_in_no_group": self.users_in_no_group, "social_edges_inside_groups": round(self.edges_inside, 4)}


def group_stats(group_user: np.ndarray | None, social: np.ndarray, n_users: int) -> GroupStats:
    """Statistics of ``(group, user)`` memberships (possibly overlapping) against the social links."""
    social = np.asarray(social, dtype=np.int64).reshape(-1, 2)
    degree = np.bincount(social.ravel(), minlength=n_users)
    gu = np.zeros((0, 2), dtype=np.int64) if group_user is None else np.asarray(group_user, dtype=np.int64)
    sizes = np.bincount(gu[:, 0])[np.unique(gu[:, 0])] if len(gu) else np.zeros(0, dtype=np.int64)
    in_group = np.zeros(n_users, dtype=bool)
    in_group[gu[:, 1]] = True
    inside = 1.0
    if len(social):
        # a link is inside when its ends share at least one group: compare sorted (user, group) keys
        n_groups = int(gu[:, 0].max()) + 1 if len(gu) else 1
        keys = np.unique(gu[:, 1] * n_groups + gu[:, 0])
        member = sp.csr_matrix((np.ones(len(keys), dtype=np.float32), (keys // n_groups, keys % n_groups)),
                               shape=(n_users, n_groups))
        shared = np.asarray(member[social[:, 0]].multiply(member[social[:, 1]]).sum(axis=1)).ravel()
        inside = float((shared > 0).mean())
    return GroupStats(
        groups=len(sizes),
        size_min=int(sizes.min()) if len(sizes) else 0,
        size_median=float(np.median(sizes)) if len(sizes) else 0.0,
        size_max=int(sizes.max()) if len(sizes) else 0,
        users=n_users,
        users_without_friends=int((degree == 0).sum()),
        users_in_no_group=int((~in_group).sum()),
        edges_inside=inside,
    )


#: resolutions tried by :func:`choose_resolution`, lowest (fewest, largest groups) first
RESOLUTION_GRID = (1.0, 2.0, 4.0, 8.0, 16.0)
#: the largest group :func:`choose_resolution` accepts, as a share of the users with friends
MAX_GROUP_SHARE = 0.05


def choose_resolution(
    social: np.ndarray, n_users: int, method: str = "leiden", seed: int = 0,
    grid: tuple[float, ...] = RESOLUTION_GRID, max_share: float = MAX_GROUP_SHARE,
) -> tuple[float, GroupResult]:
    """The lowest resolution of ``grid`` whose largest group holds at most ``max_share`` of the users
    with friends (the last one when none does), and its groups.

    Modularity at resolution 1 merges sparse, noisy social graphs into a few giant communities
    (Yelp2: one group of 3,304 users beside 180 pairs); a group that large averages over so many
    users that its embedding says little about any of them. The lowest resolution that breaks the
    giants keeps as many links inside groups as that allows.
    """
    if not grid:
        raise InvalidInput("the resolution grid is empty; give at least one resolution")
    with_friends = int((np.bincount(np.asarray(social, dtype=np.int64).ravel(), minlength=n_users) > 0).sum())
    cap = max(2.0, max_share * with_friends)
    result = None
    for resolution in grid:
        result = detect_groups(social, n_users, method, resolution, seed)
        sizes = np.bincount(result.membership, minlength=result.n_groups)
        if sizes.max(initial=0) <= cap:
            return resolution, result
    assert result is not None
    return grid[-1], result


def norm_adj(rows: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int, self_loops: bool = True) -> sp.csr_matrix:
    """Symmetric normalised adjacency of a bipartite graph over ``n_rows + n_cols`` nodes.

    Returns ``D^-1/2 (A + I) D^-1/2`` (APPNP / GCN normalisation) with the row-side nodes first,
    or ``D^-1/2 A D^-1/2`` (LightGCN) when ``self_loops`` is false. Zero-degree nodes get zero rows.
    """
    n = n_rows + n_cols
    r = np.asarray(rows, dtype=np.int64)
    c = np.asarray(cols, dtype=np.int64) + n_rows
    return _sym_norm(np.concatenate([r, c]), np.concatenate([c, r]), n, self_loops)


def norm_adj_square(a: np.ndarray, b: np.ndarray, n: int, self_loops: bool = True) -> sp.csr_matrix:
    """Same normalisation for an undirected graph on one node set (the raw user-user graph)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    return _sym_norm(np.concatenate([a, b]), np.concatenate([b, a]), n, self_loops)


def joint_adj(user_item: np.ndarray, n_users: int, n_items: int, group_user: np.ndarray | None = None,
              social: np.ndarray | None = None) -> sp.csr_matrix:
    """``D^-1/2 A D^-1/2`` (no self-loops) of one graph over users, items and, when given, groups.

    Nodes are laid out users, then items, then groups. Edges: every (user, item) interaction, every
    (group, user) membership of ``group_user`` (rows of group id, user id), and every user-user link
    of ``social``. This is the whole tripartite graph of HGP as a single graph (the joint propagation).
    """
    u = np.asarray(user_item[:, 0], dtype=np.int64)
    i = np.asarray(user_item[:, 1], dtype=np.int64) + n_users
    src, dst, n = [u, i], [i, u], n_users + n_items
    if group_user is not None and len(group_user):
        g = np.asarray(group_user[:, 0], dtype=np.int64) + n
        m = np.asarray(group_user[:, 1], dtype=np.int64)
        src += [m, g]
        dst += [g, m]
        n += int(group_user[:, 0].max()) + 1
    if social is not None and len(social):
        a = np.asarray(social[:, 0], dtype=np.int64)
        b = np.asarray(social[:, 1], dtype=np.int64)
        src += [a, b]
        dst += [b, a]
    return _sym_norm(np.concatenate(src), np.concatenate(dst), n, self_loops=False)


def _sym_norm(src: np.ndarray, dst: np.ndarray, n: int, self_loops: bool) -> sp.csr_matrix:
    if self_loops:
        loop = np.arange(n, dtype=np.int64)
        src, dst = np.concatenate([src, loop]), np.concatenate([dst, loop])
    adj = sp.coo_matrix((np.ones(len(src), dtype=np.float32), (src, dst)), shape=(n, n)).tocsr()
    adj.sum_duplicates()
    adj.data[:] = 1.0  # repeated edges are one edge
    deg = np.asarray(adj.sum(axis=1)).ravel()
    with np.errstate(divide="ignore"):
        inv = np.where(deg > 0, deg**-0.5, 0.0).astype(np.float32)
    d = sp.diags(inv)
    return (d @ adj @ d).tocsr().astype(np.float32)


def to_torch(adj: sp.spmatrix):  # -> torch.Tensor (sparse CSR)
    """A scipy matrix as a torch sparse CSR tensor (shares no memory with the input)."""
    import warnings

    import torch

    adj = adj.tocsr()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
        return torch.sparse_csr_tensor(
            torch.from_numpy(adj.indptr.astype(np.int64)),
            torch.from_numpy(adj.indices.astype(np.int64)),
            torch.from_numpy(adj.data.astype(np.float32)),
            size=adj.shape,
            check_invariants=False,
        )


# --------------------------------------------------------------------------------------------------
# synthetic graphs


@dataclass
class SyntheticGraph:
    n_groups: int
    n_users: int
    n_items: int
    group_user: np.ndarray  # (M, 2) (group, user)
    user_item: np.ndarray  # (N, 2) (user, item)

    @property
    def n_nodes(self) -> int:
        return self.n_groups + self.n_users + self.n_items

    @property
    def n_edges(self) -> int:
        return len(self.group_user) + len(self.user_item)


def _power_law_ends(n: int, size: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    # node k is drawn with probability proportional to (k + 1)^-exponent, then ids are shuffled so
    # hubs are not all at the start of the id range
    weights = (np.arange(1, n + 1, dtype=np.float64)) ** -exponent
    cdf = np.cumsum(weights)
    draws = np.searchsorted(cdf, rng.random(size) * cdf[-1])
    return rng.permutation(n)[np.minimum(draws, n - 1)]


def synthetic_tripartite(
    n_nodes: int = PAPER_NODES,
    n_edges: int = PAPER_EDGES,
    group_share: float = 0.02,
    item_share: float = 0.18,
    group_edge_share: float = 0.25,
    exponent: float = 0.8,
    seed: int = 0,
) -> SyntheticGraph:
    """A group-user-item graph with power-law degrees and (after de-duplication) about ``n_edges`` edges.

    Node counts are split by ``group_share`` / ``item_share`` (the rest are users); a share
    ``group_edge_share`` of the edges are memberships. Edge ends on the group and item side follow a
    power law with ``exponent``; users are drawn the same way so a few users are very active.
    Duplicates are removed and topped up, so the edge count is exact.
    """
    rng = np.random.default_rng(seed)
    n_groups = max(1, int(n_nodes * group_share))
    n_items = max(1, int(n_nodes * item_share))
    n_users = n_nodes - n_groups - n_items
    if n_users < 1:
        raise InvalidInput(f"group_share + item_share = {group_share + item_share} leaves no users; keep it under 1")
    n_gu = int(n_edges * group_edge_share)
    n_ui = n_edges - n_gu

    def edges(n_a: int, n_b: int, count: int) -> np.ndarray:
        keys = np.zeros(0, dtype=np.int64)
        while len(keys) < count:
            need = int((count - len(keys)) * 1.1) + 16
            a = _power_law_ends(n_a, need, exponent, rng)
            b = _power_law_ends(n_b, need, exponent, rng)
            keys = np.unique(np.concatenate([keys, a.astype(np.int64) * n_b + b]))
        keys = rng.permutation(keys)[:count]
        return np.stack([keys // n_b, keys % n_b], axis=1)

    gu = edges(n_groups, n_users, n_gu)
    gu = gu[:, [0, 1]]
    ui = edges(n_users, n_items, n_ui)
    return SyntheticGraph(n_groups, n_users, n_items, gu, ui)


__all__ = [
    "COMMUNITY_METHODS",
    "GroupResult",
    "GroupStats",
    "MAX_GROUP_SHARE",
    "PAPER_EDGES",
    "PAPER_NODES",
    "RESOLUTION_GRID",
    "SyntheticGraph",
    "choose_resolution",
    "detect_groups",
    "group_stats",
    "norm_adj",
    "norm_adj_square",
    "synthetic_tripartite",
    "to_torch",
]
