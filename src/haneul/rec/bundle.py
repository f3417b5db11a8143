"""A trained recommender on disk, and ``recommend(user, k)`` from it, in numpy only.

Training ends by storing the final user and item representations (after propagation and fusion),
so serving is one dot product per item and needs neither torch nor the graph. A bundle is a folder
with ``meta.json`` (ids, config, metrics) and ``arrays.npz`` (embeddings, each user's seen items,
group membership, popularity), both written atomically.

Cold start: a user id the model has never seen gets the most popular training items among the
members of the groups of the friends passed with ``friends=`` (the group-level popularity HGP's
group nodes stand for); without known friends, or when they have no group, it gets the globally
most popular items. ``Recommendation.source`` says which path answered.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from haneul.errors import InvalidInput, NotFound
from haneul.io import atomic_open, atomic_write_text

FORMAT = 1


@dataclass
class Recommendation:
    user: str
    items: list[str]
    scores: list[float]
    source: str  # model | cold-start-groups | cold-start-popular

    def as_dict(self) -> dict:
        return {"user": self.user, "source": self.source, "items": [
            {"rank": r + 1, "item": i, "score": s} for r, (i, s) in enumerate(zip(self.items, self.scores, strict=True))
        ]}


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
    threshold: float = 0.5  # F1 threshold on sigmoid scores, chosen on validation
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

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Click probability sigmoid(z_u . z_i) for parallel index arrays."""
        logits = (self.user_emb[users] * self.item_emb[items]).sum(-1)
        return 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))

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
            probs = self.score(np.full(len(top), idx), top)
            return Recommendation(str(user), self.item_ids[top].tolist(), probs.tolist(), "model")
        known = [self.user_index(f) for f in friends or []]
        groups = {int(self.membership[f]) for f in known if f is not None and self.membership[f] >= 0}
        if groups:
            members = np.flatnonzero(np.isin(self.membership, list(groups)))
            counts = np.asarray(self.seen[members].sum(axis=0)).ravel()
            top = _top(counts.astype(np.float64), k)
            total = max(float(counts.sum()), 1.0)
            return Recommendation(str(user), self.item_ids[top].tolist(), (counts[top] / total).tolist(), "cold-start-groups")
        top = _top(self.popularity.astype(np.float64), k)
        total = max(float(self.popularity.sum()), 1.0)
        return Recommendation(str(user), self.item_ids[top].tolist(), (self.popularity[top] / total).tolist(), "cold-start-popular")

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
                config=meta["config"],
                metrics=meta["metrics"],
                data_name=meta["data"],
            )


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
