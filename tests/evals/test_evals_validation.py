"""Every task's data is checked before a model loads; token-budget batching scores like one at a time."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from haneul.cli.main import main
from haneul.errors import InvalidInput, NotFound
from haneul.evals import EvalConfig, TaskRun, get_task, validate_runs


@pytest.fixture
def no_model(monkeypatch):
    """Fail the test if anything tries to load a model."""
    import haneul.evals
    import haneul.evals.backends
    from haneul.evals.backends.hf import HFBackend

    def boom(*args, **kwargs):
        pytest.fail("a model was loaded before the task data was checked")

    monkeypatch.setattr(haneul.evals, "load_backend", boom)
    monkeypatch.setattr(haneul.evals.backends, "load_backend", boom)
    monkeypatch.setattr(HFBackend, "from_pretrained", classmethod(boom))


def nsmc(folder: Path, rows: str = "1\t좋다\t1\n2\t별로\t0\n3\t최고\t1\n4\t싫다\t0\n", name: str = "nsmc.txt") -> Path:
    f = folder / name
    f.write_text("id\tdocument\tlabel\n" + rows, encoding="utf-8")
    return f


def klue_sts(folder: Path, records: list[dict], name: str = "sts.json") -> Path:
    f = folder / name
    f.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return f


def sts_record(i: int) -> dict:
    return {"guid": f"g{i}", "sentence1": f"문장 {i}", "sentence2": f"다른 문장 {i}", "labels": {"real-label": i % 6}}


def run_cli_error(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        main(["eval", "run", "--model", "smollm2", "--no-publish", *argv])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    return err


def bad_inputs(tmp: Path) -> list[tuple[list[str], list[str]]]:
    """(arguments, phrases the one-line error must contain)."""
    good = nsmc(tmp)
    short_row = nsmc(tmp, "1\t좋다\t1\n2\t별로\n", name="short.txt")
    bad_label = nsmc(tmp, "1\t좋다\t1\n2\t별로\t7\n", name="label.txt")
    no_s2 = klue_sts(tmp, [sts_record(0), {"guid": "g1", "sentence1": "a", "labels": {"real-label": 1}}])
    jsonl = tmp / "sts.jsonl"
    jsonl.write_text(json.dumps(sts_record(0)) + "\n{not json\n", encoding="utf-8")
    latin = tmp / "latin.txt"
    latin.write_bytes("id\tdocument\tlabel\n1\tcaf\xe9\t1\n".encode("latin-1"))
    broken_gz = tmp / "broken.txt.gz"
    broken_gz.write_bytes(gzip.compress(b"id\tdocument\tlabel\n1\tx\t1\n")[:-12])
    return [
        (["--task", f"nsmc={tmp / 'missing.txt'}"], [str(tmp / "missing.txt"), "does not exist"]),
        (["--task", f"nsmc={tmp}"], [str(tmp), "not a file"]),
        (["--task", f"nsmc={short_row}"], [str(short_row), "line 3", "'label'"]),
        (["--task", f"nsmc={bad_label}"], [str(bad_label), "line 3", "'7'"]),
        (["--task", f"klue_sts={no_s2}"], [str(no_s2), "record 2", "'sentence2'"]),
        (["--task", f"klue_sts={jsonl}"], [str(jsonl), "line 2", "not valid JSON"]),
        (["--task", f"nsmc={latin}"], [str(latin), "UTF-8"]),
        (["--task", f"nsmc={broken_gz}"], [str(broken_gz), "gzip"]),
        # the second task is checked too, before anything loads
        (["--task", f"nsmc={good},klue_sts={no_s2}"], [str(no_s2), "record 2", "'sentence2'"]),
        (["--task", f"nsmc={good}", "--shots", "0,4"], ["4 shots", str(good), "gives 3"]),
        (["--task", f"nsmc={good}", "--fewshot", f"nsmc={tmp / 'train.txt'}"], [str(tmp / "train.txt"), "does not exist"]),
        (["--task", f"nsmc={good}", "--fewshot", f"nsmc={short_row}", "--shots", "1"], [str(short_row), "line 3"]),
        (["--task", f"nsmc={good}", "--limit", "0"], ["limit 0"]),
        (["--task", f"nsmc={good}", "--template", "nsmc=리뷰: {review}"], ["'review'", str(good)]),
        (["--task", f"nsmc={good},nsmc={good}"], ["'nsmc' is given twice"]),
        (["--task", f"nsmc={nsmc(tmp, '', name='empty.txt')}"], ["holds no examples"]),
    ]


def test_cli_reports_bad_data_in_one_line_before_loading_a_model(no_model, tmp_path, capsys):
    for argv, phrases in bad_inputs(tmp_path):
        err = run_cli_error(argv, capsys)
        for phrase in phrases:
            assert phrase in err, (argv, err)


def test_python_api_validates_every_task(tmp_path):
    good = nsmc(tmp_path)
    bad = klue_sts(tmp_path, [sts_record(0), {**sts_record(1), "labels": {"real-label": 9}}])
    runs = [TaskRun(get_task("nsmc"), good), TaskRun(get_task("klue_sts"), bad)]
    with pytest.raises(InvalidInput, match=r"sts\.json record 2: score 9\.0 is outside"):
        validate_runs(runs, EvalConfig(shots=[0, 1]))
    with pytest.raises(NotFound, match="does not exist"):
        validate_runs([TaskRun(get_task("nsmc"), tmp_path / "nope.txt")], EvalConfig())
    # the task layer itself: a pool of 3 (besides the item) allows 3 shots, not 4
    data = get_task("nsmc").validate(good, shots=[0, 3], limit=2)
    assert len(data.examples) == 4 and data.pool is data.examples
    with pytest.raises(InvalidInput, match="4 shots"):
        get_task("nsmc").validate(good, shots=[4])
    # a separate few-shot file counts in full
    assert len(get_task("nsmc").validate(good, fewshot=good, shots=[4]).pool) == 4


def test_run_reuses_checked_rows_and_rechecks_changed_settings(tmp_path):
    from haneul.evals.testing import ToyBackend

    good = nsmc(tmp_path)
    run = TaskRun(get_task("nsmc"), good)
    validate_runs([run], EvalConfig(shots=[0, 1]))
    with pytest.raises(InvalidInput, match="5 shots"):
        validate_runs([run], EvalConfig(shots=[5]))
    backend = ToyBackend(lambda context, option: (1.0 if option.strip() == "긍정" else 0.0, 1))
    res = run_eval_quiet(backend, run)
    assert res["tasks"]["nsmc"]["shots"]["1"]["mean"]["acc"] == pytest.approx(50.0)


def run_eval_quiet(backend, run):
    from haneul.evals import run_eval

    return run_eval(backend, [run], EvalConfig(shots=[1], bootstrap=10))


# --------------------------------------------------------------------------------------------------
# token-budget batching


def test_token_budget_batches_score_like_batch_size_one(tmp_path):
    torch = pytest.importorskip("torch")
    from haneul.evals.backends.hf import HFBackend
    from haneul.evals.testing import tiny_llama, tiny_tokenizer

    torch.set_num_threads(1)
    tok = tiny_tokenizer()
    model = tiny_llama(tok, seed=0)
    requests = [
        ("리뷰: 정말 재미있는 영화였다 배우들 연기가 최고 또 보고 싶다\n감정:", [" 긍정", " 부정"]),
        ("x", [" 예", " 아니오 아마도", " 별로"]),
        ("전제: 비가 온다\n가설: 맑다\n관계:", [" 예"]),
        ("질문: 한글을 만든 사람은?\n답변:", [" 세종대왕", " 이순신 장군", " 아마도", " 모름"]),
        ("문장 1: 오늘 날씨가 좋다\n문장 2: 오늘은 맑다\n유사도:", [" 0", " 1", " 2", " 3", " 4", " 5"]),
        ("리뷰: 별로\n감정:", [" 긍정", " 부정"]),
    ]
    budget = 500
    batched = HFBackend(model, tok, max_batch_tokens=budget, max_logit_positions=80)
    plan = batched._token_batches([batched._encode_request(c, o) for c, o in requests])
    assert sorted(i for b in plan for i in b) == list(range(len(requests)))
    assert any(len(b) > 1 for b in plan) and len(plan) > 1  # several batches, some holding several prompts
    passes = []
    handle = model.register_forward_pre_hook(lambda mod, args, kwargs: passes.append(kwargs["input_ids"].shape),
                                             with_kwargs=True)
    try:
        got = batched.loglikelihood_many(requests)
    finally:
        handle.remove()
    # a pass holding several prompts stays within the budget
    assert all(rows * width <= budget for rows, width in passes if rows > 1)
    one_by_one = HFBackend(model, tok, batch_size=1).loglikelihood_many(requests)
    full = HFBackend(model, tok, reuse_prefix=False).loglikelihood_many(requests)
    for a, b, c in zip(got, one_by_one, full, strict=True):
        assert [n for _, n in a] == [n for _, n in b] == [n for _, n in c]
        assert [lp for lp, _ in a] == pytest.approx([lp for lp, _ in b], abs=1e-5)
        assert [lp for lp, _ in a] == pytest.approx([lp for lp, _ in c], abs=1e-5)
