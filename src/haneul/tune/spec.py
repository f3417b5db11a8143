"""A study file: what to run, what to search, what to optimise, how much to spend.

A study is written in YAML and needs no change to the training code::

    name: hgp-lastfm
    command: haneul rec train --data data/lastfm --lr {lr} --dim {dim} --epochs 30
    objective: {metric: val/recall@10, direction: maximize}
    space:
      lr: {type: float, low: 1.0e-4, high: 1.0e-1, log: true}
      dim: {type: int, low: 16, high: 128, step: 16}
      loss: {type: categorical, choices: [bpr, bce]}
      alpha: {type: float, low: 0.05, high: 0.5, when: {loss: bce}}   # only sampled when loss is bce
    budget: {trials: 40, concurrent: 2, cpus: 1, wall_time: 2h, max_failures: 5}
    algorithm: {sampler: tpe, pruner: asha, seed: 0}

A parameter reaches the command as its ``{name}`` placeholder; one without a placeholder is appended
as ``--name=value`` (``pass: env`` leaves the command alone). Every trial also gets its parameters as
``HANEUL_PARAM_<NAME>`` variables and as JSON in ``HANEUL_TRIAL_PARAMS``, which is what
``haneul.param()`` reads. The objective is the metric the code reports with ``haneul.report``; its
reported values are the pruner's intermediate values, and the trial's value is the last one
(``use: best`` takes the best).
"""

from __future__ import annotations

import json
import math
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from haneul.errors import InvalidInput

if TYPE_CHECKING:
    import optuna

__all__ = ["Param", "StudySpec", "SAMPLERS", "PRUNERS", "parse_duration"]

SAMPLERS = ("tpe", "random", "grid", "cmaes", "gp", "pbt")
PRUNERS = ("none", "median", "asha", "hyperband")
PARAM_TYPES = ("float", "int", "categorical")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
_STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.-]*)\}")
_TOP_KEYS = {"name", "command", "cwd", "env", "objective", "space", "budget", "algorithm", "pbt", "priority",
             "pass", "description", "enqueue"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")


def parse_duration(value: Any, what: str) -> float | None:
    """Seconds from ``90``, ``"90s"``, ``"15m"``, ``"2h"`` or ``"1d"``; ``None`` stays ``None``."""
    if value is None:
        return None
    match = _DURATION.match(str(value))
    if match is None or isinstance(value, bool):
        raise InvalidInput(f"{what} {value!r} is not a duration; write seconds or e.g. 90s, 15m, 2h, 1d")
    seconds = float(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2) or "s"]
    if seconds <= 0:
        raise InvalidInput(f"{what} must be positive, got {value!r}")
    return seconds


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidInput(f"{what} {value!r} is not a number")
    try:
        out = float(value)
    except ValueError:
        raise InvalidInput(f"{what} {value!r} is not a number") from None
    if not math.isfinite(out):
        raise InvalidInput(f"{what} must be a finite number, got {value!r}")
    return out


