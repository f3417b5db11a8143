"""The memory operator shipped in the package, its keep-when-unsure decision rule and calibration,
the error analysis and the hand-written held-out and development sets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from haneul.dialog.data import load_carecall, transitions, unexplained
from haneul.dialog.defaults import SHIPPED_OPERATOR
from haneul.dialog.evaluate import explain_errors
from haneul.dialog.model import (
    DecisionRule,
    PairClassifier,
    PairClassifierConfig,
    load_classifier,
    save_classifier,
)
from haneul.dialog.operators import OPS, AppendOnly, ClassifierOperator, LatestOnly, Op, get_operator, resolve
from haneul.dialog.pairs import N_PAIR_FEATURES, SentenceInfo

HELDOUT = Path(__file__).parents[2] / "benchmarks" / "data" / "carecall_memory_handwritten.json"
DEV = Path(__file__).parent / "fixtures" / "carecall_memory_dev.json"


def test_the_shipped_operator_is_the_default_on_a_fresh_home(haneul_home):
    assert (SHIPPED_OPERATOR / "model.safetensors").stat().st_size < 2_000_000
    op = get_operator("auto")
    assert isinstance(op, ClassifierOperator) and op.model.decision.pass_min > 0.5
    res = op.update(["병원에서 수면제를 처방받으심", "노인정에 다니심"], ["수면제를 끊으심", "손녀가 대학에 합격함"])
    # the stopped medicine replaces the prescription; the unrelated new fact is kept
    assert res.new_memory == ["노인정에 다니심", "수면제를 끊으심", "손녀가 대학에 합격함"]


def test_a_new_fact_is_never_dropped_by_a_pass_against_an_unrelated_memory():
    probs = torch.tensor([[0.99, 0.01, 0.0, 0.0], [0.0, 0.4, 0.6, 0.0], [0.0, 0.1, 0.9, 0.0]])
    feats = torch.zeros(3, N_PAIR_FEATURES)
    feats[1:, 2] = 0.5  # pairs 1 and 2 share content; pair 0 shares none
    rule = DecisionRule(pass_min=0.7, replace_min=0.7, delete_min=0.9, min_overlap=0.01)
    assert [OPS[int(k)] for k in rule.choose(probs, feats)] == [Op.APPEND, Op.APPEND, Op.REPLACE]
    # the plain argmax (an uncalibrated folder) keeps the PASS
    assert [OPS[int(k)] for k in DecisionRule().choose(probs, feats)] == [Op.PASS, Op.REPLACE, Op.REPLACE]


def test_unsure_pairs_can_defer_to_the_lexical_rule():
    from haneul.dialog.model import pair_feature_matrix

    feats = pair_feature_matrix([SentenceInfo.of("노인정에 다니심")], [SentenceInfo.of("요즘도 노인정에 다니심")])
    probs = torch.tensor([[0.6, 0.1, 0.3, 0.0]])  # unsure: the best (PASS) is below its threshold
    assert OPS[int(DecisionRule(0.9, 0.9, 0.9, 0.01, "lexical").choose(probs, feats)[0])] is Op.PASS
    assert OPS[int(DecisionRule(0.9, 0.9, 0.9, 0.01, "append").choose(probs, feats)[0])] is Op.APPEND


def test_calibration_chooses_a_rule_on_development_updates_and_it_is_saved(tiny_classifier, tmp_path, carecall_file):
    from haneul.dialog.train import calibrate

    model, _ = tiny_classifier
    grid = {"pass_min": (0.5, 1.01), "replace_min": (0.5, 1.01), "delete_min": (1.01,), "min_overlap": (0.01,),
            "unsure": ("append",)}
    try:
        rule, info = calibrate(model, transitions(load_carecall(carecall_file)), grid)
        assert info["dev_updates"] == 16 and info["rules_tried"] == 4 and model.decision == rule
        assert info["dev_f1"] >= info["best_dev_f1"] - 0.005
        save_classifier(model, tmp_path / "m")
        assert load_classifier(tmp_path / "m").decision == rule
    finally:
        model.decision = DecisionRule()  # the fixture is shared by other tests


def test_a_folder_saved_without_a_decision_rule_decides_by_argmax(tmp_path):
    path = save_classifier(PairClassifier(PairClassifierConfig.from_name("tiny")), tmp_path / "old")
    body = json.loads((path / "config.json").read_text(encoding="utf-8"))
    del body["decision"]  # as written before decision rules existed
    (path / "config.json").write_text(json.dumps(body), encoding="utf-8")
    assert load_classifier(path).decision == DecisionRule()


def test_error_analysis_names_what_each_policy_loses_and_keeps():
    from haneul.dialog.data import Transition, derive_pair_ops

    memory = ["이가 아파서 치과에 다니심", "노인정에 다니심"]
    summary = ["이가 아팠으나 다 나음", "손녀가 대학에 합격함"]
    nxt = ["노인정에 다니심", "이가 아팠으나 다 나음", "손녀가 대학에 합격함"]
    tr = Transition(0, 2, "x-S2", memory, summary, nxt, derive_pair_ops(memory, summary, nxt))
    app = explain_errors(tr, AppendOnly().update(memory, summary))
    assert dict(app.stale) == {"outdated memory kept": 1} and not app.lost
    assert app.confusion[("REPLACE", "APPEND")] == 1 and app.confusion[("APPEND", "APPEND")] == 3
    latest = explain_errors(tr, LatestOnly().update(memory, summary))
    assert dict(latest.lost) == {"kept fact removed by REPLACE": 1} and not latest.stale


@pytest.mark.parametrize(("path", "n_episodes", "prefix"), [(HELDOUT, 25, "handwritten-"), (DEV, 10, "dev-")])
def test_the_hand_written_held_out_and_development_sets(path, n_episodes, prefix):
    episodes = load_carecall(path)
    trs = transitions(episodes)
    assert len(episodes) == n_episodes and len(trs) == 4 * n_episodes and all(len(e) == 5 for e in episodes)
    assert all(s.guid.startswith(prefix) and s.dialogue for e in episodes for s in e)
    assert {Op.PASS, Op.APPEND, Op.REPLACE} <= {p.op for tr in trs for p in tr.labels}
    for tr in trs:  # the derived labels explain every update they label
        if not any(unexplained(tr.memory, tr.summary, tr.next_memory)):
            assert sorted(resolve(tr.memory, tr.summary, tr.labels)[0]) == sorted(tr.next_memory), tr.guid


@pytest.mark.parametrize("name", ["classifier", "auto"])
def test_cli_eval_uses_the_shipped_operator_with_no_training_step(capsys, haneul_home, carecall_file, name):
    from haneul.cli.main import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["dialog", "eval", "--data", str(carecall_file), "--operator", name, "--json"])
    assert exc.value.code in (0, None)
    out = json.loads(capsys.readouterr().out)
    label = "auto:classifier" if name == "auto" else "classifier"
    rows = {(r["session"], r["operator"]): r for r in out["rows"]}
    assert rows[("k>=2", label)]["transitions"] == 16 and rows[("k>=2", label)]["f1"] > rows[("k>=2", "append-only")]["f1"]
