from __future__ import annotations

import json

import pytest

from haneul.dialog.data import (
    derive_pair_ops,
    derive_pairs,
    load_carecall,
    load_kornli,
    load_pairs,
    parse_episodes,
    transitions,
    unexplained,
    write_pairs,
)
from haneul.dialog.operators import Op, resolve
from haneul.errors import InvalidInput, NotFound


def session(guid="interactive-1-S1", memory=(), summary=("노인정에 다니심",)):
    return {"guid": guid, "dialogue": [{"role": "system", "text": "안녕하세요"}, {"role": "user", "text": "네"}],
            "memory": list(memory), "summary": list(summary)}


def test_fixture_loads_and_every_derived_labelling_reproduces_the_next_memory(carecall_file):
    episodes = load_carecall(carecall_file)
    assert len(episodes) == 8 and all(len(e) == 4 for e in episodes)
    trs = transitions(episodes)
    assert len(trs) == 24
    lost = {tr.guid: unexplained(tr.memory, tr.summary, tr.next_memory) for tr in trs}
    # "요즘 죽을 드심" -> "밥을 잘 드심" and a daughter who "went back to Seoul" share no content bigram
    assert {g for g, (m, s) in lost.items() if m or s} == {"interactive-1-S2", "interactive-2-S3"}
    for tr in trs:
        if not any(lost[tr.guid]):
            new, _, _, _ = resolve(tr.memory, tr.summary, tr.labels)
            assert sorted(new) == sorted(tr.next_memory), tr.guid
    ops = {p.op for tr in trs for p in tr.labels}
    assert ops == {Op.PASS, Op.APPEND, Op.REPLACE, Op.DELETE}


def test_derived_labels_on_a_hand_made_transition():
    memory = ["이가 아파서 치과에 다니심", "노인정에 다니심", "딸이 집에 와 있음"]
    summary = ["이가 아팠으나 다 나음", "요즘도 노인정에 다니심", "딸이 서울로 돌아감"]
    nxt = ["노인정에 다니심", "이가 아팠으나 다 나음"]
    got = {(p.memory_index, p.summary_index): p.op for p in derive_pair_ops(memory, summary, nxt)}
    expected = {k: Op.APPEND for k in got}
    expected.update({(0, 0): Op.REPLACE, (1, 1): Op.PASS, (2, 2): Op.DELETE})
    assert got == expected


def test_no_replace_or_pass_is_derived_between_unrelated_sentences():
    memory = ["혼자 라면으로 끼니를 때우심", "경로당에 다니심"]
    summary = ["도시락 배달을 받으심", "손녀가 대학에 합격함", "여전히 잠을 못 주무심"]
    # the meal sentence went (for a reason no summary sentence shares a word with), the sleep one was
    # not kept although it restates nothing in memory
    nxt = ["경로당에 다니심", "도시락 배달을 받으심", "손녀가 대학에 합격함"]
    labels = derive_pair_ops(memory, summary, nxt)
    assert unexplained(memory, summary, nxt) == ([0], [2])
    assert {(p.memory_index, p.summary_index) for p in labels} == {(1, 0), (1, 1)}
    assert all(p.op is Op.APPEND for p in labels)


def test_pairs_jsonl_round_trip(tmp_path, carecall_file):
    rows = derive_pairs(load_carecall(carecall_file))
    path = tmp_path / "pairs.jsonl"
    assert write_pairs(path, rows) == len(rows) == 57
    back = load_pairs(path)
    assert [(m, s, o.value) for m, s, o in back] == [(r["memory"], r["summary"], r["op"]) for r in rows]
    (tmp_path / "bad.jsonl").write_text('{"memory": "a", "summary": "b", "op": "MERGE"}\n', encoding="utf-8")
    with pytest.raises(InvalidInput, match="MERGE"):
        load_pairs(tmp_path / "bad.jsonl")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"not": "a list"}, "top level must be a JSON list"),
        ([[]], "episode 0 must be a non-empty list"),
        ([[session(), "oops"]], "episode 0 session 1 must be an object"),
        ([[session(), {"guid": "interactive-1-S2", "dialogue": [], "memory": []}]], "session 1 (interactive-1-S2): missing field 'summary'"),
        ([[session(), session("interactive-1-S2")], [{**session("interactive-2-S1"), "dialogue": [{"role": "bot", "text": "hi"}]}]],
         "episode 1 session 0 (interactive-2-S1): field 'dialogue[0]'"),
        ([[{**session(), "memory": "노인정에 다니심"}]], "field 'memory' must be a list"),
        ([[{**session(), "summary": ["노인정에 다니심", ""]}]], "field 'summary'[1] is an empty sentence"),
        ([[{**session(), "summary": ["노인정에 다니심", 3]}]], "field 'summary'[1] must be a string"),
    ],
)
def test_malformed_files_name_the_episode_session_and_field(raw, message):
    with pytest.raises(InvalidInput) as err:
        parse_episodes(raw, source="f.json")
    assert message in err.value.message


def test_unreadable_files(tmp_path):
    with pytest.raises(NotFound):
        load_carecall(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("[[{", encoding="utf-8")
    with pytest.raises(InvalidInput, match="not valid JSON"):
        load_carecall(tmp_path / "broken.json")


def test_long_sentences_in_files_are_truncated_with_a_warning(tmp_path):
    path = tmp_path / "long.json"
    path.write_text(json.dumps([[session(summary=["가" * 500])]], ensure_ascii=False), encoding="utf-8")
    with pytest.warns(UserWarning, match="truncated"):
        (ep,) = load_carecall(path)
    assert len(ep[0].summary[0]) == 200 and ep[0].warnings


def test_kornli_loader(tmp_path, shared_data):
    path = tmp_path / "nli.tsv"
    path.write_text("sentence1\tsentence2\tgold_label\n가\t나\tentailment\n다\t라\tbogus\n마\t바\tcontradiction\n", encoding="utf-8")
    assert load_kornli(path) == [("가", "나", 0), ("마", "바", 2)]
    (tmp_path / "x.tsv").write_text("a\tb\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="KorNLI"):
        load_kornli(tmp_path / "x.tsv")
    if shared_data is None:
        pytest.skip("shared data not available")
    rows = load_kornli(shared_data / "kornlu" / "xnli.dev.ko.tsv.gz")
    assert len(rows) == 2490 and {r[2] for r in rows} == {0, 1, 2}
