from __future__ import annotations

import torch
from dialog_tiny_data import OP_PAIRS

from haneul.dialog.model import (
    PairClassifier,
    PairClassifierConfig,
    load_classifier,
    pair_feature_matrix,
    save_classifier,
)
from haneul.dialog.operators import ClassifierOperator, Op, SentenceInfo, get_operator, pair_features_info


def test_batched_pair_features_equal_the_per_pair_reference():
    a = ["이가 아픔", "노인정에 다니심", "가", ""]
    b = ["이가 아팠으나 다 나음", "노인정에 다니심", "병원 예약이 취소됨"]
    ia, ib = [SentenceInfo.of(x) for x in a], [SentenceInfo.of(x) for x in b]
    ref = torch.tensor([pair_features_info(x, y) for x in ia for y in ib])
    assert torch.allclose(pair_feature_matrix(ia, ib), ref)


def test_batched_prediction_equals_pair_by_pair_forward():
    torch.manual_seed(0)
    model = PairClassifier(PairClassifierConfig.from_name("tiny")).eval()
    memory = ["이가 아파서 치과에 다니심", "노인정에 다니심", "딸이 서울에 사심"]
    summary = ["이가 아팠으나 다 나음", "요즘도 노인정에 다니심"]
    ops, scores = model.predict_ops(memory, summary)
    with torch.no_grad():
        for i, m in enumerate(memory):
            for j, s in enumerate(summary):
                logits, _ = model([m], [s], head="op")
                probs = logits.softmax(-1)[0]
                assert ops[i][j].value == ["PASS", "APPEND", "REPLACE", "DELETE"][int(probs.argmax())]
                assert abs(scores[i][j] - float(probs.max())) < 1e-5


def test_tiny_classifier_learns_the_hand_labelled_pairs(tiny_classifier):
    model, info = tiny_classifier
    assert info["nli_pairs"] == 9 and info["op_counts"] == {"PASS": 3, "APPEND": 4, "REPLACE": 3, "DELETE": 2}
    correct = sum(model.predict_ops([m], [s])[0][0][0] is op for m, s, op in OP_PAIRS)
    assert correct >= len(OP_PAIRS) - 1


def test_save_load_round_trip_and_the_embedding_cache_change_nothing(tiny_classifier, haneul_home):
    model, _ = tiny_classifier
    path = save_classifier(model, "default", meta={"note": "tiny"})
    assert path == haneul_home / "dialog" / "operators" / "default"
    loaded = load_classifier("default")
    memory = [m for m, _, _ in OP_PAIRS[:6]]
    summary = [s for _, s, _ in OP_PAIRS[6:]]
    assert loaded.predict_ops(memory, summary)[0] == model.predict_ops(memory, summary)[0]
    op = get_operator("auto")  # a trained default now exists
    assert isinstance(op, ClassifierOperator)
    first = op.update(memory, summary)
    again = op.update(memory, summary)  # served from the sentence cache
    assert [p.op for p in first.ops] == [p.op for p in again.ops] and len(op.cache) == len(set(memory + summary)) == 11
    assert all(isinstance(p.op, Op) for p in first.ops) and len(first.ops) == 36


def test_the_lexical_rule_feature_equals_the_lexical_operator():
    from haneul.dialog.model import lexical_rule_onehot
    from haneul.dialog.operators import OPS, LexicalOperator

    memory = ["노인정에 다니심", "이가 아파서 치과에 다니심", "다음 주에 병원 예약이 있음", "허리가 아프심"]
    summary = ["요즘도 노인정에 다니심", "이가 아팠으나 다 나음", "병원 예약이 취소됨", "딸이 서울에 사심"]
    feats = pair_feature_matrix([SentenceInfo.of(m) for m in memory], [SentenceInfo.of(s) for s in summary])
    got = [OPS[int(k)] for k in lexical_rule_onehot(feats).argmax(-1)]
    want = [LexicalOperator().pair(m, s) for m in memory for s in summary]
    assert got == want and {Op.PASS, Op.APPEND, Op.REPLACE, Op.DELETE} <= set(want)


def test_an_untrained_classifier_decides_exactly_like_the_lexical_prior():
    from haneul.dialog.operators import LexicalOperator

    torch.manual_seed(1)
    op = ClassifierOperator(PairClassifier(PairClassifierConfig.from_name("tiny")))
    memory = ["노인정에 다니심", "이가 아파서 치과에 다니심", "다음 주에 병원 예약이 있음"]
    summary = ["요즘도 노인정에 다니심", "이가 아팠으나 다 나음", "병원 예약이 취소됨", "딸이 서울에 사심"]
    assert [p.op for p in op.classify(memory, summary)] == [p.op for p in LexicalOperator().classify(memory, summary)]
