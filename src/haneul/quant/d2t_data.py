"""A small Korean data-to-text task in the E2E style, written from templates, plus its slot metrics.

AlphaTuning (section 4) adapts quantised LMs to data-to-text generation on E2E, WebNLG and DART. So
that the benchmark has such a task without downloading anything, this module is a team-assembled
Korean stand-in with the same eight slots as the E2E NLG challenge: a restaurant meaning
representation (``name[해오름], eatType[식당], food[한식], …``) and one or two polite sentences that
state every value of it and nothing else, with varied phrasing and clause order and particles that
agree with the word before them. :func:`generate` draws a seeded set; its ``test`` split uses
restaurant names and landmarks that never occur in ``train``, so a model has to copy unseen names.
:func:`mr_string` / :func:`parse_mr` write and read the E2E surface form (English E2E values are
read verbatim) and :func:`slot_errors` / :func:`slot_error_rate` count the values a text leaves out.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from typing import Any

from haneul.errors import InvalidInput
from haneul.quant import d2t_en
from haneul.text.korean import josa

__all__ = ["LANGS", "SLOTS", "generate", "mr_string", "parse_mr", "slot_error_rate", "slot_errors"]

SLOTS: tuple[str, ...] = (
    "name",
    "eatType",
    "food",
    "priceRange",
    "customerRating",
    "area",
    "familyFriendly",
    "near",
)

LANGS = ("ko", "en")

# ------------------------------------------------------------------------------------------------
# word lists: the last quarter of the names and of the landmarks is kept for the test split

_NAMES = (
    "해오름", "소나무갈비", "푸른바다횟집", "달빛식당", "한강돈까스", "다온", "마루", "온새미로",
    "별헤는밤", "봄날", "두레", "가온누리", "솔바람", "하늘채", "우리집밥", "꽃마리", "미리내",
    "한아름", "늘봄", "초록지붕", "산들", "느티나무", "은하수", "바람꽃", "노을", "청기와", "다정",
    "모락모락", "참새방앗간", "아름드리",
    # test split
    "구름정원", "새벽별", "물레방아", "한울", "도란도란", "라온", "해바라기", "오솔길", "소담", "이화원",
)  # fmt: skip
_LANDMARKS = (
    "시청", "서울역", "한강공원", "중앙시장", "시립미술관", "국립박물관", "시외버스터미널", "대학로",
    "문화회관", "종합운동장", "시민공원", "구청", "중앙도서관", "어린이대공원", "남산타워", "우체국",
    "수목원", "대학병원",
    # test split
    "예술의전당", "식물원", "동물원", "시민회관", "고속버스터미널", "법원",
)  # fmt: skip
_TRAIN_NAMES, _TEST_NAMES = _NAMES[: len(_NAMES) * 3 // 4], _NAMES[len(_NAMES) * 3 // 4 :]
_TRAIN_NEAR, _TEST_NEAR = _LANDMARKS[: len(_LANDMARKS) * 3 // 4], _LANDMARKS[len(_LANDMARKS) * 3 // 4 :]

# a name that says what the place is fixes that slot when the MR has it (no 횟집 serving desserts)
_NAME_FIXES: dict[str, dict[str, str]] = {
    "소나무갈비": {"eatType": "식당", "food": "고기 요리"},
    "푸른바다횟집": {"eatType": "식당", "food": "해산물 요리"},
    "달빛식당": {"eatType": "식당"},
    "한강돈까스": {"eatType": "식당", "food": "일식"},
    "우리집밥": {"food": "한식"},
    "이화원": {"food": "중식"},
}

# ------------------------------------------------------------------------------------------------
# lexicon: canonical value -> the words a text may use for it

_EAT = {"식당": ("식당", "음식점"), "카페": ("카페",), "주점": ("주점", "술집")}
_FOOD = {
    "한식": ("한식", "한국 음식"),
    "중식": ("중식", "중국 음식", "중화요리"),
    "일식": ("일식", "일본 음식"),
    "양식": ("양식", "서양 음식"),
    "분식": ("분식",),
    "해산물 요리": ("해산물 요리",),
    "고기 요리": ("고기 요리",),
    "디저트": ("디저트",),
}
_AREA = {"도심": ("도심", "시내 중심가"), "강변": ("강변", "강가")}
_PRICES = ("만 원 미만", "1만~2만 원", "2만~3만 원", "3만 원 이상")
_RATINGS = ("낮음", "보통", "높음")
_FAMILY = ("예", "아니오")

# Predicate clauses "text|verb": the verb is conjugated as a connective (…고 / …며), a 합니다-style
# or a 해요-style ending; "이다" is the copula. Placeholders: {N} landmark, {A} area, {F} food, with an
# optional particle as {F:을/를}. "~은" / "~는" is a topic particle that becomes the subject particle
# 이 / 가 right after the restaurant's name ("해오름은 가격대가 …", but "…이고 가격대는 …").
_PRICE_CLAUSES = {
    "만 원 미만": ("가격대~는 만 원 미만|이다", "1인당 만 원이 채 안 되는 가격에 먹을 수|있다",
                   "가격~은 만 원 미만으로 저렴한 편|이다"),
    "1만~2만 원": ("가격대~는 1만~2만 원|이다", "가격~은 1인당 일이만 원대|이다",
                   "1만에서 2만 원 사이면 식사할 수|있다"),
    "2만~3만 원": ("가격대~는 2만~3만 원|이다", "가격~은 1인당 이삼만 원대|이다",
                   "2만에서 3만 원 사이면 식사할 수|있다"),
    "3만 원 이상": ("가격대~는 3만 원 이상|이다", "1인당 가격이 3만 원을|넘다", "가격대~는 3만 원을 넘는 편|이다"),
}  # fmt: skip
_PRICE_ADNOMINAL = {
    "만 원 미만": ("가격대가 만 원 미만인",),
    "1만~2만 원": ("가격대가 1만~2만 원인", "일이만 원대의"),
    "2만~3만 원": ("가격대가 2만~3만 원인", "이삼만 원대의"),
    "3만 원 이상": ("가격대가 3만 원 이상인",),
}
_RATING_CLAUSES = {
    "높음": ("손님 평점이|높다", "손님들의 평가가|높다", "평점~은 높은 편|이다"),
    "보통": ("손님 평점~은 보통|이다", "손님들의 평가~는 무난한 편|이다", "별점~은 중간 정도|이다"),
    "낮음": ("손님 평점이|낮다", "손님들의 평가~는 낮은 편|이다", "별점이 낮은 편|이다"),
}
_RATING_ADNOMINAL = {
    "높음": ("손님 평점이 높은", "평가가 높은"),
    "보통": ("평점이 보통인", "평가가 무난한"),
    "낮음": ("평점이 낮은", "별점이 낮은"),
}
_FAMILY_CLAUSES = {
    "예": ("아이와 함께 가기|좋다", "가족 단위 손님도 편하게 이용할 수|있다", "어린이 동반 손님을|환영하다"),
    "아니오": ("아이와 함께 가기에는 알맞지|않다", "어린이 동반~은|어렵다", "가족 단위 손님에게는 추천하기|어렵다"),
}  # fmt: skip
_FOOD_CLAUSES = ("주 메뉴~는 {F}|이다", "{F:을/를} 맛볼 수|있다", "{F:을/를} 전문으로|하다")
_NEAR_CLAUSES = ("{N}에서|가깝다", "{N} 바로 근처에|있다", "{N}에서 걸어서 갈 수 있는 거리에|있다")
_AREA_CLAUSES = ("{A}에 자리하고|있다", "위치~는 {A}|이다")
_LOC_CLAUSES = ("{A}의 {N} 근처에|있다", "{N} 인근 {A}에 자리하고|있다")
_LOC_ADNOMINAL = {
    "near": ("{N} 근처에 있는", "{N}에서 가까운", "{N} 인근의"),
    "area": ("{A}에 있는", "{A}에 자리한"),
    "both": ("{N} 근처 {A}에 있는", "{A}의 {N} 인근에 자리한"),
}
_FOOD_ADNOMINAL = ("{F:을/를} 파는", "{F:이/가} 주 메뉴인")

# (connectives, 합니다 style, 해요 style)
_VERBS = {
    "높다": (("높고", "높으며"), "높습니다", "높아요"),
    "낮다": (("낮고", "낮으며"), "낮습니다", "낮아요"),
    "좋다": (("좋고", "좋으며"), "좋습니다", "좋아요"),
    "있다": (("있고", "있으며"), "있습니다", "있어요"),
    "가깝다": (("가깝고", "가까우며"), "가깝습니다", "가까워요"),
    "어렵다": (("어렵고", "어려우며"), "어렵습니다", "어려워요"),
    "않다": (("않고", "않으며"), "않습니다", "않아요"),
    "넘다": (("넘고", "넘으며"), "넘습니다", "넘어요"),
    "하다": (("하고", "하며"), "합니다", "해요"),
    "환영하다": (("환영하고", "환영하며"), "환영합니다", "환영해요"),
}

# Accepted surface forms per (slot, canonical value): a value counts as realised when one occurs.
# They cover every form the templates above write, plus a few close variants a model may write.
_FORMS: dict[tuple[str, str], tuple[str, ...]] = {
    **{("eatType", v): forms for v, forms in _EAT.items()},
    **{("food", v): forms for v, forms in _FOOD.items()},
    **{("area", v): forms for v, forms in _AREA.items()},
    ("priceRange", "만 원 미만"): ("만 원 미만", "만 원이 채 안 되", "만 원도 안 되"),
    ("priceRange", "1만~2만 원"): ("1만~2만 원", "일이만 원대", "1만에서 2만 원", "1만~2만원"),
    ("priceRange", "2만~3만 원"): ("2만~3만 원", "이삼만 원대", "2만에서 3만 원", "2만~3만원"),
    ("priceRange", "3만 원 이상"): ("3만 원 이상", "3만 원을 넘", "3만 원이 넘", "3만 원 넘", "3만원 이상"),
    ("customerRating", "높음"): (
        "평점이 높", "평점은 높", "평점도 높", "평가가 높", "평가는 높", "별점이 높", "별점은 높",
    ),
    ("customerRating", "보통"): (
        "평점은 보통", "평점이 보통", "평점은 중간", "평가는 무난", "평가가 무난", "별점은 중간", "별점이 중간",
    ),
    ("customerRating", "낮음"): (
        "평점이 낮", "평점은 낮", "평점도 낮", "평가가 낮", "평가는 낮", "별점이 낮", "별점은 낮",
    ),
}  # fmt: skip
_FAMILY_YES = (
    "아이와 함께 가기 좋",
    "가족 단위 손님도 편하게",
    "어린이 동반 손님을 환영",
    "가족과 함께 가기 좋",
)
# a negative form wins over a positive one it contains ("아이와 함께 가기 좋지 않아요" says "no")
_FAMILY_NO = (
    "가기에는 알맞지 않", "어린이 동반은 어렵", "어린이 동반은 어려", "어린이 동반이 어렵", "어린이 동반이 어려",
    "추천하기 어렵", "추천하기 어려", "가기 좋지 않", "가기에 좋지 않", "가기에는 좋지 않", "동반은 불가",
    "동반이 불가",
)  # fmt: skip

_SLOT_KEYS = {slot.lower(): slot for slot in SLOTS}
_PLACEHOLDER = re.compile(r"\{([NAF])(?::([^}]+))?\}")


# ------------------------------------------------------------------------------------------------
# generation


def generate(n: int, seed: int = 0, split: str = "train", lang: str = "ko") -> list[dict[str, Any]]:
    """``n`` examples ``{"mr": {slot: value}, "text": "…"}``, the same for the same ``(n, seed, split, lang)``.

    Every MR has a name and 2–7 of the other seven slots. The ``test`` split draws names and
    landmarks from lists the ``train`` split never uses. ``lang="en"`` writes English texts over the
    E2E challenge's own values (:mod:`haneul.quant.d2t_en`) for English pre-trained models.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidInput(f"n must be a positive number of examples (got {n!r}); ask for at least 1")
    if split not in ("train", "test"):
        raise InvalidInput(f"unknown split {split!r}; use 'train' or 'test'")
    if lang not in LANGS:
        raise InvalidInput(f"unknown language {lang!r}; use one of {', '.join(LANGS)}")
    if lang == "en":
        rng = random.Random(f"haneul-d2t-en:{split}:{seed}")
        mrs = [d2t_en.draw_mr(rng, SLOTS, split) for _ in range(n)]
        return [{"mr": mr, "text": d2t_en.realise(mr, rng)} for mr in mrs]
    names, landmarks = (_TRAIN_NAMES, _TRAIN_NEAR) if split == "train" else (_TEST_NAMES, _TEST_NEAR)
    rng = random.Random(f"haneul-d2t:{split}:{seed}")
    out = []
    for _ in range(n):
        mr = _draw_mr(rng, names, landmarks)
        out.append({"mr": mr, "text": _realise(mr, rng)})
    return out


