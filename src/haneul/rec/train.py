"""One runner for HGP and every baseline: split, build groups, train, pick the best epoch, evaluate.

Training reports its loss and validation metrics through ``haneul.report`` so it runs unchanged as
a platform session. Each epoch draws one uniformly random unseen item per training interaction
(BPR triples, or positive/negative pairs for BCE). Validation Recall@K (K = 10 unless
``eval_k`` says otherwise) is measured every ``eval_every`` epochs; the best epoch is kept and
training stops early after ``patience`` evaluations without improvement, so ``epochs`` is a maximum
(RecBole's protocol: evaluate every epoch, stop after 10 non-improving ones). Evaluation follows
the HGP paper (AUC and F1 against one sampled negative per held-out positive, F1 threshold from
validation) and RecBole (full-ranking Recall@K / NDCG@K, seen items excluded); validation also fits
the Platt scaling that turns a score into a calibrated probability for ``recommend``.

Given a :class:`Checkpointing`, training is stop-and-go: when the platform asks the session to pause,
the state after the current epoch (model, optimizer, random generators, best epoch so far) is saved
and :class:`TrainingPaused` is raised; a run that finds such a checkpoint on start (its own after a
resume, its parent's after a fork, as PBT does) goes on from that epoch and, with the same seed and
settings, ends with the same metrics as a run that was never interrupted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from haneul.errors import InvalidInput
from haneul.rec.bundle import RecModel
from haneul.rec.data import (
    SocialData,
    Split,
    interaction_keys,
    sample_negatives,
    split_leave_last_out,
    split_random,
)
from haneul.rec.graph import GroupResult, GroupStats, choose_resolution, detect_groups, group_stats
from haneul.rec.metrics import (
    all_positive_f1,
    auc,
    best_threshold,
    f1_at,
    pairs_matrix,
    platt_fit,
    ranking_metrics,
)

MODELS = ("hgp", "lightgcn", "bpr", "pop", "social")
SPLITS = ("random", "leave-last-out")
TRAIN_MODES = ("full", "sampled")


@dataclass
class TrainConfig:
    model: str = "hgp"
    epochs: int = 200  # a maximum: early stopping usually ends training well before
    batch_size: int = 8192
    lr: float = 2e-2
    dim: int = 64
    # propagation steps; default 1 for HGP / social with split propagation (best on LastFM validation),
    # 3 for the joint propagation and LightGCN
    k: int | None = None
    alpha: float = 0.1  # HGP teleport probability
    loss: str = "bpr"
    reg: float = 1e-4
    train_mode: str = "full"  # full: propagate the whole graph per step; sampled: the batch's K-hop sub-graph
    split: str = "random"
    community: str = "leiden"
    resolution: float | str = 1.0  # a number, or "auto" (graph.choose_resolution's group-size rule)
    feature_buckets: int = 0  # HGP item content features (hashed .item tokens); 0 = off
    propagation: str = "split"  # HGP / social: split (APPNP per sub-graph + attention) or joint (one graph)
    eval_every: int = 1
    eval_k: int = 10  # the best epoch and early stopping follow validation Recall@eval_k
    patience: int = 10  # stop after this many evaluations without a better one; 0 = never stop early
    seed: int = 0
    threads: int | None = None

    def __post_init__(self) -> None:
        for name, value, choices in (
            ("model", self.model, MODELS),
            ("split", self.split, SPLITS),
            ("train_mode", self.train_mode, TRAIN_MODES),
            ("loss", self.loss, ("bpr", "bce")),
            ("propagation", self.propagation, ("split", "joint")),
        ):
            if value not in choices:
                raise InvalidInput(f"{name}={value!r} is unknown; choose one of {', '.join(choices)}")
        if self.train_mode == "sampled" and self.model not in ("hgp", "social"):
            raise InvalidInput(f"train_mode='sampled' is for hgp and social; {self.model} trains with train_mode='full'")
        if self.epochs < 0 or self.batch_size < 1 or self.lr <= 0:
            raise InvalidInput(f"epochs={self.epochs}, batch_size={self.batch_size}, lr={self.lr}: use epochs >= 0, batch >= 1, lr > 0")
        if self.eval_every < 1 or self.eval_k < 1 or self.patience < 0:
            raise InvalidInput(f"eval_every={self.eval_every}, eval_k={self.eval_k}, patience={self.patience}: "
                               "use eval_every >= 1, eval_k >= 1 and patience >= 0 (0 turns early stopping off)")
        if isinstance(self.resolution, str):
            if self.resolution != "auto":
                try:
                    self.resolution = float(self.resolution)
                except ValueError:
                    raise InvalidInput(f"resolution={self.resolution!r} is not a number; give one (e.g. 1.0) or 'auto'") from None
        if not isinstance(self.resolution, str) and self.resolution <= 0:
            raise InvalidInput(f"resolution={self.resolution} must be positive (1.0 is plain modularity) or 'auto'")

    @property
    def steps(self) -> int:
        if self.k is not None:
            return self.k
        return 3 if self.model == "lightgcn" or self.propagation == "joint" else 1

    @property
    def select_metric(self) -> str:
        """The validation metric that picks the best epoch, as reported (``valid_recall_10``)."""
        return f"valid_recall_{self.eval_k}"


@dataclass
class FitResult:
    model: RecModel
    metrics: dict[str, float]  # test metrics of the best epoch, with best_epoch and epochs_run
    history: list[dict[str, float]] = field(default_factory=list)
    groups: GroupResult | None = None
    seconds: float = 0.0
    best_epoch: int = 0
    epochs_run: int = 0  # the last epoch trained (below config.epochs when training stopped early)
    group_stats: GroupStats | None = None
    fusion: dict[str, float] = field(default_factory=dict)  # attention weights at the best epoch (HGP, social)
    resolution: float | None = None  # the community-detection resolution used

    @property
    def f1_trivial(self) -> bool:
        """True when test F1 is no better than calling every pair positive."""
        return bool(self.metrics.get("f1_trivial", 0.0))


#: the ``format`` field of a training checkpoint; a newer layout gets a new number
CHECKPOINT_FORMAT = "haneul.rec.train/1"
CHECKPOINT_NAME = "last"


class TrainingPaused(Exception):
    """Training stopped after ``epoch`` because the session was asked to pause; its state is saved."""

    def __init__(self, epoch: int) -> None:
        super().__init__(f"paused after epoch {epoch}; the checkpoint {CHECKPOINT_NAME!r} resumes it")
        self.epoch = epoch


@dataclass
class Checkpointing:
    """Where :func:`fit` keeps its training state between processes.

    ``load()`` returns the latest checkpoint or None, ``save(name, state)`` stores one, ``paused()``
    says the process should save and stop. :meth:`session` wires them to ``haneul.load``,
    ``haneul.save`` and ``haneul.paused``; tests give in-memory ones."""

    load: Callable[[], Any]
    save: Callable[[str, Any], Any]
    paused: Callable[[], bool]
    save_every: int = 0  # also save every N epochs, so PBT can fork a running trial; 0: only on pause

    @classmethod
    def session(cls, save_every: int = 0) -> Checkpointing:
        import haneul

        return cls(load=haneul.load, save=haneul.save, paused=haneul.paused, save_every=save_every)


@dataclass
class Prepared:
    data: SocialData
    split: Split
    train_pairs: np.ndarray  # (N, 2)
    group_user: np.ndarray | None
    groups: GroupResult | None
    membership: np.ndarray
    group_stats: GroupStats | None  # None when the data has neither groups nor social links
    resolution: float | None  # the community-detection resolution used (None: groups given or none)
    known_keys: np.ndarray  # every interaction: evaluation negatives must be true negatives
    train_keys: np.ndarray  # training interactions only: training negatives must not peek at held-out ones


def prepare(data: SocialData, config: TrainConfig, split: Split | None = None) -> Prepared:
    """Split the data and settle the groups: given ones, else communities of the social graph."""
    if split is None:
        split = split_random(data, seed=config.seed) if config.split == "random" else split_leave_last_out(data)
    train_pairs = np.stack([data.user[split.train], data.item[split.train]], axis=1)
    groups = None
    resolution: float | None = None
    membership = np.full(data.n_users, -1, dtype=np.int64)
    if data.groups is not None and len(data.groups):
        group_user = data.groups
        membership[group_user[:, 1]] = group_user[:, 0]
    elif len(data.social):
        if config.resolution == "auto":
            resolution, groups = choose_resolution(data.social, data.n_users, config.community, seed=config.seed)
        else:
            resolution = float(config.resolution)
            groups = detect_groups(data.social, data.n_users, config.community, resolution, seed=config.seed)
        group_user = groups.pairs()
        membership[group_user[:, 1]] = group_user[:, 0]
    else:
        group_user = None
    stats = group_stats(group_user, data.social, data.n_users) if group_user is not None else None
    return Prepared(
        data, split, train_pairs, group_user, groups, membership, stats, resolution,
        known_keys=interaction_keys(data.user, data.item, data.n_items),
        train_keys=interaction_keys(train_pairs[:, 0], train_pairs[:, 1], data.n_items),
    )


def build_model(prep: Prepared, config: TrainConfig):
    """The model object for ``config.model`` (torch is imported only here and in training)."""
    data = prep.data
    if config.model == "pop":
        from haneul.rec.baselines import Popularity

        return Popularity(data.n_users, data.n_items, prep.train_pairs)
    if config.model in ("bpr", "lightgcn"):
        from haneul.rec.baselines import BPRMF, LightGCN, MFConfig

        mf = MFConfig(dim=config.dim, k=config.steps, loss=config.loss, reg=config.reg)
        if config.model == "bpr":
            return BPRMF(mf, data.n_users, data.n_items, seed=config.seed)
        return LightGCN(mf, data.n_users, data.n_items, prep.train_pairs, seed=config.seed)
    from haneul.rec.hgp import HGP, HGPConfig, item_feature_matrix

    social = "raw" if config.model == "social" else "groups"
    if social == "groups" and prep.group_user is None:
        raise InvalidInput(f"{data.name} has neither groups nor social links; HGP needs one of them (or use --model lightgcn)")
    if social == "raw" and len(data.social) == 0:
        raise InvalidInput(f"{data.name} has no social links (.net); the social model needs them (or use --model lightgcn)")
    hcfg = HGPConfig(
        dim=config.dim,
        k=config.steps,
        alpha=config.alpha,
        social=social,
        loss=config.loss,
        reg=config.reg,
        feature_buckets=config.feature_buckets,
        propagation=config.propagation,
    )
    features = None
    if config.feature_buckets > 0 and data.item_tokens is not None:
        features = item_feature_matrix(data.item_tokens, config.feature_buckets)
    return HGP(
        hcfg, data.n_users, data.n_items, prep.train_pairs, group_user=prep.group_user, social=data.social,
        item_features=features, seed=config.seed,
    )


def train_epoch(model, prep: Prepared, config: TrainConfig, rng: np.random.Generator, optimizer) -> float:
    """One pass over the training interactions in shuffled batches; returns the mean loss."""
    pairs = prep.train_pairs
    order = rng.permutation(len(pairs))
    neg = sample_negatives(pairs[:, 0], prep.data.n_items, prep.train_keys, rng)
    sampled = config.train_mode == "sampled"
    total, n = 0.0, 0
    for start in range(0, len(order), config.batch_size):
        b = order[start : start + config.batch_size]
        loss = model.batch_loss(pairs[b, 0], pairs[b, 1], neg[b], sampled=sampled)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(b)
        n += len(b)
    return total / max(n, 1)


def evaluate(rec: RecModel, prep: Prepared, ks: tuple[int, ...] = (10, 20), seed: int = 0, part: str = "test") -> dict[str, float]:
    """AUC, F1 (threshold from validation) and Recall/NDCG@K on ``part`` (test or valid).

    Scores are the raw dot products (a sigmoid would tie large scores at 1.0 in floating point).
    Validation pairs also set ``rec.threshold`` and the calibration ``rec.calibration`` (:func:`_calibrate`).
    ``f1_trivial`` is 1.0 when the F1 is no better than calling every pair positive (2/3 here).
    """
    data, split = prep.data, prep.split
    rng = np.random.default_rng(seed + 7919)
    nu, ni = data.n_users, data.n_items
    v_u, v_i = data.user[split.valid], data.item[split.valid]
    v_neg = sample_negatives(v_u, ni, prep.known_keys, rng)
    v_labels = np.r_[np.ones(len(v_u)), np.zeros(len(v_u))]
    v_scores = rec.logit(np.r_[v_u, v_u], np.r_[v_i, v_neg])
    threshold, _ = best_threshold(v_labels, v_scores)
    rec.threshold = threshold
    rec.calibration = _calibrate(v_labels, v_scores, prep)
    idx = split.test if part == "test" else split.valid
    t_u, t_i = data.user[idx], data.item[idx]
    t_neg = v_neg if part == "valid" else sample_negatives(t_u, ni, prep.known_keys, rng)
    labels = np.r_[np.ones(len(t_u)), np.zeros(len(t_u))]
    scores = v_scores if part == "valid" else rec.logit(np.r_[t_u, t_u], np.r_[t_i, t_neg])
    f1 = f1_at(labels, scores, threshold)
    out = {"auc": auc(labels, scores), "f1": f1, "f1_trivial": float(f1 <= all_positive_f1(labels) + 1e-12)}
    seen_idx = split.train if part == "valid" else np.r_[split.train, split.valid]
    exclude = pairs_matrix(data.user[seen_idx], data.item[seen_idx], nu, ni)
    truth = pairs_matrix(t_u, t_i, nu, ni)
    out |= ranking_metrics(rec.user_emb, rec.item_emb, truth, exclude, ks)
    return out


def _calibrate(labels: np.ndarray, scores: np.ndarray, prep: Prepared) -> tuple[float, float]:
    """Platt scaling fitted on the 1:1 validation pairs, moved to the whole catalogue.

    The pairs hold one uniformly drawn unseen item per held-out positive, so the fit estimates
    ``P(held-out | score)`` at prior odds 1:1. A recommendation is drawn from all the user's unseen
    items, where held-out items are ``positives : candidates`` rare; subtracting the log of that
    ratio from the intercept (the usual prior correction for a logistic model fitted on
    subsampled negatives) gives the probability that an item with this score is a hit.
    """
    data, split = prep.data, prep.split
    valid_users = np.unique(data.user[split.valid])
    train_counts = np.bincount(prep.train_pairs[:, 0], minlength=data.n_users)[valid_users]
    n_pos = len(split.valid)
    candidates = float(len(valid_users) * data.n_items - train_counts.sum() - n_pos)
    a, b = platt_fit(labels, scores)
    return a, b - float(np.log(max(candidates, 1.0) / n_pos))


def _to_rec(model, prep: Prepared, config: TrainConfig) -> RecModel:
    user_emb, item_emb = model.final_embeddings()
    return _rec_from(user_emb, item_emb, prep, config)


def _rec_from(user_emb: np.ndarray, item_emb: np.ndarray, prep: Prepared, config: TrainConfig) -> RecModel:
    data = prep.data
    # serving excludes and counts every known interaction, held-out ones included; evaluation
    # builds its own exclusion from the split
    seen = pairs_matrix(data.user, data.item, data.n_users, data.n_items)
    return RecModel(
        kind=config.model,
        user_ids=data.user_ids,
        item_ids=data.item_ids,
        user_emb=user_emb,
        item_emb=item_emb,
        seen=seen,
        membership=prep.membership,
        popularity=np.bincount(data.item, minlength=data.n_items).astype(np.float32),
        config=asdict(config),
        data_name=data.name,
    )


def fit(
    data: SocialData,
    config: TrainConfig | None = None,
    split: Split | None = None,
    progress: Callable[[int, dict[str, float]], None] | None = None,
    report: bool = True,
    prep: Prepared | None = None,
    checkpointing: Checkpointing | None = None,
) -> FitResult:
    """Train ``config.model`` on ``data`` and evaluate the best epoch on the test split.

    With ``checkpointing``, training starts from its latest checkpoint when there is one and raises
    :class:`TrainingPaused` (after saving) when it is asked to pause."""
    import haneul

    config = config or TrainConfig()
    t0 = time.perf_counter()
    prep = prep or prepare(data, config, split)
    model = build_model(prep, config)
    history: list[dict[str, float]] = []
    best_epoch = epoch = 0
    fusion: dict[str, float] = {}
    if config.model == "pop" or config.epochs == 0:
        best = _to_rec(model, prep, config)
    else:
        import torch

        if config.threads:
            torch.set_num_threads(config.threads)
        rng = np.random.default_rng(config.seed)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        best, best_score = None, -1.0
        start = 0
        state = checkpointing.load() if checkpointing is not None else None
        if state is not None:
            start, history, best_found = _restore(state, model, optimizer, rng, prep, config)
            if best_found is not None:
                best_epoch, best_score, user_emb, item_emb, fusion = best_found
                best = _rec_from(user_emb, item_emb, prep, config)
        saved_at = epoch = start
        key, recall = config.select_metric, f"recall@{config.eval_k}"
        while epoch < config.epochs and not _patience_spent(history, best_epoch, key, config.patience):
            epoch += 1
            loss = train_epoch(model, prep, config, rng, optimizer)
            row: dict[str, float] = {"epoch": epoch, "loss": loss}
            if epoch % config.eval_every == 0 or epoch == config.epochs:
                rec = _to_rec(model, prep, config)
                valid = evaluate(rec, prep, ks=(config.eval_k,), seed=config.seed, part="valid")
                row |= {f"valid_{k.replace('@', '_')}": v for k, v in valid.items()}
                if valid[recall] > best_score:
                    best, best_score, best_epoch = rec, valid[recall], epoch
                    fusion = fusion_summary(model)
                row["best_epoch"] = best_epoch
            history.append(row)
            every = checkpointing.save_every if checkpointing is not None else 0
            if checkpointing is not None and every and epoch % every == 0 and epoch < config.epochs:
                # saved before the epoch is reported, so whoever sees step N finds a checkpoint of N
                checkpointing.save(CHECKPOINT_NAME, _state(epoch, model, optimizer, rng, history, best,
                                                           best_epoch, best_score, fusion, prep, config))
                saved_at = epoch
            if report:
                haneul.report(step=epoch, **_finite({k: v for k, v in row.items() if k != "epoch"}))
            if progress is not None:
                progress(epoch, row)
            if checkpointing is not None and epoch < config.epochs and checkpointing.paused():
                if saved_at != epoch:
                    checkpointing.save(CHECKPOINT_NAME, _state(epoch, model, optimizer, rng, history, best,
                                                               best_epoch, best_score, fusion, prep, config))
                raise TrainingPaused(epoch)
    if best is None:  # resumed at or past the last epoch with no evaluated epoch to keep
        best = _to_rec(model, prep, config)
    chosen = {"best_epoch": best_epoch, "epochs_run": epoch}
    metrics = evaluate(best, prep, seed=config.seed) | chosen
    best.metrics = dict(metrics)
    if report:
        tested = {f"test_{k.replace('@', '_')}": v for k, v in metrics.items() if k not in chosen}
        haneul.report(step=max(epoch, 1), **_finite(tested | chosen))
    return FitResult(best, metrics, history, prep.groups, time.perf_counter() - t0, best_epoch, epoch,
                     prep.group_stats, fusion, prep.resolution)


def _patience_spent(history: list[dict[str, float]], best_epoch: int, key: str, patience: int) -> bool:
    """True when the last ``patience`` evaluations (``patience`` > 0) all came after the best epoch."""
    if patience == 0:
        return False
    stale = sum(1 for row in history if key in row and row["epoch"] > best_epoch)
    return stale >= patience


def fusion_summary(model) -> dict[str, float]:
    """Mean attention weight of each view over users, and the share of users whose fusion has
    collapsed onto one view (weight above 0.95); empty for models without attention fusion."""
    weights_of = getattr(model, "attention_weights", None)
    weights = weights_of() if weights_of is not None else None
    if weights is None:
        return {}
    return {"fusion_user_item": float(weights[:, 0].mean()), "fusion_social": float(weights[:, 1].mean()),
            "fusion_collapsed_users": float((weights.max(axis=1) > 0.95).mean())}


def _state(epoch: int, model, optimizer, rng: np.random.Generator, history: list[dict[str, float]],
           best: RecModel | None, best_epoch: int, best_score: float, fusion: dict[str, float], prep: Prepared,
           config: TrainConfig) -> dict[str, Any]:
    """Everything the epochs after ``epoch`` depend on, as one torch-saveable mapping."""
    import torch

    data = prep.data
    return {
        "format": CHECKPOINT_FORMAT,
        "epoch": epoch,
        "config": asdict(config),
        "data": {"name": data.name, "users": data.n_users, "items": data.n_items},
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "rng": rng.bit_generator.state,
        "torch_rng": torch.get_rng_state(),
        "history": list(history),
        "best": None if best is None else {"epoch": best_epoch, "score": best_score, "fusion": fusion,
                                           "user_emb": best.user_emb, "item_emb": best.item_emb},
    }


def _restore(state: Any, model, optimizer, rng: np.random.Generator, prep: Prepared, config: TrainConfig,
             ) -> tuple[int, list[dict[str, float]], tuple[int, float, np.ndarray, np.ndarray, dict[str, float]] | None]:
    """Load a checkpoint written by :func:`_state` into ``model``, ``optimizer`` and ``rng``.

    The learning rate stays ``config.lr``: a PBT fork goes on from its parent's state with its own."""
    import torch

    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise InvalidInput(f"the session's latest checkpoint is not a {CHECKPOINT_FORMAT} training state; "
                           "start the run without it (a new session) or save the rec state under that name")
    data, saved = prep.data, state["data"]
    if (saved["name"], saved["users"], saved["items"]) != (data.name, data.n_users, data.n_items):
        raise InvalidInput(f"the checkpoint was trained on {saved['name']} ({saved['users']} users, {saved['items']} "
                           f"items), not {data.name} ({data.n_users}, {data.n_items}); pass the same --data")
    ours = model.state_dict()
    for key, value in state["model"].items():
        if key not in ours or tuple(ours[key].shape) != tuple(value.shape):
            have = tuple(ours[key].shape) if key in ours else "nothing"
            raise InvalidInput(f"the checkpoint's {key} has shape {tuple(value.shape)} but this model has {have}: "
                               f"keep model, dim and features of the run it continues (the checkpoint's: "
                               f"model={state['config']['model']}, dim={state['config']['dim']}); "
                               "PBT may explore lr, reg and alpha")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    for group in optimizer.param_groups:
        group["lr"] = config.lr
    rng.bit_generator.state = state["rng"]
    torch.set_rng_state(state["torch_rng"])
    best = state["best"]
    found = None if best is None else (int(best["epoch"]), float(best["score"]), best["user_emb"], best["item_emb"],
                                       dict(best.get("fusion", {})))
    return int(state["epoch"]), list(state["history"]), found


def _finite(values: dict[str, float]) -> dict[str, float]:
    # the platform rejects NaN; an undefined metric (e.g. AUC without negatives) is left out
    return {k: v for k, v in values.items() if np.isfinite(v)}


__all__ = [
    "CHECKPOINT_FORMAT",
    "MODELS",
    "Checkpointing",
    "FitResult",
    "Prepared",
    "TrainConfig",
    "TrainingPaused",
    "build_model",
    "evaluate",
    "fit",
    "fusion_summary",
    "prepare",
    "train_epoch",
]
