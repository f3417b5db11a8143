from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from haneul.errors import Conflict, InvalidInput
from haneul.evals import EvalConfig, TaskRun, get_task, run_eval, sample_demos
from haneul.evals.testing import ToyBackend

REVIEWS = [
    ("1", "정말 좋아요", 1),
    ("2", "너무 별로", 0),
    ("3", "좋지 않다", 0),  # the toy model gets this one wrong
    ("4", "음악이 좋다", 1),
    ("5", "그냥 그렇다", 0),  # no keyword: a tie, and ties go to the first option (부정)
    ("6", "배우가 별로", 1),  # wrong again
]


def nsmc_file(tmp_path: Path, rows=REVIEWS) -> Path:
    f = tmp_path / "nsmc.txt"
    f.write_text("id\tdocument\tlabel\n" + "".join(f"{i}\t{d}\t{y}\n" for i, d, y in rows), encoding="utf-8")
    return f


def query(context: str) -> str:
    return context.split("\n\n")[-1]


def keyword_score(context: str, cont: str) -> tuple[float, int]:
    q = query(context)
    if cont == " 긍정":
        return (-1.0 if "좋" in q else -2.0), 1
    return (-1.0 if "별로" in q else -2.0), 1


def nsmc_run(tmp_path: Path) -> list[TaskRun]:
    return [TaskRun(get_task("nsmc"), nsmc_file(tmp_path))]


def test_toy_model_accuracy_is_exactly_the_hand_count(tmp_path):
    res = run_eval(ToyBackend(keyword_score), nsmc_run(tmp_path), EvalConfig(shots=[0]), tmp_path / "out")
    cell = res["tasks"]["nsmc"]["shots"]["0"]
    assert cell["mean"]["acc"] == pytest.approx(100 * 4 / 6)  # items 1, 2, 4, 5 right
    assert cell["seed_std"]["acc"] == 0.0
    assert 0 < cell["se"]["acc"] < 50
    written = json.loads((tmp_path / "out" / "results.json").read_text(encoding="utf-8"))
    assert written["tasks"]["nsmc"]["shots"]["0"]["mean"]["acc"] == pytest.approx(100 * 4 / 6)
    md = (tmp_path / "out" / "results.md").read_text(encoding="utf-8")
    assert "## nsmc (n=6)" in md and "66.67 ±" in md


def test_few_shot_prompts_hold_k_demonstrations_and_depend_only_on_seed(tmp_path):
    seen: dict[int, list[str]] = {}

    def score(context: str, cont: str) -> tuple[float, int]:
        seen.setdefault(context.count("\n\n"), []).append(context)
        return keyword_score(context, cont)

    run_eval(ToyBackend(score), nsmc_run(tmp_path), EvalConfig(shots=[2], seeds=2), None)
    assert set(seen) == {2}  # every prompt has exactly two demonstrations before the query
    items = get_task("nsmc").load(nsmc_file(tmp_path))
    a = sample_demos(items, 3, seed=0, task_name="nsmc", index=1, exclude_self=True)
    assert a == sample_demos(items, 3, seed=0, task_name="nsmc", index=1, exclude_self=True)
    assert items[1] not in a and len(a) == 3
    draws = {tuple(e.id for e in sample_demos(items, 3, seed=s, task_name="nsmc", index=1, exclude_self=True))
             for s in range(6)}
    assert len(draws) > 1
    with pytest.raises(InvalidInput, match="6 shots need at least 6"):
        sample_demos(items, 6, seed=0, task_name="nsmc", index=1, exclude_self=True)


def test_length_normalisation_changes_the_choice(tmp_path):
    f = tmp_path / "copa.jsonl"
    f.write_text(json.dumps({"premise": "비가 왔다.", "question": "결과", "alternative_1": "젖었다",
                             "alternative_2": "길이 아주 많이 젖었다", "label": 1}, ensure_ascii=False) + "\n",
                 encoding="utf-8")

    def score(context: str, cont: str) -> tuple[float, int]:
        n = len(cont.split())
        return (-2.0, 1) if n == 1 else (-3.0, 4)  # short option wins unless we divide by length

    run = [TaskRun(get_task("kobest_copa"), f)]
    assert run_eval(ToyBackend(score), run, EvalConfig(normalization="none"))["tasks"]["kobest_copa"]["shots"]["0"]["mean"]["acc"] == 0
    assert run_eval(ToyBackend(score), run, EvalConfig(normalization="token"))["tasks"]["kobest_copa"]["shots"]["0"]["mean"]["acc"] == 100


def test_contextual_calibration_removes_a_label_bias(tmp_path):
    rows = [("1", "좋다", 1), ("2", "별로", 0), ("3", "아주 좋다", 1), ("4", "정말 별로", 0)]

    def biased(context: str, cont: str) -> tuple[float, int]:
        q = query(context)
        if cont == " 긍정":
            return (-0.5 if "좋" in q else -1.0), 1
        return (-1.5 if "별로" in q else -3.0), 1

    run = [TaskRun(get_task("nsmc"), nsmc_file(tmp_path, rows))]
    plain = run_eval(ToyBackend(biased), run, EvalConfig())
    calibrated = run_eval(ToyBackend(biased), run, EvalConfig(calibrate=True))
    assert plain["tasks"]["nsmc"]["shots"]["0"]["mean"]["acc"] == 50  # always 긍정
    assert calibrated["tasks"]["nsmc"]["shots"]["0"]["mean"]["acc"] == 100


