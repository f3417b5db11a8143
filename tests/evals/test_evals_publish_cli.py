"""`haneul eval publish` and the automatic publishing of `haneul eval run` against a real server."""

from __future__ import annotations

import json
import socket

import httpx
import pytest
from evals_results_helpers import results_doc

from haneul.cli.main import main
from haneul.platform.testing import auth_headers
from haneul.settings import reload_settings


def cli(argv: list[str]) -> None:
    try:
        main(argv)
    except SystemExit as exc:  # typer exits 0 after a successful command
        assert exc.code in (0, None)


def cli_error(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    return err


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens once the socket closes


def test_publish_uploads_a_results_file(evals_server, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text(json.dumps(results_doc("ko-small", {"nsmc": {0: [70.0]}})), encoding="utf-8")
    cli(["eval", "publish", str(run / "results.json"), "--server", evals_server, "--session", "12"])
    out = capsys.readouterr().out
    assert out.startswith("published: run ") and f"{evals_server}/evals" in out and "ko-small: nsmc" in out
    rid = out.split()[2]
    cli(["eval", "publish", str(run), "--server", evals_server, "--json"])  # the folder works too
    info = json.loads(capsys.readouterr().out)
    assert info["id"] == rid and info["created"] is False and info["session"] == 12
    items = httpx.get(f"{evals_server}/api/v1/evals/results", headers=auth_headers(evals_server)).json()["items"]
    assert [(i["id"], i["model"], i["session"]) for i in items] == [(rid, "ko-small", 12)]


def test_publish_errors_are_one_line(evals_server, tmp_path, capsys):
    bad = tmp_path / "results.json"
    bad.write_text(json.dumps({"model": "m", "tasks": {"nsmc": {"shots": {"0": {"mean": {"acc": "x"}}}}}}))
    assert "tasks.nsmc.shots.0.mean.acc is 'x'" in cli_error(["eval", "publish", str(bad), "--server", evals_server], capsys)
    assert str(bad) in cli_error(["eval", "publish", str(bad), "--server", evals_server], capsys)
    assert "does not exist" in cli_error(["eval", "publish", str(tmp_path / "nope"), "--server", evals_server], capsys)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(results_doc("m", {"nsmc": {0: [1.0]}})))
    assert "cannot reach the haneul server" in cli_error(["eval", "publish", str(good), "--server", closed_port_url()], capsys)


def test_publish_takes_the_session_from_the_environment(evals_server, monkeypatch):
    from haneul.evals import publish

    monkeypatch.setenv("HANEUL_SESSION", "5")
    assert publish(results_doc("m", {"nsmc": {0: [1.0]}}), server=evals_server)["session"] == 5


def nsmc(tmp_path):
    f = tmp_path / "nsmc.txt"
    f.write_text("id\tdocument\tlabel\n1\t좋다\t1\n2\t별로\t0\n3\t최고\t1\n4\t싫다\t0\n5\t굿\t1\n", encoding="utf-8")
    return f


@pytest.fixture
def toy_model(monkeypatch):
    """`--model toy` scores 긍정 above 부정 for every review: 3 of the 5 reviews are positive."""
    from haneul.evals.testing import ToyBackend

    def load_backend(spec, **_):
        assert spec == "toy"
        return ToyBackend(lambda context, option: (0.0 if "긍정" in option else -1.0, 1))

    monkeypatch.setattr("haneul.evals.load_backend", load_backend)


def test_eval_run_publishes_when_a_server_is_configured(evals_server, toy_model, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HANEUL_SERVER", evals_server)
    reload_settings()
    out = tmp_path / "out"
    cli(["eval", "run", "--model", "toy", "--task", f"nsmc={nsmc(tmp_path)}", "--out", str(out), "--json",
         "--bootstrap", "10"])
    captured = capsys.readouterr()
    assert json.loads(captured.out)["tasks"]["nsmc"]["shots"]["0"]["mean"]["acc"] == 60.0
    assert "published: run " in captured.err and f"{evals_server}/evals" in captured.err
    items = httpx.get(f"{evals_server}/api/v1/evals/results", headers=auth_headers(evals_server)).json()["items"]
    assert [(i["model"], i["tasks"]) for i in items] == [("toy", ["nsmc"])]
    stored = httpx.get(f"{evals_server}/api/v1/evals/results/{items[0]['id']}", headers=auth_headers(evals_server)).json()["results"]
    assert stored["tasks"] == json.loads((out / "results.json").read_text())["tasks"]
    cli(["eval", "run", "--model", "toy", "--task", f"nsmc={nsmc(tmp_path)}", "--out", str(out), "--no-publish",
         "--bootstrap", "10"])
    assert "published: run" not in capsys.readouterr().err


def test_eval_run_keeps_its_results_when_the_server_is_down(toy_model, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HANEUL_SERVER", closed_port_url())
    reload_settings()
    out = tmp_path / "out"
    cli(["eval", "run", "--model", "toy", "--task", f"nsmc={nsmc(tmp_path)}", "--out", str(out), "--bootstrap", "10"])
    warning = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "cannot reach the haneul server" in warning[0]
    assert f"haneul eval publish {out}" in warning[0]
    assert json.loads((out / "results.json").read_text())["tasks"]["nsmc"]["shots"]["0"]["mean"]["acc"] == 60.0


def test_eval_run_does_not_publish_without_a_server(toy_model, tmp_path, capsys):
    cli(["eval", "run", "--model", "toy", "--task", f"nsmc={nsmc(tmp_path)}", "--out", str(tmp_path / "o"),
         "--bootstrap", "10"])
    err = capsys.readouterr().err
    assert "published: run" not in err and "warning:" not in err
