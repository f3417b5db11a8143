"""Korean particles (josa), number reading and text normalisation, shared by every package that writes Korean.

A Korean particle has two forms, chosen by the sound the word before it ends in: 밥을 / 사과를, 집으로 /
나무로 — and 서울로, since a final ㄹ takes 로 the way a vowel does. :func:`josa` attaches the form that
fits, and also reads what a Hangul-only rule cannot see: a trailing number is read in Sino-Korean (3을
as 삼을, 1로 as 일로, 1000을 as 천을), Latin letters by their English names or a rough loanword
pronunciation (URL로 as 유알엘로, Google을 as 구글을), and closing brackets or quotes are skipped
(``서울)로``). Numbers are spelled the way they are spoken: Sino-Korean (:func:`sino`: 만 이천삼백사십오,
마이너스 삼, 삼 점 일사), native Korean for 1–99 (:func:`native`: 하나 / 한 명, 스물 / 스무 살), and digit
by digit (:func:`read_digits`: 공일공 일이삼사). The module imports nothing else from haneul so that any
package can use it without pulling another one in.
"""

from __future__ import annotations

import math
import re
import unicodedata
from decimal import Decimal

__all__ = [
    "PARTICLES",
    "clock",
    "final_consonant",
    "has_final_consonant",
    "josa",
    "month",
    "native",
    "normalize",
    "particle_form",
    "read_digits",
    "sino",
]

# ------------------------------------------------------------------------------------------------
# the last sound of a word

_HANGUL_FIRST, _HANGUL_COUNT = 0xAC00, 11172
# final consonants in syllable-block order; index 0 is "no final consonant"
_FINALS = (
    "", "ㄱ", "ㄲ", "ㄳ", "ㄴ", "ㄵ", "ㄶ", "ㄷ", "ㄹ", "ㄺ", "ㄻ", "ㄼ", "ㄽ", "ㄾ", "ㄿ", "ㅀ", "ㅁ", "ㅂ", "ㅄ",
    "ㅅ", "ㅆ", "ㅇ", "ㅈ", "ㅊ", "ㅋ", "ㅌ", "ㅍ", "ㅎ",
)  # fmt: skip
# English letter names (에이, 비, 씨 ... 엘, 엠, 엔 ... 알 ...): only L, M, N and R end in a consonant
_LETTER_FINAL = dict.fromkeys("ABCDEFGHIJKOPQSTUVWXYZ", "") | {"L": "ㄹ", "M": "ㅁ", "N": "ㄴ", "R": "ㄹ"}
_NUMBER_END = re.compile(r"(\d+(?:,\d{3})*)(?:\.(\d+))?$")
_LATIN_END = re.compile(r"[A-Za-z]+$")
# Rough Korean loanword spelling of an English word's end. A final m, n, ng or l — also before a
# silent e (game, phone, Google) — stays a final ㅁ, ㄴ, ㅇ, ㄹ; p after one short vowel letter
# becomes ㅂ (app 앱, shop 숍), ck after one short vowel letter or k after "oo" becomes ㄱ (click 클릭,
# book 북), t after one short vowel letter becomes ㅅ (robot 로봇, internet 인터넷). Everything else is
# written with a vowel at the end (test 테스트, server 서버, YouTube 유튜브, GitHub 깃허브).
_ENGLISH_NASAL_L = {"m": "ㅁ", "n": "ㄴ", "l": "ㄹ"}
_ENGLISH_STOPS = (
    (re.compile(r"(?:^|[^aeiou])[aeiou]pp?$"), "ㅂ"),
    (re.compile(r"(?:oo|(?:^|[^aeiou])[aeiou]c)k$"), "ㄱ"),
    (re.compile(r"(?:^|[^aeiou])[aeiou]tt?$"), "ㅅ"),
)
_DIGITS = ("영", "일", "이", "삼", "사", "오", "육", "칠", "팔", "구")


def _silent(ch: str) -> bool:
    """Spaces, closing brackets and quotes: written after a word but not read as its last sound."""
    return ch.isspace() or ch in "'\"`" or unicodedata.category(ch) in ("Pe", "Pf")


def _spoken(word: str) -> str:
    text = unicodedata.normalize("NFC", word)  # decomposed jamo would hide the final consonant
    end = len(text)
    while end and _silent(text[end - 1]):
        end -= 1
    return text[:end]


def _syllable_final(ch: str) -> str | None:
    code = ord(ch) - _HANGUL_FIRST
    return _FINALS[code % 28] if 0 <= code < _HANGUL_COUNT else None


def _number_final(text: str) -> str | None:
    match = _NUMBER_END.search(text)
    assert match is not None  # the caller saw a digit at the end
    whole, fraction = match.groups()
    if fraction:  # digits after the point are read one by one: 3.14 → 삼 점 일사
        return _syllable_final(_DIGITS[int(fraction[-1])])
    n = int(whole.replace(",", ""))
    if n == 0:
        return "ㅇ"  # 영
    # the last syllable only depends on the lowest non-zero group; past 경 (10^20) we stop reading
    low = n % 10**20
    return _syllable_final(sino(low)[-1]) if low else None


