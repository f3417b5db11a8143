"""Template-made (memory, summary, operation) pairs for training the memory operator (§3.2, training only).

Hand-labelled pairs are few, so this module writes more from topic templates in the note style of
care-call memory ("허리가 쑤신다고 하심", "모레 치과 예약이 있음"). A :class:`Topic` (pain in a body part,
a regular medicine, a grandchild's visit, a class at the welfare centre ...) holds memory sentences,
paraphrases, updates and — when it is time-bound — endings, all with slots filled from small word
lists (particles chosen by :func:`josa`). The four operations come from the topic as follows:
``PASS`` pairs a memory sentence with a paraphrase of the same fact ("요즘도", "여전히", synonyms);
``REPLACE`` with an update that supersedes it (recovery, stopping, a changed value or place, the
opposite state, "…았으나 …"); ``DELETE`` with an ending of a time-bound memory (a cancelled or
postponed plan, a temporary state that is over); ``APPEND`` mostly pairs it with any sentence of an
unrelated topic (different group, often of the same domain; no shared person, body part, clinic or
medicine) and sometimes
with a compatible addition on the same topic (a second medicine, another hobby, another relative).
:func:`generate_pairs` draws a seeded, duplicate-free, topic-balanced mix of them.
"""

from __future__ import annotations

import bisect
import functools
import math
import random
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from haneul.dialog.operators import Op
from haneul.errors import InvalidInput

__all__ = ["DEFAULT_MIX", "TOPICS", "Topic", "generate_pairs", "josa", "max_pairs", "topic_sentences"]

DEFAULT_MIX: dict[Op, float] = {Op.PASS: 0.2, Op.APPEND: 0.4, Op.REPLACE: 0.25, Op.DELETE: 0.15}

# ------------------------------------------------------------------------------------------------
# particles

# after a final consonant / after a vowel
_PARTICLES = {
    "이/가": ("이", "가"),
    "을/를": ("을", "를"),
    "은/는": ("은", "는"),
    "과/와": ("과", "와"),
    "으로/로": ("으로", "로"),
    "이나/나": ("이나", "나"),
    "이랑/랑": ("이랑", "랑"),
    "아/야": ("아", "야"),
}
_RIEUL = 8
# final consonant of each digit as read in Sino-Korean (영 일 이 삼 사 오 육 칠 팔 구)
_DIGIT_FINAL = {
    "0": 21,
    "1": _RIEUL,
    "2": 0,
    "3": 16,
    "4": 0,
    "5": 0,
    "6": 1,
    "7": _RIEUL,
    "8": _RIEUL,
    "9": 0,
}


def _final(word: str) -> int:
    """Index of the last syllable's final consonant (0: none, 8: ㄹ, 16: ㅁ)."""
    last = word.rstrip()[-1:]
    if last in _DIGIT_FINAL:
        return _DIGIT_FINAL[last]
    code = ord(last) - 0xAC00 if last else -1
    return code % 28 if 0 <= code < 11172 else 0


def josa(word: str, particle: str) -> str:
    """``word`` with the form of ``particle`` ("이/가", "을/를", "으로/로" ...) its last sound takes.

    사과를, 밥을, 서울로 (a final ㄹ takes 로), 부산으로, 3일로.
    """
    forms = _PARTICLES.get(particle)
    if forms is None:
        raise InvalidInput(f"unknown particle {particle!r}; use one of {', '.join(_PARTICLES)}")
    final = _final(word)
    if forms[0] == "으로":
        return word + ("로" if final in (0, _RIEUL) else "으로")
    return word + (forms[0] if final else forms[1])


# ------------------------------------------------------------------------------------------------
# topics

# Slot values are a word, or a dict whose "w" is the word and whose other keys are forms used as
# {slot.key} (verb forms that go with the word). A slot named X2 takes a value of X other than X's.
_SLOT = re.compile(r"\{(\w+?)(?:\.(\w+))?(?::([^}]+))?\}")
# Slots naming a person, a body part, a clinic or a medicine: two sentences sharing one are related.
ENTITY_SLOTS = ("junior", "elder", "part", "clinic", "med")


def W(word: str, **forms: str) -> dict[str, str]:
    return {"w": word, **forms}


def _word(value: Any) -> str:
    return value["w"] if isinstance(value, dict) else value


def _base(slot: str) -> str:
    return slot[:-1] if slot.endswith("2") else slot


def _slots(template: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(m.group(1) for m in _SLOT.finditer(template)))


def _render(template: str, binding: Mapping[str, Any]) -> str:
    def fill(m: re.Match[str]) -> str:
        name, form, particle = m.groups()
        value = binding[name]
        word = value[form] if form else _word(value)
        if particle:
            word = josa(word, particle) if "/" in particle else word + particle
        return word

    return " ".join(_SLOT.sub(fill, template).split())


@dataclass(frozen=True)
class Topic:
    """One kind of remembered fact and the sentences that restate, supersede or end it."""

    name: str
    domain: str
    memory: tuple[str, ...]
    paraphrase: tuple[str, ...]
    update: tuple[str, ...]
    ending: tuple[str, ...] = ()  # non-empty only for time-bound facts (plans, temporary states)
    extra: tuple[str, ...] = ()  # compatible additions on the same topic (APPEND)
    slots: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    keywords: tuple[str, ...] = ()  # words every sentence of the topic uses one of
    key_slots: tuple[str, ...] = ()  # slots whose words count as keywords too
    group: str = ""  # topics of one group are related: never paired as unrelated

    @property
    def time_bound(self) -> bool:
        return bool(self.ending)

    @property
    def all_keywords(self) -> tuple[str, ...]:
        words = [_word(v) for s in self.key_slots for v in self.slots[s]]
        return tuple(dict.fromkeys([*self.keywords, *words]))

    def _paired(self, name: str, names: tuple[str, ...]) -> bool:
        return name.endswith("2") and _base(name) in names

    def binding_count(self, names: tuple[str, ...]) -> int:
        """How many assignments the slots ``names`` have (X2 never equal to X when both are named)."""
        return math.prod(len(self.slots[_base(n)]) - self._paired(n, names) for n in names)

    def binding_at(self, names: tuple[str, ...], index: int) -> dict[str, Any]:
        """Assignment number ``index`` of the slots ``names`` (mixed radix, X decided before X2)."""
        picks: dict[str, int] = {}
        for n in sorted(names, key=lambda n: n.endswith("2")):
            paired = self._paired(n, names)
            index, pick = divmod(index, len(self.slots[_base(n)]) - paired)
            if paired and pick >= picks[_base(n)]:
                pick += 1  # skip X's value
            picks[n] = pick
        return {n: self.slots[_base(n)][i] for n, i in picks.items()}

    def bindings(self, names: tuple[str, ...]) -> Iterator[dict[str, Any]]:
        for i in range(self.binding_count(names)):
            yield self.binding_at(names, i)


# word lists ---------------------------------------------------------------------------------------

