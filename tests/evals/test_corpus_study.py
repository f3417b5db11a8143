from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from haneul.cli.main import run
from haneul.errors import Conflict, InvalidInput
from haneul.evals.corpus_study import StudyConfig, human_size, parse_size, parse_sizes, run_study
from haneul.lm.testing import tiny_corpus

_OTHER = ["오늘 날씨는 맑고 바람이 분다.", "시장에서 사과와 배를 샀다.", "회의는 오후 세 시에 시작한다.",
          "버스가 늦게 와서 학교에 지각했다.", "도서관에서 책을 두 권 빌렸다.", "주말에는 산에 오를 예정이다."]


def test_sizes_parse_and_print() -> None:
    assert parse_size("250k") == 250_000 and parse_size("1.5M") == 1_500_000 and parse_size("2G") == 2 * 10**9
    assert parse_sizes("4M, 250k,1M,1M") == [250_000, 1_000_000, 4_000_000]
    assert [human_size(n) for n in (250_000, 1_500_000, 4_000_000, 1_234_567, 999)] == [
        "250k", "1.5M", "4M", "1234567", "999"]
    with pytest.raises(InvalidInput, match="not a token count"):
        parse_size("lots")


def test_config_rejects_a_mixture_of_unknown_corpora() -> None:
    with pytest.raises(InvalidInput, match=r"mixture 'both'.*unknown: news"):
        StudyConfig(corpora={"reviews": ["r.txt"]}, mixtures={"both": ["reviews", "news"]}, tasks="x", sizes=[10])
    with pytest.raises(InvalidInput, match="names both a corpus and a mixture"):
        StudyConfig(corpora={"a": ["a"], "b": ["b"]}, mixtures={"a": ["a", "b"]}, tasks="x", sizes=[10])
    with pytest.raises(InvalidInput, match="corpus name 'a/b'"):
        StudyConfig(corpora={"a/b": ["a"]}, tasks="x", sizes=[10])