def _latin_final(text: str) -> str:
    match = _LATIN_END.search(text)
    assert match is not None  # the caller saw a letter at the end
    letters = match.group()
    if len(letters) == 1 or letters.isupper():  # an acronym is spelled out: URL 유알엘, SNS 에스엔에스
        return _LETTER_FINAL[letters[-1].upper()]
    word = letters.lower()
    if word.endswith("ng"):
        return "ㅇ"
    if len(word) > 2 and word[-1] == "e" and word[-2] in _ENGLISH_NASAL_L:
        word = word[:-1]  # a silent e
    if word[-1] in _ENGLISH_NASAL_L:
        return _ENGLISH_NASAL_L[word[-1]]
    return next((final for pattern, final in _ENGLISH_STOPS if pattern.search(word)), "")


def final_consonant(word: str) -> str | None:
    """The consonant ``word``'s last sound ends in, as a jamo: "ㄹ" for 서울 and for 1 (일), "ㅁ" for 3
    (삼); "" when it ends in a vowel (사과, 2, KTX); None when there is nothing this module can read
    at its end (an empty word, a symbol, Hanja, an emoji). Closing brackets and quotes are skipped."""
    text = _spoken(word)
    if not text:
        return None
    last = text[-1]
    if last.isascii() and last.isdigit():
        return _number_final(text)
    if last.isascii() and last.isalpha():
        return _latin_final(text)
    return _syllable_final(last)


def has_final_consonant(word: str) -> bool:
    """Whether ``word`` ends in a consonant (밥, 3, URL); False for a vowel or an unreadable end."""
    return bool(final_consonant(word))


# ------------------------------------------------------------------------------------------------
# particles

# Particles whose leading 이 drops after a vowel (학생이나 / 친구나, 학생이죠 / 친구죠): the linking
# particles and the copula 이다 with its common endings.
_I_DROPPING = (
    "나", "랑", "나마", "든지", "라도", "라고", "라서", "라면", "며", "다", "고", "고요", "죠", "지만", "야",
)  # fmt: skip
#: every particle with two forms, as (after a consonant, after a vowel); the first pair listing a
#: form decides what that form alone means (야 alone is the vocative 아/야, not the copula 이야/야)
PARTICLES: tuple[tuple[str, str], ...] = (
    ("이", "가"),
    ("을", "를"),
    ("은", "는"),
    ("과", "와"),
    ("아", "야"),
    ("으로", "로"),
    ("으로서", "로서"),
    ("으로써", "로써"),
    ("으로부터", "로부터"),
    ("이에요", "예요"),
    *(("이" + ending, ending) for ending in _I_DROPPING),
)


def _index() -> dict[str, tuple[str, str]]:
    index: dict[str, tuple[str, str]] = {}
    for consonant, vowel in PARTICLES:
        for key in (f"{consonant}/{vowel}", f"{vowel}/{consonant}", consonant, vowel):
            index.setdefault(key, (consonant, vowel))
    return index


_BY_FORM = _index()


def particle_form(word: str, particle: str) -> str:
    """The form of ``particle`` that follows ``word``: ``particle_form("서울", "으로/로") == "로"``.

    ``particle`` is a pair ("은/는", in either order) or one form of it ("는", "을", "로"). After a
    consonant the first form of the pair is used, after a vowel the second; the 으로 family takes the
    vowel form after ㄹ too (서울로, 1로). A word whose end cannot be read (a symbol, Hanja) takes the
    vowel form. Raises ValueError for an unknown particle or a word with nothing to read.
    """
    forms = _BY_FORM.get(particle)
    if forms is None:
        known = ", ".join(f"{c}/{v}" for c, v in PARTICLES)
        raise ValueError(f"unknown particle {particle!r}; use one of {known}")
    if not _spoken(word):
        raise ValueError(
            f"cannot choose a particle for {word!r}: it has no letter or digit; pass the word it follows"
        )
    final = final_consonant(word)
    after_consonant, after_vowel = forms
    if after_consonant.startswith("으로"):
        return after_vowel if final in ("", "ㄹ", None) else after_consonant
    return after_consonant if final else after_vowel


def josa(word: str, particle: str) -> str:
    """``word`` with the form of ``particle`` its last sound takes (see :func:`particle_form`).

    사과를, 밥을, 서울로, 부산으로, 3일로, 3을, 2를, 1000을, URL로, (서울)로.
    """
    return word + particle_form(word, particle)


# ------------------------------------------------------------------------------------------------
# numbers

_SMALL_UNITS = ((1000, "천"), (100, "백"), (10, "십"))
_BIG_UNITS = ((10**16, "경"), (10**12, "조"), (10**8, "억"), (10**4, "만"))
_NUMBER = re.compile(r"(-?)(\d+)(?:\.(\d+))?")
_NATIVE_ONES = ("", "하나", "둘", "셋", "넷", "다섯", "여섯", "일곱", "여덟", "아홉")
_NATIVE_ONES_COUNTER = ("", "한", "두", "세", "네", "다섯", "여섯", "일곱", "여덟", "아홉")
_NATIVE_TENS = ("", "열", "스물", "서른", "마흔", "쉰", "예순", "일흔", "여든", "아흔")


