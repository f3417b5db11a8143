from __future__ import annotations

import random
import re

from haneul.speech.korean import clock, josa, month, native, phone_number, reservation_sentence, sino


def test_the_number_readings_speech_uses_are_the_shared_ones():
    # number reading lives in haneul.text.korean (tested there); speech re-exports it
    from haneul.text import korean

    assert (sino, native, month, clock, phone_number) == (
        korean.sino, korean.native, korean.month, korean.clock, korean.read_digits,
    )  # fmt: skip
    assert clock(12, 30) == "열두 시 반" and phone_number("010-1234-0567") == "공일공 일이삼사 공오육칠"


def test_prices_in_sentences_are_one_word():
    # the corpora already synthesised spell 15000 원 as 만오천 원, and the held-out split hashes the text
    r = random.Random(3)
    prices = [s for s in (reservation_sentence(r) for _ in range(2000)) if s.endswith("원 맞나요")]
    assert prices and all(re.search(r" [가-힣]+ 원 맞나요$", s) for s in prices)
    assert any("만" in s for s in prices)


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
    assert josa("비빔밥", "은/는") == "비빔밥은" and josa("갈비", "은/는") == "갈비는"
    assert josa("세 시", "으로/로") == "세 시로" and josa("열두 시 반", "으로/로") == "열두 시 반으로"
    assert josa("서울", "으로/로") == "서울로"  # a final ㄹ takes 로
    assert josa("해오름", "이죠/죠") == "해오름이죠" and josa("별빛파스타", "이죠/죠") == "별빛파스타죠"
    assert josa("김민수", "이고요/고요") == "김민수고요" and josa("박지훈", "이고요/고요") == "박지훈이고요"