@dataclass(frozen=True)
class Param:
    """One dimension of the search space."""

    name: str
    type: str  # float | int | categorical
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()
    when: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)  # sampled only when these params match
    values: tuple[Any, ...] = ()  # grid points of a float (grid sampler)

    @classmethod
    def parse(cls, name: str, raw: Any) -> Param:
        where = f"space.{name}"
        if not _NAME.match(str(name)):
            raise InvalidInput(f"parameter name {name!r} is not valid; use letters, digits, '_', '.' and '-'")
        if not isinstance(raw, Mapping):
            raise InvalidInput(f"{where} must be a mapping like {{type: float, low: 0.001, high: 0.1}}")
        unknown = set(raw) - {"type", "low", "high", "log", "step", "choices", "when", "values"}
        if unknown:
            raise InvalidInput(f"{where} has unknown field(s) {', '.join(sorted(map(str, unknown)))}; "
                               "use type, low, high, log, step, choices, values, when")
        kind = str(raw.get("type", "categorical" if "choices" in raw else "float"))
        if kind not in PARAM_TYPES:
            raise InvalidInput(f"{where}.type {kind!r} is unknown; use one of {', '.join(PARAM_TYPES)}")
        when = {}
        for key, allowed in dict(raw.get("when") or {}).items():
            when[str(key)] = tuple(allowed) if isinstance(allowed, (list, tuple)) else (allowed,)
        if kind == "categorical":
            choices = raw.get("choices")
            if not isinstance(choices, (list, tuple)) or not choices:
                raise InvalidInput(f"{where} is categorical but has no choices; give choices: [a, b]")
            for c in choices:
                if not (c is None or isinstance(c, (str, int, float, bool))):
                    raise InvalidInput(f"{where}.choices holds {c!r}; choices must be strings, numbers or booleans")
            if len(set(map(repr, choices))) != len(choices):
                raise InvalidInput(f"{where}.choices has duplicates")
            return cls(name, kind, choices=tuple(choices), when=when)
        if "low" not in raw or "high" not in raw:
            raise InvalidInput(f"{where} is {kind} and needs low and high")
        low, high = _number(raw["low"], f"{where}.low"), _number(raw["high"], f"{where}.high")
        log = bool(raw.get("log", False))
        step = None if raw.get("step") is None else _number(raw["step"], f"{where}.step")
        if kind == "int":
            if low != int(low) or high != int(high):
                raise InvalidInput(f"{where} is int but low/high are not whole numbers ({raw['low']}, {raw['high']})")
            step = 1 if step is None else step
            if step != int(step) or step < 1:
                raise InvalidInput(f"{where}.step must be a whole number >= 1")
        if low > high or (low == high and kind == "float"):
            raise InvalidInput(f"{where} has an empty range: low {raw['low']} must be below high {raw['high']}")
        if log and low <= 0:
            raise InvalidInput(f"{where} is log-scaled, so low must be > 0 (got {raw['low']})")
        if log and step not in (None, 1):
            raise InvalidInput(f"{where} cannot be both log-scaled and stepped; drop one")
        if step is not None and step <= 0:
            raise InvalidInput(f"{where}.step must be positive")
        values = tuple(_number(v, f"{where}.values") for v in raw.get("values") or ())
        if any(not low <= v <= high for v in values):
            raise InvalidInput(f"{where}.values must lie within [{raw['low']}, {raw['high']}]")
        return cls(name, kind, low=low, high=high, log=log, step=step, when=when, values=values)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.type == "categorical":
            out["choices"] = list(self.choices)
        else:
            low, high = (int(self.low), int(self.high)) if self.type == "int" else (self.low, self.high)  # type: ignore[arg-type]
            out.update(low=low, high=high)
            if self.log:
                out["log"] = True
            if self.step is not None and not (self.type == "int" and self.step == 1):
                out["step"] = int(self.step) if self.type == "int" else self.step
            if self.values:
                out["values"] = list(self.values)
        if self.when:
            out["when"] = {k: list(v) for k, v in self.when.items()}
        return out

    def distribution(self) -> optuna.distributions.BaseDistribution:
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.type == "categorical":
            return CategoricalDistribution(list(self.choices))
        if self.type == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))  # type: ignore[arg-type]
        return FloatDistribution(self.low, self.high, log=self.log, step=self.step)  # type: ignore[arg-type]

    def grid(self) -> list[Any]:
        """This parameter's points for the grid sampler."""
        if self.type == "categorical":
            return list(self.choices)
        if self.values:
            return list(self.values)
        if self.type == "int":
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))  # type: ignore[arg-type]
        if self.step is not None:
            n = int(round((self.high - self.low) / self.step))  # type: ignore[operator]
            return [self.low + i * self.step for i in range(n + 1)]  # type: ignore[operator]
        raise InvalidInput(f"space.{self.name} is a continuous float; the grid sampler needs its points: "
                           "give step or values")

    def active(self, chosen: Mapping[str, Any]) -> bool:
        return all(key in chosen and chosen[key] in allowed for key, allowed in self.when.items())

    def contains(self, value: Any) -> bool:
        if self.type == "categorical":
            return value in self.choices
        try:
            v = float(value)
        except (TypeError, ValueError):
            return False
        return self.low <= v <= self.high  # type: ignore[operator]


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: str = "minimize"  # minimize | maximize
    use: str = "last"  # last | best: which reported value is the trial's

    def better(self, a: float, b: float) -> bool:
        return a > b if self.direction == "maximize" else a < b


