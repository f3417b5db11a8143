"""`haneul tune`: a study file in, a study on the server out, and every command that reads or changes it."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from typer.testing import CliRunner

from haneul.cli.tune import app
from haneul.platform.testing import BIN, LiveServer, start_server, wait_for
from haneul.tune.spec import StudySpec

DOC = Path(__file__).resolve().parents[2] / "docs" / "tune.md"

STUDY = f"""\
name: quad
command: {sys.executable} train.py --x {{x}}
objective: {{metric: loss, direction: minimize}}
space:
  x: {{type: float, low: -1.0, high: 1.0}}
budget: {{trials: 4, concurrent: 2, cpus: 1}}
algorithm: {{sampler: tpe, seed: 0}}
"""


def study_file(folder: Path, text: str = STUDY, name: str = "study.yaml") -> Path:
    """The study file beside train.py, so its folder is the trials' working folder."""
    path = folder / name
    path.write_text(text)
    return path


def finished(http: Any, name: str, timeout: float = 60) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        s = http.get(f"/api/v1/tune/studies/{name}").json()
        return s if s["status"] != "running" else None

    return wait_for(done, timeout=timeout, interval=0.3)


def ok(res: Any) -> Any:
    assert res.returncode == 0, res.stderr
    return res


def one_line_error(res: Any) -> str:
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    return lines[0]


def test_create_watches_a_study_to_the_end_and_ls_show_best_export_read_it(
        tune_server: LiveServer, quadratic: Path, tmp_path: Path) -> None:
    res = ok(tune_server.cli("tune", "create", str(study_file(quadratic)), "--watch"))
    assert "study" in res.stderr and "'quad' done" in res.stderr
    assert f"{tune_server.url}/tune/" in res.stderr

    listed = json.loads(ok(tune_server.cli("tune", "ls", "--json")).stdout)
    assert [(s["name"], s["status"], s["launched"]) for s in listed] == [("quad", "done", 4)]
    table = ok(tune_server.cli("tune", "ls")).stdout
    assert "quad" in table and "4/4" in table and "tpe" in table

    shown = json.loads(ok(tune_server.cli("tune", "show", "quad", "--sort", "value", "--json")).stdout)
    values = [t["value"] for t in shown["trials"]]
    assert len(values) == 4 and values == sorted(values)
    for t in shown["trials"]:  # each value is the last loss the trial's own x gave
        assert t["value"] == pytest.approx((t["params"]["x"] - 0.3) ** 2 + 1 / 6)
    top2 = json.loads(ok(tune_server.cli("tune", "show", "quad", "--sort", "value", "--limit", "2",
                                         "--json")).stdout)
    assert [t["number"] for t in top2["trials"]] == [t["number"] for t in shown["trials"][:2]]
    assert "complete" in ok(tune_server.cli("tune", "show", "quad")).stdout

    best = json.loads(ok(tune_server.cli("tune", "best", "quad", "--json")).stdout)
    assert best["value"] == min(values) and best["number"] == shown["trials"][0]["number"]
    plain = ok(tune_server.cli("tune", "best", "quad")).stdout.splitlines()
    assert float(plain[0]) == best["value"] and plain[1] == f"x={best['params']['x']}"

    rows = list(csv.DictReader(io.StringIO(ok(tune_server.cli("tune", "export", "quad")).stdout)))
    assert {"number", "state", "value", "x"} <= set(rows[0])
    assert sorted(float(r["x"]) for r in rows) == sorted(t["params"]["x"] for t in shown["trials"])
    out = tmp_path / "out" / "quad.json"
    out.parent.mkdir()
    ok(tune_server.cli("tune", "export", "quad", "--format", "json", "-o", str(out)))
    exported = json.loads(out.read_text())
    assert exported["study"]["name"] == "quad" and len(exported["trials"]) == 4
    assert [p.name for p in out.parent.iterdir()] == ["quad.json"]  # no temporary file left behind


def test_edit_raises_the_budget_and_an_enqueued_trial_runs_the_given_x(
        tune_server: LiveServer, quadratic: Path) -> None:
    path = study_file(quadratic, STUDY.replace("trials: 4", "trials: 2"))
    ok(tune_server.cli("tune", "create", str(path)))
    with tune_server.http() as http:
        assert finished(http, "quad")["status"] == "done"
        queued = json.loads(ok(tune_server.cli("tune", "enqueue", "quad", "x=0.25", "--json")).stdout)
        assert queued["params"] == {"x": 0.25}
        edited = ok(tune_server.cli("tune", "edit", "quad", "--trials", "3", "--set-range", "x=-0.5:0.5"))
        assert "budget 3 trials" in edited.stdout and "tune resume quad" in edited.stderr
        spec = http.get("/api/v1/tune/studies/quad").json()["spec"]
        assert spec["budget"]["trials"] == 3 and spec["space"]["x"] == {"type": "float", "low": -0.5, "high": 0.5}
        ok(tune_server.cli("tune", "resume", "quad"))
        assert finished(http, "quad")["status"] == "done"
        trials = http.get("/api/v1/tune/studies/quad/trials").json()
    assert len(trials) == 3 and trials[2]["params"] == {"x": 0.25} and trials[2]["state"] == "complete"
    assert trials[2]["value"] == pytest.approx((0.25 - 0.3) ** 2 + 1 / 6)