def _parse_number(number: int | float | str | Decimal) -> tuple[bool, int, str]:
    """``(negative, whole part, fraction digits)`` of a number given as int, float, Decimal or text."""
    if isinstance(number, bool):
        raise ValueError(f"cannot read {number!r} as a number; pass an int, a float or digits like '3.14'")
    if isinstance(number, int):
        return number < 0, abs(number), ""
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError(f"cannot read {number!r} aloud; pass a finite number")
    if isinstance(number, float | Decimal):
        text = format(Decimal(repr(number)) if isinstance(number, float) else number, "f")
    elif isinstance(number, str):
        text = number.strip()
    else:
        raise ValueError(f"cannot read {number!r} as a number; pass an int, a float or digits like '3.14'")
    match = _NUMBER.fullmatch(text)
    if match is None:
        raise ValueError(f"cannot read {number!r} as a number; write it like '12345', '-3' or '3.14'")
    sign, whole, fraction = match.groups()
    return bool(sign) and any(d != "0" for d in whole + (fraction or "")), int(whole), fraction or ""


def _sino_small(n: int) -> str:
    """1..9999; 1 is dropped before 십, 백 and 천 (십오, 백, 천이십사)."""
    out = []
    for unit, name in _SMALL_UNITS:
        d, n = divmod(n, unit)
        if d:
            out.append(("" if d == 1 else _DIGITS[d]) + name)
    if n:
        out.append(_DIGITS[n])
    return "".join(out)


def sino(number: int | float | str | Decimal, *, spaced: bool = True) -> str:
    """Sino-Korean reading: 15 → 십오, 2024 → 이천이십사, 10000 → 만, 12345 → 만 이천삼백사십오.

    1 is dropped before 십, 백, 천 and 만 (만, not 일만) but read before 억, 조, 경 (일억). ``spaced``
    puts a space after every 만 group as Korean orthography does (이억 삼천만 원); ``spaced=False``
    writes the number as one word (만이천). A negative number starts with 마이너스, and the digits
    after a decimal point are read one by one after 점 (3.14 → 삼 점 일사, 0.05 → 영 점 영오).
    """
    negative, whole, fraction = _parse_number(number)
    if whole >= 10**20:
        raise ValueError(f"cannot read {number!r}: numbers stop at 경 (10^20); pass a smaller number")
    groups = []
    rest = whole
    for big, name in _BIG_UNITS:
        head, rest = divmod(rest, big)
        if head:
            groups.append(("" if head == 1 and name == "만" else _sino_small(head)) + name)
    if rest:
        groups.append(_sino_small(rest))
    words = (" " if spaced else "").join(groups) or "영"
    if fraction:
        words += " 점 " + "".join(_DIGITS[int(d)] for d in fraction)
    return "마이너스 " + words if negative else words


def native(n: int, counter: bool = True) -> str:
    """Native Korean reading of 1..99. ``counter=True`` gives the form used before a counter (한 명,
    두 시, 세 개, 네 살, 스무 살, 스물한 명); ``counter=False`` the bare count (하나, 둘, 스물, 아흔아홉)."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 99:
        raise ValueError(f"native Korean numbers cover 1..99, got {n!r}; read other numbers with sino()")
    tens, ones = divmod(n, 10)
    if ones == 0:
        return "스무" if counter and tens == 2 else _NATIVE_TENS[tens]
    return _NATIVE_TENS[tens] + (_NATIVE_ONES_COUNTER if counter else _NATIVE_ONES)[ones]


def read_digits(text: str, *, zero: str = "공") -> str:
    """Digits read one by one, as phone numbers are: 0 is 공 (or ``zero``, e.g. "영"), and groups
    split by "-" or spaces stay apart: "010-1234-0567" → "공일공 일이삼사 공오육칠"."""
    groups = re.split(r"[-\s]+", text.strip())
    if not all(g.isascii() and g.isdigit() for g in groups):
        raise ValueError(f"cannot read {text!r} digit by digit; pass digits in groups like '010-1234-5678'")
    return " ".join("".join(zero if d == "0" else _DIGITS[int(d)] for d in g) for g in groups)


def month(m: int) -> str:
    """The name of month ``m``: 삼월, and 유월 / 시월, which drop the final consonant of 육 and 십."""
    if isinstance(m, bool) or not isinstance(m, int) or not 1 <= m <= 12:
        raise ValueError(f"months are 1..12, got {m!r}; pass a month number")
    return {6: "유월", 10: "시월"}.get(m, sino(m) + "월")


def clock(hour: int, minute: int = 0) -> str:
    """Time of day as spoken: hours native (일곱 시), minutes Sino-Korean (삼십 분), and 30 as 반."""
    text = native(hour) + " 시"
    if minute == 30:
        return text + " 반"
    if minute:
        text += " " + sino(minute) + " 분"
    return text


# ------------------------------------------------------------------------------------------------
# normalisation


def normalize(text: str) -> str:
    """NFC (precomposed syllables) with runs of whitespace collapsed to one space and the ends trimmed."""
    return " ".join(unicodedata.normalize("NFC", text).split())
