"""haneul.rec: social recommendation with tripartite heterogeneous graph propagation (HGP).

Loaders for RecBole atomic files and edge lists, group construction by community detection, the
HGP model (Kim et al., RecSys 2019) with popularity / BPR-MF / LightGCN / raw-social baselines,
AUC / F1 / Recall@K / NDCG@K metrics, and ``recommend(user, k)`` from a trained bundle.

Names resolve lazily so that ``import haneul.rec`` (and the REST router) does not import torch::

    from haneul.rec import load_recbole, fit, TrainConfig
    result = fit(load_recbole("lastfm/"), TrainConfig(model="hgp"))
    result.model.recommend("2", k=10)
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "RecDataWarning": "data",
    "SocialData": "data",
    "Split": "data",
    "build_data": "data",
    "load_edge_lists": "data",
    "load_recbole": "data",
    "sample_negatives": "data",
    "split_leave_last_out": "data",
    "split_random": "data",
    "GroupResult": "graph",
    "GroupStats": "graph",
    "SyntheticGraph": "graph",
    "choose_resolution": "graph",
    "detect_groups": "graph",
    "group_stats": "graph",
    "norm_adj": "graph",
    "synthetic_tripartite": "graph",
    "HGP": "hgp",
    "HGPConfig": "hgp",
    "BPRMF": "baselines",
    "LightGCN": "baselines",
    "Popularity": "baselines",
    "all_positive_f1": "metrics",
    "auc": "metrics",
    "best_threshold": "metrics",
    "f1_at": "metrics",
    "platt_fit": "metrics",
    "ranking_metrics": "metrics",
    "RecModel": "bundle",
    "Recommendation": "bundle",
    "MODELS": "train",
    "TrainConfig": "train",
    "FitResult": "train",
    "evaluate": "train",
    "fit": "train",
    "prepare": "train",
    "load_model": "bundle",
    "recommend": "bundle",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'haneul.rec' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"haneul.rec.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
