"""Written Korean as it is read aloud: the transcript a speech corpus needs.

Speech transcripts (ClovaCall's among them) hold only what is said: Hangul syllables and spaces.
:func:`spoken` turns written text into that form — numbers read the Korean way (native before the
counters that take it, 세 명, 두 시, 스무 살; Sino-Korean elsewhere, 이천이십사 년, 삼십 분, 만오천 원;
months 유월 and 시월; decimals 삼 점 오; phone numbers digit by digit), Latin letters by their Korean
names (KTX → 케이티엑스), a few symbols by name (% → 퍼센트); punctuation, emoji and laughter jamo
(ㅋㅋ, ㅠㅠ) dropped — and answers None for text that still holds something it cannot read (Hanja,
kana, a long English word), so a corpus builder can leave that sentence out instead of teaching a recogniser
garbage.
"""

from __future__ import annotations

import re

from haneul.text.korean import month, native, normalize, read_digits, sino

__all__ = ["LETTERS", "is_spoken", "spoken"]

#: Korean names of the Latin letters
LETTERS = {
    "a": "에이", "b": "비", "c": "씨", "d": "디", "e": "이", "f": "에프", "g": "지", "h": "에이치", "i": "아이",
    "j": "제이", "k": "케이", "l": "엘", "m": "엠", "n": "엔", "o": "오", "p": "피", "q": "큐", "r": "알",
    "s": "에스", "t": "티", "u": "유", "v": "브이", "w": "더블유", "x": "엑스", "y": "와이", "z": "제트",
}  # fmt: skip
#: counters read with native Korean numbers (1..99; larger numbers are Sino-Korean before them too)
NATIVE_COUNTERS = (
    "시간", "시", "명", "개", "살", "마리", "번째", "번", "잔", "병", "권", "장", "대", "곳", "군데", "그릇", "가지",
    "벌", "켤레", "통", "척", "채", "송이", "알", "줄", "달", "사람", "판", "접시", "봉지", "박스", "상자",
)  # fmt: skip
#: symbols with a reading; every other non-letter, non-digit character is punctuation and dropped
SYMBOLS = {"%": " 퍼센트 ", "&": " 앤드 ", "+": " 플러스 ", "@": " 골뱅이 ", "$": " 달러 ", "℃": " 도 ", "°": " 도 ",
           "￦": "", "₩": ""}
#: the longest acronym (in capitals) spelled out letter by letter; a Latin word with small letters is
#: English (no reading here), unless it is a single letter
MAX_SPELLED = 8

_PHONE = re.compile(r"(?<!\d)(0\d{1,2})[-.\s](\d{3,4})[-.\s](\d{4})(?!\d)")
_RANGE = re.compile(r"(\d)\s*[~∼〜]\s*(\d)")
_NUMBER = re.compile(r"(?<![\d.])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?![\d])")
_COUNTER = re.compile(r"\s?(" + "|".join(sorted(NATIVE_COUNTERS, key=len, reverse=True)) + r")")
_LONG_NUMBER = re.compile(r"\d{17,}")
_LATIN = re.compile(r"[A-Za-z]+")
_LAUGHTER = re.compile(r"[\u3131-\u318e\u1100-\u11ff]+")  # lone jamo: ㅋㅋ, ㅠㅠ, ㅎㅎ
_UNSPEAKABLE = re.compile(r"[^\uac00-\ud7a3 ]")
_PUNCTUATION = re.compile(r"[^\w\s]|_")


def _sino_before(n: int, counter: str, rest: str) -> bool:
    """Counters that read a native number only in some uses: 3개월 (삼 개월), 20대 (이십 대, an age),
    25시 (past a day's hours)."""
    word = rest.lstrip()
    return ((counter == "개" and word.startswith("개월")) or (counter == "대" and n % 10 == 0)
            or (counter == "시" and n > 24))


def _read_number(match: re.Match[str], text: str) -> str:
    whole, fraction = match.group(1).replace(",", ""), match.group(2)
    rest = text[match.end():]
    counter = _COUNTER.match(rest)
    n = int(whole)
    if fraction is None and len(whole) > 1 and whole.startswith("0"):
        return read_digits(whole, zero="영")  # a code, not a quantity: 007 → 영영칠
    if fraction is None and counter is not None and 1 <= n <= 99 and not _sino_before(n, counter.group(1), rest):
        return ("첫" if n == 1 and counter.group(1) == "번째" else native(n)) + " "
    if fraction is None and rest.startswith("월") and 1 <= int(whole) <= 12:
        return month(int(whole))[:-1]  # the 월 that follows stays
    return sino(f"{whole}.{fraction}" if fraction else whole) + " "


def _read_latin(match: re.Match[str]) -> str:
    return " " + "".join(LETTERS[c] for c in match.group(0).lower()) + " "


def _unreadable_latin(text: str) -> bool:
    """Whether ``text`` holds a Latin word that is not a letter or an acronym: an English word."""
    return any(len(w) > 1 and (not w.isupper() or len(w) > MAX_SPELLED) for w in _LATIN.findall(text))


def spoken(text: str) -> str | None:
    """``text`` as read aloud, in Hangul syllables and single spaces; None when something in it has no
    reading (Hanja, kana, an English word, a range like 3~4) or nothing is left to say."""
    text = normalize(text)
    if _unreadable_latin(text) or _RANGE.search(text) or _LONG_NUMBER.search(text):
        return None  # an English word, a range (3~4명: 서너 명? 삼에서 사 명?), a number past 경
    text = _PHONE.sub(lambda m: " " + read_digits("-".join(m.groups())) + " ", text)
    for symbol, reading in SYMBOLS.items():
        text = text.replace(symbol, reading)
    text = _NUMBER.sub(lambda m: _read_number(m, m.string), text)
    text = _LATIN.sub(_read_latin, text)
    text = _LAUGHTER.sub(" ", text)
    text = _PUNCTUATION.sub(" ", text)
    text = " ".join(text.split())
    if not text or _UNSPEAKABLE.search(text):
        return None
    return text


def is_spoken(text: str) -> bool:
    """Whether ``text`` is already a transcript: Hangul syllables and single spaces only."""
    return bool(text) and _UNSPEAKABLE.search(text) is None and text == " ".join(text.split())
