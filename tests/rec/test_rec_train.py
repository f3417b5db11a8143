from __future__ import annotations

import numpy as np
import pytest

from haneul.errors import InvalidInput
from haneul.rec.data import build_data
from haneul.rec.train import TrainConfig, fit, prepare


def planted(seed: int = 0):
    """30 users in 3 friend circles; each circle interacts with its own 8 items."""
    rng = np.random.default_rng(seed)
    users, items, links = [], [], []
    for u in range(30):
        circle = u // 10
        for it in rng.choice(np.arange(circle * 8, circle * 8 + 8), 6, replace=False):
            users.append(f"u{u}")
            items.append(f"i{it}")
        links += [(f"u{u}", f"u{v}") for v in range(circle * 10, u)]
    social = (np.array([a for a, _ in links]), np.array([b for _, b in links]))
    return build_data(np.array(users), np.array(items), social=social, name="planted")


@pytest.mark.parametrize("model,mode", [("hgp", "full"), ("hgp", "sampled"), ("social", "full"), ("lightgcn", "full")])
def test_models_learn_the_planted_structure(model, mode):
    data = planted()
    config = TrainConfig(model=model, epochs=10, batch_size=64, lr=0.05, dim=16, eval_every=5, train_mode=mode)
    result = fit(data, config, report=False)
    # each user has ~18 unseen candidates, so a random ranking gives Recall@10 of about 0.55; the
    # circle's own items are few, so the model should put every held-out item in its top 10
    assert result.metrics["recall@10"] > 0.95
    assert result.metrics["auc"] > 0.8
    assert result.groups is not None and result.groups.n_groups == 3 and result.groups.reduction > 0.6


def test_fit_reports_through_the_sdk(monkeypatch):
    import haneul

    calls = []
    monkeypatch.setattr(haneul, "report", lambda step=None, **kw: calls.append((step, kw)))
    fit(planted(), TrainConfig(model="bpr", epochs=2, eval_every=1, dim=8), report=True)
    assert [c[0] for c in calls] == [1, 2, 2]
    assert "loss" in calls[0][1] and "valid_recall_10" in calls[0][1]
    assert set(calls[-1][1]) >= {"test_auc", "test_f1", "test_recall_10", "test_ndcg_10"}


def test_config_errors_name_the_choices():
    with pytest.raises(InvalidInput, match="choose one of hgp, lightgcn, bpr, pop, social"):
        TrainConfig(model="mhcn")
    with pytest.raises(InvalidInput, match="sampled' is for hgp and social"):
        TrainConfig(model="lightgcn", train_mode="sampled")
    lonely = build_data(np.array(["a", "a", "a", "b", "b", "b"]), np.array(["1", "2", "3", "1", "2", "3"]))
    with pytest.raises(InvalidInput, match="neither groups nor social links"):
        fit(lonely, TrainConfig(model="hgp", epochs=1), report=False)
    assert prepare(lonely, TrainConfig()).group_user is None


def test_training_negatives_avoid_only_training_items():
    from haneul.rec.train import train_epoch

    data = planted()
    prep = prepare(data, TrainConfig(model="bpr"))
    held_out = set((data.user[prep.split.test] * data.n_items + data.item[prep.split.test]).tolist())
    assert held_out.isdisjoint(prep.train_keys.tolist()) and held_out <= set(prep.known_keys.tolist())

    seen = []

    class Spy:
        def batch_loss(self, users, pos, neg, sampled=False):
            seen.append(users * data.n_items + neg)
            import torch

            return torch.zeros((), requires_grad=True)

    class NoOpt:
        def zero_grad(self, set_to_none=True):
            pass

        def step(self):
            pass

    train_epoch(Spy(), prep, TrainConfig(model="bpr", batch_size=1000), np.random.default_rng(0), NoOpt())
    drawn = np.concatenate(seen)
    assert not np.isin(drawn, prep.train_keys).any()
