from __future__ import annotations

import pytest

from haneul.text.spoken import is_spoken, spoken


@pytest.mark.parametrize(("written", "said"), [
    ("내일 저녁 7시에 3명 예약할게요!", "내일 저녁 일곱 시에 세 명 예약할게요"),
    ("2시간 30분 걸려요", "두 시간 삼십 분 걸려요"),
    ("2024년 6월 15일, 10월 3일", "이천이십사 년 유월 십오 일 시월 삼 일"),
    ("가격은 15,000원이에요", "가격은 만 오천 원이에요"),
    ("체온은 37.8도예요", "체온은 삼십칠 점 팔 도예요"),
    ("20살, 20대, 스무 대의 차", "스무 살 이십 대 스무 대의 차"),
    ("3개월 만에 1번째, 2번째", "삼 개월 만에 첫 번째 두 번째"),
    ("25시에 100명", "이십오 시에 백 명"),
    ("010-1234-5678로 연락 주세요", "공일공 일이삼사 오육칠팔 로 연락 주세요"),
    ("007 시리즈", "영영칠 시리즈"),
    ("KTX 타고 CGV 갔어요", "케이티엑스 타고 씨지브이 갔어요"),
    ("A급 배우", "에이 급 배우"),
    ("50% 할인 😀 ㅋㅋㅋ ㅠㅠ", "오십 퍼센트 할인"),
    ("  “정말요?”  (네…)  ", "정말요 네"),
])  # fmt: skip
def test_written_korean_is_read_out(written: str, said: str) -> None:
    assert spoken(written) == said
    assert is_spoken(said)


@pytest.mark.parametrize("written", [
    "진짜 最高",            # Hanja
    "すごい 영화",           # kana
    "이 영화 너무 good",      # an English word
    "3~4명 와요",            # a range: 서너 명? 삼에서 사 명?
    "1" * 21 + "원",        # past 경
    "ㅋㅋㅋ !!!",            # nothing left to say
])  # fmt: skip
def test_text_without_a_reading_is_refused(written: str) -> None:
    assert spoken(written) is None


def test_is_spoken_wants_hangul_and_single_spaces() -> None:
    assert is_spoken("네 알겠습니다")
    assert not is_spoken("네  알겠습니다") and not is_spoken("3명") and not is_spoken(" 네") and not is_spoken("")
