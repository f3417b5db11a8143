from __future__ import annotations

import math

import numpy as np
import pytest

from haneul.errors import InvalidInput
from haneul.rec.graph import (
    choose_resolution,
    detect_groups,
    group_stats,
    norm_adj,
    norm_adj_square,
    synthetic_tripartite,
)


def three_cliques() -> np.ndarray:
    edges = []
    for base in (0, 5, 10):
        members = range(base, base + 5)
        edges += [(a, b) for a in members for b in members if a < b]
    edges += [(4, 5), (9, 10)]  # one bridge between neighbouring cliques
    return np.array(edges)


@pytest.mark.parametrize("method", ["leiden", "louvain"])
def test_obvious_communities_are_found_and_edges_shrink(method):
    social = three_cliques()
    res = detect_groups(social, 16, method=method, seed=3)  # node 15 is isolated
    groups = [set(np.flatnonzero(res.membership == g).tolist()) for g in np.unique(res.membership)]
    assert sorted(map(sorted, groups)) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11, 12, 13, 14], [15]]
    assert res.n_groups == 4 and res.kept_groups == 3
    assert res.social_edges == 32
    assert res.group_edges == 15  # the singleton group is not kept as an edge
    assert res.reduction == pytest.approx(1 - 15 / 32)
    assert res.modularity > 0.5
    pairs = res.pairs()
    assert sorted(np.bincount(pairs[:, 0]).tolist()) == [5, 5, 5]


def test_unknown_method_is_rejected():
    with pytest.raises(InvalidInput, match="leiden, louvain"):
        detect_groups(three_cliques(), 15, method="spectral")


def test_norm_adj_on_a_bipartite_edge_matches_hand_computation():
    # user 0 - item 0 and user 0 - item 1: user degree 2 (+1 loop) = 3, items 1 (+1) = 2
    a = norm_adj(np.array([0, 0]), np.array([0, 1]), 1, 2).toarray()
    s = 1 / math.sqrt(6)
    expected = np.array([[1 / 3, s, s], [s, 1 / 2, 0], [s, 0, 1 / 2]])
    assert np.allclose(a, expected)
    lg = norm_adj(np.array([0, 0]), np.array([0, 1]), 1, 2, self_loops=False).toarray()
    r = 1 / math.sqrt(2)
    assert np.allclose(lg, [[0, r, r], [r, 0, 0], [r, 0, 0]])
    # a repeated edge counts once
    assert np.allclose(norm_adj_square(np.array([0, 0]), np.array([1, 1]), 2).toarray(), [[0.5, 0.5], [0.5, 0.5]])


def test_synthetic_graph_has_exact_sizes_and_heavy_tails():
    g = synthetic_tripartite(n_nodes=20_000, n_edges=60_000, seed=1)
    assert g.n_nodes == 20_000 and g.n_edges == 60_000
    assert len(np.unique(g.user_item[:, 0] * g.n_items + g.user_item[:, 1])) == len(g.user_item)
    deg = np.bincount(g.user_item[:, 1], minlength=g.n_items)
    # power law: the busiest item has far more edges than the median one
    assert deg.max() > 20 * max(np.median(deg), 1)
    assert g.group_user[:, 0].max() < g.n_groups and g.group_user[:, 1].max() < g.n_users


def test_group_stats_on_a_hand_counted_graph():
    # users 0-4; links 0-1, 1-2, 2-3; groups {0, 1} and {2, 3, 4}; user 4 has no friends, nobody is ungrouped
    social = np.array([[0, 1], [1, 2], [2, 3]])
    group_user = np.array([[0, 0], [0, 1], [1, 2], [1, 3], [1, 4]])
    stats = group_stats(group_user, social, 5)
    assert (stats.groups, stats.size_min, stats.size_median, stats.size_max) == (2, 2, 2.5, 3)
    assert (stats.users_without_friends, stats.users_in_no_group) == (1, 0)
    assert stats.edges_inside == pytest.approx(2 / 3)  # 1-2 crosses the two groups
    assert stats.as_dict()["social_edges_inside_groups"] == pytest.approx(0.6667)
    # overlapping memberships: a link is inside when its ends share any group
    overlapping = np.vstack([group_user, [[0, 2]]])
    assert group_stats(overlapping, social, 5).edges_inside == 1.0
    empty = group_stats(None, social, 5)
    assert (empty.groups, empty.users_in_no_group, empty.edges_inside) == (0, 5, 0.0)


def test_choose_resolution_breaks_a_giant_group():
    social = three_cliques()
    # at a tiny resolution modularity merges the three cliques into one group of 15
    res, groups = choose_resolution(social, 16, grid=(0.01, 1.0), max_share=0.5)
    assert res == 1.0 and groups.kept_groups == 3
    # nothing in the grid passes the cap: the last resolution is used
    res, groups = choose_resolution(social, 16, grid=(0.01,), max_share=0.5)
    assert res == 0.01 and groups.kept_groups == 1
    with pytest.raises(InvalidInput, match="grid is empty"):
        choose_resolution(social, 16, grid=())
