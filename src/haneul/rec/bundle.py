"""A trained recommender on disk, and ``recommend(user, k)`` from it, in numpy only.

Training ends by storing the final user and item representations (after propagation and fusion),
so serving is one dot product per item and needs neither torch nor the graph. A bundle is a folder
with ``meta.json`` (ids, config, metrics) and ``arrays.npz`` (embeddings, each user's seen items,
group membership, popularity), both written atomically.

Scores: ``score`` is the model's raw ``z_u . z_i``, which orders items but is no probability (a
sigmoid of it sits at 0.998+ for most top items). ``confidence`` is that score through the Platt
scaling fitted on the validation split and moved to the whole catalogue (``train._calibrate``):
the probability that an item with this score is one of the user's held-out interactions when all
their unseen items are candidates.

Cold start: a user id the model has never seen gets the most popular training items among the
members of the groups of the friends passed with ``friends=`` (the group-level popularity HGP's
group nodes stand for); without known friends, or when they have no group, it gets the globally
most popular items. ``Recommendation.source`` says which path answered and ``reason`` why.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from haneul.errors import InvalidInput, NotFound
from haneul.io import atomic_open, atomic_write_text

FORMAT = 1


@dataclass
class Recommendation:
    user: str
    items: list[str]
    scores: list[float]  # model: z_u . z_i; cold start: the item's share of the counted interactions
    source: str  # model | cold-start-groups | cold-start-popular
    reason: str = ""  # why a cold-start path answered; empty for the model
    confidence: list[float] | None = None  # calibrated probabilities (model answers of calibrated bundles)

    def as_dict(self) -> dict:
        confidence: list[float | None] = list(self.confidence) if self.confidence else [None] * len(self.items)
        rows = zip(self.items, self.scores, confidence, strict=True)
        items = [{"rank": r + 1, "item": i, "score": s} | ({"confidence": c} if c is not None else {})
                 for r, (i, s, c) in enumerate(rows)]
        return {"user": self.user, "source": self.source, "reason": self.reason, "items": items}


@dataclass
class RecModel:
    kind: str
    user_ids: np.ndarray
    item_ids: np.ndarray
    user_emb: np.ndarray
    item_emb: np.ndarray
    seen: sp.csr_matrix  # (n_users, n_items) training interactions
    membership: np.ndarray  # (n_users,) group of each user, -1 when none
    popularity: np.ndarray  # (n_items,) training interaction counts
    threshold: float = 0.0  # F1 threshold on z_u . z_i, chosen on validation (-inf: all positive was best)
    calibration: tuple[float, float] | None = None  # (a, b): P(hit) = sigmoid(a * score + b), from validation
    config: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    data_name: str = "data"
    _uindex: dict[str, int] | None = None

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def user_index(self, user: str) -> int | None:
        if self._uindex is None:
            self._uindex = {u: k for k, u in enumerate(self.user_ids.tolist())}
        return self._uindex.get(str(user))

    def logit(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """The raw score ``z_u . z_i`` for parallel index arrays (float64)."""
        return (self.user_emb[users] * self.item_emb[items]).sum(-1).astype(np.float64)

    def confidence(self, scores: np.ndarray) -> np.ndarray | None:
        """Calibrated probabilities for raw scores (module docstring); None for an uncalibrated bundle."""
        if self.calibration is None:
            return None
        a, b = self.calibration
        return expit(a * np.asarray(scores, dtype=np.float64) + b)

    def recommend(self, user: str, k: int = 10, friends: list[str] | None = None, exclude_seen: bool = True) -> Recommendation:
        """Top-``k`` items for ``user``; unknown users get the cold-start fallback (module docstring)."""
        if k < 1:
            raise InvalidInput(f"k={k} must be at least 1")
        k = min(k, self.n_items)
        idx = self.user_index(user)
        if idx is not None:
            scores = self.user_emb[idx] @ self.item_emb.T
            if exclude_seen:
                row = self.seen[idx]
                scores[row.indices] = -np.inf
            top = _top(scores, k)
            raw = scores[top].astype(np.float64)
            conf = self.confidence(raw)
            return Recommendation(str(user), self.item_ids[top].tolist(), raw.tolist(), "model",
                                  confidence=None if conf is None else conf.tolist())
        friends = list(friends or [])
        known = [f for f in (self.user_index(name) for name in friends) if f is not None]
        groups = {int(self.membership[f]) for f in known if self.membership[f] >= 0}
        if groups:
            members = np.flatnonzero(np.isin(self.membership, list(groups)))
            counts = np.asarray(self.seen[members].sum(axis=0)).ravel().astype(np.float64)
            reason = f"unknown user; popular in the {len(groups)} group(s) of {len(known)} known friend(s)"
            return self._by_counts(user, counts, k, "cold-start-groups", reason)
        if not friends:
            reason = "unknown user and no friends given; globally popular items"
        elif not known:
            reason = f"unknown user and none of the {len(friends)} friend(s) is known; globally popular items"
        else:
            reason = f"unknown user whose {len(known)} known friend(s) belong to no group; globally popular items"
        return self._by_counts(user, self.popularity.astype(np.float64), k, "cold-start-popular", reason)

    def _by_counts(self, user: str, counts: np.ndarray, k: int, source: str, reason: str) -> Recommendation:
        top = _top(counts, k)
        total = max(float(counts.sum()), 1.0)
        return Recommendation(str(user), self.item_ids[top].tolist(), (counts[top] / total).tolist(), source, reason)

    # -- persistence
    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            user_emb=self.user_emb,
            item_emb=self.item_emb,
            seen_indptr=self.seen.indptr,
            seen_indices=self.seen.indices,
            membership=self.membership,
            popularity=self.popularity,
            user_ids=self.user_ids.astype(str),
            item_ids=self.item_ids.astype(str),
        )
        with atomic_open(folder / "arrays.npz", "wb") as fh:
            fh.write(buf.getvalue())
        meta = {
            "format": FORMAT,
            "kind": self.kind,
            "data": self.data_name,
            "threshold": self.threshold,
            "calibration": None if self.calibration is None else list(self.calibration),
            "config": self.config,
            "metrics": self.metrics,
            "n_users": self.n_users,
            "n_items": self.n_items,
        }
        # meta.json last: its presence marks a complete bundle
        atomic_write_text(folder / "meta.json", json.dumps(meta, indent=2, ensure_ascii=False))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> RecModel:
        folder = Path(folder)
        meta_path = folder / "meta.json"
        if not meta_path.exists():
            raise NotFound(f"no trained model in {folder}; train one with `haneul rec train --data DIR --out {folder}`")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT:
            raise InvalidInput(f"model bundle {folder} has format {meta.get('format')}; retrain it with this haneul version")
        with np.load(folder / "arrays.npz", allow_pickle=False) as z:
            n_users, n_items = meta["n_users"], meta["n_items"]
            seen = sp.csr_matrix(
                (np.ones(len(z["seen_indices"]), dtype=np.float32), z["seen_indices"], z["seen_indptr"]), shape=(n_users, n_items)
            )
            return cls(
                kind=meta["kind"],
                user_ids=z["user_ids"].astype(object),
                item_ids=z["item_ids"].astype(object),
                user_emb=z["user_emb"],
                item_emb=z["item_emb"],
                seen=seen,
                membership=z["membership"],
                popularity=z["popularity"],
                threshold=float(meta["threshold"]),
                calibration=_pair(meta.get("calibration")),
                config=meta["config"],
                metrics=meta["metrics"],
                data_name=meta["data"],
            )


def _pair(values: list[float] | None) -> tuple[float, float] | None:
    return None if not values else (float(values[0]), float(values[1]))


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    # a stable full sort: equal scores keep id order, so answers are reproducible
    return np.argsort(-scores, kind="stable")[: min(k, len(scores))]




def models_dir(home: Path | None = None) -> Path:
    """Where named models live: ``<home>/rec/models/<name>`` (default home: ``HANEUL_HOME``)."""
    if home is None:
        from haneul.settings import get_settings

        home = get_settings().home
    return Path(home) / "rec" / "models"


def load_model(name_or_path: str | Path, *, root: Path | None = None) -> RecModel:
    """A bundle by folder path, or by name under ``root`` (default: :func:`models_dir`)."""
    path = Path(name_or_path)
    if not (path / "meta.json").exists():
        named = (root or models_dir()) / str(name_or_path)
        if "/" in str(name_or_path) or not (named / "meta.json").exists():
            raise NotFound(
                f"no trained model {str(name_or_path)!r} (looked in {path} and {named}); train one with `haneul rec train --name NAME`"
            )
        path = named
    return RecModel.load(path)


def recommend(user: str, k: int = 10, model: str | Path = "default", friends: list[str] | None = None) -> Recommendation:
    """Top-``k`` items for ``user`` from a saved model (cold-start fallback for unknown users)."""
    return load_model(model).recommend(user, k, friends=friends)


__all__ = ["RecModel", "Recommendation", "load_model", "models_dir", "recommend"]
