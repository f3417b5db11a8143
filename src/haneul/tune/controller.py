"""The study controller: Optuna asks, the platform runs, the server feeds the pruner.

One :class:`Tuner` lives in the server (the ``tune`` plugin) and drives every study from one thread.
Each tick it

1. reads the objective values that running trials reported since the last tick (from the platform's
   metric store, not from the trial process) and hands them to Optuna as intermediate values; a
   trial the pruner gives up on is stopped, which frees its slot at once;
2. settles trials whose sessions ended: the last (or best) reported objective is told to Optuna, a
   trial that never reported it or reported NaN fails with the reason, and a study whose trials fail
   ``max_failures`` times in a row stops with the last reason;
3. launches new trials as preemptible platform sessions while the study has budget and concurrency:
   a trial paused by the scheduler for higher-priority work (stop-and-go) keeps its slot and its
   place in the budget and resumes by itself;
4. runs PBT's exploit/explore step for PBT studies (:mod:`haneul.tune.pbt`).

Everything a study needs to go on after a restart is in the database: the spec, the trials and
their sessions, and Optuna's journal; the platform re-attaches to running sessions and the first
tick settles the ones that ended while the server was down.
"""

from __future__ import annotations

import csv
import io
import json
import math
import threading
import time
import traceback
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, delete, func, insert, select, update

from haneul.errors import Conflict, InvalidInput, NotFound
from haneul.tune.db import studies, trials
from haneul.tune.spec import StudySpec

if TYPE_CHECKING:
    import optuna

    from haneul.platform.plugins import Principal
    from haneul.platform.service import Platform

__all__ = ["Tuner", "ACTIVE_SESSION"]

#: a trial's session in one of these is still the trial's (paused: by a user or by the scheduler)
ACTIVE_SESSION = ("queued", "running", "paused")
#: seconds a trial may go on running after its stop was asked before it is counted as stopped anyway
_STOP_GRACE = 10.0
#: ticks in a row that may fail on one study before it is marked failed (the others go on)
_MAX_TICK_ERRORS = 20


@dataclass
class _Live:
    """What the controller keeps in memory about a trial whose session is active."""

    row_id: int
    number: int
    optuna_id: int
    session_id: int
    cursor: int = 0  # the metric store's cursor for the objective key
    reported: set[int] = field(default_factory=set)
    values: dict[int, float] = field(default_factory=dict)  # step -> first reported value
    nan_seen: bool = False
    pruning: bool = False  # the pruner gave up on it; its stop was asked
    stopping: str | None = None  # a state to record when the session ends ("stopped", "replaced", ...)
    stop_reason: str | None = None
    pbt_decided: set[int] = field(default_factory=set)  # PBT interval boundaries already decided


@dataclass
class _Study:
    id: int
    spec: StudySpec
    study: optuna.Study
    row: dict[str, Any]  # the study's row, refreshed whenever this process changes it
    live: dict[int, _Live] = field(default_factory=dict)  # by trial row id
    errors: int = 0  # ticks in a row that raised
    launched: int = 0  # trials started, all states
    failures: int = 0  # trials in a row that failed, as they ended


