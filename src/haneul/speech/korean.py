"""A restaurant-reservation sentence generator for synthetic call speech.

ClovaCall's domain (Ha et al., 2020, section 3.1) is goal-oriented calls to restaurants: booking a
date, time and party size, asking about the menu, parking, group discounts or a children's room,
confirming and cancelling. Transcripts spell numbers out the way they are spoken, in both Korean
systems: Sino-Korean (일, 이, 삼 ...) for dates, minutes, prices and phone numbers, and native Korean
(한, 두, 세 ...) for hours, people and counts. The readings and the particles come from
:mod:`haneul.text.korean`; its names that callers used from here are re-exported.
"""

from __future__ import annotations

import random

from haneul.text.korean import clock, josa, month, native, normalize, sino
from haneul.text.korean import read_digits as phone_number

__all__ = ["clock", "josa", "month", "native", "phone_number", "reservation_sentence", "sino"]

# --------------------------------------------------------------------------------------------------
# reservation dialogue sentences

SURNAMES = ["김", "이", "박", "최", "정", "강", "조", "윤", "장", "임", "한", "오", "서", "신", "권", "황"]
GIVEN = [
    "민수",
    "지영",
    "서연",
    "현우",
    "지훈",
    "수진",
    "영희",
    "철수",
    "하늘",
    "유진",
    "도윤",
    "예린",
    "민지",
    "준호",
]
RESTAURANTS = ["하늘식당", "바다횟집", "소나무갈비", "들꽃한정식", "해오름", "별빛파스타", "동네국수"]
MENUS = ["갈비", "냉면", "비빔밥", "불고기", "파스타", "회", "코스 요리", "점심 특선", "삼겹살", "된장찌개"]
DAYS = ["오늘", "내일", "모레", "이번 주 토요일", "다음 주 금요일", "이번 주말", "다음 주 월요일"]
PARTS = ["오전", "오후", "저녁", "점심"]


def _date(r: random.Random) -> str:
    if r.random() < 0.5:
        return r.choice(DAYS)
    return f"{month(r.randint(1, 12))} {sino(r.randint(1, 31))}일"


def _time(r: random.Random) -> str:
    hour = r.randint(1, 12)
    minute = r.choice([0, 0, 0, 30, 30, 10, 15, 20, 40, 45, 50])
    part = r.choice(PARTS + [""])
    return (part + " " if part else "") + clock(hour, minute)


def _people(r: random.Random) -> str:
    n = r.choice([1, 2, 2, 3, 4, 4, 5, 6, 7, 8, 10, 12, 15, 20, 25, 30])
    return native(n) + " " + r.choice(["명", "명", "분"])


def _name(r: random.Random) -> str:
    return r.choice(SURNAMES) + r.choice(GIVEN)


def _phone(r: random.Random) -> str:
    return phone_number(f"010-{r.randint(0, 9999):04d}-{r.randint(0, 9999):04d}")


def _price(r: random.Random) -> str:
    # one word (만오천 원), as the corpora already synthesised spell it: the held-out split is chosen by
    # a hash of the sentence text, so a new spacing would move sentences between splits
    amount = r.choice([8000, 9500, 12000, 15000, 25000, 30000, 45000, 50000, 120000])
    return sino(amount, spaced=False) + " 원"


def _templates() -> list:
    """Each template is a function of a seeded Random returning one spoken sentence."""
    return [
        lambda r: f"{_date(r)} {_time(r)}에 {_people(r)} 예약하고 싶은데요",
        lambda r: f"{_date(r)} {_time(r)}에 예약 가능한가요",
        lambda r: f"{_people(r)}인데 {_time(r)}에 자리 있을까요",
        lambda r: f"예약자 이름은 {josa(_name(r), '이고요/고요')} 전화번호는 {_phone(r)}입니다",
        lambda r: f"{_name(r)} 이름으로 {_date(r)} {_people(r)} 예약했는데요",
        lambda r: f"{_date(r)} 예약 취소하려고 하는데요",
        lambda r: f"{_name(r)} 이름으로 된 예약 취소해 주세요",
        lambda r: f"{_date(r)} {josa(_time(r), '으로/로')} 예약 변경할 수 있을까요",
        lambda r: f"인원이 {josa(_people(r), '으로/로')} 늘었는데 괜찮을까요",
        lambda r: f"{r.choice(MENUS)} 메뉴 있나요",
        lambda r: f"{josa(r.choice(MENUS), '은/는')} 얼마예요",
        lambda r: f"{r.choice(MENUS)} {native(r.randint(1, 6))} 개 미리 주문할 수 있나요",
        lambda r: f"{r.choice(MENUS)} 가격이 {_price(r)} 맞나요",
        lambda r: "주차 가능한가요",
        lambda r: f"주차는 몇 대까지 되나요 차가 {native(r.randint(1, 5))} 대예요",
        lambda r: f"{_people(r)} 단체인데 단체 할인 되나요",
        lambda r: "단체 할인은 몇 명부터 되나요",
        lambda r: f"아이가 {native(r.randint(1, 3))} 명 있는데 아이 놀이방 있나요",
        lambda r: "유아용 의자도 준비해 주실 수 있나요",
        lambda r: f"{josa(r.choice(RESTAURANTS), '이죠/죠')} 예약 좀 하려고요",
        lambda r: f"네 {_date(r)} {_time(r)} {_people(r)} 예약 확인되었습니다",
        lambda r: f"네 맞습니다 {_name(r)} 고객님 {_people(r)} 예약 확인해 드렸습니다",
        lambda r: f"{josa(_date(r), '은/는')} {_time(r)}까지만 영업합니다",
        lambda r: f"혹시 {_time(r)}에 창가 자리로 부탁드려도 될까요",
        lambda r: f"룸으로 {_people(r)} 앉을 수 있는 방 있나요",
        lambda r: f"{sino(r.randint(5, 40))} 분 정도 늦을 것 같은데 괜찮을까요",
        lambda r: f"네 감사합니다 {_date(r)} 뵙겠습니다",
    ]


TEMPLATES = _templates()


def reservation_sentence(r: random.Random) -> str:
    """One random reservation-call sentence, numbers spelled out in Hangul, single-spaced."""
    return normalize(r.choice(TEMPLATES)(r))