@dataclass(frozen=True)
class Budget:
    trials: int = 20
    concurrent: int = 1
    cpus: float = 1.0
    gpus: int = 0
    memory: str | None = None
    wall_time: float | None = None  # seconds for the whole study
    trial_time: float | None = None  # seconds a trial may run before it is stopped
    max_failures: int = 5  # consecutive failed trials that stop the study


@dataclass(frozen=True)
class Algorithm:
    sampler: str = "tpe"
    pruner: str = "none"
    seed: int | None = None
    sampler_args: Mapping[str, Any] = field(default_factory=dict)
    pruner_args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PBT:
    population: int = 4
    interval: int = 5  # steps of the objective between exploit/explore decisions
    quantile: float = 0.25  # bottom fraction replaced by copies of the top fraction
    factors: tuple[float, float] = (0.8, 1.2)  # a float/int is multiplied by one of these
    resample: float = 0.25  # probability that a parameter is drawn afresh instead


@dataclass(frozen=True)
class StudySpec:
    name: str
    command: tuple[str, ...]
    objective: Objective
    space: Mapping[str, Param]
    budget: Budget = field(default_factory=Budget)
    algorithm: Algorithm = field(default_factory=Algorithm)
    pbt: PBT | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    priority: int = 0
    pass_as: str = "args"  # args | env: how a parameter without a placeholder reaches the code
    description: str = ""
    enqueue: tuple[Mapping[str, Any], ...] = ()  # hand-written trials run first, in order

    # ------------------------------------------------------------------ reading
    @classmethod
    def load(cls, path: str | Path, *, name: str | None = None) -> StudySpec:
        """Read a study file; a relative ``cwd`` is taken from the file's folder (default: that folder)."""
        import yaml

        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InvalidInput(f"cannot read study file {path}: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            where = getattr(exc, "problem_mark", None)
            at = f" at line {where.line + 1}" if where is not None else ""
            raise InvalidInput(f"study file {path} is not valid YAML{at}: {getattr(exc, 'problem', exc)}") from None
        if not isinstance(raw, Mapping):
            raise InvalidInput(f"study file {path} must be a YAML mapping with command, objective and space")
        raw = dict(raw)
        if name:
            raw["name"] = name
        raw.setdefault("name", path.stem)
        cwd = Path(str(raw.get("cwd", ".")))
        raw["cwd"] = str((path.resolve().parent / cwd).resolve()) if not cwd.is_absolute() else str(cwd)
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> StudySpec:
        """Validate a parsed study; every problem is one :class:`InvalidInput` naming the field."""
        if not isinstance(raw, Mapping):
            raise InvalidInput("a study must be a mapping with command, objective and space")
        unknown = set(raw) - _TOP_KEYS
        if unknown:
            raise InvalidInput(f"study has unknown field(s) {', '.join(sorted(map(str, unknown)))}; "
                               f"known: {', '.join(sorted(_TOP_KEYS))}")
        name = str(raw.get("name") or "")
        if not _STUDY_NAME.match(name):
            raise InvalidInput(f"study name {name!r} is not valid; use letters, digits, '_', '.' and '-' (<= 100)")
        command = raw.get("command")
        if isinstance(command, str):
            try:
                command = shlex.split(command)
            except ValueError as exc:
                raise InvalidInput(f"command cannot be split into arguments: {exc}") from None
        if not isinstance(command, (list, tuple)) or not command or not all(isinstance(c, (str, int, float)) for c in command):
            raise InvalidInput("command must be a string or a list of strings, e.g. python train.py --lr {lr}")
        command = tuple(str(c) for c in command)

        obj = raw.get("objective")
        if isinstance(obj, str):
            obj = {"metric": obj}
        if not isinstance(obj, Mapping) or not obj.get("metric"):
            raise InvalidInput("objective must name the metric the code reports, e.g. "
                               "objective: {metric: val/loss, direction: minimize}")
        direction = str(obj.get("direction", "minimize"))
        if direction not in ("minimize", "maximize"):
            raise InvalidInput(f"objective.direction {direction!r} must be minimize or maximize")
        use = str(obj.get("use", "last"))
        if use not in ("last", "best"):
            raise InvalidInput(f"objective.use {use!r} must be last or best")
        objective = Objective(str(obj["metric"]), direction, use)

        space_raw = raw.get("space")
        if not isinstance(space_raw, Mapping) or not space_raw:
            raise InvalidInput("space must map each parameter to its range, e.g. "
                               "space: {lr: {type: float, low: 0.0001, high: 0.1, log: true}}")
        space = {str(k): Param.parse(str(k), v) for k, v in space_raw.items()}
        for p in space.values():
            for key, allowed in p.when.items():
                if key not in space or key == p.name:
                    raise InvalidInput(f"space.{p.name}.when names {key!r}, which is not another parameter")
                if any(not space[key].contains(a) for a in allowed):
                    raise InvalidInput(f"space.{p.name}.when: {list(allowed)} is not within space.{key}")
                if list(space).index(key) > list(space).index(p.name):
                    raise InvalidInput(f"space.{p.name} depends on {key!r}, so {key!r} must come before it")

        budget = _budget(raw.get("budget") or {})
        algorithm = _algorithm(raw.get("algorithm") or {})
        pbt = None
        if algorithm.sampler == "pbt" or raw.get("pbt") is not None:
            pbt = _pbt(raw.get("pbt") or {})
            if algorithm.sampler != "pbt":
                algorithm = replace(algorithm, sampler="pbt")
            if algorithm.pruner != "none":
                raise InvalidInput("PBT replaces poor trials itself; drop algorithm.pruner (or use another sampler)")
        if algorithm.sampler == "grid":
            for p in space.values():
                p.grid()  # raises for a continuous float
                if p.when:
                    raise InvalidInput(f"space.{p.name}: the grid sampler does not take conditional parameters")

        env = raw.get("env") or {}
        if not isinstance(env, Mapping):
            raise InvalidInput("env must be a mapping of variable names to values")
        pass_as = str(raw.get("pass", "args"))
        if pass_as not in ("args", "env"):
            raise InvalidInput(f"pass {pass_as!r} must be args or env")
        for token in command:
            for ref in _PLACEHOLDER.findall(token):
                if ref not in space:
                    raise InvalidInput(f"command uses {{{ref}}}, which is not a parameter of the space")
        try:
            priority = int(raw.get("priority", 0))
        except (TypeError, ValueError):
            raise InvalidInput(f"priority {raw.get('priority')!r} must be a whole number") from None
        cwd = raw.get("cwd")
        enqueue = raw.get("enqueue") or []
        if not isinstance(enqueue, (list, tuple)) or not all(isinstance(e, Mapping) for e in enqueue):
            raise InvalidInput("enqueue must be a list of parameter mappings, e.g. [{lr: 0.01, dim: 64}]")
        out = cls(name=name, command=command, objective=objective, space=space, budget=budget,
                   algorithm=algorithm, pbt=pbt, env={str(k): str(v) for k, v in env.items()},
                   cwd=str(cwd) if cwd else None, priority=priority, pass_as=pass_as,
                   description=str(raw.get("description") or ""))
        for i, params in enumerate(enqueue):
            try:
                out.check_params(params)
            except InvalidInput as exc:
                raise InvalidInput(f"enqueue[{i}]: {exc}") from None
        return replace(out, enqueue=tuple(dict(e) for e in enqueue))

    def to_dict(self) -> dict[str, Any]:
        b, a = self.budget, self.algorithm
        out: dict[str, Any] = {
            "name": self.name, "command": list(self.command),
            "objective": {"metric": self.objective.metric, "direction": self.objective.direction,
                          "use": self.objective.use},
            "space": {name: p.to_dict() for name, p in self.space.items()},
            "budget": {"trials": b.trials, "concurrent": b.concurrent, "cpus": b.cpus, "gpus": b.gpus,
                       "memory": b.memory, "wall_time": b.wall_time, "trial_time": b.trial_time,
                       "max_failures": b.max_failures},
            "algorithm": {"sampler": a.sampler, "pruner": a.pruner, "seed": a.seed,
                          "sampler_args": dict(a.sampler_args), "pruner_args": dict(a.pruner_args)},
            "env": dict(self.env), "cwd": self.cwd, "priority": self.priority, "pass": self.pass_as,
            "description": self.description,
        }
        if self.enqueue:
            out["enqueue"] = [dict(e) for e in self.enqueue]
        if self.pbt is not None:
            p = self.pbt
            out["pbt"] = {"population": p.population, "interval": p.interval, "quantile": p.quantile,
                          "factors": list(p.factors), "resample": p.resample}
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def edited(self, changes: Mapping[str, Any]) -> StudySpec:
        """This study with ``changes`` applied: ``space`` (parameters replaced or added by name; a
        parameter mapped to ``null`` is removed) and ``budget`` fields (trials, concurrent, ...). The
        command, objective and algorithm of a running study do not change."""
        allowed = {"space", "budget", "description", "priority"}
        unknown = set(changes) - allowed
        if unknown:
            raise InvalidInput(f"a running study can change only {', '.join(sorted(allowed))}, not "
                               f"{', '.join(sorted(unknown))}; start a new study for the rest")
        raw = self.to_dict()
        raw.pop("enqueue", None)  # hand-written trials were queued at creation; they need not fit a new space
        if "space" in changes:
            if not isinstance(changes["space"], Mapping):
                raise InvalidInput("space must map parameter names to ranges")
            for key, value in changes["space"].items():
                if value is None:
                    raw["space"].pop(key, None)
                else:
                    raw["space"][key] = value
        if "budget" in changes:
            if not isinstance(changes["budget"], Mapping):
                raise InvalidInput("budget must be a mapping, e.g. {trials: 60, concurrent: 3}")
            raw["budget"] = {**raw["budget"], **changes["budget"]}
        for key in ("description", "priority"):
            if key in changes:
                raw[key] = changes[key]
        new = StudySpec.from_dict(raw)
        for name, p in new.space.items():
            old = self.space.get(name)
            if old is not None and (old.type != p.type or old.log != p.log or
                                    (p.type == "categorical" and old.choices != p.choices and
                                     not set(old.choices) <= set(p.choices))):
                raise InvalidInput(f"space.{name} may be narrowed or widened but not changed in kind "
                                   "(type, log scale, or dropping a categorical choice); start a new study")
        return new

    # ------------------------------------------------------------------ using
    def sample(self, trial: optuna.trial.Trial) -> dict[str, Any]:
        """Suggest every active parameter on ``trial`` in the space's order (a conditional one only
        when the parameters it depends on took one of the listed values)."""
        chosen: dict[str, Any] = {}
        for name, p in self.space.items():
            if not p.active(chosen):
                continue
            if p.type == "categorical":
                chosen[name] = trial.suggest_categorical(name, list(p.choices))
            elif p.type == "int":
                chosen[name] = trial.suggest_int(name, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)  # type: ignore[arg-type]
            else:
                chosen[name] = trial.suggest_float(name, p.low, p.high, step=p.step, log=p.log)  # type: ignore[arg-type]
        return chosen

    def check_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """A hand-written trial's parameters, checked against the space (each active one present and in range)."""
        out: dict[str, Any] = {}
        unknown = set(params) - set(self.space)
        if unknown:
            raise InvalidInput(f"parameter(s) {', '.join(sorted(unknown))} are not in the study's space")
        for name, p in self.space.items():
            if not p.active(out):
                continue
            if name not in params:
                raise InvalidInput(f"the trial has no value for {name!r}; give every parameter of the space")
            value = params[name]
            if p.type == "int":
                if isinstance(value, bool) or float(value) != int(float(value)):
                    raise InvalidInput(f"{name}={value!r} must be a whole number")
                value = int(float(value))
            elif p.type == "float":
                value = _number(value, name)
            if not p.contains(value):
                what = p.choices if p.type == "categorical" else f"[{p.low:g}, {p.high:g}]"
                raise InvalidInput(f"{name}={value!r} is outside the space {what}")
            out[name] = value
        return out

    def grid_space(self) -> dict[str, list[Any]]:
        return {name: p.grid() for name, p in self.space.items()}

    def render(self, params: Mapping[str, Any]) -> tuple[list[str], dict[str, str]]:
        """The command line and the extra environment of a trial with ``params``."""
        used: set[str] = set()

        def fill(token: str) -> str:
            def one(match: re.Match[str]) -> str:
                used.add(match.group(1))
                return _text(params[match.group(1)]) if match.group(1) in params else ""
            return _PLACEHOLDER.sub(one, token)

        command = [fill(token) for token in self.command]
        if self.pass_as == "args":
            command += [f"--{name}={_text(value)}" for name, value in params.items() if name not in used]
        env = dict(self.env)
        env["HANEUL_TRIAL_PARAMS"] = json.dumps(params, sort_keys=True)
        for name, value in params.items():
            env["HANEUL_PARAM_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()] = _text(value)
        return command, env

    def sampler(self, *, seed: int | None = None) -> optuna.samplers.BaseSampler:
        import optuna

        a = self.algorithm
        seed = a.seed if seed is None else seed
        args = dict(a.sampler_args)
        try:
            if a.sampler in ("random", "pbt"):
                return optuna.samplers.RandomSampler(seed=seed)
            if a.sampler == "grid":
                return optuna.samplers.GridSampler(self.grid_space(), seed=seed)
            if a.sampler == "cmaes":
                return optuna.samplers.CmaEsSampler(seed=seed, **args)
            if a.sampler == "gp":
                return optuna.samplers.GPSampler(seed=seed, **args)
            args.setdefault("multivariate", True)
            args.setdefault("constant_liar", True)  # parallel trials do not all sample the same point
            return optuna.samplers.TPESampler(seed=seed, **args)
        except TypeError as exc:
            raise InvalidInput(f"algorithm.sampler_args do not fit the {a.sampler} sampler: {exc}") from None

    def pruner(self) -> optuna.pruners.BasePruner:
        import optuna

        a = self.algorithm
        args = dict(a.pruner_args)
        try:
            if a.pruner == "median":
                args.setdefault("n_startup_trials", 5)
                return optuna.pruners.MedianPruner(**args)
            if a.pruner == "asha":
                return optuna.pruners.SuccessiveHalvingPruner(**args)
            if a.pruner == "hyperband":
                return optuna.pruners.HyperbandPruner(**args)
            return optuna.pruners.NopPruner()
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"algorithm.pruner_args do not fit the {a.pruner} pruner: {exc}") from None


def _text(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _int(raw: Mapping[str, Any], key: str, default: int, low: int, where: str) -> int:
    value = raw.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < low:
        raise InvalidInput(f"{where}.{key} must be a whole number >= {low}, got {value!r}")
    return int(value)


def _budget(raw: Any) -> Budget:
    if not isinstance(raw, Mapping):
        raise InvalidInput("budget must be a mapping, e.g. {trials: 40, concurrent: 2}")
    unknown = set(raw) - {"trials", "concurrent", "cpus", "gpus", "memory", "wall_time", "trial_time", "max_failures"}
    if unknown:
        raise InvalidInput(f"budget has unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    cpus = _number(raw.get("cpus", 1.0), "budget.cpus")
    if cpus <= 0:
        raise InvalidInput("budget.cpus must be positive")
    return Budget(trials=_int(raw, "trials", 20, 1, "budget"), concurrent=_int(raw, "concurrent", 1, 1, "budget"),
                  cpus=cpus, gpus=_int(raw, "gpus", 0, 0, "budget"),
                  memory=None if raw.get("memory") is None else str(raw["memory"]),
                  wall_time=parse_duration(raw.get("wall_time"), "budget.wall_time"),
                  trial_time=parse_duration(raw.get("trial_time"), "budget.trial_time"),
                  max_failures=_int(raw, "max_failures", 5, 1, "budget"))


def _algorithm(raw: Any) -> Algorithm:
    if isinstance(raw, str):
        raw = {"sampler": raw}
    if not isinstance(raw, Mapping):
        raise InvalidInput("algorithm must be a mapping, e.g. {sampler: tpe, pruner: asha}")
    unknown = set(raw) - {"sampler", "pruner", "seed", "sampler_args", "pruner_args"}
    if unknown:
        raise InvalidInput(f"algorithm has unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    sampler = str(raw.get("sampler", "tpe")).lower()
    if sampler not in SAMPLERS:
        raise InvalidInput(f"algorithm.sampler {sampler!r} is unknown; use one of {', '.join(SAMPLERS)}")
    pruner = str(raw.get("pruner") or "none").lower()
    pruner = {"successive_halving": "asha", "sha": "asha", "nop": "none"}.get(pruner, pruner)
    if pruner not in PRUNERS:
        raise InvalidInput(f"algorithm.pruner {pruner!r} is unknown; use one of {', '.join(PRUNERS)}")
    seed = raw.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise InvalidInput(f"algorithm.seed must be a whole number, got {seed!r}")
    for key in ("sampler_args", "pruner_args"):
        if not isinstance(raw.get(key) or {}, Mapping):
            raise InvalidInput(f"algorithm.{key} must be a mapping of keyword arguments")
    return Algorithm(sampler, pruner, seed, dict(raw.get("sampler_args") or {}), dict(raw.get("pruner_args") or {}))


def _pbt(raw: Any) -> PBT:
    if not isinstance(raw, Mapping):
        raise InvalidInput("pbt must be a mapping, e.g. {population: 8, interval: 5}")
    unknown = set(raw) - {"population", "interval", "quantile", "factors", "resample"}
    if unknown:
        raise InvalidInput(f"pbt has unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    quantile = _number(raw.get("quantile", 0.25), "pbt.quantile")
    if not 0 < quantile <= 0.5:
        raise InvalidInput("pbt.quantile must be in (0, 0.5]")
    factors = raw.get("factors", [0.8, 1.2])
    if not isinstance(factors, (list, tuple)) or len(factors) != 2:
        raise InvalidInput("pbt.factors must be two numbers, e.g. [0.8, 1.2]")
    resample = _number(raw.get("resample", 0.25), "pbt.resample")
    if not 0 <= resample <= 1:
        raise InvalidInput("pbt.resample must be a probability in [0, 1]")
    return PBT(population=_int(raw, "population", 4, 2, "pbt"), interval=_int(raw, "interval", 5, 1, "pbt"),
               quantile=quantile, factors=(_number(factors[0], "pbt.factors"), _number(factors[1], "pbt.factors")),
               resample=resample)
