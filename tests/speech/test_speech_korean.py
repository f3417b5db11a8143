from __future__ import annotations

import random
import re

import pytest

from haneul.speech.korean import clock, josa, month, native, phone_number, reservation_sentence, sino


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "영"), (1, "일"), (10, "십"), (11, "십일"), (15, "십오"), (20, "이십"), (31, "삼십일"), (100, "백"),
     (110, "백십"), (365, "삼백육십오"), (1000, "천"), (2024, "이천이십사"), (10000, "만"), (12000, "만이천"),
     (45000, "사만오천"), (120000, "십이만"), (100000000, "일억")],
)  # fmt: skip
def test_sino_korean(n, text):
    assert sino(n) == text


@pytest.mark.parametrize(
    ("n", "counter", "text"),
    [(1, True, "한"), (1, False, "하나"), (2, True, "두"), (3, True, "세"), (4, True, "네"), (4, False, "넷"),
     (5, True, "다섯"), (10, True, "열"), (12, True, "열두"), (20, True, "스무"), (20, False, "스물"),
     (21, True, "스물한"), (30, True, "서른"), (45, True, "마흔다섯"), (99, False, "아흔아홉")],
)  # fmt: skip
def test_native_korean(n, counter, text):
    assert native(n, counter) == text


def test_native_range():
    with pytest.raises(ValueError):
        native(100)


def test_dates_times_phone():
    assert month(6) == "유월" and month(10) == "시월" and month(3) == "삼월"
    assert clock(7) == "일곱 시"
    assert clock(12, 30) == "열두 시 반"
    assert clock(3, 15) == "세 시 십오 분"
    assert phone_number("010-1234-0567") == "공일공 일이삼사 공오육칠"


def test_sentences_are_hangul_deterministic_and_varied():
    a = [reservation_sentence(random.Random(5)) for _ in range(1)]
    r1, r2 = random.Random(7), random.Random(7)
    s1 = [reservation_sentence(r1) for _ in range(300)]
    s2 = [reservation_sentence(r2) for _ in range(300)]
    assert s1 == s2 and a == [reservation_sentence(random.Random(5))]
    assert all(re.fullmatch(r"[가-힣]+( [가-힣]+)*", s) for s in s1)  # numbers spelled out, single spaces
    assert len(set(s1)) > 200
    joined = " ".join(s1)
    for word in ("예약", "주차", "단체 할인", "놀이방", "취소", "명"):
        assert word in joined


def test_particles_follow_the_final_sound():
    assert josa("비빔밥", "은", "는") == "비빔밥은" and josa("갈비", "은", "는") == "갈비는"
    assert josa("세 시", "으로", "로") == "세 시로" and josa("열두 시 반", "으로", "로") == "열두 시 반으로"
    assert josa("서울", "으로", "로") == "서울로"  # a final ㄹ takes 로
    assert josa("해오름", "이죠", "죠") == "해오름이죠" and josa("별빛파스타", "이죠", "죠") == "별빛파스타죠"