BODY = ("허리", "무릎", "어깨", "손목", "발목", "목", "등", "골반", "팔꿈치", "다리", "허벅지", "손가락")
SYMPTOMS = ("어지럼증", "두통", "기침", "소화불량", "변비", "이명", "손 떨림", "가려움증", "속쓰림")
ILLNESSES = (
    W("감기", got="감기에 걸리심"),
    W("독감", got="독감에 걸리심"),
    W("장염", got="장염에 걸리심"),
    W("몸살", got="몸살이 나심"),
    W("배탈", got="배탈이 나심"),
    W("대상포진", got="대상포진에 걸리심"),
)
METRICS = ("혈압", "혈당", "콜레스테롤 수치", "간 수치", "안압")
MEDS = (
    "혈압약",
    "당뇨약",
    "관절약",
    "위장약",
    "고지혈증약",
    "골다공증약",
    "진통제",
    "한약",
    "영양제",
    "유산균",
)
RX_MEDS = ("혈압약", "당뇨약", "관절약", "위장약", "고지혈증약")
DOSES = ("하루 한 번", "하루 두 번", "하루 세 번")
CLINICS = (
    "정형외과",
    "내과",
    "한의원",
    "안과",
    "치과",
    "이비인후과",
    "피부과",
    "신경과",
    "비뇨기과",
    "보건소",
)
VISIT_FREQ = ("일주일에 한 번", "일주일에 두 번", "한 달에 한 번", "한 달에 두 번", "석 달에 한 번")
TREATMENTS = ("물리치료", "침 치료", "도수 치료", "주사 치료")
DAYS = (
    W("모레", at="모레"),
    W("이번 주 목요일", at="이번 주 목요일에"),
    W("이번 주 금요일", at="이번 주 금요일에"),
    W("이번 주말", at="이번 주말에"),
    W("다음 주 월요일", at="다음 주 월요일에"),
    W("다음 주 수요일", at="다음 주 수요일에"),
    W("다음 주 금요일", at="다음 주 금요일에"),
    W("다음 주 토요일", at="다음 주 토요일에"),
    W("이번 달 말", at="이번 달 말에"),
    W("다음 달 초", at="다음 달 초에"),
    W("다음 달 10일", at="다음 달 10일에"),
    W("이번 달 25일", at="이번 달 25일에"),
)
LATER = ("한 달 뒤", "두 달 뒤", "석 달 뒤", "나중", "내년")
EXAMS = (
    "건강검진",
    "위내시경",
    "대장내시경",
    "골밀도 검사",
    "피검사",
    "치매 선별 검사",
    "초음파 검사",
    "심전도 검사",
)
ELDERS = ("남편", "아내", "언니", "오빠", "형님", "누님")
JUNIORS = (
    "큰아들",
    "작은아들",
    "막내아들",
    "큰딸",
    "작은딸",
    "막내딸",
    "손자",
    "손녀",
    "큰손자",
    "며느리",
    "사위",
    "조카",
)
CHILDREN = ("큰아들", "작은아들", "막내아들", "큰딸", "작은딸", "막내딸")
GRANDCHILDREN = ("손자", "손녀", "큰손자", "작은손녀", "외손자", "외손녀")
MOTHERS_TO_BE = ("며느리", "큰딸", "작은딸", "막내딸", "손녀", "손주며느리")
BABIES = ("아들", "딸", "쌍둥이")
CITIES = (
    "서울",
    "부산",
    "대구",
    "인천",
    "광주",
    "대전",
    "울산",
    "수원",
    "춘천",
    "청주",
    "전주",
    "포항",
    "창원",
    "제주도",
    "미국",
    "일본",
)
WORKPLACES = (
    "은행",
    "시청",
    "자동차 회사",
    "종합병원",
    "농협",
    "우체국",
    "건설 회사",
    "구청",
    "방송국",
    "보험 회사",
    "택배 회사",
    "식품 공장",
)
STUDY_EXAMS = ("공무원 시험", "임용 시험", "간호사 국가고시", "자격증 시험", "경찰 시험", "편입 시험")
EVENTS = (
    "손녀 결혼식",
    "손자 결혼식",
    "조카 결혼식",
    "큰손자 졸업식",
    "증손주 돌잔치",
    "친구 팔순 잔치",
    "고향 친구 칠순 잔치",
    "마을 잔치",
    "복지관 나들이",
)
TRIPS = (
    "온천 여행",
    "꽃구경",
    "단풍 구경",
    "성지 순례",
    "제주도 여행",
    "효도 관광",
    "가족 여행",
    "바다 구경",
)
AWAY_PLACES = ("시골집", "고향", "친척 집", "기도원", "동생 집")
HOMES = ("아파트", "단독 주택", "빌라", "임대 아파트", "시골 주택", "원룸")
ALONE_YEARS = ("3년째", "5년째", "10년째", "20년째")
APPLIANCES = (
    "보일러",
    "냉장고",
    "세탁기",
    "텔레비전",
    "전화기",
    "가스레인지",
    "전기밥솥",
    "에어컨",
    "현관 도어록",
)
PETS = ("강아지", "고양이", "진돗개", "앵무새", "토끼")
CARE_FREQ = ("일주일에 한 번", "일주일에 두 번", "일주일에 세 번", "매일")
SERVICES = ("반찬 배달", "도시락 배달", "방문 목욕 서비스", "노인 돌봄 서비스", "방문 간호 서비스")
FOODS = (
    "죽",
    "누룽지",
    "떡",
    "빵",
    "고구마",
    "두부",
    "생선구이",
    "미역국",
    "된장찌개",
    "달걀",
    "과일",
    "우유",
)
DRINKS = ("막걸리", "소주", "맥주", "약주")
SMOKE = ("하루 반 갑", "하루 한 갑", "하루 몇 개비")
SLEEP_HOURS = ("두 시", "세 시", "네 시")
ACTIVITIES = (
    W("수영", v="하심", ing="하시다가", neg="안 하심"),
    W("아쿠아로빅", v="하심", ing="하시다가", neg="안 하심"),
    W("에어로빅", v="하심", ing="하시다가", neg="안 하심"),
    W("요가", v="하심", ing="하시다가", neg="안 하심"),
    W("게이트볼", v="치심", ing="치시다가", neg="안 치심"),
    W("탁구", v="치심", ing="치시다가", neg="안 치심"),
    W("파크골프", v="치심", ing="치시다가", neg="안 치심"),
    W("배드민턴", v="치심", ing="치시다가", neg="안 치심"),
    W("자전거", v="타심", ing="타시다가", neg="안 타심"),
    W("걷기 운동", v="하심", ing="하시다가", neg="안 하심"),
)
EX_FREQ = ("일주일에 한 번", "일주일에 두 번", "일주일에 세 번", "일주일에 네 번", "일주일에 다섯 번")
WALK_WHEN = ("아침마다", "저녁마다", "매일 아침", "점심 식사 후에")
WALK_PLACES = ("동네 공원", "하천변", "뒷산", "아파트 단지", "학교 운동장", "둘레길")
CROPS = ("상추", "고추", "깻잎", "방울토마토", "배추", "오이", "호박", "감자", "대파", "가지", "옥수수")
CENTRES = ("경로당", "노인정", "마을회관")
CLASSES = (
    "노래 교실",
    "한글 교실",
    "스마트폰 교실",
    "서예 교실",
    "요가 교실",
    "컴퓨터 교실",
    "민요 교실",
    "그림 교실",
    "영어 교실",
    "건강 체조 교실",
)
WEEKDAYS = ("월요일", "화요일", "수요일", "목요일", "금요일", "토요일")
GAMES = (
    W("화투", v="치심", ing="치시다가"),
    W("바둑", v="두심", ing="두시다가"),
    W("장기", v="두심", ing="두시다가"),
    W("윷놀이", v="하심", ing="하시다가"),
    W("오목", v="두심", ing="두시다가"),
)
GAME_PLACES = ("경로당", "동네 정자", "친구 집", "공원")
HOBBIES = (
    W("뜨개질", v="하심"),
    W("십자수", v="놓으심"),
    W("성경 필사", v="하심"),
    W("종이접기", v="하심"),
    W("퍼즐", v="맞추심"),
    W("화분", v="가꾸심"),
    W("트로트", v="들으심"),
    W("라디오", v="들으심"),
    W("일기", v="쓰심"),
    W("드라마", v="보심"),
)
FAITHS = ("교회", "성당", "절")
JOBS = (
    "공원 청소",
    "학교 앞 교통 지도",
    "아파트 경비",
    "급식 도우미",
    "도서관 정리",
    "주차 안내",
    "동네 순찰",
)
CLUBS = ("동창 모임", "계모임", "부녀회", "노인회", "향우회", "친목회")
CLUB_FREQ = ("한 달에 한 번", "두 달에 한 번", "일주일에 한 번")
MOODS = (
    W("외로움", v="외로워하심", past="외로워하셨으나", neg="외로워하지 않으심", n="외로움"),
    W("우울", v="우울해하심", past="우울해하셨으나", neg="우울해하지 않으심", n="우울감"),
    W("적적", v="적적해하심", past="적적해하셨으나", neg="적적해하지 않으심", n="적적함"),
    W("불안", v="불안해하심", past="불안해하셨으나", neg="불안해하지 않으심", n="불안감"),
    W("무기력", v="무기력해하심", past="무기력해하셨으나", neg="무기력해하지 않으심", n="무기력감"),
)
READING = ("신문 글씨", "휴대폰 글씨", "텔레비전 자막", "약 봉투 글씨")


