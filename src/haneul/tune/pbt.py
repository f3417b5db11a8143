"""Population-based training on platform sessions: exploit is a fork, explore a perturbation.

A PBT study starts ``pbt.population`` trials with random parameters. Whenever a trial's reported
objective passes a multiple of ``pbt.interval`` steps it is ranked against the other running trials
that got as far; one in the bottom ``quantile`` is *replaced*: its session is stopped and a new trial
starts as a fork of a top trial's latest checkpoint (``haneul.load()`` in the new session returns
it) with that trial's parameters perturbed (each number multiplied by one of ``factors``, or, with
probability ``resample``, drawn afresh). The new trial records the trial it copied
(``parent_trial``) and its session the parent session, which is the lineage the study page draws.
The training code must save a checkpoint with ``haneul.save`` at least every ``interval`` steps and
carry on from ``haneul.load()`` when it starts; it needs nothing else.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from haneul.errors import NotFound
from haneul.tune.db import trials
from haneul.tune.spec import PBT, StudySpec

if TYPE_CHECKING:
    from haneul.tune.controller import Tuner, _Live, _Study

__all__ = ["explore", "fill_population", "pbt_step"]


def explore(spec: StudySpec, params: Mapping[str, Any], rng: random.Random) -> dict[str, Any]:
    """``params`` perturbed: numbers scaled by one of the PBT factors (kept in range), or resampled."""
    pbt = spec.pbt or PBT()
    out: dict[str, Any] = {}
    for name, p in spec.space.items():
        if not p.active(out):
            continue
        value = params.get(name)
        if value is None or rng.random() < pbt.resample:
            if p.type == "categorical":
                value = rng.choice(list(p.choices))
            elif p.log:
                value = math.exp(rng.uniform(math.log(p.low), math.log(p.high)))  # type: ignore[arg-type]
            else:
                value = rng.uniform(p.low, p.high)  # type: ignore[arg-type]
        elif p.type != "categorical":
            value = float(value) * rng.choice(pbt.factors)
        if p.type != "categorical":
            value = min(max(float(value), p.low), p.high)  # type: ignore[type-var]
            if p.step is not None:
                value = p.low + round((value - p.low) / p.step) * p.step  # type: ignore[operator,arg-type]
            if p.type == "int":
                value = int(round(value))  # type: ignore[arg-type]
        out[name] = value
    return out


def fill_population(tuner: Tuner, loaded: _Study, row: Mapping[str, Any], launched: int) -> int:
    """Start fresh members until the population is complete (within the trial budget)."""
    spec = loaded.spec
    assert spec.pbt is not None
    with tuner.engine.connect() as conn:
        fresh = int(conn.execute(select(func.count()).select_from(trials).where(
            trials.c.study_id == loaded.id, trials.c.parent_trial.is_(None))).scalar_one())
    started = 0
    while fresh + started < spec.pbt.population and launched + started < spec.budget.trials:
        if not tuner._launch(loaded, row):
            break
        started += 1
    return started


def pbt_step(tuner: Tuner, loaded: _Study) -> None:
    """Replace each running trial that is in the bottom quantile at an interval boundary."""
    spec = loaded.spec
    pbt = spec.pbt
    assert pbt is not None
    row = loaded.row
    members = [lv for lv in loaded.live.values() if lv.values and lv.stopping is None]
    for live in sorted(members, key=lambda lv: lv.number):
        boundary = (max(live.values) // pbt.interval) * pbt.interval
        if boundary < pbt.interval or boundary in live.pbt_decided or live.stopping is not None:
            continue
        if boundary - min(live.values) < pbt.interval - 1:
            continue  # a fork judged only after an interval of its own (its donor's checkpoint may be past the boundary)
        peers = [lv for lv in members if lv.stopping is None and max(lv.values) >= boundary]
        if len(peers) < 2:
            continue  # ahead of the others: judged once one of them gets as far (or at its next boundary)
        live.pbt_decided.update(range(0, boundary + 1, pbt.interval))
        sign = -1.0 if spec.objective.direction == "maximize" else 1.0
        ranked = sorted(peers, key=lambda lv: (sign * lv.values[max(lv.values)], lv.number))  # best first
        k = max(1, int(len(ranked) * pbt.quantile))
        top, bottom = ranked[:k], ranked[-k:]
        if live not in bottom or live in top:
            continue
        if loaded.launched >= spec.budget.trials:
            return
        rng = random.Random(hash((spec.algorithm.seed or 0, live.number, boundary)) & 0xFFFFFFFF)
        donors = [d for d in top if _latest_checkpoint(tuner, d) is not None]
        if not donors:
            continue
        donor = rng.choice(donors)
        with tuner.engine.connect() as conn:
            donor_params = conn.execute(select(trials.c.params).where(trials.c.id == donor.row_id)).scalar_one()
        before = set(loaded.live)
        if not tuner._launch(loaded, row, params=explore(spec, donor_params, rng), parent=donor,
                             checkpoint=_latest_checkpoint(tuner, donor)):
            return
        for rid in set(loaded.live) - before:  # the child starts past the boundaries its parent passed
            loaded.live[rid].pbt_decided.update(range(0, boundary + 1, pbt.interval))
        live.stopping = "replaced"
        live.stop_reason = (f"replaced at step {boundary}: in the bottom {pbt.quantile:.0%} of {len(ranked)}; "
                            f"trial {donor.number}'s checkpoint goes on with explored parameters")
        tuner._stop_quietly(live.session_id)


def _latest_checkpoint(tuner: Tuner, live: _Live) -> str | None:
    try:
        names = [c["name"] for c in tuner.platform.list_checkpoints(live.session_id)]
    except NotFound:
        return None
    return names[-1] if names else None
