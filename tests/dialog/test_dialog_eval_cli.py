from __future__ import annotations

import json
from pathlib import Path

import pytest

from haneul.cli.main import main
from haneul.dialog.data import Transition, derive_pair_ops
from haneul.dialog.evaluate import evaluate
from haneul.dialog.operators import AppendOnly, LatestOnly


def run(capsys, *args: str):
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["dialog", *args])
    assert exc.value.code in (0, None), capsys.readouterr().err
    return capsys.readouterr().out


def fail(capsys, *args: str) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["dialog", *args])
    assert exc.value.code == 1
    full = capsys.readouterr().err
    assert "Traceback" not in full
    err = full.strip().splitlines()[-1]
    assert err.startswith("error: ")
    return err


def test_eval_scores_are_hand_computable():
    memory = ["이가 아파서 치과에 다니심", "노인정에 다니심"]
    summary = ["이가 아팠으나 다 나음"]
    nxt = ["노인정에 다니심", "이가 아팠으나 다 나음"]
    tr = Transition(0, 1, "x-S1", memory, summary, nxt, derive_pair_ops(memory, summary, nxt))
    report = evaluate([tr], {"append-only": AppendOnly(), "latest-only": LatestOnly()})
    app, latest = report.overall("append-only"), report.overall("latest-only")
    # append-only keeps 3 sentences, 2 of them in the reference: P 2/3, R 1, F1 0.8; pairs: (0,0) is REPLACE
    assert app["precision"] == pytest.approx(2 / 3) and app["recall"] == 1.0 and app["f1"] == pytest.approx(0.8)
    assert app["op_acc"] == 0.5
    # latest-only keeps only the summary: P 1, R 1/2, F1 2/3; (0,0) REPLACE right, (1,0) should be APPEND
    assert latest["precision"] == 1.0 and latest["recall"] == 0.5 and latest["f1"] == pytest.approx(2 / 3)
    assert latest["op_acc"] == 0.5


def test_cli_eval_on_the_fixture_beats_both_naive_policies_with_the_lexical_baseline(capsys, carecall_file: Path):
    out = json.loads(run(capsys, "eval", "--data", str(carecall_file), "--operator", "lexical", "--json"))
    rows = {(r["session"], r["operator"]): r for r in out["rows"]}
    assert {k for k, _ in rows} == {1, 2, 3, "all", "k>=2", "k>=3"}
    assert rows[("all", "lexical")]["transitions"] == 24 and rows[("all", "lexical")]["pairs"] == 57
    assert rows[("k>=2", "lexical")]["transitions"] == 16 and rows[("k>=3", "lexical")]["transitions"] == 8
    f1 = {op: rows[("all", op)]["f1"] for op in ("lexical", "append-only", "latest-only")}
    assert f1["lexical"] > f1["append-only"] and f1["lexical"] > f1["latest-only"]
    # session 1 starts from an empty memory: every policy just stores the summary, so leaving it out
    # lowers the naive policies' scores
    assert all(rows[(1, op)]["f1"] == 1.0 for op in ("lexical", "append-only", "latest-only"))
    assert all(rows[("k>=2", op)]["f1"] < f1[op] for op in ("append-only", "latest-only"))
    table = run(capsys, "eval", "--data", str(carecall_file), "--operator", "lexical")
    assert "latest-only" in table and "F1" in table


def test_cli_memory_commands(capsys, tmp_path):
    assert "no memory yet" in run(capsys, "memory", "show", "kim")
    res = json.loads(run(capsys, "memory", "update", "kim", "이가 아파서 치과에 다니심", "--operator", "lexical", "--json"))
    assert res["version"] == 1 and res["new_memory"] == ["이가 아파서 치과에 다니심"]
    f = tmp_path / "s.txt"
    f.write_text("이가 아팠으나 다 나음\n\n", encoding="utf-8")
    res = json.loads(run(capsys, "memory", "update", "kim", "--file", str(f), "--operator", "lexical", "--json"))
    assert res["new_memory"] == ["이가 아팠으나 다 나음"] and res["ops"][0]["op"] == "REPLACE"
    hist = json.loads(run(capsys, "memory", "history", "kim", "--json"))
    assert [v["version"] for v in hist] == [1, 2]
    assert json.loads(run(capsys, "memory", "revert", "kim", "1", "--json"))["sentences"] == ["이가 아파서 치과에 다니심"]
    assert "이가 아파서" in run(capsys, "memory", "show", "kim")
    assert "no memory version 5" in fail(capsys, "memory", "revert", "kim", "5")
    assert "no summary sentences" in fail(capsys, "memory", "update", "kim")
    assert "unknown operator" in fail(capsys, "memory", "update", "kim", "x", "--operator", "magic")
    assert "no trained memory-operation classifier 'nope'" in fail(
        capsys, "memory", "update", "kim", "x", "--operator", "classifier", "--model", "nope")