def _topics() -> tuple[Topic, ...]:
    T = Topic
    return (
        # health ---------------------------------------------------------------------------------
        T(
            "pain",
            "health",
            group="body",
            slots={"part": BODY},
            key_slots=("part",),
            keywords=("통증",),
            memory=(
                "{part:이/가} 아프심",
                "{part:이/가} 자주 쑤신다고 하심",
                "{part} 통증으로 고생하심",
                "{part:이/가} 아파서 힘들어하심",
            ),
            paraphrase=(
                "요즘도 {part:이/가} 아프심",
                "여전히 {part:이/가} 쑤신다고 하심",
                "아직 {part} 통증이 가시지 않음",
                "{part:이/가} 계속 아프다고 하심",
                "{part} 통증이 여전하심",
            ),
            update=(
                "{part} 통증이 다 나으심",
                "{part:이/가} 아팠으나 이제 괜찮으심",
                "치료를 받고 {part:이/가} 많이 좋아지심",
                "요즘은 {part:이/가} 안 아프다고 하심",
                "{part} 통증이 말끔히 사라지심",
            ),
            extra=("{part2:도} 아프기 시작하심", "요즘은 {part2:까지} 쑤신다고 하심"),
        ),
        T(
            "symptom",
            "health",
            group="body",
            slots={"sym": SYMPTOMS},
            key_slots=("sym",),
            memory=(
                "{sym:이/가} 있으심",
                "{sym} 때문에 고생하심",
                "{sym} 증상으로 불편해하심",
                "요즘 {sym:이/가} 심하심",
            ),
            paraphrase=(
                "여전히 {sym:이/가} 있으심",
                "{sym} 증상이 계속되고 있음",
                "아직도 {sym} 때문에 힘들어하심",
                "{sym:이/가} 좀처럼 낫지 않음",
            ),
            update=(
                "{sym:이/가} 없어지심",
                "{sym:이/가} 있었으나 이제 괜찮으심",
                "약을 드시고 {sym:이/가} 나으심",
                "요즘은 {sym:이/가} 거의 없으심",
                "{sym} 증상이 사라지심",
            ),
            extra=("{sym2} 증상도 생기심", "요즘 {sym2:까지} 생겨서 걱정하심"),
        ),
        T(
            "illness",
            "health",
            group="body",
            slots={"ill": ILLNESSES},
            key_slots=("ill",),
            memory=("{ill.got}", "{ill:으로/로} 앓아누우심", "{ill:으로/로} 고생하고 계심"),
            paraphrase=(
                "아직 {ill:이/가} 낫지 않으심",
                "여전히 {ill:으로/로} 고생하심",
                "{ill} 증세가 계속되고 있음",
            ),
            update=(
                "{ill:이/가} 다 나으심",
                "{ill:으로/로} 고생하셨으나 이제 회복하심",
                "{ill:이/가} 나아서 기운을 차리심",
            ),
        ),
        T(
            "metric",
            "health",
            group="meds",
            slots={"m": METRICS},
            key_slots=("m",),
            memory=("{m:이/가} 높으심", "검사에서 {m:이/가} 높게 나오심", "{m:이/가} 높아서 걱정하심"),
            paraphrase=(
                "여전히 {m:이/가} 높은 편이심",
                "이번에도 {m:이/가} 높게 나왔다고 하심",
                "{m:이/가} 아직 높음",
            ),
            update=(
                "{m:이/가} 정상으로 돌아오심",
                "{m:이/가} 높았으나 요즘은 정상임",
                "{m:이/가} 많이 내려가심",
                "이번 검사에서는 {m:이/가} 정상으로 나오심",
            ),
        ),
        T(
            "medicine",
            "health",
            group="meds",
            slots={"med": MEDS},
            key_slots=("med",),
            memory=(
                "{med:을/를} 드심",
                "매일 아침 {med:을/를} 챙겨 드심",
                "{med:을/를} 복용하심",
                "식후에 {med:을/를} 드심",
            ),
            paraphrase=(
                "요즘도 {med:을/를} 빠짐없이 드심",
                "{med:은/는} 여전히 드시고 계심",
                "지금도 {med:을/를} 복용 중이심",
                "{med:을/를} 꾸준히 챙겨 드심",
            ),
            update=(
                "{med:을/를} 끊으심",
                "{med:은/는} 이제 안 드심",
                "의사 권유로 {med:을/를} 그만 드시게 됨",
                "{med:을/를} 드셨으나 요즘은 끊으심",
                "{med:을/를} 다른 약으로 바꾸심",
            ),
            extra=("{med2:도} 드시기 시작하심", "{med2:을/를} 새로 처방받으심", "요즘은 {med2:도} 함께 드심"),
        ),
        T(
            "dose",
            "health",
            group="meds",
            slots={"med": RX_MEDS, "dose": DOSES},
            key_slots=("med",),
            memory=("{med:을/를} {dose} 드심", "{dose} {med:을/를} 복용하심"),
            paraphrase=("{med:은/는} 지금도 {dose} 드심", "여전히 {med:을/를} {dose}씩 드심"),
            update=(
                "{med:을/를} 이제 {dose2} 드심",
                "{med} 복용을 {dose2:으로/로} 바꾸심",
                "{med:을/를} {dose} 드셨으나 요즘은 {dose2} 드심",
            ),
        ),
        T(
            "sleep",
            "health",
            group="sleep",
            slots={"hour": SLEEP_HOURS},
            keywords=("잠", "주무", "깨", "숙면"),
            memory=(
                "밤에 잠을 설치심",
                "자다가 자주 깨심",
                "잠드는 데 오래 걸리심",
                "새벽 {hour:에} 깨서 다시 잠들지 못하심",
            ),
            paraphrase=(
                "여전히 밤에 자주 깨심",
                "요즘도 잠을 잘 못 이루심",
                "잠을 설치는 날이 많으심",
                "아직도 새벽 {hour:이/가} 되면 깨심",
            ),
            update=(
                "요즘은 밤에 잠을 푹 주무심",
                "잠을 설쳤으나 이제 잘 주무심",
                "요즘은 한 번도 안 깨고 주무심",
                "산책을 시작한 뒤로 잠을 잘 주무심",
                "요즘은 숙면을 취하신다고 하심",
            ),
        ),
        T(
            "appetite",
            "health",
            group="meal",
            keywords=("맛", "식욕", "식사", "끼니", "드심", "밥"),
            memory=("식욕이 떨어지심", "밥맛이 없다고 하심", "끼니를 자주 거르심", "식사량이 많이 줄어드심"),
            paraphrase=(
                "여전히 식욕이 없으심",
                "요즘도 밥을 조금만 드심",
                "아직 입맛이 돌아오지 않음",
                "밥맛이 통 없다고 하심",
            ),
            update=(
                "식욕이 돌아오심",
                "밥맛이 없었으나 요즘은 잘 드심",
                "요즘은 세 끼를 꼬박꼬박 드심",
                "입맛이 살아나서 식사를 잘 하심",
            ),
        ),
        T(
            "eyes",
            "health",
            group="eyes",
            slots={"read": READING},
            keywords=("눈", "시력", "보이", "글씨", "자막"),
            memory=("눈이 침침하심", "시력이 많이 떨어지심", "{read:이/가} 잘 안 보인다고 하심"),
            paraphrase=(
                "요즘도 눈이 침침하다고 하심",
                "여전히 {read:이/가} 잘 안 보이심",
                "아직 시력이 좋지 않으심",
            ),
            update=(
                "안경을 새로 맞춘 뒤로 잘 보이심",
                "눈이 침침했으나 이제 잘 보이심",
                "치료 후 시력이 좋아지심",
                "요즘은 {read:도} 잘 보인다고 하심",
            ),
        ),
        T(
            "ears",
            "health",
            group="ears",
            keywords=("귀", "청력", "들리", "들으", "알아듣", "알아들"),
            memory=("귀가 잘 안 들리심", "청력이 떨어지심", "귀가 어두우심"),
            paraphrase=(
                "여전히 귀가 잘 안 들리심",
                "요즘도 말소리를 잘 못 알아들으심",
                "아직 청력이 좋지 않으심",
            ),
            update=(
                "보청기를 끼고 잘 들으심",
                "귀가 어두우셨으나 보청기를 하고 나아지심",
                "보청기를 맞춰서 이제 잘 들리심",
            ),
        ),
        # clinics and appointments ---------------------------------------------------------------
        T(
            "clinic",
            "clinic",
            group="body",
            slots={"clinic": CLINICS, "freq": VISIT_FREQ},
            key_slots=("clinic",),
            memory=(
                "{clinic:에} 다니심",
                "{freq} {clinic:에} 가심",
                "{clinic:에서} 정기적으로 진료를 받으심",
            ),
            paraphrase=(
                "요즘도 {clinic:에} 꾸준히 다니심",
                "여전히 {clinic:에} 다니고 계심",
                "지금도 {clinic} 진료를 받으러 다니심",
            ),
            update=(
                "{clinic:에} 이제 안 다니심",
                "{clinic:에} 다니다가 그만두심",
                "다니던 {clinic:을/를} 집 근처로 옮기심",
                "요즘은 {clinic:에} {freq2}만 가심",
                "치료가 끝나서 {clinic:에} 더 이상 안 가심",
            ),
            extra=("{clinic2:에도} 다니기 시작하심", "요즘은 {clinic2:에도} 가끔 가심"),
        ),
        T(
            "treatment",
            "clinic",
            group="body",
            slots={"part": BODY, "tx": TREATMENTS},
            key_slots=("tx",),
            memory=("{part} 때문에 {tx:을/를} 받으심", "{part} {tx:을/를} 받으러 다니심"),
            paraphrase=("요즘도 {part} {tx:을/를} 꾸준히 받으심", "여전히 {tx:을/를} 받으러 다니심"),
            update=(
                "{part} {tx:을/를} 다 마치심",
                "{part} {tx:을/를} 받다가 그만두심",
                "{part:이/가} 나아서 {tx:을/를} 그만 받으심",
            ),
            extra=("{tx2:도} 함께 받기 시작하심",),
        ),
        T(
            "appointment",
            "clinic",
            group="appt",
            slots={"clinic": CLINICS, "day": DAYS, "later": LATER},
            key_slots=("clinic",),
            memory=(
                "{day.at} {clinic} 예약이 있음",
                "{day.at} {clinic} 진료를 받으실 예정임",
                "{day.at} {clinic:에} 가셔야 함",
            ),
            paraphrase=(
                "{clinic} 예약이 {day:으로/로} 잡혀 있음",
                "{day.at} {clinic:에} 가기로 하심",
                "{day} {clinic} 예약을 잊지 않고 계심",
            ),
            update=(
                "{clinic} 진료를 받고 약을 새로 처방받으심",
                "{clinic:에} 다녀오셨는데 정밀 검사를 받으셔야 함",
            ),
            ending=(
                "{clinic} 예약을 취소하심",
                "{clinic} 예약이 {later:으로/로} 미뤄짐",
                "사정이 생겨 {clinic} 예약을 연기하심",
                "{clinic} 진료 일정이 취소됨",
                "{clinic} 예약을 {later:으로/로} 미루심",
            ),
            extra=("{day2.at} {clinic2} 예약도 있음",),
        ),
        T(
            "exam",
            "clinic",
            group="appt",
            slots={"exam": EXAMS, "day": DAYS, "later": LATER},
            key_slots=("exam",),
            memory=("{day.at} {exam:을/를} 받으실 예정임", "{day.at} {exam:이/가} 잡혀 있음"),
            paraphrase=("{exam} 날짜가 {day:으로/로} 정해져 있음", "{day.at} {exam:을/를} 받기로 하심"),
            update=("{exam:을/를} 받으셨는데 결과가 괜찮다고 하심", "{exam} 결과가 좋게 나오심"),
            ending=(
                "{exam:을/를} 취소하심",
                "{exam} 일정이 {later:으로/로} 미뤄짐",
                "{exam:을/를} 연기하심",
                "병원 사정으로 {exam:이/가} 취소됨",
            ),
            extra=("{exam2:도} 같이 받으실 예정임",),
        ),
        T(
            "elder_in_hospital",
            "family",
            group="household",
            slots={"elder": ELDERS},
            key_slots=("elder",),
            keywords=("입원", "병원", "퇴원"),
            memory=(
                "{elder:이/가} 병원에 입원해 계심",
                "{elder:이/가} 입원 중이심",
                "{elder:이/가} 수술을 받고 입원해 계심",
            ),
            paraphrase=(
                "{elder:이/가} 아직 병원에 계심",
                "{elder:은/는} 여전히 입원 중이심",
                "{elder:이/가} 계속 병원에서 치료받고 계심",
            ),
            update=("{elder:이/가} 요양병원으로 옮기심",),
            ending=(
                "{elder:이/가} 퇴원하심",
                "{elder:이/가} 퇴원해서 집에 오심",
                "{elder:이/가} 병원에서 나오심",
            ),
        ),
        T(
            "junior_in_hospital",
            "family",
            group="junior_hospital",
            slots={"junior": JUNIORS},
            key_slots=("junior",),
            keywords=("입원", "병원", "퇴원"),
            memory=("{junior:이/가} 입원해 있음", "{junior:이/가} 다쳐서 병원에 입원함"),
            paraphrase=("{junior:이/가} 아직 병원에 있음", "{junior:은/는} 여전히 입원 중임"),
            update=(),
            ending=("{junior:이/가} 퇴원함", "{junior:이/가} 병원에서 나와 집으로 감"),
        ),
        # meals ----------------------------------------------------------------------------------
        T(
            "breakfast",
            "meals",
            group="meal",
            slots={"food": FOODS},
            key_slots=("food",),
            keywords=("아침",),
            memory=(
                "아침마다 {food:을/를} 드심",
                "아침 식사로 {food:을/를} 드심",
                "아침에는 주로 {food:을/를} 드심",
            ),
            paraphrase=("요즘도 아침은 {food:으로/로} 드심", "여전히 아침에 {food:을/를} 챙겨 드심"),
            update=(
                "요즘은 아침에 {food2:을/를} 드심",
                "아침 메뉴를 {food2:으로/로} 바꾸심",
                "아침에 {food:을/를} 드셨으나 요즘은 {food2:을/를} 드심",
            ),
            extra=("점심은 주로 {food2:을/를} 드심", "저녁에는 {food2:을/를} 즐겨 드심"),
        ),
        T(
            "drinking",
            "meals",
            group="drink",
            slots={"drink": DRINKS},
            key_slots=("drink",),
            memory=(
                "저녁마다 {drink:을/를} 한두 잔 드심",
                "{drink:을/를} 즐겨 드심",
                "{drink:을/를} 자주 드심",
            ),
            paraphrase=(
                "요즘도 {drink:을/를} 즐겨 드심",
                "여전히 {drink:을/를} 드심",
                "{drink:은/는} 지금도 드신다고 하심",
            ),
            update=(
                "{drink:을/를} 끊으심",
                "{drink:을/를} 드셨으나 요즘은 안 드심",
                "의사 권유로 {drink:을/를} 줄이심",
                "건강 때문에 {drink:을/를} 딱 끊으심",
            ),
        ),
        T(
            "smoking",
            "meals",
            group="smoke",
            slots={"amt": SMOKE},
            keywords=("담배", "금연"),
            memory=("{amt}씩 담배를 피우심", "담배를 오래 피우심"),
            paraphrase=("요즘도 담배를 피우심", "여전히 담배를 못 끊으심"),
            update=(
                "담배를 완전히 끊으심",
                "금연에 성공하심",
                "요즘은 담배를 {amt2}씩 피우심",
                "담배를 피우셨으나 이제 끊으심",
            ),
        ),
        # activities -----------------------------------------------------------------------------
        T(
            "exercise",
            "activity",
            group="exercise",
            slots={"act": ACTIVITIES, "freq": EX_FREQ},
            key_slots=("act",),
            memory=("{freq} {act:을/를} {act.v}", "{act:을/를} 즐겨 {act.v}"),
            paraphrase=(
                "요즘도 {act:을/를} 꾸준히 {act.v}",
                "여전히 {act:을/를} 즐기심",
                "{act:은/는} 지금도 계속 {act.v}",
            ),
            update=(
                "{act:을/를} 그만두심",
                "요즘은 {act:을/를} {act.neg}",
                "{act:을/를} {act.ing} 요즘은 쉬고 계심",
                "요즘은 {act:을/를} {freq2} {act.v}",
            ),
            extra=("{act2:도} 새로 시작하심", "요즘은 {act2:도} 같이 {act2.v}"),
        ),
        T(
            "walk",
            "activity",
            group="walk",
            slots={"when": WALK_WHEN, "park": WALK_PLACES},
            key_slots=("park",),
            keywords=("산책", "걸으", "걷"),
            memory=("{when} {park:에서} 산책하심", "{park:을/를} 자주 걸으심"),
            paraphrase=(
                "요즘도 {park:에서} 걸으심",
                "여전히 {park:으로/로} 산책을 나가심",
                "{park} 산책을 꾸준히 하심",
            ),
            update=(
                "산책 장소를 {park2:으로/로} 바꾸심",
                "{park:에서} 걸으시다가 요즘은 {park2:에서} 산책하심",
                "요즘은 {park} 산책을 안 나가심",
            ),
        ),
        T(
            "garden",
            "activity",
            group="garden",
            slots={"crop": CROPS},
            key_slots=("crop",),
            keywords=("텃밭",),
            memory=("텃밭에 {crop:을/를} 키우심", "텃밭에서 {crop:을/를} 기르심", "{crop} 농사를 지으심"),
            paraphrase=(
                "여전히 텃밭에서 {crop:을/를} 키우심",
                "요즘도 {crop:을/를} 가꾸느라 바쁘심",
                "{crop} 농사를 계속 지으심",
            ),
            update=(
                "텃밭 일을 그만두심",
                "{crop:을/를} 뽑고 {crop2:을/를} 심으심",
                "요즘은 {crop:은/는} 안 키우시고 {crop2:을/를} 키우심",
                "텃밭을 정리하셔서 {crop:은/는} 더 안 키우심",
            ),
            extra=("텃밭에 {crop2:도} 새로 심으심", "{crop2:도} 조금 심어 두심"),
        ),
        T(
            "senior_centre",
            "activity",
            group="centre",
            slots={"c": CENTRES},
            key_slots=("c",),
            memory=("{c:에} 다니심", "오후마다 {c:에} 나가심", "{c:에서} 친구들과 어울리심"),
            paraphrase=(
                "요즘도 {c:에} 꾸준히 나가심",
                "여전히 {c:에서} 시간을 보내심",
                "{c:에} 거의 매일 들르심",
            ),
            update=(
                "요즘은 {c:에} 안 나가심",
                "{c:에} 다니셨으나 요즘은 집에만 계심",
                "{c:에} 다니다가 그만두심",
            ),
        ),
        T(
            "class",
            "activity",
            group="class",
            slots={"cls": CLASSES, "dow": WEEKDAYS},
            key_slots=("cls",),
            memory=(
                "복지관 {cls:에} 다니심",
                "복지관에서 {cls} 수업을 들으심",
                "{dow}마다 복지관 {cls:에} 가심",
            ),
            paraphrase=(
                "여전히 복지관 {cls:에} 다니심",
                "요즘도 {cls} 수업에 빠지지 않고 나가심",
                "{cls:에} 계속 다니고 계심",
            ),
            update=(
                "{cls:을/를} 그만두심",
                "{cls} 수업이 끝나서 이제 안 다니심",
                "{cls:을/를} 그만두고 {cls2:에} 다니기 시작하심",
                "요즘은 {cls:에} 안 나가심",
            ),
            extra=("복지관 {cls2:에도} 새로 등록하심", "{cls2:에도} 다니기 시작하심"),
        ),
        T(
            "game",
            "activity",
            group="centre",
            slots={"game": GAMES, "place": GAME_PLACES},
            key_slots=("game",),
            memory=("{place:에서} 친구들과 {game:을/를} {game.v}", "친구들과 {game:을/를} 즐겨 {game.v}"),
            paraphrase=(
                "요즘도 친구들과 {game:을/를} {game.v}",
                "여전히 {game:을/를} 즐기심",
                "{game:은/는} 지금도 자주 {game.v}",
            ),
            update=(
                "{game:은/는} 이제 안 {game.v}",
                "{game:을/를} {game.ing} 요즘은 그만두심",
                "요즘은 {game:을/를} 통 안 {game.v}",
            ),
            extra=("{game2:도} 배우기 시작하심", "요즘은 {game2:도} 가끔 {game2.v}"),
        ),
        T(
            "hobby",
            "activity",
            group="hobby",
            slots={"hob": HOBBIES},
            key_slots=("hob",),
            memory=("{hob:을/를} 즐겨 {hob.v}", "집에서 {hob:을/를} {hob.v}", "매일 {hob:을/를} {hob.v}"),
            paraphrase=("요즘도 {hob:을/를} 즐겨 {hob.v}", "여전히 집에서 {hob:을/를} {hob.v}"),
            update=(
                "요즘은 {hob:을/를} 통 안 {hob.v}",
                "{hob:에} 흥미를 잃으심",
                "요즘은 {hob} 대신 {hob2:을/를} {hob2.v}",
            ),
            extra=("{hob2:도} 즐겨 {hob2.v}", "요즘은 {hob2:도} 가끔 {hob2.v}"),
        ),
        T(
            "faith",
            "activity",
            group="faith",
            slots={"faith": FAITHS},
            key_slots=("faith",),
            memory=("{faith:에} 다니심", "주말마다 {faith:에} 나가심", "{faith} 모임에 열심히 나가심"),
            paraphrase=(
                "요즘도 {faith:에} 빠지지 않고 다니심",
                "여전히 {faith:에} 나가심",
                "지금도 {faith:에} 꾸준히 다니심",
            ),
            update=(
                "요즘은 다리가 불편해 {faith:에} 못 나가심",
                "{faith:에} 다니시다가 그만두심",
                "다니던 {faith:을/를} 집 근처로 옮기심",
            ),
        ),
        T(
            "job",
            "activity",
            group="job",
            slots={"job": JOBS, "freq": EX_FREQ},
            key_slots=("job",),
            memory=("노인 일자리로 {job} 일을 하심", "{job} 일을 다니심", "{freq} {job} 일을 나가심"),
            paraphrase=("요즘도 {job} 일을 계속하심", "여전히 {job} 일을 다니심"),
            update=(
                "{job} 일을 그만두심",
                "계약이 끝나서 {job} 일을 그만두심",
                "{job} 일을 그만두고 {job2} 일을 시작하심",
                "요즘은 {job} 일을 {freq2} 나가심",
            ),
        ),
        T(
            "club",
            "activity",
            group="club",
            slots={"club": CLUBS, "freq": CLUB_FREQ},
            key_slots=("club",),
            memory=("{freq} {club:에} 나가심", "{club} 활동을 하심"),
            paraphrase=("요즘도 {club:에} 빠지지 않고 나가심", "여전히 {club:에} 나가심"),
            update=(
                "{club:에} 이제 안 나가심",
                "{club:이/가} 없어짐",
                "{club:에} 나가셨으나 요즘은 그만두심",
                "요즘은 {club:에} {freq2} 나가심",
            ),
            extra=("{club2:에도} 나가기 시작하심",),
        ),
        T(
            "trip",
            "plans",
            group="trip",
            slots={"trip": TRIPS, "day": DAYS, "later": LATER},
            key_slots=("trip",),
            memory=("{day.at} {trip:을/를} 가실 예정임", "{day.at} {trip:을/를} 떠나실 계획임"),
            paraphrase=(
                "{day.at} {trip:을/를} 가기로 하심",
                "{trip:을/를} 손꼽아 기다리심",
                "{trip} 날짜가 {day:으로/로} 정해져 있음",
            ),
            update=(),
            ending=(
                "{trip:이/가} 취소됨",
                "{trip:을/를} {later:으로/로} 미루심",
                "몸이 안 좋아 {trip:을/를} 못 가시게 됨",
                "{trip} 일정이 연기됨",
            ),
        ),
        # family ---------------------------------------------------------------------------------
        T(
            "residence",
            "family",
            group="residence",
            slots={"junior": JUNIORS, "city": CITIES},
            key_slots=("junior",),
            memory=(
                "{junior:이/가} {city:에} 살고 있음",
                "{junior:은/는} {city:에서} 지냄",
                "{junior} 가족이 {city:에} 삶",
            ),
            paraphrase=(
                "{junior:이/가} 여전히 {city:에} 살고 있음",
                "{junior:은/는} 지금도 {city:에서} 지냄",
            ),
            update=(
                "{junior:이/가} {city2:으로/로} 이사함",
                "{junior:이/가} {city:에서} {city2:으로/로} 이사 감",
                "{junior} 가족이 {city2:으로/로} 옮겨 감",
                "{junior:이/가} 직장 때문에 {city2:으로/로} 가게 됨",
            ),
            extra=("{junior2:은/는} {city2:에} 살고 있음",),
        ),
        T(
            "work",
            "family",
            group="work",
            slots={"junior": JUNIORS, "work": WORKPLACES},
            key_slots=("junior",),
            memory=("{junior:이/가} {work:에} 다님", "{junior:은/는} {work:에서} 일함"),
            paraphrase=(
                "{junior:이/가} 여전히 {work:에} 다님",
                "{junior:은/는} 지금도 {work:에서} 일하고 있음",
            ),
            update=(
                "{junior:이/가} {work:을/를} 그만둠",
                "{junior:이/가} {work2:으로/로} 직장을 옮김",
                "{junior:이/가} {work:에서} 일하다가 퇴직함",
                "{junior:이/가} {work:을/를} 그만두고 {work2:에} 들어감",
            ),
            extra=("{junior2:은/는} {work2:에} 취직함",),
        ),
        T(
            "study",
            "family",
            group="study",
            slots={"junior": GRANDCHILDREN, "test": STUDY_EXAMS},
            key_slots=("junior",),
            memory=("{junior:이/가} {test:을/를} 준비하고 있음", "{junior:이/가} {test} 공부를 하고 있음"),
            paraphrase=(
                "{junior:은/는} 아직 {test:을/를} 준비 중임",
                "{junior:이/가} 여전히 {test} 공부에 열심임",
            ),
            update=("{junior:이/가} {test:에} 합격함", "{junior:이/가} {test:에} 붙어서 기뻐하심"),
        ),
        T(
            "pregnancy",
            "family",
            group="pregnancy",
            slots={"junior": MOTHERS_TO_BE, "baby": BABIES},
            key_slots=("junior",),
            memory=("{junior:이/가} 임신 중임", "{junior:이/가} 아기를 가짐"),
            paraphrase=("{junior:이/가} 출산을 앞두고 있음", "{junior:은/는} 아직 임신 중임"),
            update=(
                "{junior:이/가} 아기를 낳음",
                "{junior:이/가} 건강한 {baby:을/를} 낳음",
                "{junior:이/가} {baby:을/를} 출산함",
            ),
        ),
        T(
            "visit_plan",
            "plans",
            group="visit",
            slots={"junior": JUNIORS, "day": DAYS, "later": LATER},
            key_slots=("junior",),
            memory=(
                "{day.at} {junior:이/가} 찾아올 예정임",
                "{day.at} {junior:이/가} 다녀가기로 함",
                "{junior:이/가} {day.at} 온다고 함",
            ),
            paraphrase=(
                "{junior:이/가} {day.at} 오기로 되어 있음",
                "{day.at} {junior:이/가} 온다고 해서 기다리심",
            ),
            update=(),
            ending=(
                "{junior} 방문이 취소됨",
                "{junior:이/가} 일이 바빠서 못 오게 됨",
                "{junior:이/가} 오기로 한 날이 {later:으로/로} 미뤄짐",
                "{junior:이/가} 방문을 {later:으로/로} 미룸",
            ),
            extra=("{day2.at} {junior2:도} 올 예정임",),
        ),
        T(
            "guest",
            "family",
            group="guest",
            slots={"junior": JUNIORS},
            key_slots=("junior",),
            memory=(
                "{junior:이/가} 집에 와서 머물고 있음",
                "{junior:이/가} 며칠째 함께 지내고 있음",
                "{junior:이/가} 집에 와 있음",
            ),
            paraphrase=("{junior:이/가} 아직 집에 있음", "{junior:이/가} 여전히 같이 지내고 있음"),
            update=(),
            ending=(
                "{junior:이/가} 자기 집으로 돌아감",
                "{junior:이/가} 지내다가 떠남",
                "{junior:이/가} 돌아가서 집이 다시 조용해짐",
            ),
        ),
        T(
            "family_event",
            "plans",
            group="event",
            slots={"ev": EVENTS, "day": DAYS, "later": LATER},
            key_slots=("ev",),
            memory=("{day.at} {ev:이/가} 있음", "{day.at} {ev:에} 가실 예정임"),
            paraphrase=(
                "{ev:은/는} {day:으로/로} 잡혀 있음",
                "{day.at} {ev:에} 가기로 하심",
                "{ev:에} 가려고 준비하고 계심",
            ),
            update=(),
            ending=("{ev:이/가} 취소됨", "{ev:이/가} {later:으로/로} 미뤄짐", "{ev:이/가} 연기됨"),
        ),
        T(
            "stay_with_child",
            "plans",
            group="household",
            slots={"junior": CHILDREN},
            key_slots=("junior",),
            memory=("{junior} 집에 가서 지내고 계심", "{junior}네 집에 머물고 계심"),
            paraphrase=("아직 {junior}네 집에 계심", "{junior} 집에서 여전히 지내고 계심"),
            update=("아예 {junior} 집으로 들어가 사시기로 하심",),
            ending=("{junior} 집에서 지내다가 댁으로 돌아오심", "{junior}네 집에서 돌아오심"),
        ),
        T(
            "elder_away",
            "family",
            group="household",
            slots={"elder": ELDERS, "place": AWAY_PLACES},
            key_slots=("elder",),
            memory=("{elder:이/가} {place:에} 가 계심", "{elder:이/가} 며칠 {place:에} 다니러 가심"),
            paraphrase=(
                "{elder:은/는} 아직 {place:에} 계심",
                "{elder:이/가} 여전히 {place:에서} 지내고 계심",
            ),
            update=(),
            ending=("{elder:이/가} 집으로 돌아오심", "{elder:이/가} {place:에서} 돌아오심"),
        ),
        # living situation -----------------------------------------------------------------------
        T(
            "alone",
            "living",
            group="household",
            slots={"yrs": ALONE_YEARS, "junior": CHILDREN},
            keywords=("혼자", "홀로", "같이", "함께", "합가", "사심"),
            memory=("혼자 사심", "혼자 지내심", "{yrs} 혼자 사심"),
            paraphrase=("여전히 혼자 지내심", "지금도 홀로 사심"),
            update=(
                "{junior:과/와} 합가하심",
                "{junior} 집에 들어가서 같이 사심",
                "혼자 사셨으나 이제 {junior:과/와} 함께 사심",
            ),
        ),
        T(
            "live_with",
            "living",
            group="household",
            slots={"junior": CHILDREN},
            key_slots=("junior",),
            memory=("{junior:과/와} 함께 사심", "{junior} 가족과 한집에 사심"),
            paraphrase=("여전히 {junior:과/와} 같이 지내심", "지금도 {junior} 내외와 함께 사심"),
            update=(
                "{junior:이/가} 분가해서 이제 혼자 사심",
                "{junior:과/와} 살다가 따로 나와 사심",
                "{junior} 가족이 이사를 나가서 혼자 지내심",
            ),
        ),
        T(
            "home_city",
            "living",
            group="household",
            slots={"city": CITIES[:14]},
            key_slots=("city",),
            memory=("{city:에} 사심", "{city:에서} 오래 사심"),
            paraphrase=("여전히 {city:에서} 지내심", "지금도 {city:에} 사심"),
            update=(
                "{city2:으로/로} 이사 가심",
                "{city:에서} 살다가 {city2:으로/로} 옮기심",
                "{city2:으로/로} 거처를 옮기심",
            ),
        ),
        T(
            "home_type",
            "living",
            group="household",
            slots={"home": HOMES},
            key_slots=("home",),
            memory=("{home:에} 사심", "{home:에서} 오래 사심"),
            paraphrase=("여전히 {home:에} 사심", "지금도 {home:에서} 지내심"),
            update=(
                "{home2:으로/로} 이사하심",
                "{home:에서} {home2:으로/로} 옮기심",
                "{home:을/를} 정리하고 {home2:으로/로} 이사하심",
            ),
        ),
        T(
            "move_plan",
            "plans",
            group="household",
            slots={"day": DAYS, "later": LATER},
            keywords=("이사",),
            memory=("{day.at} 이사하실 예정임", "{day.at} 이사를 가실 계획임"),
            paraphrase=(
                "{day.at} 이사 가기로 하심",
                "이사 날짜가 {day:으로/로} 잡혀 있음",
                "{day.at} 있을 이사를 앞두고 짐을 싸고 계심",
            ),
            update=("이사를 무사히 마치고 새집에 적응 중이심",),
            ending=(
                "이사 계획이 취소됨",
                "이사를 {later:으로/로} 미루심",
                "이사가 없던 일이 됨",
                "집이 안 팔려서 이사를 미루심",
            ),
        ),
        T(
            "appliance",
            "living",
            group="appliance",
            slots={"item": APPLIANCES},
            key_slots=("item",),
            memory=("{item:이/가} 고장 나 있음", "{item:이/가} 고장 나서 불편해하심"),
            paraphrase=(
                "{item:이/가} 아직 고장 난 상태임",
                "{item:을/를} 아직 못 고치심",
                "{item:이/가} 여전히 작동하지 않음",
            ),
            update=(),
            ending=("{item:을/를} 고치심", "{item} 수리가 끝남", "기사님이 와서 {item:을/를} 고쳐 줌"),
        ),
        T(
            "pet",
            "living",
            group="pet",
            slots={"pet": PETS},
            key_slots=("pet",),
            memory=("{pet:을/를} 키우심", "{pet} 한 마리와 함께 사심"),
            paraphrase=("요즘도 {pet:을/를} 돌보며 지내심", "여전히 {pet:을/를} 키우심"),
            update=(
                "키우던 {pet:이/가} 세상을 떠남",
                "{pet:을/를} 더 이상 안 키우심",
                "{pet:을/를} 자녀 집에 보내심",
            ),
            extra=("{pet2:도} 한 마리 새로 들이심",),
        ),
        T(
            "caregiver",
            "living",
            group="care",
            slots={"freq": CARE_FREQ},
            keywords=("요양보호사",),
            memory=("요양보호사가 {freq} 집에 옴", "{freq} 요양보호사의 도움을 받으심"),
            paraphrase=("요양보호사가 여전히 {freq} 다녀감", "지금도 {freq} 요양보호사가 방문함"),
            update=(
                "요양보호사가 이제 {freq2} 옴",
                "요양보호사 방문이 {freq2:으로/로} 바뀜",
                "요양보호사가 그만둬서 이제 안 옴",
            ),
        ),
        T(
            "service",
            "living",
            group="care",
            slots={"svc": SERVICES},
            key_slots=("svc",),
            memory=("{svc:을/를} 받으심", "{svc:을/를} 이용하고 계심"),
            paraphrase=("요즘도 {svc:을/를} 꾸준히 받으심", "여전히 {svc:을/를} 이용하심"),
            update=("{svc:을/를} 끊으심", "{svc:이/가} 중단됨", "{svc:을/를} 더 이상 안 받으심"),
            extra=("{svc2:도} 신청하심",),
        ),
        # mood -----------------------------------------------------------------------------------
        T(
            "low_mood",
            "mood",
            group="mood",
            slots={"mood": MOODS},
            key_slots=("mood",),
            keywords=("외로", "우울", "적적", "불안", "무기력"),
            memory=("요즘 {mood.v}", "{mood.n:을/를} 자주 느끼심", "혼자 있으면 {mood.v}"),
            paraphrase=(
                "여전히 {mood.v}",
                "요즘도 {mood.n:을/를} 느끼신다고 하심",
                "아직 {mood.n:이/가} 가시지 않음",
            ),
            update=(
                "{mood.past} 요즘은 즐겁게 지내심",
                "요즘은 {mood.neg}",
                "{mood.past} 이제 기분이 많이 좋아지심",
            ),
        ),
        T(
            "good_mood",
            "mood",
            group="mood",
            keywords=("기분", "즐겁", "마음", "편안", "편히", "우울", "울적"),
            memory=("요즘 기분이 좋으심", "요즘 즐겁게 지내심", "마음이 편안하다고 하심"),
            paraphrase=("여전히 기분이 좋으심", "요즘도 즐겁게 지내신다고 하심", "마음 편히 잘 지내심"),
            update=(
                "요즘은 기분이 울적하심",
                "즐겁게 지내셨으나 요즘은 우울해하심",
                "요즘은 마음이 불편하다고 하심",
            ),
        ),
    )