class Tuner:
    """Every study of one server. ``platform`` runs the trials; ``engine`` holds the tables."""

    def __init__(self, engine: Engine, platform: Platform, *, poll_interval: float = 0.5) -> None:
        self.engine = engine
        self.platform = platform
        self.poll_interval = poll_interval
        self._storage: Any = None
        self._studies: dict[int, _Study] = {}
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self._wake = threading.Event()

    # ------------------------------------------------------------------ lifecycle
    @property
    def storage(self) -> Any:
        if self._storage is None:
            from haneul.tune.journal import open_storage

            self._storage = open_storage(self.engine)
        return self._storage

    def start(self) -> None:
        """Load the studies that were running and start the control loop (once the tables exist)."""
        if self._thread is not None:
            return
        import optuna.importance  # noqa: F401  # once, here: two requests importing it at once can clash
        import optuna.trial  # noqa: F401

        with self._lock:
            with self.engine.connect() as conn:
                ids = conn.execute(select(studies.c.id).where(studies.c.status == "running")).scalars().all()
            for sid in ids:
                self._load(sid)
        self._thread = threading.Thread(target=self._loop, name="haneul-tune", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closed.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._closed.is_set():
            try:
                self.tick()
            except Exception:  # one broken study must not stop the others
                traceback.print_exc()
            self._wake.wait(self.poll_interval)
            self._wake.clear()

    def wake(self) -> None:
        self._wake.set()

    # ------------------------------------------------------------------ studies
    def create(self, spec: StudySpec, *, principal: Principal, team: int | None = None) -> dict[str, Any]:
        """Register a study and start launching its trials."""
        import optuna

        team_id = principal.writable_team(team)
        if spec.cwd is not None and not Path(spec.cwd).is_dir():
            raise InvalidInput(f"the study's folder {spec.cwd} does not exist on the server; run `haneul tune "
                               "create` on the server's machine or set cwd in the study file")
        command = spec.command[0]
        if not any(ch in command for ch in "{}"):
            self.platform.check_command(command, dict(spec.env), spec.cwd)
        spec.sampler()  # sampler and pruner arguments are checked now, not at the first trial
        spec.pruner()
        from haneul.platform.scheduler import Resources, parse_memory

        self.platform.scheduler.check(Resources(spec.budget.cpus, spec.budget.gpus, parse_memory(spec.budget.memory)))
        with self._lock:
            with self.engine.connect() as conn:
                taken = conn.execute(select(studies.c.id).where(studies.c.name == spec.name,
                                                                studies.c.team_id == team_id)).first()
            if taken is not None:
                raise Conflict(f"a study named {spec.name!r} exists; pick another name, or delete it with "
                               f"`haneul tune rm {spec.name}`")
            direction = (optuna.study.StudyDirection.MAXIMIZE if spec.objective.direction == "maximize"
                         else optuna.study.StudyDirection.MINIMIZE)
            optuna_id = self.storage.create_new_study([direction], f"{spec.name}.{uuid.uuid4().hex[:12]}")
            now = time.time()
            with self.engine.begin() as conn:
                sid = conn.execute(insert(studies).values(
                    name=spec.name, team_id=team_id, owner=principal.name, spec=spec.to_dict(), status="running",
                    optuna_id=optuna_id, created_at=now, updated_at=now, elapsed=0.0, resumed_at=now,
                )).inserted_primary_key[0]  # type: ignore[index]
            loaded = self._load(int(sid))
            for params in spec.enqueue:  # hand-written trials go first, before the loop asks
                loaded.study.enqueue_trial(spec.check_params(params), skip_if_exists=False)
        self.wake()
        return self.get(int(sid))

    def _load(self, study_id: int) -> _Study:
        import optuna

        row = self._row(study_id)
        spec = StudySpec.from_dict(row["spec"])
        name = self.storage.get_study_name_from_id(row["optuna_id"])
        study = optuna.load_study(study_name=name, storage=self.storage, sampler=spec.sampler(),
                                  pruner=spec.pruner())
        loaded = _Study(study_id, spec, study, dict(row))
        loaded.launched = self._launched(study_id)
        loaded.failures = self._failures_in_a_row(study_id)
        with self.engine.connect() as conn:
            rows = conn.execute(select(trials).where(trials.c.study_id == study_id,
                                                     trials.c.state == "running")).all()
        for r in rows:
            live = _Live(r.id, r.number, r.optuna_trial_id, r.session_id)
            frozen = self.storage.get_trial(r.optuna_trial_id)
            live.values = {int(k): float(v) for k, v in frozen.intermediate_values.items()}
            live.reported = set(live.values)
            loaded.live[r.id] = live
        self._studies[study_id] = loaded
        return loaded

    def _row(self, study_id: int) -> Any:
        with self.engine.connect() as conn:
            row = conn.execute(select(studies).where(studies.c.id == study_id)).first()
        if row is None:
            raise NotFound(f"study {study_id} not found; list studies with `haneul tune ls`")
        return row._mapping

    def team_of(self, study_id: int) -> int | None:
        return self._row(study_id)["team_id"]

    def find(self, ref: str | int, *, teams: Collection[int] | None) -> int:
        """A study's id from its id or its name (among the teams the caller reads)."""
        text = str(ref)
        query = select(studies.c.id, studies.c.team_id)
        numeric = text.isascii() and text.isdigit() and len(text) < 19
        query = query.where(studies.c.id == int(text)) if numeric else query.where(studies.c.name == text)
        with self.engine.connect() as conn:
            rows = [r for r in conn.execute(query).all() if teams is None or r.team_id in teams]
        if not rows:
            raise NotFound(f"study {text!r} not found; list studies with `haneul tune ls`")
        if len(rows) > 1:
            raise InvalidInput(f"{len(rows)} studies are named {text!r} in your teams; give its id instead")
        return int(rows[0].id)

    def list_studies(self, *, teams: Collection[int] | None = None) -> list[dict[str, Any]]:
        query = select(studies).order_by(studies.c.id.desc())
        if teams is not None:
            query = query.where(studies.c.team_id.in_(list(teams)))
        with self.engine.connect() as conn:
            rows = [r._mapping for r in conn.execute(query).all()]
            counts: dict[int, dict[str, int]] = {}
            for sid, state, n in conn.execute(select(trials.c.study_id, trials.c.state, func.count())
                                              .group_by(trials.c.study_id, trials.c.state)).all():
                counts.setdefault(sid, {})[state] = n
        return [self._public(r, counts.get(r["id"], {})) for r in rows]

    def _public(self, row: Any, counts: Mapping[str, int]) -> dict[str, Any]:
        spec = row["spec"]
        best_value, best_trial = self._best_of(row)
        elapsed = row["elapsed"] + ((time.time() - row["resumed_at"]) if row["status"] == "running"
                                    and row["resumed_at"] else 0.0)
        return {
            "id": row["id"], "name": row["name"], "team_id": row["team_id"], "owner": row["owner"],
            "status": row["status"], "reason": row["reason"], "created_at": row["created_at"],
            "updated_at": row["updated_at"], "ended_at": row["ended_at"], "elapsed": elapsed,
            "objective": spec["objective"], "sampler": spec["algorithm"]["sampler"],
            "pruner": spec["algorithm"]["pruner"], "budget": spec["budget"],
            "trials": dict(counts), "launched": sum(counts.values()),
            "best_value": best_value, "best_trial": best_trial,
        }

    def _best_of(self, row: Mapping[str, Any]) -> tuple[float | None, int | None]:
        maximize = row["spec"]["objective"]["direction"] == "maximize"
        order = trials.c.value.desc() if maximize else trials.c.value.asc()
        with self.engine.connect() as conn:
            best = conn.execute(select(trials.c.number, trials.c.value).where(
                trials.c.study_id == row["id"], trials.c.state == "complete", trials.c.value.is_not(None))
                .order_by(order).limit(1)).first()
        return (float(best.value), int(best.number)) if best is not None else (None, None)

    def get(self, study_id: int) -> dict[str, Any]:
        row = self._row(study_id)
        with self.engine.connect() as conn:
            counts: dict[str, int] = dict(conn.execute(select(trials.c.state, func.count()).where(  # type: ignore[arg-type]
                trials.c.study_id == study_id).group_by(trials.c.state)).all())
        out = self._public(row, counts)
        out["spec"] = row["spec"]
        return out

    def trials(self, study_id: int, *, sort: str = "number", limit: int | None = None,
               offset: int = 0) -> list[dict[str, Any]]:
        """The study's trials with their parameters, value, state and session."""
        self._row(study_id)
        desc = sort.startswith("-")
        column = {"number": trials.c.number, "value": trials.c.value, "state": trials.c.state,
                  "created_at": trials.c.created_at, "compute_s": trials.c.compute_s,
                  "last_step": trials.c.last_step}.get(sort.lstrip("-"))
        if column is None:
            raise InvalidInput(f"sort {sort!r} is unknown; use number, value, state, created_at, compute_s or "
                               "last_step, with '-' for descending")
        query = select(trials).where(trials.c.study_id == study_id).order_by(
            column.desc() if desc else column.asc(), trials.c.number).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [self._trial_public(r._mapping) for r in rows]

    @staticmethod
    def _trial_public(r: Any) -> dict[str, Any]:
        return {"number": r["number"], "session_id": r["session_id"], "state": r["state"], "params": r["params"],
                "value": r["value"], "last_step": r["last_step"], "steps": r["steps"],
                "parent_trial": r["parent_trial"], "reason": r["reason"], "created_at": r["created_at"],
                "ended_at": r["ended_at"], "compute_s": r["compute_s"]}

    def best(self, study_id: int) -> dict[str, Any]:
        row = self._row(study_id)
        _, number = self._best_of(row)
        if number is None:
            raise NotFound(f"study {row['name']!r} has no completed trial yet")
        with self.engine.connect() as conn:
            r = conn.execute(select(trials).where(trials.c.study_id == study_id, trials.c.number == number)).one()
        return self._trial_public(r._mapping)

    def intermediate(self, study_id: int, *, limit: int = 500) -> list[dict[str, Any]]:
        """Each trial's intermediate values (step, value) and its state, the newest ``limit`` trials."""
        self._row(study_id)  # NotFound for a missing study
        with self.engine.connect() as conn:
            rows = conn.execute(select(trials.c.number, trials.c.optuna_trial_id, trials.c.state)
                                .where(trials.c.study_id == study_id)
                                .order_by(trials.c.number.desc()).limit(limit)).all()
        out = []
        for r in reversed(rows):
            frozen = self.storage.get_trial(r.optuna_trial_id)
            points = sorted(frozen.intermediate_values.items())
            out.append({"number": r.number, "state": r.state, "steps": [int(s) for s, _ in points],
                        "values": [float(v) for _, v in points]})
        return out

    def importances(self, study_id: int, *, evaluator: str = "ped-anova") -> dict[str, float]:
        """Parameter importances over the completed trials (PED-ANOVA, or Optuna's fANOVA)."""
        import optuna

        loaded = self._studies.get(study_id) or self._load(study_id)
        complete = loaded.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if len(complete) < 2:
            return {}
        if evaluator == "fanova":
            ev: Any = optuna.importance.FanovaImportanceEvaluator(seed=0)
        else:
            ev = optuna.importance.PedAnovaImportanceEvaluator()
        try:
            return {k: float(v) for k, v in optuna.importance.get_param_importances(loaded.study, evaluator=ev).items()}
        except (ValueError, RuntimeError, ZeroDivisionError):  # too few distinct values to tell
            return {}

    def export(self, study_id: int, fmt: str = "csv") -> str:
        rows = self.trials(study_id)
        if fmt == "json":
            return json.dumps({"study": self.get(study_id), "trials": rows}, indent=2, sort_keys=True)
        if fmt != "csv":
            raise InvalidInput(f"format {fmt!r} is unknown; use csv or json")
        names = sorted({k for r in rows for k in r["params"]})
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["number", "state", "value", *names, "last_step", "compute_s", "session_id", "parent_trial"])
        for r in rows:
            writer.writerow([r["number"], r["state"], r["value"], *[r["params"].get(n, "") for n in names],
                             r["last_step"], r["compute_s"], r["session_id"], r["parent_trial"]])
        return out.getvalue()

    # ------------------------------------------------------------------ changing a study
    def stop(self, study_id: int) -> dict[str, Any]:
        """Stop launching; running trials are paused (they save and exit) so a resume continues them."""
        with self._lock:
            row = self._row(study_id)
            if row["status"] != "running":
                raise Conflict(f"study {row['name']!r} is {row['status']}, not running; nothing to stop")
            loaded = self._studies.get(study_id)
            for live in list(loaded.live.values()) if loaded else []:
                self._pause_quietly(live.session_id)
            self._set_status(row, "stopped", "stopped by request; `haneul tune resume` continues it")
        return self.get(study_id)

    def resume(self, study_id: int) -> dict[str, Any]:
        """Run a stopped (or finished) study again: its paused trials resume and new ones launch while
        budget is left (raise it with :meth:`edit` to extend a finished study)."""
        with self._lock:
            row = self._row(study_id)
            if row["status"] == "running":
                raise Conflict(f"study {row['name']!r} is already running")
            now = time.time()
            with self.engine.begin() as conn:
                conn.execute(update(studies).where(studies.c.id == study_id).values(
                    status="running", reason=None, ended_at=None, resumed_at=now, updated_at=now))
            loaded = self._load(study_id)
            for live in loaded.live.values():
                try:
                    if self.platform.status(live.session_id) == "paused":
                        self.platform.resume_session(live.session_id)
                except (NotFound, Conflict):
                    pass
        self.wake()
        return self.get(study_id)

    def edit(self, study_id: int, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Narrow or widen the space, change the budget or concurrency: trials launched from now on follow."""
        with self._lock:
            row = self._row(study_id)
            spec = StudySpec.from_dict(row["spec"]).edited(changes)
            with self.engine.begin() as conn:
                conn.execute(update(studies).where(studies.c.id == study_id).values(
                    spec=spec.to_dict(), updated_at=time.time()))
            loaded = self._studies.get(study_id)
            if loaded is not None:
                loaded.spec = spec
                loaded.row = dict(self._row(study_id))
                if spec.algorithm.sampler == "grid":
                    loaded.study.sampler = spec.sampler()
        self.wake()
        return self.get(study_id)

    def enqueue(self, study_id: int, params: Mapping[str, Any]) -> dict[str, Any]:
        """Queue a hand-written trial: the next trial launched uses these parameters."""
        with self._lock:
            row = self._row(study_id)
            spec = StudySpec.from_dict(row["spec"])
            checked = spec.check_params(params)
            loaded = self._studies.get(study_id) or self._load(study_id)
            loaded.study.enqueue_trial(checked, skip_if_exists=False)
        self.wake()
        return {"study": study_id, "params": checked, "queued": True}

    def delete(self, study_id: int) -> None:
        """Stop a study's active trials and forget it (its sessions stay on the platform)."""
        with self._lock:
            row = self._row(study_id)
            self._studies.pop(study_id, None)
            with self.engine.connect() as conn:
                active = conn.execute(select(trials.c.session_id).where(
                    trials.c.study_id == study_id, trials.c.state == "running")).scalars().all()
            for sid in active:
                self._stop_quietly(sid)
            with self.engine.begin() as conn:
                conn.execute(delete(trials).where(trials.c.study_id == study_id))
                conn.execute(delete(studies).where(studies.c.id == study_id))
            try:
                self.storage.delete_study(row["optuna_id"])
            except KeyError:
                pass

    # ------------------------------------------------------------------ define-by-run
    def suggest(self, session_id: int, name: str, distribution: Mapping[str, Any]) -> Any:
        """A value for ``haneul.param(name, ...)`` called inside a trial's session: sampled by the
        study's sampler (the same value again when the trial asks twice, as after a resume)."""
        from haneul.tune.spec import Param

        with self._lock:
            with self.engine.connect() as conn:
                r = conn.execute(select(trials).where(trials.c.session_id == session_id)).first()
            if r is None:
                raise NotFound(f"session {session_id} is not a trial of any study")
            param = Param.parse(name, dict(distribution))
            loaded = self._studies.get(r.study_id) or self._load(r.study_id)
            import optuna

            trial = optuna.trial.Trial(loaded.study, r.optuna_trial_id)
            if param.type == "categorical":
                value = trial.suggest_categorical(name, list(param.choices))
            elif param.type == "int":
                value = trial.suggest_int(name, int(param.low), int(param.high), step=int(param.step or 1),  # type: ignore[arg-type]
                                          log=param.log)
            else:
                value = trial.suggest_float(name, param.low, param.high, step=param.step, log=param.log)  # type: ignore[arg-type]
            params = {**r.params, name: value}
            with self.engine.begin() as conn:
                conn.execute(update(trials).where(trials.c.id == r.id).values(params=params))
        return value

    # ------------------------------------------------------------------ the loop
    def tick(self) -> None:
        with self._lock:
            for loaded in list(self._studies.values()):
                try:
                    self._tick_study(loaded)
                    loaded.errors = 0
                except NotFound:  # deleted under us
                    self._studies.pop(loaded.id, None)
                except Exception as exc:  # this study's problem: the others go on
                    loaded.errors += 1
                    if loaded.errors >= _MAX_TICK_ERRORS:
                        message = f"{exc.__class__.__name__}: {exc}".splitlines()[0][:300]
                        self._set_status(self._row(loaded.id), "failed", f"the controller failed on this study "
                                         f"{loaded.errors} times in a row: {message}; resume it to try again")
                        self._studies.pop(loaded.id, None)
                    else:
                        traceback.print_exc()

    def _tick_study(self, loaded: _Study) -> None:
        row = loaded.row
        spec = loaded.spec
        for live in list(loaded.live.values()):
            self._feed(loaded, live)
        if spec.pbt is not None and row["status"] == "running":
            from haneul.tune.pbt import pbt_step

            pbt_step(self, loaded)
        for live in list(loaded.live.values()):
            self._settle_if_ended(loaded, live)
        if row["status"] != "running":
            if not loaded.live:
                self._studies.pop(loaded.id, None)
            return
        if loaded.failures >= spec.budget.max_failures:
            last = self._last_failure(loaded.id)
            self._set_status(row, "failed", f"{spec.budget.max_failures} trials in a row failed; the last: {last}")
            return
        elapsed = row["elapsed"] + (time.time() - (row["resumed_at"] or time.time()))
        if spec.budget.wall_time is not None and elapsed >= spec.budget.wall_time:
            for live in list(loaded.live.values()):
                live.stopping, live.stop_reason = "stopped", "the study's wall time was spent"
                self._stop_quietly(live.session_id)
            self._set_status(row, "done", f"wall time of {spec.budget.wall_time:g} s spent")
            return
        if spec.budget.trial_time is not None:
            self._enforce_trial_time(loaded, spec.budget.trial_time)
        launched = loaded.launched
        if spec.pbt is None:
            while len(loaded.live) < spec.budget.concurrent and launched < spec.budget.trials:
                if not self._launch(loaded, row):
                    return
                launched += 1
        else:
            from haneul.tune.pbt import fill_population

            launched += fill_population(self, loaded, row, launched)
        if not loaded.live and (launched >= spec.budget.trials or spec.pbt is not None):
            self._set_status(row, "done", f"{launched} trials run; the budget is spent" if spec.pbt is None
                             else "the population finished")

    def _feed(self, loaded: _Study, live: _Live) -> None:
        """Pass the objective's new values to Optuna and ask the pruner about the trial."""
        key = loaded.spec.objective.metric
        try:
            updates, cursor = self.platform.metric_updates(live.session_id, after_id=live.cursor, keys=[key])
        except NotFound:
            return
        live.cursor = cursor
        fresh = False
        for group in updates:
            for step, value in zip(group["steps"], group["values"], strict=True):
                step = int(step)
                if not math.isfinite(value):
                    live.nan_seen = True
                    continue
                if step in live.reported:
                    continue
                live.reported.add(step)
                live.values[step] = float(value)
                self.storage.set_trial_intermediate_value(live.optuna_id, step, float(value))
                fresh = True
        if not fresh:
            return
        last_step = max(live.values)
        with self.engine.begin() as conn:
            conn.execute(update(trials).where(trials.c.id == live.row_id).values(
                last_step=last_step, steps=len(live.values)))
        if live.pruning or live.stopping or loaded.spec.pbt is not None:
            return
        frozen = self.storage.get_trial(live.optuna_id)
        if loaded.study.pruner.prune(loaded.study, frozen):
            live.pruning = True
            self._stop_quietly(live.session_id)

    def _settle_if_ended(self, loaded: _Study, live: _Live) -> None:
        import optuna

        try:
            session = self.platform.session_state(live.session_id)
            if session["status"] in ACTIVE_SESSION:
                return
        except NotFound:
            session = {"status": "lost", "reason": "its session was deleted", "started_at": None, "ended_at": None}
        status = session["status"]
        # a prune decided only from the points that arrived with the end stopped nothing: the trial ran
        # to its end, and it is settled by how its session ended
        asked_to_prune = live.pruning
        self._feed(loaded, live)  # the points that arrived with the end
        spec = loaded.spec
        value = self._final_value(spec, live)
        state = optuna.trial.TrialState.FAIL
        reason: str | None = None
        if asked_to_prune:
            ours, state = "pruned", optuna.trial.TrialState.PRUNED
            last = max(live.values) if live.values else None
            reason = f"pruned at step {last}" if last is not None else "pruned"
        elif live.stopping is not None:
            ours, reason = live.stopping, live.stop_reason
            if ours == "replaced" and value is not None:
                state = optuna.trial.TrialState.COMPLETE
        elif status == "done":
            if value is not None:
                ours, state = "complete", optuna.trial.TrialState.COMPLETE
            elif live.nan_seen:
                ours, reason = "failed", f"the objective {spec.objective.metric!r} was NaN or infinite"
            else:
                ours = "failed"
                reason = (f"finished without reporting the objective {spec.objective.metric!r}; report it with "
                          f"haneul.report({spec.objective.metric.replace('/', '_')}=...) or fix objective.metric")
        elif status == "stopped":
            ours, reason = "stopped", session.get("reason") or "its session was stopped"
        else:
            ours = "failed"
            code = session.get("exit_code")
            why = session.get("reason") or (f"exit code {code}" if code is not None else "no reason given")
            reason = f"session {live.session_id} {status} ({why}){self._last_line(live.session_id)}; " \
                     f"see `haneul logs {live.session_id}`"
        told_value = value if state == optuna.trial.TrialState.COMPLETE else None
        try:
            self.storage.set_trial_state_values(live.optuna_id, state,
                                                [told_value] if told_value is not None else None)
        except (RuntimeError, ValueError):  # already finished (told before a restart)
            pass
        started, ended = session.get("started_at"), session.get("ended_at") or time.time()
        with self.engine.begin() as conn:
            conn.execute(update(trials).where(trials.c.id == live.row_id).values(
                state=ours, value=value if ours in ("complete", "replaced") else None, reason=reason,
                ended_at=time.time(), compute_s=(ended - started) if started else None))
        loaded.live.pop(live.row_id, None)
        if ours == "failed":
            loaded.failures += 1
        elif ours in ("complete", "pruned", "replaced"):
            loaded.failures = 0

    def _last_line(self, session_id: int) -> str:
        """``: <the last line of its log>``, which for a crash is the exception."""
        try:
            lines, _ = self.platform.tail_log(session_id, lines=5)
        except (NotFound, OSError):
            return ""
        text = [line.strip() for line in lines if line.strip()]
        return f": {text[-1][:200]}" if text else ""

    @staticmethod
    def _final_value(spec: StudySpec, live: _Live) -> float | None:
        if not live.values:
            return None
        if spec.objective.use == "best":
            pick = max if spec.objective.direction == "maximize" else min
            return pick(live.values.values())
        return live.values[max(live.values)]

    def _launch(self, loaded: _Study, row: Mapping[str, Any], *, params: Mapping[str, Any] | None = None,
                parent: _Live | None = None, checkpoint: str | None = None) -> bool:
        """Ask Optuna for a trial and start its session; False (and the study failed) when that cannot be."""
        spec = loaded.spec
        if params is not None:
            loaded.study.enqueue_trial(dict(params), skip_if_exists=False)
        trial = loaded.study.ask()
        try:
            chosen = spec.sample(trial)
            command, env = spec.render(chosen)
            common = dict(name=f"{spec.name}#{trial.number}", priority=spec.priority, preemptible=True,
                          params=chosen, tags={"study": spec.name, "trial": str(trial.number)})
            if parent is not None:
                session = self.platform.fork_session(parent.session_id, checkpoint=checkpoint, env=env,
                                                     command=command, brief=True, **common)  # type: ignore[arg-type]
            else:
                session = self.platform.create_session(
                    command=command, env=env, cwd=spec.cwd, snapshot=spec.cwd is not None, owner=row["owner"],
                    team_id=row["team_id"], cpus=spec.budget.cpus, gpus=spec.budget.gpus,
                    memory=spec.budget.memory, project=f"tune-{spec.name}", brief=True, **common)  # type: ignore[arg-type]
        except Exception as exc:
            self.storage.set_trial_state_values(trial._trial_id, optuna_fail())
            message = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
            self._set_status(row, "failed", f"could not start trial {trial.number}: {message}")
            return False
        now = time.time()
        with self.engine.begin() as conn:
            rid = conn.execute(insert(trials).values(
                study_id=loaded.id, number=trial.number, optuna_trial_id=trial._trial_id, session_id=session["id"],
                state="running", params=chosen, steps=0, created_at=now,
                parent_trial=parent.number if parent is not None else None,
            )).inserted_primary_key[0]  # type: ignore[index]
        loaded.live[int(rid)] = _Live(int(rid), trial.number, trial._trial_id, int(session["id"]))
        loaded.launched += 1
        return True

    def _enforce_trial_time(self, loaded: _Study, limit: float) -> None:
        for live in loaded.live.values():
            if live.stopping or live.pruning:
                continue
            try:
                s = self.platform.session_state(live.session_id)
            except NotFound:
                continue
            if s["status"] == "running" and s.get("started_at") and time.time() - s["started_at"] > limit:
                live.stopping, live.stop_reason = "failed", f"ran past the trial time limit of {limit:g} s"
                self._stop_quietly(live.session_id)

    def _launched(self, study_id: int) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(trials).where(trials.c.study_id == study_id))
                       .scalar_one())

    def _failures_in_a_row(self, study_id: int) -> int:
        with self.engine.connect() as conn:
            states = conn.execute(select(trials.c.state).where(
                trials.c.study_id == study_id, trials.c.state.in_(("complete", "pruned", "failed", "replaced")))
                .order_by(trials.c.ended_at.desc()).limit(100)).scalars().all()
        n = 0
        for state in states:
            if state != "failed":
                break
            n += 1
        return n

    def _last_failure(self, study_id: int) -> str:
        with self.engine.connect() as conn:
            reason = conn.execute(select(trials.c.reason).where(trials.c.study_id == study_id,
                                                                trials.c.state == "failed")
                                  .order_by(trials.c.ended_at.desc()).limit(1)).scalar_one_or_none()
        return reason or "no reason recorded"

    def _set_status(self, row: Mapping[str, Any], status: str, reason: str | None) -> None:
        now = time.time()
        values: dict[str, Any] = {"status": status, "reason": reason, "updated_at": now}
        if row["status"] == "running" and status != "running":
            values["elapsed"] = row["elapsed"] + (now - (row["resumed_at"] or now))
            values["ended_at"] = now
        with self.engine.begin() as conn:
            conn.execute(update(studies).where(studies.c.id == row["id"]).values(**values))
        loaded = self._studies.get(row["id"])
        if loaded is not None:
            loaded.row = dict(self._row(row["id"]))

    def _stop_quietly(self, session_id: int) -> None:
        try:
            self.platform.stop_session(session_id, grace=_STOP_GRACE, brief=True)
        except (NotFound, Conflict):
            pass

    def _pause_quietly(self, session_id: int) -> None:
        try:
            self.platform.pause_session(session_id)
        except (NotFound, Conflict):
            pass


def optuna_fail() -> Any:
    import optuna

    return optuna.trial.TrialState.FAIL
