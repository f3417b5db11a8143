from __future__ import annotations

import pytest

from haneul.dialog.responder import Responder, bm25_rank
from haneul.dialog.summarizer import ExtractiveSummarizer, as_turns, to_summary_style
from haneul.errors import InvalidInput


def test_extractive_summary_of_a_session():
    dialogue = [
        {"role": "system", "text": "안녕하세요, 어르신. 요즘 어떻게 지내세요?"},
        {"role": "user", "text": "네, 요즘 노인정에 다녀요. 밥도 잘 먹어요."},
        {"role": "system", "text": "따님은 잘 지내세요?"},
        {"role": "user", "text": "딸이 서울에 살아요. 고마워요. 내일 병원에 가요?"},
        {"role": "user", "text": "이가 아파서 치과에 다니고 있어요."},
    ]
    res = ExtractiveSummarizer().summarize(dialogue, memory=["딸이 서울에 삶"])
    # system turns, fillers, questions and what memory already holds are left out
    assert res.sentences == ["요즘 노인정에 다니심", "밥도 잘 드심", "이가 아파서 치과에 다니고 있음"]
    assert res.backend == "extractive" and res.fallback is None


def test_summary_style_endings():
    assert to_summary_style("저는 요즘 산책을 해요.") == "요즘 산책을 하심"
    assert to_summary_style("어제 고기를 먹었어요.") == "어제 고기를 드셨음"
    assert to_summary_style("요즘 치과에 다니고 있어요.") == "요즘 치과에 다니고 계심"
    assert to_summary_style("네.") is None


def test_malformed_dialogue_turns():
    with pytest.raises(InvalidInput, match=r"dialogue\[1\]"):
        as_turns([{"role": "user", "text": "네"}, {"role": "bot", "text": "hi"}])


def test_bm25_ranks_overlapping_memory_first_and_template_fallback():
    memory = ["딸이 서울에 사심", "이가 아파서 치과에 다니심", "노인정에 다니심"]
    ranked = bm25_rank("이가 시려요", memory)
    assert [i for i, _ in ranked] == [1]
    res = Responder(top_k=2).respond(memory, [{"role": "user", "text": "치과 예약을 했어요"}])
    assert res.used_memory == ["이가 아파서 치과에 다니심"] and res.backend == "template"
    assert "이가 아파서 치과에 다니심" in res.text
    with pytest.raises(InvalidInput, match="bigram or morpheme"):
        bm25_rank("x", memory, tokens="words")