TOPICS: tuple[Topic, ...] = _topics()
_BY_NAME = {t.name: t for t in TOPICS}
_BY_DOMAIN: dict[str, list[Topic]] = {}
for _t in TOPICS:
    _BY_DOMAIN.setdefault(_t.domain, []).append(_t)
#: share of the unrelated-topic APPEND pairs drawn from the memory topic's own domain
NEAR_SHARE = 0.4
_KINDS = ("memory", "paraphrase", "update", "ending", "extra")
# what an unrelated topic's sentence is, for APPEND pairs: mostly a new fact or a change
_CROSS_KINDS = (("memory", 0.35), ("update", 0.3), ("paraphrase", 0.2), ("ending", 0.15))
_OP_KIND = {Op.PASS: "paraphrase", Op.REPLACE: "update", Op.DELETE: "ending"}


def _entities(binding: Mapping[str, Any], names: tuple[str, ...]) -> frozenset[str]:
    return frozenset(_word(binding[n]) for n in names if _base(n) in ENTITY_SLOTS)


@functools.cache
def topic_sentences(name: str, kind: str) -> tuple[tuple[str, frozenset[str]], ...]:
    """Every sentence of topic ``name``'s ``kind`` (memory, paraphrase, update, ending, extra), with
    the person / body part / clinic / medicine words it names."""
    if name not in _BY_NAME or kind not in _KINDS:
        raise InvalidInput(f"unknown topic {name!r} or kind {kind!r}; kinds are {', '.join(_KINDS)}")
    out: dict[str, frozenset[str]] = {}
    for template in getattr(_BY_NAME[name], kind):
        names = _slots(template)
        for b in _BY_NAME[name].bindings(names):
            out.setdefault(_render(template, b), _entities(b, names))
    return tuple(out.items())