def test_regression_uses_the_expected_score_and_correlates(tmp_path):
    f = tmp_path / "sts.tsv"
    rows = [("a", "a", 5.0), ("a", "b", 0.5), ("a", "c", 3.0), ("a", "d", 1.0)]
    f.write_text("genre\tfilename\tyear\tid\tscore\tsentence1\tsentence2\n"
                 + "".join(f"g\tf\t1\t{i}\t{s}\t{x}\t{y}\n" for i, (x, y, s) in enumerate(rows)), encoding="utf-8")
    target = {"a": 5, "b": 0, "c": 3, "d": 1}

    def score(context: str, cont: str) -> tuple[float, int]:
        second = query(context).split("\n")[1].split(": ")[1]
        return (0.0 if int(cont) == target[second] else -50.0), 1

    res = run_eval(ToyBackend(score), [TaskRun(get_task("korsts"), f)], EvalConfig())
    cell = res["tasks"]["korsts"]["shots"]["0"]["mean"]
    gold = [5.0, 0.5, 3.0, 1.0]
    assert cell["pearson"] == pytest.approx(100 * np.corrcoef([5, 0, 3, 1], gold)[0, 1], abs=1e-6)
    assert cell["spearman"] == pytest.approx(100.0)


def test_generation_task_is_scored_with_korquad_rules(tmp_path):
    doc = {"data": [{"paragraphs": [{"context": "세종대왕은 1443년에 훈민정음을 만들었다.", "qas": [
        {"id": "q1", "question": "누가?", "answers": [{"text": "세종대왕"}]},
        {"id": "q2", "question": "언제?", "answers": [{"text": "1443년"}]}]}]}]}
    f = tmp_path / "kq.json"
    f.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")

    def answer(prompt: str) -> str:
        return " 세종대왕의\n다음 질문" if "누가" in prompt else " (1443년)"

    res = run_eval(ToyBackend(lambda c, o: (0.0, 1), answer), [TaskRun(get_task("korquad"), f)], EvalConfig())
    cell = res["tasks"]["korquad"]["shots"]["0"]["mean"]
    assert cell["exact_match"] == pytest.approx(50.0)
    assert cell["f1"] == pytest.approx(100 * (8 / 9 + 1) / 2)


def test_a_crashed_run_resumes_without_redoing_finished_items(tmp_path):
    out = tmp_path / "out"
    config = EvalConfig(shots=[0, 2], seeds=2)  # 6 zero-shot items + 2 seeds x 6 two-shot items = 18
    crashing = ToyBackend(keyword_score, fail_after=7)
    # chunks of 4: the zero-shot chunks (4 + 2 items) finish, the crash hits the next chunk
    with pytest.raises(RuntimeError, match="crashed on purpose"):
        run_eval(crashing, nsmc_run(tmp_path), config, out, chunk_size=4)
    journal = (out / "items.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(journal) == 6
    # a torn final line from a crash mid-write is ignored and trimmed
    with open(out / "items.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"key": "nsmc|2|1|5", "pre')
    second = ToyBackend(keyword_score)
    resumed = run_eval(second, nsmc_run(tmp_path), config, out, chunk_size=4)
    assert second.calls == 18 - 6
    fresh = run_eval(ToyBackend(keyword_score), nsmc_run(tmp_path), config, tmp_path / "fresh")
    assert resumed["tasks"] == fresh["tasks"]
    third = ToyBackend(keyword_score)
    run_eval(third, nsmc_run(tmp_path), config, out)
    assert third.calls == 0
    with pytest.raises(Conflict, match="different settings.*shots"):
        run_eval(ToyBackend(keyword_score), nsmc_run(tmp_path), EvalConfig(shots=[1]), out)


def test_prompts_too_long_for_the_model_drop_shots_with_a_warning(tmp_path):
    # ToyBackend counts whitespace words; a 0-shot prompt here is ~4 words, each demo adds ~4
    backend = ToyBackend(keyword_score, max_length=10)
    with pytest.warns(UserWarning, match="used fewer shots"):
        res = run_eval(backend, nsmc_run(tmp_path), EvalConfig(shots=[4]), tmp_path / "o")
    assert res["tasks"]["nsmc"]["reduced_shot_prompts"] == 6
    used = [json.loads(line)["shots_used"] for line in (tmp_path / "o" / "items.jsonl").read_text().splitlines()]
    assert max(used) < 4
    with pytest.raises(InvalidInput, match="needs .* tokens but the model's context is 2"):
        run_eval(ToyBackend(keyword_score, max_length=2), nsmc_run(tmp_path), EvalConfig())


def test_bad_config_values_are_one_line_errors():
    with pytest.raises(InvalidInput, match="normalization 'bytes'"):
        EvalConfig(normalization="bytes")
    with pytest.raises(InvalidInput, match="shots"):
        EvalConfig(shots=[-1])
    assert math.isfinite(EvalConfig().bootstrap)


def test_fixed_demos_share_one_block_per_seed(tmp_path):
    blocks: dict[str, set[str]] = {}

    def score(context: str, cont: str) -> tuple[float, int]:
        block, query_text = context.rsplit("\n\n", 1)
        blocks.setdefault(query_text, set()).add(block)
        return keyword_score(context, cont)

    res = run_eval(ToyBackend(score), nsmc_run(tmp_path), EvalConfig(shots=[2], fixed_demos=True))
    distinct = {b for bs in blocks.values() for b in bs}
    # 6 items, 2 of them are the fixed demonstrations and get their own draw: at most 3 blocks
    assert len(blocks) == 6 and len(distinct) <= 3
    in_block = [q for q in blocks if any(q.split("\n")[0] in b for b in distinct)]
    common = max(distinct, key=lambda b: sum(b in bs for bs in blocks.values()))
    assert sum(common in bs for bs in blocks.values()) == 4
    assert in_block and res["tasks"]["nsmc"]["shots"]["2"]["mean"]["acc"] == pytest.approx(100 * 4 / 6)