def test_cli_bad_files(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([[{"guid": "interactive-3-S1", "dialogue": [], "memory": [], "summery": []}]]), encoding="utf-8")
    err = fail(capsys, "eval", "--data", str(bad))
    assert "episode 0 session 0 (interactive-3-S1): missing field 'summary'" in err
    assert "no such file" in fail(capsys, "eval", "--data", str(tmp_path / "none.json"))


def test_cli_derive_pairs_then_train_operator_then_auto_uses_it(capsys, tmp_path, carecall_file, haneul_home):
    pairs = tmp_path / "pairs.jsonl"
    assert "wrote 57 pairs" in run(capsys, "derive-pairs", "--data", str(carecall_file), "--out", str(pairs))
    nli = tmp_path / "nli.tsv"
    nli.write_text("sentence1\tsentence2\tgold_label\n노인정에 다니심\t노인정에 가심\tentailment\n"
                   "노인정에 다니심\t집에만 계심\tcontradiction\n", encoding="utf-8")
    out = json.loads(run(capsys, "train-operator", "--nli", str(nli), "--pairs", str(pairs), "--preset", "tiny",
                         "--nli-epochs", "1", "--op-epochs", "2", "--threads", "1", "--json"))
    assert out["op_pairs"] == 57 and out["nli_pairs"] == 2 and Path(out["path"]).name == "default"
    metrics = (haneul_home / "local" / "default" / "metrics.csv").read_text()  # haneul.report outside a session
    assert "nli_loss" in metrics and "op_acc" in metrics
    res = json.loads(run(capsys, "memory", "update", "lee", "노인정에 다니심", "--json"))
    assert res["operator"] == "classifier"
    out = json.loads(run(capsys, "train-operator", "--pairs", str(pairs), "--synthetic", "100", "--unfreeze",
                         "--preset", "tiny", "--op-epochs", "1", "--threads", "1", "--out", str(tmp_path / "m"), "--json"))
    assert out["op_pairs"] == 157 and out["nli_pairs"] == 0


def test_cli_summarize_and_respond(capsys, tmp_path, carecall_file):
    assert "no session" in fail(capsys, "summarize", str(carecall_file), "--session", "interactive-99-S1")
    turns = tmp_path / "turns.json"
    turns.write_text(json.dumps([{"role": "user", "text": "치과에 또 가요"}], ensure_ascii=False), encoding="utf-8")
    run(capsys, "memory", "update", "kim", "이가 아파서 치과에 다니심", "딸이 서울에 사심", "--operator", "lexical")
    res = json.loads(run(capsys, "respond", "kim", "--dialogue", str(turns), "--top-k", "1", "--json"))
    assert res["used_memory"] == ["이가 아파서 치과에 다니심"] and res["backend"] == "template"


def test_cli_summarize_a_fixture_session(capsys, carecall_file):
    out = json.loads(run(capsys, "summarize", str(carecall_file), "--session", "interactive-5-S4", "--json"))
    assert out == {"sentences": ["새 동네 복지관에서 노래 교실을 다니심"], "backend": "extractive", "fallback": None,
                   "warnings": []}


def test_eval_with_a_summariser_scores_the_whole_pipeline(capsys, carecall_file):
    from haneul.dialog.data import load_carecall
    from haneul.dialog.summarizer import Summarizer, SummaryResult

    class Reference(Summarizer):
        """Hands back the file's own summary: the pipeline score must equal the reference score."""

        name = "echo"

        def __init__(self, by_memory):
            self.by_memory = by_memory

        def summarize(self, dialogue, memory=()):
            return SummaryResult(self.by_memory[tuple(t.text for t in dialogue)], self.name)

    episodes = load_carecall(carecall_file)
    lookup = {tuple(t.text for t in s.dialogue): s.summary for ep in episodes for s in ep}
    ops = {"append-only": AppendOnly(), "latest-only": LatestOnly()}
    ref = evaluate(episodes, ops)
    piped = evaluate(episodes, ops, summarizer=Reference(lookup))
    for a, b in zip(ref.rows, piped.rows, strict=True):
        assert a["f1"] == b["f1"] and b["op_acc"] is None
    assert piped.summarizer == "echo"
    out = json.loads(run(capsys, "eval", "--data", str(carecall_file), "--operator", "lexical",
                         "--summarizer", "extractive", "--json"))
    assert out["summarizer"] == "extractive"
    overall = {r["operator"]: r for r in out["rows"] if r["session"] == "all"}
    assert 0.0 < overall["lexical"]["f1"] < 1.0 and overall["lexical"]["op_acc"] is None