def _fits(op: Op | None, m_slots: tuple[str, ...], s_slots: tuple[str, ...]) -> bool:
    """Whether a memory template and a summary template make a sensible pair."""
    # a changed value (X2) must change a value the memory sentence states
    if any(_base(n) not in m_slots for n in s_slots if n.endswith("2")):
        return False
    if op is Op.PASS:  # a paraphrase adds nothing the memory sentence lacks
        return set(s_slots) <= set(m_slots)
    if op is None:  # a compatible addition names a second thing of the same kind
        return any(n.endswith("2") for n in s_slots)
    return True


@dataclass(frozen=True)
class _Pool:
    """The same-topic pairs of one topic and operation, made on demand by index (some pools are big)."""

    topic: Topic
    blocks: tuple[tuple[str, str, tuple[str, ...]], ...]  # (memory template, summary template, slots)
    ends: tuple[int, ...]  # cumulative block sizes

    @property
    def size(self) -> int:
        return self.ends[-1] if self.ends else 0

    def pair(self, index: int) -> tuple[str, str]:
        j = bisect.bisect_right(self.ends, index)
        mt, st, names = self.blocks[j]
        b = self.topic.binding_at(names, index - (self.ends[j - 1] if j else 0))
        return _render(mt, b), _render(st, b)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return (self.pair(i) for i in range(self.size))


