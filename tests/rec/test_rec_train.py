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


def test_early_stopping_keeps_the_best_epoch_and_stops_after_patience():
    config = TrainConfig(model="bpr", epochs=60, batch_size=64, lr=0.05, dim=8, patience=3)
    result = fit(planted(), config, report=False)
    # the planted structure is learnt in a few epochs, so validation stops improving well before 60
    assert result.epochs_run < 60
    evaluated = [row for row in result.history if "valid_recall_10" in row]
    best = max(row["valid_recall_10"] for row in evaluated)
    assert [row["epoch"] for row in evaluated if row["valid_recall_10"] == best][0] == result.best_epoch
    assert result.epochs_run - result.best_epoch == 3  # exactly `patience` evaluations without a better one
    assert result.history[-1]["best_epoch"] == result.best_epoch
    assert result.metrics["best_epoch"] == result.best_epoch and result.metrics["epochs_run"] == result.epochs_run
    # patience 0 trains every epoch
    assert fit(planted(), TrainConfig(model="bpr", epochs=5, dim=8, patience=0), report=False).epochs_run == 5


def test_the_selection_metric_follows_eval_k():
    result = fit(planted(), TrainConfig(model="bpr", epochs=2, dim=8, eval_k=5), report=False)
    assert "valid_recall_5" in result.history[0] and "valid_recall_10" not in result.history[0]


def test_hgp_reports_groups_and_fusion_weights():
    result = fit(planted(), TrainConfig(model="hgp", epochs=3, dim=8, batch_size=64), report=False)
    stats = result.group_stats
    assert stats is not None and (stats.groups, stats.size_min, stats.size_max) == (3, 10, 10)
    assert stats.users_in_no_group == 0 and stats.edges_inside == 1.0
    fusion = result.fusion
    assert fusion["fusion_user_item"] + fusion["fusion_social"] == pytest.approx(1.0)
    assert 0.0 <= fusion["fusion_collapsed_users"] <= 1.0
    assert fit(planted(), TrainConfig(model="bpr", epochs=1, dim=8), report=False).fusion == {}


def test_auto_resolution_and_protocol_errors():
    prep = prepare(planted(), TrainConfig(resolution="auto"))
    assert prep.resolution in (1.0, 2.0, 4.0, 8.0, 16.0) and prep.group_stats is not None
    assert prepare(planted(), TrainConfig(resolution="2")).resolution == 2.0
    with pytest.raises(InvalidInput, match="not a number; give one"):
        TrainConfig(resolution="big")
    with pytest.raises(InvalidInput, match="patience >= 0"):
        TrainConfig(patience=-1)
    with pytest.raises(InvalidInput, match="eval_every >= 1"):
        TrainConfig(eval_every=0)


def test_calibrated_confidence_follows_the_score():
    result = fit(planted(), TrainConfig(model="lightgcn", epochs=5, dim=8, batch_size=64, lr=0.05), report=False)
    rec = result.model
    assert rec.calibration is not None and rec.calibration[0] > 0  # higher score, higher probability
    out = rec.recommend("u0", k=5)
    assert out.confidence is not None and all(0.0 < c < 1.0 for c in out.confidence)
    assert out.confidence == sorted(out.confidence, reverse=True) and out.scores == sorted(out.scores, reverse=True)
    # the scores are the raw dot products, not probabilities
    assert out.scores[0] == pytest.approx(float(rec.user_emb[rec.user_index("u0")] @ rec.item_emb[rec.item_ids.tolist().index(out.items[0])]), rel=1e-5)


def test_calibration_moves_the_pair_fit_to_the_catalogue_prior():
    from haneul.rec.metrics import platt_fit
    from haneul.rec.train import _calibrate

    data = planted()  # 30 users x 24 items, 6 interactions each
    prep = prepare(data, TrainConfig(model="bpr"))
    n_valid = len(prep.split.valid)
    valid_users = np.unique(data.user[prep.split.valid])
    # candidates: every item a validation user has not trained on, minus the held-out ones themselves
    candidates = len(valid_users) * 24 - np.isin(prep.train_pairs[:, 0], valid_users).sum() - n_valid
    rng = np.random.default_rng(0)
    labels = np.r_[np.ones(50), np.zeros(50)]
    scores = np.r_[rng.normal(1, 1, 50), rng.normal(-1, 1, 50)]
    a, b = platt_fit(labels, scores)
    assert _calibrate(labels, scores, prep) == pytest.approx((a, b - np.log(candidates / n_valid)))
