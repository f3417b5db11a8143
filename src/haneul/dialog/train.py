"""Training the NLI-transfer memory-operation classifier (Keep Me Updated §3.2).

Phase 1 trains the encoder and the NLI head on KorNLI sentence pairs (entailment / neutral /
contradiction). Phase 2 copies the NLI head's hidden layer into the operation head and trains on
labelled memory-operation pairs (JSONL files, or pairs derived from CareCall-memory-format files)
with class weights, because APPEND dominates real pair sets. Both phases report their metrics through
``haneul.report``, so ``haneul run -- haneul dialog train-operator ...`` runs as a platform session.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from haneul.dialog.operators import OPS, Op


@dataclass
class TrainConfig:
    preset: str = "small"
    nli_epochs: int = 2
    op_epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.01
    seed: int = 0
    threads: int | None = None
    nli_limit: int | None = None  # use at most this many NLI pairs (quick runs)
    freeze_encoder: bool = True  # phase 2 trains only the operation head: few labelled pairs overfit the encoder
    class_weight_power: float = 0.5  # 0: plain loss, 1: inverse-frequency class weights


def _batches(n: int, size: int, rng: random.Random) -> list[list[int]]:
    idx = list(range(n))
    rng.shuffle(idx)
    return [idx[i : i + size] for i in range(0, n, size)]


def _epoch(model, opt, rows, head: str, cfg: TrainConfig, rng: random.Random, weight=None) -> tuple[float, float]:
    import torch
    import torch.nn.functional as F

    model.train()
    total, correct, seen = 0.0, 0, 0
    for batch in _batches(len(rows), cfg.batch_size, rng):
        a = [rows[i][0] for i in batch]
        b = [rows[i][1] for i in batch]
        y = torch.tensor([rows[i][2] for i in batch], dtype=torch.long)
        logits, _ = model(a, b, head=head)
        loss = F.cross_entropy(logits, y, weight=weight)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        total += loss.item() * len(batch)
        correct += int((logits.argmax(-1) == y).sum())
        seen += len(batch)
    return total / max(1, seen), correct / max(1, seen)


def train_operator(
    nli: Sequence[tuple[str, str, int]],
    pairs: Sequence[tuple[str, str, Op]],
    cfg: TrainConfig | None = None,
    *,
    progress: Callable[[str, int, int, dict[str, float]], None] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Train on NLI rows ``(s1, s2, label)`` then operation pairs ``(memory, summary, op)``.

    Returns ``(model, summary)``; the summary holds the final losses / accuracies and label counts.
    """
    import torch

    import haneul
    from haneul.dialog.model import PairClassifier, PairClassifierConfig
    from haneul.errors import InvalidInput

    cfg = cfg or TrainConfig()
    if not pairs:
        raise InvalidInput("no labelled memory-operation pairs to train on; pass --pairs FILE.jsonl or --data FILE.json")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    model = PairClassifier(PairClassifierConfig.from_name(cfg.preset))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step = 0
    info: dict[str, Any] = {"nli_pairs": len(nli), "op_pairs": len(pairs)}
    nli = list(nli[: cfg.nli_limit] if cfg.nli_limit else nli)
    for epoch in range(cfg.nli_epochs if nli else 0):
        loss, acc = _epoch(model, opt, nli, "nli", cfg, rng)
        step += 1
        haneul.report(step=step, nli_loss=loss, nli_acc=acc)
        info.update(nli_loss=loss, nli_acc=acc)
        if progress:
            progress("nli", epoch + 1, cfg.nli_epochs, {"loss": loss, "acc": acc})
    if nli:
        model.transfer_nli_to_op()
    counts = Counter(op for _, _, op in pairs)
    info["op_counts"] = {o.value: counts.get(o, 0) for o in OPS}
    # (inverse-frequency)^power weights, capped so a class with one example does not dominate
    weight = torch.tensor([min(10.0, len(pairs) / (len(OPS) * max(1, counts.get(o, 0)))) ** cfg.class_weight_power
                           for o in OPS])
    rows = [(m, s, OPS.index(op)) for m, s, op in pairs]
    params = [*model.op_head.parameters(), model.rule_scale] if cfg.freeze_encoder else list(model.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    for epoch in range(cfg.op_epochs):
        loss, acc = _epoch(model, opt, rows, "op", cfg, rng, weight=weight)
        step += 1
        haneul.report(step=step, op_loss=loss, op_acc=acc)
        info.update(op_loss=loss, op_acc=acc)
        if progress:
            progress("op", epoch + 1, cfg.op_epochs, {"loss": loss, "acc": acc})
    haneul.flush()
    model.eval()
    return model, info


# thresholds tried by calibrate(); 1.01 means "never from the classifier" for that operation
CALIBRATION_GRID: dict[str, tuple[Any, ...]] = {
    "pass_min": (0.5, 0.7, 0.9, 1.01),
    "replace_min": (0.5, 0.7, 0.9, 1.01),
    "delete_min": (0.5, 0.7, 0.9, 1.01),
    "min_overlap": (0.01, 0.2),
    "unsure": ("append", "lexical"),
}


def calibrate(model: Any, dev: Sequence[Any], grid: dict[str, tuple[Any, ...]] | None = None) -> tuple[Any, dict[str, Any]]:
    """Choose the classifier's decision rule on development memory updates; returns ``(rule, info)``.

    ``dev`` are :class:`haneul.dialog.data.Transition` s that the model was not trained on; those of
    session 1 are left out (an empty memory has nothing to decide). Every rule of the grid is scored
    by memory-update F1, and among rules within 0.005 of the best the most conservative wins (the
    highest thresholds: keep when unsure), since a few dozen updates cannot tell close rules apart.
    The rule is set on the model (and saved with it) as well as returned.
    """
    import itertools

    from haneul.dialog.evaluate import _Tally, score_transition
    from haneul.dialog.model import DecisionRule
    from haneul.dialog.operators import ClassifierOperator
    from haneul.errors import InvalidInput

    updates = [tr for tr in dev if tr.memory and tr.summary]
    if not updates:
        raise InvalidInput("no development updates with a non-empty memory to calibrate on; pass a CareCall-memory "
                           "file whose episodes have at least three sessions")
    grid = grid or CALIBRATION_GRID
    operator = ClassifierOperator(model)
    scored = []
    for values in itertools.product(*grid.values()):
        model.decision = DecisionRule(**dict(zip(grid, values, strict=True)))
        tally = _Tally()
        for tr in updates:
            tally.add(score_transition(tr, operator)[0])
        caution = model.decision.pass_min + model.decision.replace_min + model.decision.delete_min
        scored.append((tally.row()["f1"], caution, model.decision))
    best_f1 = max(f1 for f1, _, _ in scored)
    f1, _, rule = max((s for s in scored if s[0] >= best_f1 - 0.005), key=lambda s: (s[1], s[0]))
    model.decision = rule
    return rule, {"dev_updates": len(updates), "dev_f1": f1, "best_dev_f1": best_f1, "rules_tried": len(scored)}