@functools.cache
def _pools() -> dict[Op, dict[str, _Pool]]:
    """Every same-topic pair per operation and topic (APPEND: the compatible additions)."""
    pools: dict[Op, dict[str, _Pool]] = {op: {} for op in Op}
    for topic in TOPICS:
        for op, kind in [*_OP_KIND.items(), (Op.APPEND, "extra")]:
            blocks, ends, total = [], [], 0
            for mt in topic.memory:
                for st in getattr(topic, kind):
                    m_slots, s_slots = _slots(mt), _slots(st)
                    if _fits(None if op is Op.APPEND else op, m_slots, s_slots):
                        names = tuple(dict.fromkeys(m_slots + s_slots))
                        total += topic.binding_count(names)
                        blocks.append((mt, st, names))
                        ends.append(total)
            if blocks:
                pools[op][topic.name] = _Pool(topic, tuple(blocks), tuple(ends))
    return pools


def _related(a: Topic, b: Topic) -> bool:
    return a.name == b.name or (bool(a.group) and a.group == b.group)


@functools.cache
def _cross_count() -> int:
    """How many (memory, unrelated sentence) pairs the topics make."""
    mem = {t.name: Counter(e for _, e in topic_sentences(t.name, "memory")) for t in TOPICS}
    summ = {
        t.name: Counter(e for k, _ in _CROSS_KINDS for _, e in topic_sentences(t.name, k)) for t in TOPICS
    }
    # summary sentences naming each entity word, per topic
    naming = {
        t.name: Counter(w for es, c in summ[t.name].items() for w in es for _ in range(c)) for t in TOPICS
    }
    total = 0
    for a in TOPICS:
        for b in TOPICS:
            if _related(a, b):
                continue
            n_summ = sum(summ[b.name].values())
            for em, cm in mem[a.name].items():
                if len(em) <= 1:  # the common case: conflicts are the summaries naming that one word
                    clash = sum(naming[b.name][w] for w in em)
                else:
                    clash = sum(cs for es, cs in summ[b.name].items() if em & es)
                total += cm * (n_summ - clash)
    return total


