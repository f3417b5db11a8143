"""Data-to-text as an AlphaTuning task: reading E2E / JSONL files, masking, metrics, CLI, benchmark."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from quant_helpers import byte_tokenizer, tiny_llama

from haneul.cli.main import main
from haneul.errors import InvalidInput
from haneul.quant.d2t_data import generate, mr_string
from haneul.quant.tasks import DataToTextTask, read_d2t

E2E_CSV = (
    "mr,ref\n"
    '"name[The Vaults], eatType[pub], near[Café Adriatic]","The Vaults is a pub near Café Adriatic."\n'
    '"name[The Vaults], eatType[pub], near[Café Adriatic]","Near Café Adriatic is a pub, The Vaults."\n'
    '"name[Bibimbap House], food[Chinese], area[riverside]","Bibimbap House serves Chinese food by the river."\n'
)


def test_read_d2t_takes_e2e_csv_and_jsonl(tmp_path: Path) -> None:
    csv_path = tmp_path / "trainset.csv"
    csv_path.write_text(E2E_CSV, encoding="utf-8")
    rows = read_d2t(csv_path)
    assert len(rows) == 3  # one row per reference; the first MR has two
    assert rows[0][0] == {"name": "The Vaults", "eatType": "pub", "near": "Café Adriatic"}
    assert rows[1][1] == "Near Café Adriatic is a pub, The Vaults."

    jsonl = tmp_path / "d2t.jsonl"
    jsonl.write_text(
        json.dumps({"mr": "name[해오름], food[한식]", "text": "해오름은 한식당입니다."}, ensure_ascii=False)
        + "\n\n"
        + json.dumps(
            {"mr": {"name": "달빛", "area": "강변"}, "ref": "달빛은 강변에 있어요."}, ensure_ascii=False
        )
        + "\n",
        encoding="utf-8",
    )
    assert read_d2t(jsonl) == [
        ({"name": "해오름", "food": "한식"}, "해오름은 한식당입니다."),
        ({"name": "달빛", "area": "강변"}, "달빛은 강변에 있어요."),
    ]
    assert len(read_d2t(jsonl, limit=1)) == 1


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.csv", "meaning,text\nx,y\n", "header must name 'mr' and 'ref'"),
        ("a.jsonl", '{"mr": "name[x]", "text": "ok"}\n{oops\n', "line 2 is not JSON"),
        ("a.jsonl", '{"mr": "name[x]", "text": ""}\n', "line 1 needs a non-empty 'mr' and 'text'"),
        ("a.csv", "mr,ref\n", "holds no data-to-text rows"),
        ("a.jsonl", '["name[x]", "ok"]\n', "line 1 needs a non-empty 'mr' and 'text'"),
    ],
)
def test_read_d2t_bad_files_name_the_problem(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidInput, match=message):
        read_d2t(path)


def test_train_examples_learn_only_the_text_and_eos() -> None:
    tok = byte_tokenizer()
    mr = {"name": "해오름", "food": "한식"}
    ((ids, labels),) = DataToTextTask().train_examples(tok, [(mr, "해오름은 한식당입니다.")])
    prompt = tok.encode("Data: name[해오름], food[한식]\nText:", add_special_tokens=False)
    target = tok.encode(" 해오름은 한식당입니다.", add_special_tokens=False)
    assert ids == prompt + target + [tok.eos_token_id]
    assert labels == [-100] * len(prompt) + target + [tok.eos_token_id]
    # a long MR is cut, never the "Text:" cue the generation starts from (" x" is 2 bytes, then EOS)
    ((short, _),) = DataToTextTask(max_prompt=20).train_examples(tok, [(mr, "x")])
    assert len(short) == 20 + 3 and short[:20][-6:] == tok.encode("\nText:", add_special_tokens=False)


def test_evaluate_scores_references_as_perfect_and_counts_missing_slots(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tok = byte_tokenizer()
    model = tiny_llama()
    examples = generate(6, seed=3, split="test")
    rows = [(e["mr"], e["text"]) for e in examples]
    rows.append((examples[0]["mr"], "다른 참조 문장입니다."))  # a second reference for the first MR
    task = DataToTextTask(bleu_tokenize="char")
    by_mr = {mr_string(e["mr"]): e["text"] for e in examples}

    monkeypatch.setattr(
        task, "generate", lambda m, t, mrs, batch_size=8: [by_mr[mr_string(mr)] for mr in mrs]
    )
    perfect = task.evaluate(model, tok, rows)
    assert perfect["bleu"] == pytest.approx(100.0) and perfect["chrf"] == pytest.approx(100.0)
    assert perfect["slot_error_rate"] == 0.0 and perfect["perplexity"] > 1.0

    first = examples[0]
    clipped = {**by_mr, mr_string(first["mr"]): first["text"].replace(first["mr"]["name"], "")}
    monkeypatch.setattr(
        task, "generate", lambda m, t, mrs, batch_size=8: [clipped[mr_string(mr)] for mr in mrs]
    )
    worse = task.evaluate(model, tok, rows)
    slots = sum(len(e["mr"]) for e in examples)
    assert worse["slot_error_rate"] == pytest.approx(1 / slots)
    assert worse["bleu"] < 100.0


def test_generate_returns_one_line_per_mr() -> None:
    tok = byte_tokenizer()
    mrs = [e["mr"] for e in generate(3, seed=0)]
    texts = DataToTextTask(max_target=12).generate(tiny_llama(), tok, mrs, batch_size=2)
    assert len(texts) == 3 and all("\n" not in t for t in texts)


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    with pytest.raises(SystemExit) as exc:
        main(["quant", *args])
    assert exc.value.code in (0, None), capsys.readouterr().err
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_cli_make_d2t_then_alphatune_and_eval(
    capsys: pytest.CaptureFixture[str], tiny_model_dir: Path, tmp_path: Path
) -> None:
    data = tmp_path / "d2t"
    with pytest.raises(SystemExit) as exc:
        main(["quant", "make-d2t", "-o", str(data), "--rows", "24", "--test-rows", "4", "--seed", "5"])
    assert exc.value.code in (0, None)
    train = [json.loads(line) for line in (data / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(train) == 24 and train[0]["mr"].startswith("name[")
    first = (data / "train.jsonl").read_bytes()
    with pytest.raises(SystemExit):
        main(["quant", "make-d2t", "-o", str(data), "--rows", "24", "--test-rows", "4", "--seed", "5"])
    assert (data / "train.jsonl").read_bytes() == first  # deterministic for a seed

    out = tmp_path / "run"
    summary = _run(
        capsys,
        *("alphatune", "-m", str(tiny_model_dir), "-t", "d2t", "-d", str(data / "train.jsonl")),
        *(
            "--eval-data",
            str(data / "test.jsonl"),
            "-o",
            str(out),
            "--bits",
            "2",
            "-g",
            "32",
            "--rounds",
            "1",
        ),
        *("--steps", "3", "--batch-size", "2", "--eval-rows", "4", "--block", "48", "--json"),
    )
    assert set(summary["after"]) == {"bleu", "chrf", "slot_error_rate", "perplexity"}
    assert 0.0 <= summary["after"]["slot_error_rate"] <= 1.0
    assert summary["after"]["perplexity"] != summary["before"]["perplexity"]  # the scales moved
    scored = _run(
        capsys,
        *("eval", "-m", str(out / "base"), "--task-file", summary["task_file"], "-t", "d2t"),
        *("-d", str(data / "test.jsonl"), "--block", "48", "--json"),
    )
    assert scored["perplexity"] == pytest.approx(summary["after"]["perplexity"], rel=1e-5)


def test_bench_quick_d2t_reports_bleu_and_the_other_scores(tmp_path: Path) -> None:
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_quant_methods.py"
    spec = importlib.util.spec_from_file_location("bench_quant_methods_d2t", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench
    spec.loader.exec_module(bench)
    result = bench.main(
        [
            "--quick",
            "--task",
            "d2t",
            "--lang",
            "en",
            "--methods",
            "fp32,ptq_bcq,alpha_1",
            "--steps",
            "4",
            "--out",
            str(tmp_path / "r.json"),
        ]
    )
    assert result["metric"] == "bleu" and result["higher_is_better"]
    assert result["data"]["lang"] == "en"
    rows = {r["method"]: r for r in result["rows"]}
    assert list(rows) == ["fp32", "ptq_bcq", "alpha_1"]
    for row in rows.values():
        assert set(row["metrics"]) == {"bleu", "chrf", "slot_error_rate", "perplexity"}
        assert row["bleu"] == row["metrics"]["bleu"]
    assert rows["alpha_1"]["trainable_params"] > 0 and "q3" in result["targets"]


def test_auto_bleu_tokenizer_follows_the_language(monkeypatch: pytest.MonkeyPatch) -> None:
    import sacrebleu

    seen: list[str] = []
    real = sacrebleu.corpus_bleu

    def spy(hyps: list[str], refs: list[list[str]], tokenize: str = "13a") -> Any:
        seen.append(tokenize)
        return real(hyps, refs, tokenize=tokenize)

    monkeypatch.setattr(sacrebleu, "corpus_bleu", spy)
    tok, model = byte_tokenizer(), tiny_llama()
    for lang in ("en", "ko"):
        examples = generate(3, seed=1, lang=lang)
        task = DataToTextTask(max_target=4)
        texts = {mr_string(e["mr"]): e["text"] for e in examples}
        monkeypatch.setattr(
            task, "generate", lambda m, t, mrs, batch_size=8, by_mr=texts: [by_mr[mr_string(x)] for x in mrs]
        )
        scores = task.evaluate(model, tok, [(e["mr"], e["text"]) for e in examples])
        assert scores["bleu"] == pytest.approx(100.0)
    assert seen == ["13a", "ko-mecab"]


def test_cli_make_d2t_in_english(tmp_path: Path) -> None:
    data = tmp_path / "d2t-en"
    with pytest.raises(SystemExit) as exc:
        main(["quant", "make-d2t", "-o", str(data), "--rows", "10", "--test-rows", "3", "--lang", "en"])
    assert exc.value.code in (0, None)
    rows = read_d2t(data / "train.jsonl")
    assert len(rows) == 10 and all(text.isascii() or "£" in text or "é" in text for _, text in rows)
    assert rows == [(e["mr"], e["text"]) for e in generate(10, seed=0, lang="en")]
    with pytest.raises(SystemExit) as exc:
        main(["quant", "make-d2t", "-o", str(tmp_path / "x"), "--rows", "2", "--lang", "fr"])
    assert exc.value.code not in (0, None) and not (tmp_path / "x" / "train.jsonl").exists()