def test_edit_file_applies_space_and_budget_and_refuses_a_new_command(
        tune_server: LiveServer, quadratic: Path) -> None:
    path = study_file(quadratic, STUDY.replace("trials: 4", "trials: 1"))
    ok(tune_server.cli("tune", "create", str(path)))
    with tune_server.http() as http:
        finished(http, "quad")
        wider = STUDY.replace("trials: 4", "trials: 5").replace("low: -1.0", "low: -2.0")
        ok(tune_server.cli("tune", "edit", "quad", "--file", str(study_file(quadratic, wider, "v2.yaml"))))
        spec = http.get("/api/v1/tune/studies/quad").json()["spec"]
        assert spec["budget"]["trials"] == 5 and spec["space"]["x"]["low"] == -2.0
        other = STUDY.replace("train.py", "other.py")
        line = one_line_error(tune_server.cli("tune", "edit", "quad", "--file",
                                              str(study_file(quadratic, other, "v3.yaml"))))
        assert "command" in line and "new study" in line
        assert http.get("/api/v1/tune/studies/quad").json()["spec"]["command"][1] == "train.py"
        line = one_line_error(tune_server.cli("tune", "edit", "quad", "--set-range", "y=0:1"))
        assert "'y' is not a parameter" in line


@pytest.mark.slow
def test_watch_waits_through_a_server_restart_and_the_study_goes_on(
        tune_server: LiveServer, quadratic: Path) -> None:
    longer = STUDY.replace("--x {x}", "--x {x} --steps 20 --sleep 0.1")
    watch = subprocess.Popen([str(BIN / "haneul"), "tune", "create", str(study_file(quadratic, longer)), "--watch"],
                             env=tune_server.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(3)
        tune_server.kill()
        again = start_server(tune_server.home, port=tune_server.port)
        try:
            _, err = watch.communicate(timeout=90)
            assert watch.returncode == 0, err
            assert "'quad' done" in err
            with again.http() as http:
                trials = http.get("/api/v1/tune/studies/quad/trials").json()
            assert [t["state"] for t in trials] == ["complete"] * 4
        finally:
            again.stop()
    finally:
        if watch.poll() is None:
            watch.kill()


@pytest.mark.parametrize(("space", "field"), [
    ("x: {type: float, low: 1.0, high: 1.0}", "space.x has an empty range"),
    ("x: {type: double, low: 0, high: 1}", "space.x.type 'double' is unknown"),
])
def test_a_bad_study_file_is_one_line_naming_the_field_and_creates_nothing(
        tune_server: LiveServer, quadratic: Path, space: str, field: str) -> None:
    bad = STUDY.replace("x: {type: float, low: -1.0, high: 1.0}", space)
    line = one_line_error(tune_server.cli("tune", "create", str(study_file(quadratic, bad))))
    assert field in line
    with tune_server.http() as http:
        assert http.get("/api/v1/tune/studies").json() == []


def test_a_deleted_study_is_not_found_and_rm_asks_for_yes(tune_server: LiveServer, quadratic: Path) -> None:
    ok(tune_server.cli("tune", "create", str(study_file(quadratic))))
    line = one_line_error(tune_server.cli("tune", "rm", "quad"))
    assert "--yes" in line
    ok(tune_server.cli("tune", "rm", "quad", "--yes"))
    line = one_line_error(tune_server.cli("tune", "resume", "quad"))
    assert "study 'quad' not found" in line
    assert json.loads(ok(tune_server.cli("tune", "ls", "--json")).stdout) == []


def test_every_tune_command_has_help() -> None:
    group = typer.main.get_command(app)
    names = sorted(group.commands)  # type: ignore[attr-defined]
    assert names == ["best", "create", "edit", "enqueue", "export", "ls", "resume", "rm", "show", "stop"]
    runner = CliRunner()
    for name in names:
        result = runner.invoke(app, [name, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        assert "Usage:" in result.output and len(result.output.splitlines()) > 4


def test_the_complete_study_file_in_the_guide_is_valid() -> None:
    block = re.search(r"Every field, with its default:\n\n```yaml\n(.*?)```", DOC.read_text(), re.S)
    assert block is not None
    raw = yaml.safe_load(block.group(1))
    pbt = raw.pop("pbt")  # its own section: valid only with the pbt sampler
    spec = StudySpec.from_dict(raw)
    assert spec.budget.wall_time == 7200 and spec.budget.trial_time == 1200
    assert spec.algorithm.pruner == "asha" and spec.space["alpha"].when == {"loss": ("bce",)}
    command, env = spec.render({"lr": 0.003, "dim": 64, "loss": "bpr", "drop": 0.1, "wd": 0.0})
    assert command[command.index("--lr") + 1] == "0.003" and "--loss=bpr" in command
    assert env["HANEUL_PARAM_DIM"] == "64"
    pbt_raw = {**raw, "pbt": pbt, "algorithm": {"sampler": "pbt"}}
    assert StudySpec.from_dict(pbt_raw).pbt is not None


def test_the_guide_lists_every_tune_command() -> None:
    text = DOC.read_text()
    for name in typer.main.get_command(app).commands:  # type: ignore[attr-defined]
        assert f"`haneul tune {name} " in text, name