def max_pairs() -> dict[Op, int]:
    """How many distinct pairs the templates can make for each operation."""
    pools = _pools()
    counts = {op: sum(p.size for p in pools[op].values()) for op in Op}
    counts[Op.APPEND] += _cross_count()
    return counts


# ------------------------------------------------------------------------------------------------
# sampling


def _shares(mix: Mapping[Any, float] | None) -> dict[Op, float]:
    if mix is None:
        return dict(DEFAULT_MIX)
    shares = dict.fromkeys(Op, 0.0)
    for key, value in mix.items():
        try:
            op = Op.parse(key) if isinstance(key, str) else Op(key)
        except (ValueError, InvalidInput):
            raise InvalidInput(
                f"unknown operation {key!r} in mix; use {', '.join(o.value for o in Op)}"
            ) from None
        if not isinstance(value, int | float) or value < 0:
            raise InvalidInput(f"mix share for {op.value} must be a number ≥ 0, got {value!r}; fix the mix")
        shares[op] = float(value)
    total = sum(shares.values())
    if not total > 0:
        raise InvalidInput(
            "mix shares must sum to a positive number; give at least one operation a share > 0"
        )
    return {op: v / total for op, v in shares.items()}


def _counts(n: int, shares: Mapping[Op, float]) -> dict[Op, int]:
    """Largest-remainder rounding: every count is within 1 of n·share and they sum to n."""
    raw = {op: n * shares[op] for op in Op}
    counts = {op: int(raw[op]) for op in Op}
    rest = sorted(Op, key=lambda op: (-(raw[op] - counts[op]), list(Op).index(op)))
    for op in rest[: n - sum(counts.values())]:
        counts[op] += 1
    return counts


