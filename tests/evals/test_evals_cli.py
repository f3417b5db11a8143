from __future__ import annotations

import json

import pytest

from haneul.cli.main import main


def cli(argv: list[str]) -> None:
    try:
        main(argv)
    except SystemExit as exc:  # typer exits 0 after a successful command
        assert exc.code in (0, None)


def nsmc(tmp_path):
    f = tmp_path / "nsmc.txt"
    f.write_text("id\tdocument\tlabel\n1\t좋다\t1\n2\t별로\t0\n3\t최고\t1\n4\t싫다\t0\n", encoding="utf-8")
    return f


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from haneul.evals.testing import tiny_llama, tiny_tokenizer

    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("tiny-model")
    tok = tiny_tokenizer()
    tiny_llama(tok).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_eval_run_writes_reports_and_resumes(model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["eval", "run", "--model", str(model_dir), "--task", f"nsmc={nsmc(tmp_path)}", "--shots", "0,1",
            "--seeds", "2", "--out", str(out), "--json", "--bootstrap", "50"]
    cli(args)
    results = json.loads(capsys.readouterr().out)
    assert set(results["tasks"]["nsmc"]["shots"]) == {"0", "1"}
    assert len(results["tasks"]["nsmc"]["shots"]["1"]["seeds"]) == 2
    assert (out / "results.md").is_file() and (out / "results.json").is_file()
    assert len((out / "items.jsonl").read_text().splitlines()) == 4 + 2 * 4
    cli(args)  # everything is in the journal: nothing left to score
    again = json.loads(capsys.readouterr().out)
    assert again["timing"]["scored_items"] == 0
    assert again["tasks"] == results["tasks"]
    cli(["eval", "show", str(out)])
    assert "nsmc (n=4)" in capsys.readouterr().out


def test_eval_cli_errors_are_one_line(tmp_path, capsys):
    for argv, message in [
        (["eval", "run", "--model", str(tmp_path / "nope"), "--task", f"nsmc={nsmc(tmp_path)}"], "model"),
        (["eval", "run", "--model", "x", "--task", "nsmc"], "needs a data file"),
        (["eval", "run", "--model", "x", "--task", "sst2=a.txt"], "unknown task 'sst2'"),
        (["eval", "run", "--model", "x", "--task", f"nsmc={nsmc(tmp_path)}", "--shots", "0,a"], "--shots"),
        (["eval", "show", str(tmp_path)], "results.json does not exist"),
    ]:
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and message in err and "\n" not in err


def test_eval_tasks_lists_the_registry(capsys):
    cli(["eval", "tasks", "--json"])
    names = {row["name"] for row in json.loads(capsys.readouterr().out)}
    assert {"nsmc", "korquad", "kmmlu"} <= names
