from __future__ import annotations

import pytest

from haneul.dialog.text import DialogWarning, bigrams, clean_sentences, greedy_match, similarity


def test_similarity_is_bigram_jaccard_ignoring_spaces_and_punctuation():
    # "이가아픔" -> {이가, 가아, 아픔}; "이가 아팠으나 다 나음" -> 8 bigrams; 2 shared -> 2 / 9
    assert bigrams("이가 아픔.") == {"이가", "가아", "아픔"}
    assert similarity("이가 아픔", "이가 아팠으나 다 나음") == pytest.approx(2 / 9)
    assert similarity("노인정에 다니심", "노인정에  다니심!") == 1.0
    assert similarity("노인정에 다니심", "딸이 서울에 사심") == 0.0


def test_greedy_match_is_one_to_one_best_first():
    pred = ["노인정에 다니심", "요즘도 노인정에 다니심"]
    ref = ["노인정에 다니심"]
    # both candidates clear 0.5, but the exact copy takes the only reference sentence
    assert greedy_match(pred, ref) == [(0, 0, 1.0)]


def test_long_sentences_are_truncated_with_a_warning_and_blanks_skipped():
    with pytest.warns(DialogWarning) as caught:
        kept, notes = clean_sentences(["가" * 25, "  ", "식사를 잘 하심"], max_chars=10)
    assert sorted(str(w.message) for w in caught) == ["sentences[0] has 25 characters; truncated to 10",
                                                      "sentences[1] is blank and was skipped"]
    assert kept == ["가" * 10, "식사를 잘 하심"]
    assert any("blank" in n for n in notes) and any("25 characters" in n for n in notes)
