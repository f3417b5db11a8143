from __future__ import annotations

import pytest

from haneul.dialog.operators import (
    LM_SYSTEM,
    AppendOnly,
    LatestOnly,
    LexicalOperator,
    Op,
    PairOp,
    get_operator,
    lm_prompt,
    parse_lm_ops,
    resolve,
)
from haneul.errors import InvalidInput


def ops_for(memory, summary, table, default=Op.APPEND):
    return [PairOp(i, j, m, s, table.get((i, j), default)) for i, m in enumerate(memory) for j, s in enumerate(summary)]


def test_each_operation_resolves_as_defined():
    memory = ["이가 아파서 치과에 다니심", "노인정에 다니심", "다음 주에 병원 예약이 있음", "딸이 서울에 사심"]
    summary = ["이가 아팠으나 다 나음", "요즘도 노인정에 다니심", "병원 예약이 취소됨", "아침마다 산책하심"]
    table = {(0, 0): Op.REPLACE, (1, 1): Op.PASS, (2, 2): Op.DELETE}
    new, removed, added, notes = resolve(memory, summary, ops_for(memory, summary, table))
    assert new == ["노인정에 다니심", "딸이 서울에 사심", "이가 아팠으나 다 나음", "아침마다 산책하심"]
    assert removed == ["이가 아파서 치과에 다니심", "다음 주에 병원 예약이 있음"]
    assert added == ["이가 아팠으나 다 나음", "아침마다 산책하심"]
    assert notes == []


def test_a_sentence_replaced_by_two_summaries_gives_way_to_both():
    memory = ["딸이 서울에 사심"]
    summary = ["딸이 부산으로 이사함", "딸이 부산에서 새 직장에 다님"]
    new, removed, added, notes = resolve(memory, summary, ops_for(memory, summary, {(0, 0): Op.REPLACE, (0, 1): Op.REPLACE}))
    assert new == summary and removed == memory
    assert len(notes) == 1 and "replaced by 2" in notes[0]


def test_replace_wins_over_pass_for_the_same_summary_sentence():
    memory = ["손자가 초등학생임", "손자가 학교에 잘 다님"]
    summary = ["손자가 중학교에 입학함"]
    new, _, _, notes = resolve(memory, summary, ops_for(memory, summary, {(0, 0): Op.REPLACE, (1, 0): Op.PASS}))
    assert new == ["손자가 학교에 잘 다님", "손자가 중학교에 입학함"]
    assert "REPLACE wins" in notes[0]


def test_duplicates_are_dropped_keeping_the_earlier_sentence():
    memory = ["노인정에 다니심"]
    summary = ["노인정에 다니심.", "식사를 잘 하심", "식사를  잘 하심"]
    new, _, added, notes = resolve(memory, summary, ops_for(memory, summary, {}))
    assert new == ["노인정에 다니심", "식사를 잘 하심"]
    assert added == ["식사를 잘 하심"]
    assert sum("duplicates" in n for n in notes) == 2


@pytest.mark.parametrize(
    ("memory", "summary", "op"),
    [
        ("노인정에 다니심", "요즘도 노인정에 다니심", Op.PASS),
        ("허리가 아프심", "허리가 여전히 아프심", Op.PASS),
        ("노인정에 다니심", "딸이 서울에 사심", Op.APPEND),
        ("이가 아파서 치과에 다니심", "이가 아팠으나 다 나음", Op.REPLACE),  # time change: 아팠으나 다 나음
        ("노인정에 다니심", "이사해서 노인정에 안 다니심", Op.REPLACE),  # negation
        ("수면제를 드심", "수면제를 끊으심", Op.REPLACE),
        ("다음 주에 병원 예약이 있음", "병원 예약이 취소됨", Op.DELETE),
    ],
)
def test_lexical_baseline_on_hand_written_pairs(memory, summary, op):
    assert LexicalOperator().pair(memory, summary) is op


def test_naive_policies():
    memory, summary = ["이가 아프심", "노인정에 다니심"], ["이가 다 나음"]
    assert AppendOnly().update(memory, summary).new_memory == memory + summary
    res = LatestOnly().update(memory, summary)
    assert res.new_memory == summary and {p.op for p in res.ops} == {Op.REPLACE}


def test_update_on_empty_memory_appends_everything_and_empty_summary_is_an_error():
    res = LexicalOperator().update([], ["노인정에 다니심", "식사를 잘 하심"])
    assert res.new_memory == ["노인정에 다니심", "식사를 잘 하심"] and res.ops == []
    with pytest.raises(InvalidInput, match="no sentences"):
        LexicalOperator().update(["노인정에 다니심"], [])
    with pytest.warns(UserWarning):
        with pytest.raises(InvalidInput, match="no sentences"):
            LexicalOperator().update(["노인정에 다니심"], ["  ", ""])


def test_parse_lm_ops_reads_listed_pairs_and_defaults_to_append():
    memory, summary = ["이가 아프심", "노인정에 다니심"], ["이가 다 나음", "요즘도 노인정에 다니심"]
    ops = parse_lm_ops("M1 S1 REPLACE\nM2 S2: pass\nM9 S1 DELETE", memory, summary)
    assert [(p.memory_index, p.summary_index, p.op) for p in ops] == [
        (0, 0, Op.REPLACE), (0, 1, Op.APPEND), (1, 0, Op.APPEND), (1, 1, Op.PASS)]
    assert all(p.op is Op.APPEND for p in parse_lm_ops("NONE", memory, summary))
    with pytest.raises(InvalidInput):
        parse_lm_ops("잘 모르겠습니다", memory, summary)


def test_an_echoed_prompt_or_its_format_line_is_never_an_answer():
    memory, summary = ["이가 아프심", "노인정에 다니심"], ["이가 다 나음", "요즘도 노인정에 다니심"]
    prompt = lm_prompt(memory, summary)
    assert "M2 S1" not in prompt  # no concrete example line that would parse as an operation
    with pytest.raises(InvalidInput, match="repeats the prompt"):
        parse_lm_ops(prompt, memory, summary)  # its "Write NONE when ..." line is not a NONE answer
    with pytest.raises(InvalidInput, match="repeats the prompt"):
        parse_lm_ops(LM_SYSTEM + "\n" + prompt, memory, summary)
    with pytest.raises(InvalidInput, match="no 'M<number>"):
        parse_lm_ops("M<number> S<number> OPERATION", memory, summary)
    with pytest.raises(InvalidInput):
        parse_lm_ops("Sure! NONE of these pairs is obvious, let me think.", memory, summary)
    # an echo followed by a real answer: only the answer counts
    ops = parse_lm_ops(prompt + "\nM1 S1 REPLACE", memory, summary)
    assert [p.op for p in ops] == [Op.REPLACE, Op.APPEND, Op.APPEND, Op.APPEND]
    assert all(p.op is Op.APPEND for p in parse_lm_ops(prompt + "\n없음", memory, summary))


def test_operator_lookup_lists_choices():
    with pytest.raises(InvalidInput, match="append-only"):
        get_operator("newest")
    assert get_operator("auto").name == "classifier"  # none trained in this HANEUL_HOME: the shipped one
    with pytest.raises(InvalidInput, match="--endpoint"):
        get_operator("lm")
