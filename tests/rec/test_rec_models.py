from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from haneul.errors import InvalidInput
from haneul.rec._base import appnp, lightgcn_propagate
from haneul.rec.baselines import BPRMF, LightGCN, MFConfig
from haneul.rec.graph import joint_adj, norm_adj, norm_adj_square, to_torch
from haneul.rec.hgp import HGP, HGPConfig, item_feature_matrix

PATH = (np.array([0, 1, 2]), np.array([1, 2, 3]))  # 0 - 1 - 2 - 3


def test_appnp_on_a_4_node_path_matches_hand_computation():
    adj = to_torch(norm_adj_square(*PATH, 4))
    h = torch.tensor([[1.0], [0.0], [0.0], [0.0]])
    # with self-loops the degrees are 2, 3, 3, 2; alpha = 1/2
    z1 = appnp(adj, h, k=1, alpha=0.5).ravel().tolist()
    assert z1 == pytest.approx([3 / 4, 1 / (2 * math.sqrt(6)), 0.0, 0.0], abs=1e-6)
    z2 = appnp(adj, h, k=2, alpha=0.5).ravel().tolist()
    assert z2 == pytest.approx([1 / 2 + 11 / 48, 11 / (24 * math.sqrt(6)), 1 / (12 * math.sqrt(6)), 0.0], abs=1e-6)
    # alpha = 1 teleports every step: the output is the input
    assert torch.equal(appnp(adj, h, k=5, alpha=1.0), h)


def test_sparse_propagation_equals_dense_with_gradients():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 30, 80), rng.integers(0, 30, 80)
    sparse = to_torch(norm_adj_square(a, b, 30))
    dense = sparse.to_dense()
    x = torch.randn(30, 5, dtype=torch.float32, requires_grad=True)
    xd = x.detach().clone().requires_grad_(True)
    ys = appnp(sparse, x, 3, 0.15)
    z = xd
    for _ in range(3):
        z = 0.85 * dense @ z + 0.15 * xd
    assert torch.allclose(ys, z, atol=1e-5)
    w = torch.randn(30, 5)
    (ys * w).sum().backward()
    (z * w).sum().backward()
    assert torch.allclose(x.grad, xd.grad, atol=1e-5)


def test_lightgcn_layer_matches_torch_geometric_lgconv():
    from torch_geometric.nn import LGConv

    rng = np.random.default_rng(1)
    users, items = rng.integers(0, 6, 20), rng.integers(0, 9, 20)
    adj = to_torch(norm_adj(users, items, 6, 9, self_loops=False))
    key = np.unique(users * 9 + items)
    u, i = key // 9, key % 9 + 6
    edge_index = torch.tensor(np.stack([np.r_[u, i], np.r_[i, u]]), dtype=torch.long)
    x = torch.randn(15, 4)
    conv = LGConv()
    expected = (x + conv(x, edge_index) + conv(conv(x, edge_index), edge_index)) / 3
    assert torch.allclose(lightgcn_propagate(adj, x, 2), expected, atol=1e-5)


def tiny_graph():
    rng = np.random.default_rng(2)
    ui = np.unique(np.stack([rng.integers(0, 12, 60), rng.integers(0, 15, 60)], 1), axis=0)
    gu = np.array([[0, u] for u in range(6)] + [[1, u] for u in range(6, 12)] + [[2, 0], [2, 11]])
    social = np.array([[0, 1], [1, 2], [6, 7], [3, 9]])
    return ui, gu, social


@pytest.mark.parametrize("social", ["groups", "raw"])
def test_sampled_subgraph_propagation_is_exact(social):
    ui, gu, soc = tiny_graph()
    model = HGP(HGPConfig.from_name("tiny", social=social, k=2), 12, 15, ui, group_user=gu, social=soc)
    zu, zi, _, _ = model.propagate()
    users, items = np.array([3, 3, 7]), np.array([1, 14, 5, 1])
    su, si, upos, ipos = model.propagate(users, items)
    assert torch.allclose(su[upos], zu[torch.from_numpy(users)], atol=1e-6)
    assert torch.allclose(si[ipos], zi[torch.from_numpy(items)], atol=1e-6)


def test_attention_weights_are_a_distribution_and_social_none_skips_fusion():
    ui, gu, _ = tiny_graph()
    model = HGP(HGPConfig.from_name("tiny"), 12, 15, ui, group_user=gu)
    w = model.attention_weights()
    assert w.shape == (12, 2) and np.allclose(w.sum(1), 1.0)
    plain = HGP(HGPConfig.from_name("tiny", social="none"), 12, 15, ui)
    assert plain.attention_weights() is None
    # with no social side, HGP is APPNP on the user-item graph
    h = torch.cat([plain.user_emb.weight, plain.item_emb.weight])
    ref = appnp(plain.ui.torch, h, 2, 0.2)
    zu, zi, _, _ = plain.propagate()
    assert torch.allclose(torch.cat([zu, zi]), ref)