def _check_capacity(n: int, shares: Mapping[Op, float]) -> None:
    cap = max_pairs()
    counts = _counts(n, shares)
    short = [op for op in Op if counts[op] > cap[op]]
    if not short:
        return
    best = min(int(cap[op] / shares[op]) for op in Op if shares[op] > 0)
    while best > 0 and any(c > cap[op] for op, c in _counts(best, shares).items()):
        best -= 1
    op = short[0]
    raise InvalidInput(
        f"n={n} needs {counts[op]} {op.value} pairs but the templates make at most {cap[op]}; "
        f"ask for n ≤ {best} with this mix"
    )


def _take_balanced(
    pools: Mapping[str, _Pool], k: int, rng: random.Random, seen: set[tuple[str, str]]
) -> list[tuple[str, str]]:
    """``k`` pairs, the topics taking turns so that small topics are not drowned by big ones."""
    queues = {name: rng.sample(range(pool.size), min(pool.size, k)) for name, pool in pools.items()}
    order = list(queues)
    rng.shuffle(order)
    out: list[tuple[str, str]] = []
    while len(out) < k and order:
        for name in list(order):
            if len(out) == k:
                break
            queue = queues[name]
            pair = None
            while queue and (pair is None or pair in seen):
                pair = pools[name].pair(queue.pop())
            if pair is None or pair in seen:
                order.remove(name)
                continue
            seen.add(pair)
            out.append(pair)
    return out


def _take_unrelated(k: int, rng: random.Random, seen: set[tuple[str, str]]) -> list[tuple[str, str]]:
    """``k`` pairs of a memory sentence and a sentence of an unrelated topic.

    A share :data:`NEAR_SHARE` of them come from the memory topic's own domain ("혈압약" and "병원
    예약"): near misses that share vocabulary but not the fact, which a model must learn to keep apart.
    """
    kinds = [k for k, _ in _CROSS_KINDS]
    weights = [w for _, w in _CROSS_KINDS]
    out: list[tuple[str, str]] = []
    attempts = 0
    while len(out) < k:
        attempts += 1
        if attempts > 50 * k + 1000:
            raise InvalidInput(
                f"could only make {len(out)} distinct unrelated APPEND pairs; ask for fewer pairs"
            )
        a = rng.choice(TOPICS)
        near = [t for t in _BY_DOMAIN[a.domain] if not _related(a, t)]
        b = rng.choice(near) if near and rng.random() < NEAR_SHARE else rng.choice(TOPICS)
        if _related(a, b):
            continue
        kind = rng.choices(kinds, weights)[0]
        summaries = topic_sentences(b.name, kind)
        if not summaries:
            continue
        m, em = rng.choice(topic_sentences(a.name, "memory"))
        s, es = rng.choice(summaries)
        if em & es or (m, s) in seen:
            continue
        seen.add((m, s))
        out.append((m, s))
    return out


def generate_pairs(
    n: int, seed: int = 0, mix: Mapping[Any, float] | None = None
) -> list[tuple[str, str, Op]]:
    """``n`` distinct labelled ``(memory, summary, op)`` pairs, the same for the same ``seed``.

    ``mix`` gives each operation's share (normalised; default :data:`DEFAULT_MIX`); each realised
    count is within one of ``n`` times its share. About one APPEND pair in five is a compatible
    addition on the memory sentence's own topic, the rest pair it with an unrelated topic.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidInput(f"n must be a whole number ≥ 1, got {n!r}; ask for at least one pair")
    shares = _shares(mix)
    _check_capacity(n, shares)
    counts = _counts(n, shares)
    rng = random.Random(seed)
    pools = _pools()
    seen: set[tuple[str, str]] = set()
    rows: list[tuple[str, str, Op]] = []
    for op in (Op.PASS, Op.REPLACE, Op.DELETE):
        taken = _take_balanced(pools[op], counts[op], rng, seen)
        if len(taken) < counts[op]:  # only when pairs of this op also came up under another op
            raise InvalidInput(f"could only make {len(taken)} distinct {op.value} pairs; ask for fewer pairs")
        rows += [(m, s, op) for m, s in taken]
    same_topic = _take_balanced(pools[Op.APPEND], round(counts[Op.APPEND] * 0.2), rng, seen)
    unrelated = _take_unrelated(counts[Op.APPEND] - len(same_topic), rng, seen)
    rows += [(m, s, Op.APPEND) for m, s in same_topic + unrelated]
    rng.shuffle(rows)
    return rows
