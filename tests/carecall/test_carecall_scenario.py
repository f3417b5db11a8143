"""Scenario files: the shipped ones load, and every malformed one fails with a line naming file, node and field."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from haneul.carecall import scenario as sc
from haneul.cli.main import run

GOOD = """
id: tiny
title: 작은 시나리오
language: ko
nodes:
  hello:
    type: say
    prompt: 안녕하세요, {name}님.
    next: fever
  fever:
    type: ask
    prompt: 체온이 몇 도예요?
    expect: temperature
    slot: temperature
    next: bye
  bye:
    type: closing
    prompt: 감사합니다.
"""


def _write(tmp_path: Path, text: str, name: str = "flow.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_scenarios_load_clean() -> None:
    files = sc.shipped()
    assert set(files) == {"covid_monitoring", "elderly_checkin"}
    for path in files.values():
        assert sc.validate(path) == []
    covid = sc.resolve("covid")
    assert covid.id == "covid_monitoring" and covid.language == "ko"
    assert [n.slot for n in covid.questions] == ["identity", "temperature", "cough", "sore_throat", "breathing",
                                                 "taste_smell", "contact"]
    assert covid.nodes["identity"].prompt == "{name}님 맞으세요?"
    assert covid.nodes[covid.on_human or ""].type == "handoff"
    assert covid.nodes[covid.on_later or ""].outcome == "callback_requested"
    elderly = sc.resolve("elderly_checkin")
    assert elderly.nodes["recall"].requires == ("memory_prompt",)
    assert {"meals", "sleep", "health", "mood", "needs"} <= {n.slot for n in elderly.questions}


def test_unknown_scenario_name_lists_the_choices() -> None:
    with pytest.raises(sc.ScenarioError, match="covid, elderly"):
        sc.resolve("flu")


@pytest.mark.parametrize(
    ("old", "new", "node", "field", "words"),
    [
        ("    next: bye\n", "    next: byee\n", "fever", "next", "unknown node 'byee'"),
        ("    prompt: 체온이 몇 도예요?\n", "", "fever", "prompt", "missing"),
        ("    expect: temperature\n", "    expect: temperature\n    branches:\n      - when: value >== 38\n"
         "        goto: bye\n", "fever", "branches[0].when", "bad condition"),
        ("    expect: temperature\n", "    expect: temprature\n", "fever", "expect", "unknown 'temprature'"),
        ("    slot: temperature\n", "    slot: temperature\n    promt: 오타\n", "fever", "promt", "unknown"),
        ("    type: closing\n", "    type: goodbye\n", "bye", "type", "unknown type 'goodbye'"),
        ("    prompt: 안녕하세요, {name}님.\n", "    prompt: 안녕하세요, {name님.\n", "hello", "prompt",
         "bad placeholder"),
    ],
)
def test_each_problem_is_one_line_naming_file_node_and_field(
    tmp_path: Path, old: str, new: str, node: str, field: str, words: str
) -> None:
    assert old in GOOD
    path = _write(tmp_path, GOOD.replace(old, new))
    errors = sc.validate(path)
    assert len(errors) == 1, errors
    line = errors[0]
    assert "\n" not in line
    assert line.startswith(f"{path}: node {node!r}: field {field!r}: ")
    assert words in line
    with pytest.raises(sc.ScenarioError) as caught:
        sc.load(path)
    assert caught.value.message == line


def test_a_loop_that_never_asks_is_rejected(tmp_path: Path) -> None:
    text = GOOD.replace("    next: fever\n", "    next: again\n", 1) + (
        "  again:\n    type: say\n    prompt: 다시 한 번요.\n    next: hello\n")
    errors = sc.validate(_write(tmp_path, text))
    assert len(errors) == 1
    assert "node 'hello': field 'next': cycle without a question: hello -> again -> hello" in errors[0]
    # the same loop through a question is a legitimate re-ask
    through_ask = GOOD.replace("    next: bye\n", "    next: hello\n")
    assert sc.validate(_write(tmp_path, through_ask, "ok.yaml")) == []


def test_top_level_problems_and_counts(tmp_path: Path) -> None:
    text = GOOD.replace("id: tiny\n", "").replace("    next: bye\n", "    next: nowhere\n") + "on_human: hello\n"
    errors = sc.validate(_write(tmp_path, text))
    assert errors == [
        f"{tmp_path / 'flow.yaml'}: field 'id': missing; write it as text",
        f"{tmp_path / 'flow.yaml'}: node 'fever': field 'next': unknown node 'nowhere'",
        f"{tmp_path / 'flow.yaml'}: field 'on_human': node 'hello' must be a closing or handoff node",
    ]
    with pytest.raises(sc.ScenarioError, match=r"\(and 2 more; run `haneul carecall validate`"):
        sc.load(tmp_path / "flow.yaml")
    broken = _write(tmp_path, "id: [unclosed\n", "broken.yaml")
    (line,) = sc.validate(broken)
    assert line.startswith(f"{broken}: not valid YAML at line ")


def test_conditions_parse_and_evaluate() -> None:
    hot = SimpleNamespace(intent="yes", value=37.8, symptoms={"breathing": False}, confidence=0.9)
    cool = SimpleNamespace(intent="yes", value=36.5, symptoms={}, confidence=1.0)
    fever = sc.parse_condition("value >= 37.5")
    assert fever(hot) and not fever(cool)
    assert not fever(SimpleNamespace(intent="unknown", value=None, symptoms={}))
    either = sc.parse_condition("intent == human or symptoms.breathing == true")
    assert not either(hot)
    assert either(SimpleNamespace(intent="no", value=None, symptoms={"breathing": True}))
    both = sc.parse_condition("intent in [yes, unknown] and confidence < 0.95")
    assert both(hot) and not both(cool)
    assert sc.parse_condition("always")(cool)
    for bad in ("value >= high", "intent == maybe", "mood == good", "symptoms.headache == true", "value in 3", ""):
        with pytest.raises(ValueError):
            sc.parse_condition(bad)


def test_cli_lists_and_validates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["carecall", "scenarios", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {(r["name"], r["id"]) for r in rows} == {("covid", "covid_monitoring"), ("elderly", "elderly_checkin")}
    good, bad = _write(tmp_path, GOOD, "good.yaml"), _write(tmp_path, GOOD.replace("next: bye", "next: x"), "bad.yaml")
    assert run(["carecall", "validate", str(good)]) == 0
    assert capsys.readouterr().out.strip() == f"{good}: ok"
    assert run(["carecall", "validate", str(good), str(bad)]) == 1
    assert capsys.readouterr().out.strip().splitlines() == [
        f"{good}: ok", f"{bad}: node 'fever': field 'next': unknown node 'x'"]
