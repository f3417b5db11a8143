from __future__ import annotations

import pytest

from haneul.errors import InvalidInput
from haneul.speech.metrics import EvalResult, cer, cer_counts, edit_distance, wer
from haneul.speech.vocab import Vocabulary


def test_vocabulary_maps_unknown_characters_and_counts_them():
    v = Vocabulary.build(["예약 할게요", "예약 취소"])
    assert v.itos[:4] == ["<blank>", "<unk>", "<sos>", "<eos>"]
    assert v.itos[4:7] == [" ", "약", "예"]  # most frequent first, then by code point
    ids = v.encode("예약 변경")
    assert ids.count(v.unk) == 2 and v.oov == {"변": 1, "경": 1}
    assert v.decode(ids) == "예약 \ufffd\ufffd"
    assert v.decode(v.encode("예약 취소")) == "예약 취소"
    assert Vocabulary.from_json(v.to_json()).itos == v.itos
    assert v.encode("예약  취소\t") == v.encode("예약 취소")  # whitespace normalised
    with pytest.raises(InvalidInput):
        Vocabulary.build(["", "  "])


def test_edit_distance():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3
    assert edit_distance("예약", "예약") == 0


def test_cer_removes_spaces_as_clovacall_does():
    assert cer("안녕 하세요", "안녕하세요") == 0.0
    assert cer_counts("예약 취소", "예약 최소") == (1, 4)
    assert cer("예약 취소", "예약 최소") == 0.25
    # corpus level: (1 + 2) edits / (4 + 2) reference characters = 0.5, not the mean of 1/4 and 2/2
    assert cer(["예약 취소", "세 명"], ["예약 최소", ""]) == pytest.approx(0.5)
    assert cer("네", "네네네") == 2.0  # insertions can push CER above 1
    with pytest.raises(InvalidInput):
        cer(["a"], ["a", "b"])
    with pytest.raises(InvalidInput):
        cer(" ", "x")


def test_wer_with_jiwer():
    assert wer("내일 저녁 예약", "내일 점심 예약") == pytest.approx(1 / 3)
    assert wer(["a b", "c d e"], ["a b", "c e"]) == pytest.approx(1 / 5)


def test_real_time_factor():
    assert EvalResult(0.1, 0.2, 3, audio_s=20.0, decode_s=1.0).rtf == pytest.approx(0.05)


def test_eval_result_says_how_unreadable_files_were_scored():
    counted = EvalResult(0.5, 0.5, 4, audio_s=3.0, decode_s=0.1, unreadable=1)
    assert counted.unreadable_policy == "counted as errors"
    assert counted.to_dict()["unreadable"] == 1 and counted.to_dict()["skip_unreadable"] is False
    skipped = EvalResult(0.2, 0.3, 3, audio_s=3.0, decode_s=0.1, unreadable=1, skip_unreadable=True)
    assert skipped.unreadable_policy == "skipped" and skipped.to_dict()["skip_unreadable"] is True