def _draw_mr(rng: random.Random, names: Sequence[str], landmarks: Sequence[str]) -> dict[str, str]:
    name = rng.choice(names)
    chosen = set(rng.sample(SLOTS[1:], rng.randint(2, 7)))
    pools: dict[str, Sequence[str]] = {
        "eatType": tuple(_EAT),
        "food": tuple(_FOOD),
        "priceRange": _PRICES,
        "customerRating": _RATINGS,
        "area": tuple(_AREA),
        "familyFriendly": _FAMILY,
        "near": landmarks,
    }
    mr = {"name": name}
    for slot in SLOTS[1:]:
        if slot in chosen:
            mr[slot] = _NAME_FIXES.get(name, {}).get(slot) or rng.choice(pools[slot])
    return mr


def _fill(template: str, words: dict[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        word = words[m.group(1)]
        return josa(word, m.group(2)) if m.group(2) else word

    return _PLACEHOLDER.sub(sub, template)


def _copula(noun: str, kind: int, rng: random.Random) -> str:
    """``noun`` + 이다 as a connective (0), in 합니다 style (1) or in 해요 style (2)."""
    if kind == 0:
        return noun + rng.choice(("이고", "이며"))
    if kind == 1:
        return noun + "입니다"
    return josa(noun, "이에요/예요")


def _clause(spec: str, kind: int, subject: bool, words: dict[str, str], rng: random.Random) -> str:
    text, verb = spec.split("|")
    text = (
        _fill(text, words).replace("~은", "이" if subject else "은").replace("~는", "가" if subject else "는")
    )
    if verb == "이다":
        return _copula(text, kind, rng)
    connectives, formal, polite = _VERBS[verb]
    return f"{text} {rng.choice(connectives) if kind == 0 else formal if kind == 1 else polite}"


def _sentence(
    clauses: Sequence[str], final: int, after_topic: bool, words: dict[str, str], rng: random.Random
) -> str:
    """Clauses joined by connectives, the last one ending the sentence; ``after_topic``: the first one
    directly follows a topic ("해오름은 …"), so its own topic particle turns into a subject particle."""
    parts = []
    for i, spec in enumerate(clauses):
        subject = (after_topic and i == 0) or rng.random() < 0.3
        parts.append(_clause(spec, final if i == len(clauses) - 1 else 0, subject, words, rng))
    joined = parts[0]
    for part in parts[1:]:
        joined += ("," if rng.random() < 0.3 else "") + " " + part
    return joined + "."


def _cut(count: int, rng: random.Random) -> int:
    """Where to end the first sentence of ``count`` clauses: at most three clauses a sentence."""
    if count <= 2:
        return count if count < 2 or rng.random() < 0.7 else 1
    if count == 3:
        return 3 if rng.random() < 0.4 else rng.randint(1, 2)
    return rng.randint(count - 3, 3)


def _realise(mr: dict[str, str], rng: random.Random) -> str:
    """One or two sentences that state every value of ``mr`` and nothing more."""
    final = rng.choice((1, 2))  # 합니다 or 해요 style, kept for the whole text
    name = mr["name"]
    eat, food, area, near = (mr.get(s) for s in ("eatType", "food", "area", "near"))
    words = {
        "F": rng.choice(_FOOD[food]) if food else "",
        "A": rng.choice(_AREA[area]) if area else "",
        "N": near or "",
    }
    clauses: list[str] = []
    place_mod = food_mod = None
    extra_mods: list[str] = []

    # the head noun phrase ("시청 근처에 있는 한식 식당") takes the type and often food and place
    head = rng.choice(_EAT[eat]) if eat else None
    if food:
        if rng.random() < 0.7:
            if head is None and rng.random() < 0.4:
                head = f"{food} 전문점"
            elif head is not None and rng.random() < 0.5:
                head = f"{food} {head}"
            else:
                head = head or rng.choice(("곳", "가게"))
                food_mod = _fill(rng.choice(_FOOD_ADNOMINAL), words)
        else:
            clauses.append(rng.choice(_FOOD_CLAUSES))
    if area or near:
        where = "both" if area and near else "area" if area else "near"
        if rng.random() < 0.5:
            head = head or rng.choice(("곳", "가게"))
            place_mod = _fill(rng.choice(_LOC_ADNOMINAL[where]), words)
        elif where == "both" and rng.random() < 0.6:
            clauses.append(rng.choice(_LOC_CLAUSES))
        else:
            clauses.extend(
                rng.choice(table) for value, table in ((area, _AREA_CLAUSES), (near, _NEAR_CLAUSES)) if value
            )
    # price or rating now and then describes the head noun too ("평점이 높은 한식 식당")
    for slot, adnominal, predicate in (
        ("priceRange", _PRICE_ADNOMINAL, _PRICE_CLAUSES),
        ("customerRating", _RATING_ADNOMINAL, _RATING_CLAUSES),
    ):
        value = mr.get(slot)
        if not value:
            continue
        crowded = (place_mod is not None) + (food_mod is not None) + len(extra_mods) >= 2
        if head is not None and not crowded and rng.random() < 0.2:
            extra_mods.append(rng.choice(adnominal[value]))
        else:
            clauses.append(rng.choice(predicate[value]))
    rng.shuffle(clauses)
    family = mr.get("familyFriendly")
    if family:  # mostly said last
        at = len(clauses) if rng.random() < 0.6 else rng.randint(0, len(clauses))
        clauses.insert(at, rng.choice(_FAMILY_CLAUSES[family]))

    topic = josa(name, "은/는")
    mods = [m for m in (place_mod, *extra_mods, food_mod) if m]
    phrase = " ".join([*mods, head]) if head else ""
    if head is None:  # 해오름은 가격대가 …이고 …
        lead, after_topic = topic, True
    elif not clauses or (len(clauses) <= 3 and rng.random() < 0.35):  # 해오름은 … 식당입니다. 가격대는 …
        text = f"{topic} {_copula(phrase, final, rng)}."
        if clauses:
            opener = rng.choice(("", "", "이곳은 ", "여기는 "))
            text += f" {opener}{_sentence(clauses, final, bool(opener), words, rng)}"
        return " ".join(text.split())
    elif (eat or head.endswith("전문점")) and len(mods) <= 1 and rng.random() < 0.4:  # … 식당인 해오름은 …
        lead, after_topic = f"{phrase}인 {topic}", True
    else:  # 해오름은 … 식당으로, 가격대는 …
        lead, after_topic = f"{topic} {josa(phrase, '으로/로')},", False
    cut = _cut(len(clauses), rng)
    text = f"{lead} {_sentence(clauses[:cut], final, after_topic, words, rng)}"
    if cut < len(clauses):
        opener = rng.choice(("", "", "또한 ", "이곳은 ", "여기는 "))
        text += f" {opener}{_sentence(clauses[cut:], final, opener in ('이곳은 ', '여기는 '), words, rng)}"
    return " ".join(text.split())


# ------------------------------------------------------------------------------------------------
# the E2E surface form


def mr_string(mr: dict[str, str]) -> str:
    """``name[해오름], eatType[식당], …``: the E2E form, slots in :data:`SLOTS` order, others after."""
    order = [s for s in SLOTS if s in mr] + [s for s in mr if s not in SLOTS]
    items = []
    for slot in order:
        value = str(mr[slot])
        if any(c in value for c in "[]") or any(c in slot for c in "[],"):
            raise InvalidInput(
                f"MR item {slot}[{value}] holds a bracket (or the slot a comma); "
                "the E2E form cannot write it — remove it from the data"
            )
        items.append(f"{slot}[{value}]")
    return ", ".join(items)


def parse_mr(text: str) -> dict[str, str]:
    """The ``{slot: value}`` of an E2E MR string; inverse of :func:`mr_string`.

    English E2E lines read as they are (values verbatim); slot names are matched to :data:`SLOTS`
    ignoring case, spaces and underscores, so E2E's ``customer rating`` becomes ``customerRating``.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(
            f"empty meaning representation {text!r}; write items like name[해오름], food[한식]"
        )
    mr: dict[str, str] = {}
    pos = 0
    while True:
        while pos < len(text) and (text[pos].isspace() or text[pos] == ","):
            pos += 1
        if pos >= len(text):
            break
        opening = text.find("[", pos)
        piece = text[pos:opening] if opening >= 0 else text[pos:]
        if opening < 0 or "," in piece:
            bad = piece.split(",")[0].strip()
            raise InvalidInput(f"MR item {bad!r} has no [value]; write each item as slot[value]")
        if "]" in piece:
            raise InvalidInput(f"unbalanced ']' in MR item {piece.strip()!r}; write each item as slot[value]")
        slot = piece.strip()
        if not slot:
            raise InvalidInput(f"MR item {text[opening:].split(']')[0]}] has no slot name; write slot[value]")
        closing = text.find("]", opening + 1)
        nested = text.find("[", opening + 1)
        if closing < 0 or 0 <= nested < closing:
            raise InvalidInput(
                f"unbalanced '[' in MR item {text[pos:].split(',')[0].strip()!r}; close each value with ]"
            )
        value = text[opening + 1 : closing].strip()
        if not value:
            raise InvalidInput(f"MR item {slot}[] has an empty value; give a value or leave the slot out")
        key = _SLOT_KEYS.get(re.sub(r"[\s_]", "", slot).lower(), slot)
        if key in mr:
            raise InvalidInput(f"slot {slot!r} occurs twice in the MR; keep one {slot}[…]")
        mr[key] = value
        pos = closing + 1
        after = text[pos:].lstrip()
        if after and after[0] != ",":
            raise InvalidInput(
                f"unexpected {after[:20]!r} after MR item {slot}[{value}]; separate items with commas"
            )
    return mr


# ------------------------------------------------------------------------------------------------
# slot metrics


def slot_errors(mr: dict[str, str], text: str) -> int:
    """How many values of ``mr`` ``text`` does not realise.

    A value of this module's lexicon is realised by any of its accepted surface forms ("2만~3만 원"
    by "이삼만 원대" too; familyFriendly "예" only when no negative form occurs); any other value by
    its own string, verbatim. Other slots are matched with the MR's name and landmark blanked out,
    so "달빛식당" does not realise eatType 식당. English E2E values (``priceRange[£20-25]``) match
    their phrases ignoring case ("between £20 and £25").
    """
    masked = text
    for slot in ("name", "near"):
        value = mr.get(slot)
        if value:
            masked = masked.replace(str(value), " ")
    errors = 0
    for slot, raw in mr.items():
        value = str(raw)
        where = text if slot in ("name", "near") else masked
        if slot == "familyFriendly" and value in _FAMILY:
            negative = any(form in where for form in _FAMILY_NO)
            positive = any(form in where for form in _FAMILY_YES)
            realised = negative if value == "아니오" else positive and not negative
        elif (slot, value) in _FORMS:
            realised = any(form in where for form in _FORMS[slot, value])
        elif slot == "familyFriendly" and value in ("yes", "no"):
            low = where.lower()
            negative = any(_has_words(low, form) for form in d2t_en.FAMILY_NO)
            positive = any(_has_words(low, form) for form in d2t_en.forms(slot, "yes") or ())
            realised = negative if value == "no" else positive and not negative
        elif (english := d2t_en.forms(slot, value)) is not None:
            realised = any(_has_words(where.lower(), form) for form in english)
        else:
            realised = value in where
        errors += not realised
    return errors


def _has_words(text: str, phrase: str) -> bool:
    """``phrase`` occurs in ``text`` as whole words ("expensive" is not in "inexpensive")."""
    return re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", text) is not None


def slot_error_rate(mrs: Sequence[dict[str, str]], texts: Sequence[str]) -> float:
    """Values left unrealised over all values: ``sum(slot_errors) / total slots`` (0 when no slots)."""
    if len(mrs) != len(texts):
        raise InvalidInput(f"{len(mrs)} MRs but {len(texts)} texts; give one text per MR")
    total = sum(len(mr) for mr in mrs)
    if total == 0:
        return 0.0
    return sum(slot_errors(mr, text) for mr, text in zip(mrs, texts, strict=True)) / total