@pytest.fixture
def study_inputs(tmp_path: Path) -> dict[str, Path]:
    reviews = tmp_path / "reviews.txt"
    reviews.write_text("\n".join(tiny_corpus(300, seed=1)) + "\n", encoding="utf-8")
    daily = tmp_path / "daily.txt"
    daily.write_text("\n".join(_OTHER[i % len(_OTHER)] + f" {i}번째." for i in range(300)) + "\n", encoding="utf-8")
    nsmc = tmp_path / "nsmc.tsv"
    rows = [f"{i}\t{text}\t{1 - i % 2}" for i, text in enumerate(tiny_corpus(8, seed=7))]
    nsmc.write_text("id\tdocument\tlabel\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return {"reviews": reviews, "daily": daily, "nsmc": nsmc, "out": tmp_path / "study"}


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``haneul ARGV``."""
    code = run(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _args(p: dict[str, Path], sizes: str = "600,1200") -> list[str]:
    return ["eval", "corpus-study", "-c", f"reviews={p['reviews']}", "-c", f"daily={p['daily']}",
            "--mix", "both=reviews+daily", "--sizes", sizes, "-t", f"nsmc={p['nsmc']}", "--shots", "0,1",
            "--limit", "8", "--vocab-size", "300", "--tokenizer-docs", "400", "-b", "4", "--seq-len", "32",
            "--lr", "3e-3", "-o", str(p["out"]), "--json"]


def test_study_trains_scores_and_summarises_every_cell(
    study_inputs: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, stdout, err = _cli(_args(study_inputs), capsys)
    assert code == 0, err
    summary = json.loads(stdout)
    out = study_inputs["out"]
    cells = {c["cell"]: c for c in summary["cells"]}
    assert sorted(cells) == sorted(f"{s}@{n}" for s in ("reviews", "daily", "both") for n in ("600", "1.2k"))
    for c in cells.values():
        assert c["steps"] >= 20 and set(c["val"]) == {"reviews", "daily"}  # scored on every corpus
        assert 0.0 <= c["tasks"]["nsmc"]["1"]["value"] <= 100.0 and c["mean_val_perplexity"] > 1.0
        assert (out / "cells" / c["cell"] / "eval" / "results.json").is_file()
    assert cells["both@600"]["kind"] == "mixture" and cells["both@600"]["parts"] == ["reviews", "daily"]
    # a model trained on reviews fits the reviews corpus better than one trained on daily sentences
    assert cells["reviews@1.2k"]["val"]["reviews"]["loss"] < cells["daily@1.2k"]["val"]["reviews"]["loss"]
    assert cells["daily@1.2k"]["val"]["daily"]["loss"] < cells["reviews@1.2k"]["val"]["daily"]["loss"]
    # the mixture's documents alternate between its parts
    with gzip.open(out / "corpora" / "both.jsonl.gz", "rt", encoding="utf-8") as fh:
        first = [json.loads(next(fh))["text"] for _ in range(4)]
    assert first[0] == tiny_corpus(300, seed=1)[0] and first[1].startswith(_OTHER[0])
    assert first[2] == tiny_corpus(300, seed=1)[1]
    # mixtures vs parts: one row per size and task, the differences computed from the parts' scores
    rows = summary["mixtures"]
    assert [(m["mixture"], m["size"], m["task"]) for m in rows] == [("both", 600, "nsmc"), ("both", 1200, "nsmc")]
    m = rows[1]
    assert m["vs_best_part"] == pytest.approx(m["value"] - max(m["parts"].values()))
    assert summary["correlations"]["nsmc"]["cells"] == 6 and summary["correlations"]["nsmc"]["shots"] == 1
    for name in ("results.json", "results.md", "accuracy_vs_size.png", "perplexity_vs_accuracy.png", "mixtures.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "accuracy_vs_size.png").read_bytes()[:4] == b"\x89PNG"
    assert "| reviews | 600 |" in (out / "results.md").read_text(encoding="utf-8")

    # a rerun resumes: nothing is trained again
    import haneul.lm.pretrain as pretrain_module

    monkeypatch.setattr(pretrain_module, "pretrain", lambda *a, **k: pytest.fail("retrained a finished cell"))
    code, stdout, err = _cli(_args(study_inputs), capsys)
    assert code == 0, err
    assert json.loads(stdout)["cells"] == summary["cells"]
    # other settings in the same folder are refused, naming what differs
    code, _, err = _cli(_args(study_inputs, sizes="600,2400"), capsys)
    assert code == 1 and "sizes differ" in err and len(err.strip().splitlines()) == 1


def test_bad_arguments_are_one_line_errors(study_inputs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    p = study_inputs
    base = ["eval", "corpus-study", "-t", f"nsmc={p['nsmc']}", "-o", str(p["out"])]
    code, _, err = _cli([*base, "-c", f"reviews={p['reviews']}", "--mix", "both=reviews+news"], capsys)
    assert code == 1 and "mixture 'both'" in err and "unknown: news" in err
    code, _, err = _cli([*base, "-c", "reviews"], capsys)
    assert code == 1 and "--corpus 'reviews' must be NAME=VALUE" in err
    code, _, err = _cli([*base, "-c", f"r={p['out'] / 'missing.txt'}"], capsys)
    assert code == 1 and "corpus 'r'" in err and "does not exist" in err
    code, _, err = _cli([*base, "-c", f"reviews={p['reviews']}", "--sessions"], capsys)
    assert code == 1 and "--sessions needs a platform server" in err
    code, _, err = _cli([*base[:2], "-t", f"nsmc={p['out'] / 'nsmc-missing.tsv'}", "-o", str(p["out"]),
                         "-c", f"reviews={p['reviews']}"], capsys)
    assert code == 1 and "task 'nsmc'" in err and "does not exist" in err
    code, _, err = _cli([*base, "-c", f"reviews={p['reviews']}", "--fewshot", f"kornli={p['nsmc']}"], capsys)
    assert code == 1 and "--fewshot names kornli" in err
    assert not p["out"].exists()  # a bad input claims no folder: the corrected command starts afresh


def test_config_round_trips_through_the_plan_file(tmp_path: Path) -> None:
    cfg = StudyConfig(corpora={"a": ["a.txt"]}, tasks="nsmc=x.tsv", sizes=[100, 200], mixtures={})
    assert StudyConfig.from_dict(json.loads(json.dumps(cfg.__dict__))) == cfg
    with pytest.raises(Conflict):
        from haneul.evals.corpus_study import _check_plan

        _check_plan(tmp_path, cfg)
        _check_plan(tmp_path, StudyConfig(corpora={"a": ["a.txt"]}, tasks="nsmc=x.tsv", sizes=[100]))


def test_study_runs_without_the_cli(study_inputs: dict[str, Path]) -> None:
    p = study_inputs
    cfg = StudyConfig(corpora={"reviews": [str(p["reviews"])]}, tasks=f"nsmc={p['nsmc']}", sizes=[500], shots=[0],
                      limit=4, vocab_size=300, tokenizer_docs=200, batch_size=4, seq_len=32)
    logs: list[str] = []
    summary = run_study(cfg, p["out"], log=logs.append)
    (cell,) = summary["cells"]
    assert cell["cell"] == "reviews@500" and cell["tasks"]["nsmc"]["0"]["metric"] == "acc"
    assert summary["correlations"]["nsmc"]["pearson"] is None  # one cell: no correlation to speak of
    assert not summary["mixtures"] and not (p["out"] / "mixtures.png").exists()
    assert any("training a shared morpheme-bpe tokenizer" in line for line in logs)


@pytest.mark.slow
def test_cells_run_as_platform_sessions(study_inputs: dict[str, Path], haneul_home: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from haneul.platform.client import Client
    from haneul.platform.testing import start_server
    from haneul.settings import reload_settings

    server = start_server(haneul_home / "server")
    try:
        monkeypatch.setenv("HANEUL_SERVER", server.url)
        monkeypatch.setenv("HANEUL_API_TOKEN", server.token)  # the server's home is not HANEUL_HOME here
        reload_settings()
        p = study_inputs
        cfg = StudyConfig(corpora={"reviews": [str(p["reviews"])]}, tasks=f"nsmc={p['nsmc']}", sizes=[500],
                          shots=[0], limit=4, vocab_size=300, tokenizer_docs=200, batch_size=4, seq_len=32)
        logs: list[str] = []
        summary = run_study(cfg, p["out"], sessions=True, log=logs.append, poll_s=0.5)
        assert [c["cell"] for c in summary["cells"]] == ["reviews@500"]
        sessions = Client(server.url).list_sessions(q="corpus-study")["items"]
        assert [(s["name"], s["status"]) for s in sessions] == [("corpus-study study reviews@500", "done")]
        # the session reported its training curve and its scores to the server
        keys = {k["key"] for k in Client(server.url).metric_keys(sessions[0]["id"])}
        assert {"loss", "lr", "grad_norm"} <= keys and any(k.startswith("nsmc.") for k in keys)
        assert any("session" in line and "done" in line for line in logs)
    finally:
        server.stop()