def test_joint_adjacency_of_a_tiny_tripartite_graph_by_hand():
    # user 0 - item 0, user 1 - item 0, group 0 = {user 0, user 1}: degrees u0 2, u1 2, i0 2, g0 2
    adj = joint_adj(np.array([[0, 0], [1, 0]]), 2, 1, group_user=np.array([[0, 0], [0, 1]])).toarray()
    assert adj.shape == (4, 4)  # users 0-1, item 2, group 3
    expected = np.zeros((4, 4))
    for a, b in [(0, 2), (1, 2), (0, 3), (1, 3)]:
        expected[a, b] = expected[b, a] = 0.5  # 1 / sqrt(2 * 2)
    assert np.allclose(adj, expected)
    # raw links instead of groups: u0 - u1 joins the users directly, no group node
    raw = joint_adj(np.array([[0, 0], [1, 0]]), 2, 1, social=np.array([[0, 1]])).toarray()
    assert raw.shape == (3, 3) and np.isclose(raw[0, 1], 0.5) and np.isclose(raw[0, 2], 0.5)


def test_joint_propagation_without_a_social_side_is_lightgcn():
    ui, gu, soc = tiny_graph()
    hgp = HGP(HGPConfig(dim=8, k=3, social="none", propagation="joint"), 12, 15, ui, seed=4)
    lgcn = LightGCN(MFConfig(dim=8, k=3), 12, 15, ui, seed=4)
    zu, zi, _, _ = hgp.propagate()
    ru, ri, _, _ = lgcn.propagate()
    assert torch.allclose(zu, ru, atol=1e-6) and torch.allclose(zi, ri, atol=1e-6)
    assert hgp.attention_weights() is None


@pytest.mark.parametrize("social", ["groups", "raw"])
def test_joint_propagation_hears_the_social_side_and_batches_read_its_rows(social):
    ui, gu, soc = tiny_graph()
    cfg = HGPConfig(dim=8, k=2, social=social, propagation="joint")
    model = HGP(cfg, 12, 15, ui, group_user=gu, social=soc, seed=1)
    plain = HGP(HGPConfig(dim=8, k=2, social="none", propagation="joint"), 12, 15, ui, seed=1)
    zu, zi, _, _ = model.propagate()
    pu, _, _, _ = plain.propagate()
    assert not torch.allclose(zu, pu)  # the social side changes the users' representations
    users, items = np.array([3, 7]), np.array([1, 14])
    bu, bi, upos, ipos = model.propagate(users, items)
    assert torch.allclose(bu[upos], zu[torch.from_numpy(users)]) and torch.allclose(bi[ipos], zi[torch.from_numpy(items)])
    loss = model.batch_loss(users, items, np.array([2, 3]))
    loss.backward()
    if social == "groups":
        assert model.group_emb.weight.grad is not None and model.group_emb.weight.grad.abs().sum() > 0


def test_unknown_propagation_names_the_choices():
    with pytest.raises(InvalidInput, match="split, joint"):
        HGPConfig(propagation="both")


def test_item_features_enter_through_the_input_layer():
    ui, gu, _ = tiny_graph()
    feats = item_feature_matrix([["tag=a", "tag=b"], ["tag=a"]] + [[]] * 13, buckets=8)
    assert np.allclose(np.asarray(feats.sum(1)).ravel()[:3], [1, 1, 0])
    model = HGP(HGPConfig.from_name("tiny", feature_buckets=8), 12, 15, ui, group_user=gu, item_features=feats)
    with torch.no_grad():
        model.feature_proj.weight.fill_(1.0)
    h = model.item_input()
    assert torch.allclose(h[0] - model.item_emb.weight[0], torch.ones(8))
    assert torch.allclose(h[2], model.item_emb.weight[2])


@pytest.mark.parametrize("make", ["bpr", "lightgcn", "hgp-bce", "hgp-sampled"])
def test_training_lowers_the_loss(make):
    ui, gu, _ = tiny_graph()
    torch.manual_seed(0)
    sampled = make == "hgp-sampled"
    if make == "bpr":
        model = BPRMF(MFConfig(dim=8), 12, 15)
    elif make == "lightgcn":
        model = LightGCN(MFConfig(dim=8, k=2), 12, 15, ui)
    else:
        loss = "bce" if make == "hgp-bce" else "bpr"
        model = HGP(HGPConfig.from_name("tiny", loss=loss), 12, 15, ui, group_user=gu)
    rng = np.random.default_rng(0)
    neg = rng.integers(0, 15, len(ui))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    first = None
    for _ in range(30):
        loss = model.batch_loss(ui[:, 0], ui[:, 1], neg, sampled=sampled)
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.7 * first


def test_l2_penalty_by_row_counts_equals_the_gathered_sum():
    from haneul.rec._base import _rows_sq

    table = torch.randn(7, 3, requires_grad=True)
    idx = torch.tensor([0, 3, 3, 6, 0, 0])
    ref = (table[idx] ** 2).sum()
    got = _rows_sq(table, idx)
    assert torch.allclose(got, ref)
    (g_ref,) = torch.autograd.grad(ref, table)
    (g_got,) = torch.autograd.grad(_rows_sq(table, idx), table)
    assert torch.allclose(g_ref, g_got)
