"""Study files: validation with one-line errors, rendering of trial commands, samplers and pruners."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import optuna
import pytest

from haneul.errors import InvalidInput
from haneul.tune.pbt import explore
from haneul.tune.spec import StudySpec, parse_duration


def spec(**over: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": "s", "command": "python train.py --lr {lr}",
        "objective": {"metric": "val/loss"},
        "space": {"lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
                  "layers": {"type": "int", "low": 1, "high": 4},
                  "opt": {"type": "categorical", "choices": ["adamw", "sgd"]},
                  "momentum": {"type": "float", "low": 0.5, "high": 0.99, "when": {"opt": "sgd"}}},
    }
    raw.update(over)
    return raw


@pytest.mark.parametrize("space, message", [
    ({"lr": {"type": "float", "low": 0.1, "high": 0.1}}, "space.lr has an empty range"),
    ({"lr": {"type": "float", "low": 0.5, "high": 0.1}}, "space.lr has an empty range"),
    ({"lr": {"type": "gaussian", "low": 0, "high": 1}}, "space.lr.type 'gaussian' is unknown"),
    ({"lr": {"type": "float", "low": 0, "high": 1, "log": True}}, "log-scaled, so low must be > 0"),
    ({"n": {"type": "int", "low": 1.5, "high": 3}}, "not whole numbers"),
    ({"o": {"type": "categorical", "choices": []}}, "has no choices"),
    ({"lr": {"type": "float", "low": 0, "hi": 1}}, "unknown field(s) hi"),
    ({"a": {"type": "float", "low": 0, "high": 1, "when": {"b": 1}}}, "not another parameter"),
])
def test_a_bad_space_is_one_line_naming_the_field(space: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput) as err:
        StudySpec.from_dict(spec(space=space, command="python t.py"))
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("over, message", [
    ({"objective": {"metric": "x", "direction": "up"}}, "must be minimize or maximize"),
    ({"objective": {}}, "objective must name the metric"),
    ({"command": "python t.py --x {nope}"}, "command uses {nope}"),
    ({"algorithm": {"sampler": "bayes"}}, "algorithm.sampler 'bayes' is unknown"),
    ({"algorithm": {"pruner": "early"}}, "algorithm.pruner 'early' is unknown"),
    ({"budget": {"trials": 0}}, "budget.trials must be a whole number >= 1"),
    ({"budget": {"wall_time": "soon"}}, "is not a duration"),
    ({"colour": "blue"}, "unknown field(s) colour"),
    ({"name": "a b"}, "study name 'a b' is not valid"),
])
def test_bad_study_fields_are_refused(over: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=".*") as err:
        StudySpec.from_dict(spec(**over))
    assert message in str(err.value)


def test_grid_needs_points_for_a_continuous_float() -> None:
    with pytest.raises(InvalidInput, match="grid sampler needs its points"):
        StudySpec.from_dict(spec(space={"lr": {"type": "float", "low": 0, "high": 1}}, command="python t.py",
                                 algorithm={"sampler": "grid"}))
    s = StudySpec.from_dict(spec(space={"lr": {"type": "float", "low": 0, "high": 1, "step": 0.5},
                                        "n": {"type": "int", "low": 1, "high": 2}},
                                 command="python t.py", algorithm={"sampler": "grid"}))
    assert s.grid_space() == {"lr": [0.0, 0.5, 1.0], "n": [1, 2]}


def test_render_fills_placeholders_appends_the_rest_and_sets_the_environment() -> None:
    s = StudySpec.from_dict(spec())
    command, env = s.render({"lr": 0.01, "layers": 3, "opt": "sgd", "momentum": 0.9})
    assert command == ["python", "train.py", "--lr", "0.01", "--layers=3", "--opt=sgd", "--momentum=0.9"]
    assert json.loads(env["HANEUL_TRIAL_PARAMS"]) == {"layers": 3, "lr": 0.01, "momentum": 0.9, "opt": "sgd"}
    assert env["HANEUL_PARAM_LR"] == "0.01" and env["HANEUL_PARAM_OPT"] == "sgd"
    as_env = StudySpec.from_dict(spec(**{"pass": "env"}))
    assert as_env.render({"lr": 0.01, "layers": 3, "opt": "adamw"})[0] == ["python", "train.py", "--lr", "0.01"]


def test_conditional_parameters_are_sampled_only_when_their_condition_holds() -> None:
    s = StudySpec.from_dict(spec(algorithm={"sampler": "random", "seed": 1}))
    study = optuna.create_study(sampler=s.sampler())
    seen = {"sgd": 0, "adamw": 0}
    for _ in range(30):
        trial = study.ask()
        params = s.sample(trial)
        assert ("momentum" in params) == (params["opt"] == "sgd")
        assert 1e-4 <= params["lr"] <= 1e-1 and params["layers"] in (1, 2, 3, 4)
        seen[params["opt"]] += 1
        study.tell(trial, params["lr"])
    assert min(seen.values()) > 0


@pytest.mark.parametrize("sampler", ["tpe", "random", "cmaes", "gp"])
def test_every_sampler_optimises_a_quadratic(sampler: str) -> None:
    s = StudySpec.from_dict({"name": "q", "command": "python t.py", "objective": "y",
                             "space": {"x": {"type": "float", "low": -2, "high": 2}},
                             "algorithm": {"sampler": sampler, "seed": 0}})
    study = optuna.create_study(sampler=s.sampler())
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for _ in range(25 if sampler != "gp" else 15):
        trial = study.ask()
        x = s.sample(trial)["x"]
        study.tell(trial, (x - 0.5) ** 2)
    assert study.best_value < 0.05


def test_pruners_are_optunas() -> None:
    make = lambda name: StudySpec.from_dict(spec(algorithm={"pruner": name})).pruner()  # noqa: E731
    assert isinstance(make("asha"), optuna.pruners.SuccessiveHalvingPruner)
    assert isinstance(make("median"), optuna.pruners.MedianPruner)
    assert isinstance(make("hyperband"), optuna.pruners.HyperbandPruner)
    assert isinstance(make("none"), optuna.pruners.NopPruner)
    with pytest.raises(InvalidInput, match="pruner_args do not fit the asha pruner"):
        StudySpec.from_dict(spec(algorithm={"pruner": "asha", "pruner_args": {"speed": 3}})).pruner()


def test_edit_narrows_and_widens_but_does_not_change_kinds() -> None:
    s = StudySpec.from_dict(spec())
    narrowed = s.edited({"space": {"lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}},
                         "budget": {"trials": 50}})
    assert narrowed.space["lr"].low == 1e-3 and narrowed.budget.trials == 50
    assert narrowed.command == s.command
    with pytest.raises(InvalidInput, match="not changed in kind"):
        s.edited({"space": {"lr": {"type": "float", "low": 1e-3, "high": 1e-2}}})
    with pytest.raises(InvalidInput, match="can change only"):
        s.edited({"command": "python other.py"})


def test_check_params_for_a_hand_written_trial() -> None:
    s = StudySpec.from_dict(spec())
    assert s.check_params({"lr": "0.01", "layers": 2, "opt": "adamw"}) == {"lr": 0.01, "layers": 2, "opt": "adamw"}
    with pytest.raises(InvalidInput, match="outside the space"):
        s.check_params({"lr": 5, "layers": 2, "opt": "adamw"})
    with pytest.raises(InvalidInput, match="no value for 'momentum'"):
        s.check_params({"lr": 0.01, "layers": 2, "opt": "sgd"})


def test_explore_perturbs_within_the_space() -> None:
    s = StudySpec.from_dict(spec(algorithm={"sampler": "pbt"}, pbt={"population": 4, "resample": 0.0}))
    rng = random.Random(0)
    out = explore(s, {"lr": 0.1, "layers": 4, "opt": "sgd", "momentum": 0.9}, rng)
    assert out["lr"] in (pytest.approx(0.08), pytest.approx(0.1))  # x1.2 is clipped to the upper bound
    assert out["layers"] in (3, 4) and out["opt"] == "sgd" and 0.5 <= out["momentum"] <= 0.99


def test_load_reads_yaml_and_resolves_cwd(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    f = tmp_path / "study.yaml"
    f.write_text("command: python train.py --x {x}\ncwd: code\nobjective: loss\n"
                 "space:\n  x: {type: float, low: 0, high: 1}\nbudget: {trials: 3, wall_time: 2h}\n")
    s = StudySpec.load(f)
    assert s.name == "study" and s.cwd == str((tmp_path / "code").resolve()) and s.budget.wall_time == 7200
    f.write_text("command: [unclosed\n")
    with pytest.raises(InvalidInput, match="is not valid YAML at line"):
        StudySpec.load(f)
    assert parse_duration("15m", "x") == 900


def test_to_dict_round_trips() -> None:
    s = StudySpec.from_dict(spec(budget={"trials": 7, "concurrent": 2}, algorithm={"sampler": "tpe", "pruner": "asha"}))
    assert StudySpec.from_dict(s.to_dict()) == s
