"""Understanding a callee's Korean phone answer: yes / no, a temperature, a count, symptoms, or a request.

CareCall (Lee et al., 2020) asks scripted questions in each monitoring call — "열이 있으세요?", "체온이
몇 도예요?", "기침은 하세요?", "식사는 하셨어요?" — and has to read the answer as transcribed from a
phone line: spoken style, fillers ("어...", "음"), hedges ("조금", "그닥"), spaces the recogniser
dropped, and numbers said in Sino-Korean ("삼십칠 점 팔 도") or native Korean ("서른일곱 도"). One
call, :func:`understand`, turns such an answer into an :class:`Understanding`: the intent (yes, no,
unknown, later, human, or unclear so the agent re-asks), a value for temperature and count questions,
and every symptom slot the answer mentions ("기침은 없는데 열이 좀 나요" fills cough=False and
fever=True whatever was asked).

Four methods answer it. ``rules``: cue patterns read clause by clause (negation beats presence, a
double negative is a hedged yes, a symptom named in a clause takes that clause's polarity).
``classifier``: a character n-gram logistic regression trained, seeded, on
:mod:`haneul.carecall.answers`. ``lm``: an OpenAI-compatible chat model through
:class:`haneul.dialog.lm.ChatClient`, falling back to the rules when no endpoint is given or it
fails (:class:`LMUnderstander`, for a campaign, leaves a failed endpoint alone for a while and notes it, so
an LM outage costs a call at most one timeout). ``auto``: the rules where they are confident, else the
classifier.

A yes/no question about a symptom slot asks whether the symptom is present: "네" fills it True and
"괜찮아요" (no problem) False. Without a slot (meals, sleep, medicine) "괜찮아요" is a yes and
"안 좋아요" a no. Temperature and count answers have intent "yes" when a value was read.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import re
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from haneul.errors import InvalidInput
from haneul.text.korean import native, normalize, sino

__all__ = [
    "EXPECTS",
    "INTENTS",
    "METHODS",
    "SYMPTOMS",
    "AnswerClassifier",
    "LMUnderstander",
    "Understanding",
    "default_classifier",
    "read_count",
    "read_temperature",
    "understand",
]

EXPECTS = ("yesno", "temperature", "number", "symptoms", "free")
SYMPTOMS = ("fever", "cough", "sore_throat", "breathing", "taste_smell", "contact")
INTENTS = ("yes", "no", "unknown", "later", "human", "unclear")
METHODS = ("auto", "rules", "classifier", "lm")

#: body temperatures (°C) a thermometer can show on a living caller; anything else is misheard
TEMPERATURE_RANGE = (34.0, 42.5)
#: below this the rules hand an answer to the classifier under ``method="auto"``
AUTO_RULES_CONFIDENCE = 0.75

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Understanding:
    intent: str
    value: float | None = None
    symptoms: dict[str, bool] = field(default_factory=dict)
    confidence: float = 1.0
    method: str = "rules"


# ------------------------------------------------------------------------------------------------
# preparing the transcript

_FILLER = re.compile(r"(?<![가-힣])(?:어+|음+|으+음*|흠+|엄+|아+|에+|그+|저기요?|저|뭐|막|그러니까|그니까|이제)(?![가-힣])")
_PUNCT = re.compile(r"[^\w\s.]|_")
_HANGUL = re.compile(r"[가-힣]")
_FOREIGN = re.compile(r"[A-Za-z\u3040-\u30ff\u4e00-\u9fff]")


@dataclass(frozen=True)
class _Text:
    spaced: str  # normalised, punctuation gone except decimal points, fillers dropped
    compact: str  # the same without spaces: ASR drops and inserts them at random
    readable: bool  # holds Hangul (or digits), i.e. something Korean to read


def _prepare(text: str) -> _Text:
    text = normalize(text or "").lower()
    text = text.replace("…", " ").replace("~", " ")
    text = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", text)  # keep 37.5, drop sentence stops
    text = _PUNCT.sub(" ", text)
    text = _FILLER.sub(" ", text)
    spaced = " ".join(text.split())
    hangul = len(_HANGUL.findall(spaced))
    foreign = len(_FOREIGN.findall(spaced))
    readable = bool(hangul or re.search(r"\d", spaced)) and foreign <= hangul
    return _Text(spaced, spaced.replace(" ", ""), readable)


# ------------------------------------------------------------------------------------------------
# numbers: the inverse of haneul.text.korean's sino() and native(), built from them

_SINO_DIGIT = {sino(d): d for d in range(1, 10)} | {sino(0): 0, "공": 0}  # 일..구, 영, and 공 as in phone numbers
_SINO_UNIT = {sino(10**k): 10**k for k in (1, 2, 3)}  # 십, 백, 천
_D = "".join(k for k, v in _SINO_DIGIT.items() if v)  # 일이삼사오육칠팔구
_D0 = "".join(_SINO_DIGIT)
_SINO = re.compile(rf"(?:[{_D}]?천)?(?:[{_D}]?백)?(?:[{_D}]?십)?[{_D}]?")
# native numbers 1..99, both the counting (하나, 스물) and the attributive form (한, 스무), and the
# approximate pairs people say instead of one number (두세 번: two or three times)
_NATIVE = {native(n, counter=c): float(n) for n in range(1, 100) for c in (True, False)}
_NATIVE |= {"석": 3.0, "넉": 4.0, "한두": 1.5, "두세": 2.5, "두서너": 3.0, "서너": 3.5, "너덧": 4.5, "네댓": 4.5,
            "너더댓": 4.5, "네다섯": 4.5, "대여섯": 5.5, "열댓": 15.0, "두어": 2.0, "대엿": 5.5, "예닐곱": 6.5, "일고여덟": 7.5}
_APPROX_WORDS = {"열댓", "두어", "한두", "두세", "두서너", "서너", "너덧", "네댓", "너더댓", "네다섯", "대여섯", "대엿", "예닐곱", "일고여덟"}
_NATIVE_RE = re.compile("|".join(sorted(map(re.escape, _NATIVE), key=len, reverse=True)))
_COUNTER = ("번", "회", "시간", "시", "끼", "개", "알", "잔", "명", "살", "달", "차례", "가지", "바퀴", "그릇", "봉", "포",
            "정", "숟가락", "일", "분", "도", "층", "병", "캔", "장", "주", "점")
_COUNTER_RE = re.compile("|".join(sorted(_COUNTER, key=len, reverse=True)))
_BARE_END = re.compile(r"(?:이요|요|이에요|예요|이예요|입니다|이죠|정도|쯤|가량|$|이나|나|번)")


@dataclass(frozen=True)
class _Number:
    value: float
    start: int
    end: int
    kind: str  # "digits", "sino" or "native"
    approx: bool = False


def _sino_value(word: str) -> int:
    total, pending = 0, 0
    for ch in word:
        if ch in _SINO_UNIT:
            total += (pending or 1) * _SINO_UNIT[ch]
            pending = 0
        else:
            pending = _SINO_DIGIT[ch]
    return total + pending


def _decimal_digits(text: str) -> str:
    return "".join(ch if ch.isdigit() else str(_SINO_DIGIT[ch]) for ch in text)


def _numbers(compact: str) -> list[_Number]:
    """Every number said in ``compact`` (text without spaces), in order, digits and words alike."""
    found: list[_Number] = []
    taken = [False] * (len(compact) + 1)

    def add(num: _Number) -> None:
        if not any(taken[num.start:num.end]):
            found.append(num)
            for i in range(num.start, num.end):
                taken[i] = True

    for m in re.finditer(r"\d+(?:[.,]\d+)?", compact):
        add(_Number(float(m.group().replace(",", ".")), m.start(), m.end(), "digits"))
    for m in _SINO.finditer(compact):
        word = m.group()
        if not word:
            continue
        rest = compact[m.end():]
        decimal = re.match(rf"(?:점|쩜|\.)([{_D0}]+|\d+)", rest)
        has_unit = any(u in word for u in _SINO_UNIT)
        followed = decimal is not None or _COUNTER_RE.match(rest) is not None or _BARE_END.match(rest) is not None
        at_start = m.start() == 0 or not _HANGUL.match(compact[m.start() - 1])
        counted = _COUNTER_RE.match(rest) is not None
        if not followed or (not has_unit and decimal is None and not counted and not at_start):
            continue  # 오늘, 사람, 열이: syllables that only look like digits
        value = float(_sino_value(word))
        end = m.end()
        if decimal is not None:
            value = float(f"{int(value)}.{_decimal_digits(decimal.group(1))}")
            end += decimal.end()
        add(_Number(value, m.start(), end, "sino"))
    pos = 0
    while (nm := _NATIVE_RE.search(compact, pos)) is not None:
        pos = nm.start() + 1  # a rejected word may hide one that starts inside it: 한두어 번 is 두어 번
        rest = compact[nm.end():]
        word = nm.group()
        counted = _COUNTER_RE.match(rest) is not None
        bare = word not in ("한", "두", "세", "네", "석", "넉", "하나") and _BARE_END.match(rest)
        if word in ("네", "세", "한", "두") and not counted:
            continue  # 네 is also "yes", 한/두/세 only count before a counter
        if word == "열" and not re.match(r"(?:번|시간|시|개|알|명|살|달|차례|가지|바퀴|끼|잔)", rest):
            continue  # 열 is also "fever"
        if not (counted or bare):
            continue
        add(_Number(_NATIVE[word], nm.start(), nm.end(), "native", approx=word in _APPROX_WORDS))
        pos = nm.end()
    return sorted(found, key=lambda n: n.start)


def _fraction_after(compact: str, num: _Number) -> tuple[float, int]:
    """Decimal parts said after the unit: 37도 5부 / 서른일곱 도 반 / 삼십칠 도 오 (36.5 as 36도5)."""
    rest = compact[num.end:]
    m = re.match(rf"(?:도)?(?:(반)|(?:점|쩜|\.)([{_D0}]+|\d+))", rest)
    if m and m.group(1):
        return 0.5, m.end()
    if m and m.group(2):
        digits = _decimal_digits(m.group(2))
        return float("0." + digits), m.end()
    m = re.match(rf"도([{_D}]|\d)(?:부|(?=요|정도|쯤|$|였|나왔|까지|넘))", rest)
    if m:
        return float(_decimal_digits(m.group(1))) / 10, m.end()
    return 0.0, 0


_APPROX = re.compile(r"넘|정도|쯤|약|대략|거의|이상|안팎|왔다갔다|오락가락|같아|같은데|듯|아마|언저리|근처|가량|좀")
_RANGE = re.compile(r"에서|부터|사이|~|-|내지")


def read_temperature(text: str) -> tuple[float | None, float]:
    """The body temperature (°C) said in ``text`` and a confidence; ``(None, 0.0)`` when none is said,
    ``(None, 0.2)`` when a number is said but no body could have it (4도, 50도).

    Misplaced points are put back (378 and 3.78 are 37.8), a dropped "삼십" is restored with less
    confidence (칠 점 오 → 37.5), Fahrenheit in the human range is converted (98.6 → 37.0), and a
    range ("37도에서 38도 사이") gives its middle.
    """
    compact = _prepare(text).compact
    candidates = []
    covered = 0  # "37도 5부": the 5 belongs to the 37 before it
    for num in _numbers(compact):
        if re.match(r"도?대", compact[num.end:]):
            continue  # "36도 대": somewhere in the thirty-sixes, not a reading
        if num.start < covered or (num.kind == "native" and not 30 <= num.value <= 45):
            continue  # 열 도, 두 번: native numbers name a temperature only as 서른.. / 마흔..
        frac, extra = (0.0, 0) if num.value != int(num.value) else _fraction_after(compact, num)
        covered = num.end + extra
        candidates.append((num.value + frac, num, extra))
    if not candidates:
        return None, 0.0
    usable = [(v, c) for v, c in (_plausible(raw) for raw, _, _ in candidates) if v is not None]
    if not usable:
        return None, 0.2
    between = compact[candidates[0][1].end:candidates[-1][1].start] if len(candidates) > 1 else ""
    if len(usable) >= 2 and _RANGE.search(between):
        value = round((usable[0][0] + usable[-1][0]) / 2, 2)
        conf = 0.5
    else:
        value, conf = usable[-1]  # "아까는 38도였는데 지금은 37.2": the last reading is the latest
    tail = compact[candidates[-1][1].end:]
    if _APPROX.search(tail) or re.search(r"약|대략|거의|한", compact[:candidates[0][1].start][-2:]):
        conf = min(conf, 0.7)
    return round(value, 2), conf


def _plausible(raw: float) -> tuple[float | None, float]:
    low, high = TEMPERATURE_RANGE
    if low <= raw <= high:
        return raw, 1.0
    if 340 <= raw <= 425:  # 378: the point was not heard
        return raw / 10, 0.8
    if 3.4 <= raw <= 4.25 and raw != int(raw):  # 3.78: the point was heard one place early
        return raw * 10, 0.8
    if 5 <= raw < 10:  # 칠 점 오: the 삼십 was swallowed
        return 30 + raw, 0.6
    if 93 <= raw <= 108.5:  # Fahrenheit
        return round((raw - 32) * 5 / 9, 1), 0.6
    return None, 0.2


def read_count(text: str) -> tuple[float | None, float]:
    """The count said in ``text`` ("세 번" → 3, "두세 번" → 2.5, "한 시간 반" → 1.5, "3회" → 3) and a
    confidence; ``(0.0, 0.9)`` for "한 번도 안 했어요", ``(None, 0.0)`` when no number is said."""
    compact = _prepare(text).compact
    if re.search(r"한(?:번|끼|알|시간|잔|개)도|하나도|전혀|아무것도", compact) and _NEG.search(compact):
        return 0.0, 0.9
    nums = _numbers(compact)
    if not nums:
        return None, 0.0
    counted = [n for n in nums if _COUNTER_RE.match(compact[n.end:])]
    num = (counted or nums)[0]
    value, conf = num.value, 1.0
    after = compact[num.end:]
    counter = _COUNTER_RE.match(after)
    if counter and after[counter.end():].startswith("반"):
        value += 0.5
    if num.approx:
        conf = 0.7
    if _APPROX.search(after[:8]):
        conf = min(conf, 0.7)
    return value, conf


# ------------------------------------------------------------------------------------------------
# cues: what makes a clause a yes, a no, or one of the other intents (read on text without spaces)

_HUMAN = re.compile(
    r"상담원|상담사|상담선생|상담하시는|직원|담당자|간호사|의사선생님(?:이랑|하고|과|께|바꿔|연결|통화)|"
    r"사람(?:이랑|하고|과|한테|을|으로|좀|)(?:좀)?(?:바꿔|바꾸|연결|얘기|이야기|통화|대화|말하)|진짜사람|실제사람|"
    r"(?:분|선생님|쌤)(?:이랑|하고|과|께|한테)[가-힣]{0,4}(?:통화|얘기|이야기|연결|상담)|직접(?:통화|얘기|이야기)|사람목소리|기계말고|로봇말고|녹음말고|자동응답말고|(?:바꿔|연결해)(?:주세요|줘|주실래요|주시겠어요|달라)"
)
_LATER = re.compile(
    r"(?:나중|이따|이따가|다음|내일|저녁|오후|좀있다|좀이따|조금있다)(?:에)?(?:다시)?(?:전화|통화|걸어|연락|해주|하세요|해요|요$|얘기|이야기|말씀)|"
    r"다시(?:전화|걸어|연락)|바빠|바쁘|바뻐|바쁜|운전(?:하는)?중|운전하고있|운전하는중|회의(?:하는)?중|근무중|일하는중|수업중|진료중|"
    r"통화(?:하기)?(?:가)?(?:곤란|어려|힘들|안돼|못해)|지금은?(?:좀)?(?:곤란|안돼요|어려워요|못받)|시간이?없|"
    r"나중에요|이따가?요|다음에요|끊을게|끊어요|끊을께|(?:나중|이따|이따가)(?:에)?(?:다시)?해|밥먹는중|식사중"
)
_UNKNOWN = re.compile(
    r"모르겠|몰라|모름|모르게써|모르겟|글쎄|기억이?(?:잘)?안|기억(?:이)?(?:잘)?(?:안나|없)|헷갈|애매|확실(?:하지|치)|"
    r"잘모르|안재|못재|안쟀|못쟀|재보지|재보질|안재봤|체온계(?:가|도)?없|잘몰|알수없|알수가없|있는건지|없는건지|건지모르|인지모르|"
    r"수도있|어떻게알|어찌알|안잰|못잰|재보진|재보지도|안재보|재본적없|지도몰라|지도모르|몇번인지|몇시간인지|몇도인지|세어보지|세보지|세어보진|세보진|안세어|못세"
)
_UNHEARD = re.compile(r"안들려|잘안들|안들리|뭐라고|뭐라구|누구세요|여보세요|다시말씀|다시한번말|다시요|못들었|못알아듣|못알아들|"
                      r"잠깐만|잠시만|잠깐요|누가왔")
_MILD = re.compile(r"심하(?:지는|진|지)않|심한건아니|많이는안|많진않|그렇게심하|대단하진|대단한건아니|그렇게많이는")
_RECOVERED = re.compile(r"나았|나아졌|좋아졌|내렸|내려갔|줄었|떨어졌|가라앉|멎었|그쳤|없어졌|사라졌")
_PERSISTS = re.compile(r"멈추(?:지|질|진)않|안멈|(?:안|잘안)(?:그쳐|그치|낫|나아|떨어|내려|가라앉)|계속돼|계속되")
_NOMINAL_NEG = re.compile(r"(?:는|은|ㄴ|한|픈|찬|난)(?:거|건|게|것|적)(?:은|는|도|이)?(?:전혀|별로|딱히)?(?:없|아니|안)|"
                          r"(?:건|거는|것은)(?:전혀|별로|딱히|그닥)")
_STAYED = re.compile(r"(?:에|에만|에서|에서만|누워|앉아|엎드려|가만히)있")  # 집에 있었어요, 누워 있었어: not "I have it"
_DOUBLE_NEG = re.compile(r"(?:없|않|안하|안나)(?:지는|진|지)않|아닌건아니|안[가-힣]{1,3}건아니|않은건아니|없는건아니|없다고는못|아니라고는못")
_WELL_NEG = re.compile(r"뒤척|설쳐|설쳤|설친|적적|울적|우울|외로|쓸쓸|속상|서글|슬퍼|슬프|안좋|안괜찮|괜찮지않|괜찮진않|좋지않|좋진않|나빠|나쁘|불편|힘들|힘드|별로안좋|엉망|죽겠|최악|시원찮|별로예요|별로에요|별로입니다")
_WELL_POS = re.compile(r"(?:아픈|불편한)(?:데|곳)(?:는|도|가|은)?(?:별로|딱히|특별히|전혀)?없|잘지내|잘있어|괜찮|괜차|괜찬|갠찮|갠차|멀쩡|정상|문제없|문제는없|이상없|이상은없|별일없|별문제|걱정없|걱정마|탈없|좋(?:아|고|네|습|았|은|더)|편해|편안|양호|개운|말짱|거뜬")
_NEG = re.compile(
    r"없|업써|업서|읍써|엄써|업어|않|(?<![편불평보미치대제방문질답])안(?=해|하|했|나|났|아파|아프|아팠|아픈|아퍼|먹|만나|만났|만난|느|들|돼|되|잤|자|재|쉬|받|부|차|납|합|그|걸|가|갔|올|와|좋|심|붓|부)|"
    r"깜빡|까먹|거르|걸렀|건너뛰|말았|못(?=해|하|했|먹|잤|자|갔|받|드|느)|그렇지않|그러진않|그렇진않|아직|전혀|하나도|별로|벨로|그닥|그다지|딱히|아니|아뇨|아녀|아녜|아니오|노노|ㄴㄴ"
)
_POS = re.compile(
    r"있|이써|있써|잇어|나요|나네|났|나는|난다|나고|나서|해요|했|하고|합니다|하네|해서|하는|아파|아프|아팠|아퍼|따끔|칼칼|"
    r"간질|간지|컬컬|부었|부어|잠겼|가빠|가쁘|차요|차고|차서|답답|막혀|막히|막힌|헉헉|먹었|먹었|먹고|드셨|들었|잤|잘잤|"
    r"조금|쪼금|좀|약간|살짝|많이|심해|심하|계속|자주|가끔|그래요|그렇|그런편|맞아|맞습|맞죠|만났|왔|올라|높|뜨거|뜨끈|으슬|"
    r"오한|펄펄|쿨럭|콜록|콜록콜록|그럼|물론|당연|오케이|그래|그럴거|그럴걸|그런것같|그런듯|(?:잔|먹은|한)(?:것|거)같|끓|됐어|됐대|됐다|걸렸|나와|나오"
)
_STUCK_FILLER = r"(?:어|음|으|아|그|저기|뭐|에|엄|흠)*?"  # "음음네네": fillers the recogniser glued on
# pain named without a slot: present when a symptom was asked, a no to "are you well?"
_PAIN = re.compile(r"아파|아프|아팠|아퍼|쑤시|쑤셔|저려|저리|어지러|결려|결리")
_DEGREE = frozenset({"조금", "쪼금", "좀", "약간", "살짝", "많이", "계속", "자주", "가끔", "심해", "심하"})
_YES_WORD = re.compile(_STUCK_FILLER + r"(?:네+(?!가)|넹|녜|예+(?!전|약|뻐|쁘|정|방|산|민|상)|옙|응+(?!급|원|답)|웅|엉(?!망|덩|터|뚱)|으응|그럼요?|"
                       r"그렇죠|그렇지|그래요?|맞아요?|맞습니다|맞죠|당연하죠|당연하지|물론이죠|물론|오케이|yes)")
_NO_WORD = re.compile(_STUCK_FILLER + r"(?:아니(?:요|오|여|예|용)?|아뇨|아녀|아녜요?|노노|안요|ㄴㄴ|no)")
_JOINERS = "근데|그런데|그리고|하지만|그래도|대신|다만|그러고|그치만"
_SPLIT = re.compile(rf"\s*(?:[,.!?]+|(?<=[요죠데])\s|(?<=[가-힣]다)\s|(?<=지만)\s|(?<=[가-힣])고\s|\s(?={_JOINERS}))\s*")
# the same boundaries inside a word the recogniser glued together ("없는데열이나요")
_SPLIT_GLUED = re.compile(
    rf"(?<=[어아해여예에워네세죠]요)(?=[가-힣])|(?<=데)(?![요는도가서로에])(?=[가-힣])|(?<=데요)(?=[가-힣])|(?<=지만)(?=[가-힣])|"
    rf"(?<=[없않있났했좋니렸었]고)(?!요)(?=[가-힣])|(?<=[없않있났했좋니렸었]고요)(?=[가-힣])|(?<=[가-힣])(?={_JOINERS})"
)
_NOW = re.compile(r"지금|오늘은|요즘은|현재|이제는|요새는")
_LEADING_JOINER = re.compile(rf"^(?:{_JOINERS})")

# symptom slots: the words that name them (negative lookaheads skip 열 as ten / open, 목 as Thursday)
_SLOT_WORDS = {
    "fever": re.compile(r"(?<!해)열(?!심|어|쇠|댓|람|정|흘|번|시간|시|두|한|세|네|개|명|살|다섯|여섯|일곱|여덟|아홉|나흘|차례)|미열|고열|발열|"
                        r"체온|몸이[가-힣]{0,4}?(?:뜨거|뜨끈|불덩)|오한|으슬"),
    "cough": re.compile(r"기침|콜록|쿨럭|가래|잔기침"),
    "sore_throat": re.compile(r"(?<![가-힣]{2}의)목(?!요일|욕|록|표|적|걸이|도리|장|사|소|숨|회)|인후|편도|목소리"),
    "breathing": re.compile(r"(?<!한)숨(?!기|겨|김)|호흡|가슴이[가-힣]{0,3}?(?:답답|막|조이|조여|뻐근)|가슴답답|헐떡|헉헉|가빠|가쁘"),
    "taste_smell": re.compile(r"(?<!입)맛(?!있|나게|집|난|나는)|냄새|후각|미각|향기|향을|향이"),
    "contact": re.compile(r"확진|접촉|격리|감염된|감염자|코로나걸린|코로나환자|양성|만난적|만났|만나신"),
}
# slot-specific presence that a generic 못 / 안 would read as a no: losing taste is the symptom
_SLOT_PRESENT = {
    "taste_smell": re.compile(r"(?:맛|냄새)[가-힣]{0,2}(?:잘)?(?:모르|몰라|몰르)|(?:못|안|잘안|잘못)(?:느|맡|나|났)|이상(?:이)?있|이상해|둔해|둔하|무뎌|없어졌|사라졌|안느껴"),
    "breathing": re.compile(r"(?:숨|호흡)(?:이|을|쉬기|쉬는게|쉬는거)?(?:가|가좀|좀|조금|많이)?(?:차|가빠|가쁘|답답|힘들|힘드|막|어려|불편)|"
                            r"(?:못|잘안|잘못)쉬|가빠|가쁘|헐떡|헉헉|가슴이[가-힣]{0,3}?(?:답답|막|조이|조여|뻐근)|버거"),
}
_SLOT_ABSENT = {
    "taste_smell": re.compile(r"잘(?:느|맡|나)|똑같|그대로|평소|비슷|멀쩡|정상"),
    "breathing": re.compile(r"(?:불편|힘들|답답|차|가쁘|가빠|어렵)[가-힣]{0,2}않|안(?:차|가빠|가쁘|답답|힘들|불편)|잘쉬|편하게쉬|편히쉬"),
}


def _interjection(clause: str) -> bool | None:
    if _NO_WORD.match(clause):
        return False
    if _YES_WORD.match(clause):
        return True
    return None


def _strip_interjection(clause: str) -> str:
    for pattern in (_NO_WORD, _YES_WORD):
        m = pattern.match(clause)
        if m:
            return clause[m.end():]
    return clause


def _polarity(content: str, slot: str | None, symptom_question: bool) -> tuple[bool | None, int]:
    """Whether ``content`` (one clause, no spaces, no leading 네 / 아니요) says present / yes (True) or
    absent / no (False), and how strong the cue is: 3 a presence word (있다, 없다), 2 a wellness word
    (괜찮다), 1 a hedge (조금), 0 nothing."""
    content = re.sub(r"그냥그래|그저그래|그냥저냥|그럭저럭", "", content)
    if not content:
        return None, 0
    content = _STAYED.sub("", content)
    if _DOUBLE_NEG.search(content):
        return True, 2
    if _PERSISTS.search(content):
        return True, 3
    if slot in _SLOT_ABSENT and _SLOT_ABSENT[slot].search(content):
        return False, 3
    if _NOMINAL_NEG.search(content):
        return False, 3
    if slot in _SLOT_PRESENT and _SLOT_PRESENT[slot].search(content):
        return True, 3
    if _MILD.search(content):
        return True, 1
    if _RECOVERED.search(content) and not _WELL_NEG.search(content):
        return not symptom_question, 3
    if _WELL_NEG.search(content):
        return symptom_question, 2
    if _WELL_POS.search(content):
        return not symptom_question, 2
    if _NEG.search(content):
        return False, 3
    if _PAIN.search(content):
        return symptom_question, 3
    hits = _POS.findall(content)
    if hits:  # degree words alone ("요즘 계속", "조금요") and "…같기도 하고" hedge more than they answer
        return True, 3 if any(h not in _DEGREE for h in hits) and "같기도하" not in content else 1
    return None, 0


@dataclass
class _Reading:
    symptoms: dict[str, bool]
    general: bool | None  # the answer's polarity outside any named symptom
    strength: int
    unknown_slots: set[str]
    any_cue: bool
    unknown_general: bool  # a clause about nothing named said "I don't know"


def _read_clauses(prepared: _Text, asked: str | None, mention_is_present: bool = True) -> _Reading:
    """Read the answer clause by clause. A clause naming symptoms sets them; any other clause votes on
    the answer as a whole, the strongest cue winning and the earlier clause on a tie (the direct answer
    comes first, "없어요 집에만 있었어요"). A clause naming nothing is read as being about the ``asked`` slot."""
    symptom_question = asked is not None
    clauses = [_LEADING_JOINER.sub("", glued) for c in _SPLIT.split(prepared.spaced) if c and c.strip()
               for glued in _SPLIT_GLUED.split(c.replace(" ", "")) if glued]
    clauses = [c for c in clauses if c]
    symptoms: dict[str, bool] = {}
    unknown: set[str] = set()
    general: bool | None = None
    strength = 0
    pending: list[str] = []  # slots named in a clause that said nothing about them ("기침은요, 없어요")
    bare = True  # every pending slot was named alone, with no predicate we could not read
    any_cue = False
    unknown_general = False
    for clause in clauses:
        said = _interjection(clause)
        content = _strip_interjection(clause)
        slots = [s for s, pattern in _SLOT_WORDS.items()
                 if pattern.search(content) and not re.search(f"(?:{pattern.pattern})[가-힣]?보다", content)]
        any_cue |= said is not None or bool(slots)
        if slots:
            lost = any(s in _SLOT_PRESENT and _SLOT_PRESENT[s].search(content) for s in slots)
            if not lost and _UNKNOWN.search(content) and not _NEG.search(content.replace("모르", "")):
                unknown.update(slots)
                any_cue = True
                continue
            for slot in slots:
                pol, _ = _polarity(content, slot, True)
                word = f"(?:{_SLOT_WORDS[slot].pattern})"
                if re.search(word + "[가-힣]{0,3}(?:때문|땜에|탓)|" + word + "[가-힣]{0,8}(?:말고|빼고|외에|밖에)", content):
                    pol = True  # "기침 때문에 잠을 못 자요", "기침 말고는 없어요": it is there
                if pol is None:
                    pol = said
                if pol is None:
                    pending.append(slot)
                    bare &= len(_SLOT_WORDS[slot].sub("", content)) <= 2  # "목은", "기침은요"
                else:
                    symptoms[slot] = pol
            if said is not None and said is symptoms.get(slots[0]) and 3 > strength:
                general, strength = said, 3  # "아니요 기침은 없어요": the leading word answers too
            continue
        if _UNKNOWN.search(content):
            unknown_general = any_cue = True
            continue
        pol, st = _polarity(content, asked, symptom_question)
        if pol is not None and _NOW.search(content):
            st += 1  # "어제는 났는데 오늘은 없어요": what holds now answers the question
        if pol is None and said is not None:
            pol, st = said, 3 if not content else 2
        if pol is None:
            continue
        any_cue = True
        for slot in pending:
            symptoms[slot] = _polarity(content, slot, True)[0] if content else said  # type: ignore[assignment]
            if symptoms[slot] is None:
                symptoms[slot] = pol
        pending, bare = [], True
        if st > strength:
            general, strength = pol, st
    for slot in pending:  # "없어요 목은": a bare name takes the answer's polarity; "기침이요" alone is present
        if bare and general is not None:
            symptoms[slot] = general if symptom_question or general is False else True
        elif mention_is_present or not bare:
            symptoms[slot] = True
    return _Reading(symptoms, general, strength, unknown, any_cue, unknown_general)


# ------------------------------------------------------------------------------------------------
# the rules


def _rules(text: str, expect: str, slot: str | None) -> Understanding:
    prepared = _prepare(text)
    if not prepared.readable:
        return Understanding("unclear", confidence=1.0, method="rules")
    compact = prepared.compact
    if _HUMAN.search(compact):
        return Understanding("human", confidence=0.95, method="rules")
    if _LATER.search(compact):
        return Understanding("later", confidence=0.9, method="rules")
    if _UNHEARD.search(compact) or re.fullmatch(r"\s*(?:네|예|응|뭐|뭐요|네에)\s*\?+\s*", text):
        return Understanding("unclear", confidence=0.9, method="rules")  # "네?": the caller did not hear us
    reading = _read_clauses(prepared, slot, mention_is_present=expect != "temperature")
    if expect in ("temperature", "number"):
        return _numeric_answer(text, compact, expect, reading)
    return _yes_no_answer(compact, expect, slot, reading)


def _numeric_answer(text: str, compact: str, expect: str, reading: _Reading) -> Understanding:
    """A temperature or a count; without a number, what the answer says instead (열 없어요, 안 재봤어요)."""
    symptoms = dict(reading.symptoms)
    value, conf = read_temperature(text) if expect == "temperature" else read_count(text)
    if value == 0.0 and expect == "number":
        return Understanding("no", 0.0, symptoms, conf, "rules")
    if value is not None:
        return Understanding("yes", value, symptoms, conf, "rules")
    if conf > 0:  # a number was said, but not one a body or a count can have
        return Understanding("unclear", None, symptoms, 0.8, "rules")
    if expect == "number" and (reading.general is False or (symptoms and not any(symptoms.values()))):
        return Understanding("no", 0.0, symptoms, 0.8, "rules")
    if _UNKNOWN.search(compact):
        return Understanding("unknown", None, symptoms, 0.9, "rules")
    if expect == "temperature":
        fever = symptoms.get("fever")
        if fever is None and reading.general is not None:
            fever = reading.general if reading.strength >= 2 else None
            if fever is not None and _WELL_POS.search(compact):
                fever = False  # "정상이에요": a normal temperature is no fever
        if fever is not None:
            symptoms["fever"] = fever
            return Understanding("yes" if fever else "no", None, symptoms, 0.8, "rules")
    if reading.general is not None:
        return Understanding("yes" if reading.general else "no", None, symptoms, 0.6, "rules")
    return Understanding("unclear", None, symptoms, 0.5, "rules")


def _yes_no_answer(compact: str, expect: str, slot: str | None, reading: _Reading) -> Understanding:
    """Yes / no about ``slot`` (or about nothing named), or the symptoms an open question was told."""
    symptoms = dict(reading.symptoms)
    if slot is not None and slot in reading.unknown_slots and slot not in symptoms:
        return Understanding("unknown", None, symptoms, 0.9, "rules")
    if slot is not None and slot in symptoms:
        conf = 0.95 if reading.strength != 1 else 0.8
        return Understanding("yes" if symptoms[slot] else "no", None, symptoms, conf, "rules")
    if reading.unknown_general and (reading.general is None or reading.strength < 2):
        return Understanding("unknown", None, symptoms, 0.9, "rules")
    if slot is not None and reading.general is not None:
        symptoms[slot] = reading.general
        conf = {1: 0.8, 2: 0.9}.get(reading.strength, 0.95)
        return Understanding("yes" if reading.general else "no", None, symptoms, conf, "rules")
    if slot is not None and symptoms:  # spoke of another symptom only: ask again about this one
        return Understanding("unclear", None, symptoms, 0.6, "rules")
    if expect in ("symptoms", "free") and symptoms:
        return Understanding("yes" if any(symptoms.values()) else "no", None, symptoms, 0.9, "rules")
    if reading.general is not None:
        conf = {1: 0.8, 2: 0.9}.get(reading.strength, 0.95)
        return Understanding("yes" if reading.general else "no", None, symptoms, conf, "rules")
    if expect == "free" and len(compact) >= 4:
        return Understanding("yes", None, symptoms, 0.5, "rules")  # something was said; keep it
    return Understanding("unclear", None, symptoms, 0.5 if reading.any_cue or compact else 1.0, "rules")


# ------------------------------------------------------------------------------------------------
# the classifier: character n-gram logistic regression (numpy / scipy), trained on generated answers

_N_FEATURES = 1 << 18


def _context(expect: str, slot: str | None) -> str:
    return f"{expect}:{'symptom' if slot else '-'}"


def _features(text: str, expect: str, slot: str | None) -> list[int]:
    """Hashed character 1..4-grams of the compact text (with edges), word unigrams, each also paired
    with the question kind, since "괜찮아요" is a no about a symptom and a yes about a meal."""
    prepared = _prepare(text)
    s = f"^{prepared.compact}$"
    grams = [s[i:i + n] for n in (1, 2, 3, 4) for i in range(len(s) - n + 1)]
    grams += ["w:" + w for w in prepared.spaced.split()]
    if not prepared.readable:
        grams.append("!unreadable")
    ctx = _context(expect, slot)
    keys = grams + [ctx + "|" + g for g in grams] + ["ctx:" + ctx]
    return sorted({zlib.crc32(k.encode()) % _N_FEATURES for k in keys})


class AnswerClassifier:
    """Multinomial logistic regression over hashed n-grams; ``fit`` is deterministic (L-BFGS from zero)."""

    def __init__(self, l2: float = 1e-4) -> None:
        self.l2 = l2
        self.classes: tuple[str, ...] = INTENTS
        self.weights = np.zeros((_N_FEATURES, len(self.classes)))
        self.bias = np.zeros(len(self.classes))

    @staticmethod
    def _matrix(rows: Sequence[list[int]]) -> Any:
        from scipy.sparse import csr_matrix

        indptr = np.cumsum([0] + [len(r) for r in rows])
        indices = np.fromiter((i for r in rows for i in r), dtype=np.int64, count=int(indptr[-1]))
        return csr_matrix((np.ones(len(indices)), indices, indptr), shape=(len(rows), _N_FEATURES))

    def fit(self, texts: Sequence[str], expects: Sequence[str], slots: Sequence[str | None],
            intents: Sequence[str], steps: int = 120, lr: float = 0.2) -> AnswerClassifier:
        """Full-batch Adam from zero weights: no sampling, so the same data gives the same weights."""
        x = self._matrix([_features(t, e, s) for t, e, s in zip(texts, expects, slots, strict=True)])
        y = np.array([self.classes.index(i) for i in intents])
        used = np.unique(x.indices)  # optimise only the columns seen in training
        x = x[:, used].tocsr()
        xt = x.T.tocsr()
        n, k = x.shape[0], len(self.classes)
        onehot = np.eye(k)[y]
        w, b = np.zeros((x.shape[1], k)), np.zeros(k)
        m = [np.zeros_like(w), np.zeros_like(b)]
        v = [np.zeros_like(w), np.zeros_like(b)]
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        for step in range(1, steps + 1):
            logits = x @ w + b
            logits -= logits.max(axis=1, keepdims=True)
            p = np.exp(logits)
            p /= p.sum(axis=1, keepdims=True)
            grad_logits = (p - onehot) / n
            grads = [xt @ grad_logits + 2 * self.l2 * w, grad_logits.sum(axis=0)]
            for i, (param, g) in enumerate(zip((w, b), grads, strict=True)):
                m[i] = beta1 * m[i] + (1 - beta1) * g
                v[i] = beta2 * v[i] + (1 - beta2) * g * g
                param -= lr * (m[i] / (1 - beta1**step)) / (np.sqrt(v[i] / (1 - beta2**step)) + eps)
        self.weights = np.zeros((_N_FEATURES, k))
        self.weights[used] = w
        self.bias = b
        return self

    def predict_proba(self, text: str, expect: str, slot: str | None) -> dict[str, float]:
        idx = _features(text, expect, slot)
        logits = self.weights[idx].sum(axis=0) + self.bias
        p = np.exp(logits - logits.max())
        p /= p.sum()
        return dict(zip(self.classes, p.tolist(), strict=True))


@functools.lru_cache(maxsize=4)
def default_classifier(seed: int = 0, n: int = 6000) -> AnswerClassifier:
    """The classifier trained on ``n`` generated answers with ``seed`` (a few seconds; cached)."""
    from haneul.carecall.answers import generate

    data = generate(n, seed=seed)
    return AnswerClassifier().fit([a.text for a in data], [a.expect for a in data], [a.slot for a in data],
                                  [a.intent for a in data])


def _classify(text: str, expect: str, slot: str | None) -> Understanding:
    probs = default_classifier().predict_proba(text, expect, slot)
    intent = max(probs, key=lambda k: probs[k])
    rules = _rules(text, expect, slot)
    symptoms = {k: v for k, v in rules.symptoms.items() if k != slot}
    value = rules.value
    if expect in ("temperature", "number") and intent == "yes" and value is None:
        intent = "unclear"  # a yes without the number the question asked for
    if intent in ("yes", "no") and slot is not None:
        symptoms[slot] = intent == "yes"
    if intent not in ("yes", "no") or expect not in ("temperature", "number"):
        value = value if intent == "yes" else (0.0 if expect == "number" and intent == "no" else None)
    return Understanding(intent, value, symptoms, round(probs[intent], 4), "classifier")


# ------------------------------------------------------------------------------------------------
# the LM: an OpenAI-compatible chat model asked for one JSON object

LM_SYSTEM = (
    "You read a Korean phone answer to a health check-in question and reply with one JSON object only: "
    '{"intent": "yes"|"no"|"unknown"|"later"|"human"|"unclear", "value": number or null, '
    '"symptoms": {slot: true|false}}. Slots: ' + ", ".join(SYMPTOMS) + ". intent yes/no answers the question "
    "(for a symptom: yes = present). unknown = the caller does not know, later = call back later or busy, "
    "human = wants a person, unclear = not understandable or another language. value: the temperature in "
    "degrees Celsius or the count asked for. symptoms: only the slots the answer mentions."
)


def lm_prompt(text: str, expect: str, slot: str | None) -> str:
    return json.dumps({"expect": expect, "slot": slot, "answer": text}, ensure_ascii=False)


def parse_lm_reply(reply: str, expect: str, slot: str | None) -> Understanding:
    """The :class:`Understanding` in an LM reply; raises InvalidInput when it is not one."""
    m = re.search(r"\{.*\}", reply, flags=re.S)
    try:
        body = json.loads(m.group() if m else reply)
    except ValueError:
        raise InvalidInput(f"the LM answered {reply[:80]!r}, not a JSON object") from None
    intent = body.get("intent") if isinstance(body, dict) else None
    if intent not in INTENTS:
        raise InvalidInput(f"the LM answered intent {intent!r}; expected one of {', '.join(INTENTS)}")
    raw_value = body.get("value")
    value = float(raw_value) if isinstance(raw_value, int | float) and not isinstance(raw_value, bool) else None
    if expect == "temperature" and value is not None:
        value = _plausible(value)[0]
    raw = body.get("symptoms") or {}
    symptoms = {k: bool(v) for k, v in raw.items() if k in SYMPTOMS and isinstance(v, bool)} if isinstance(raw, dict) else {}
    if slot is not None and intent in ("yes", "no"):
        symptoms.setdefault(slot, intent == "yes")
    return Understanding(intent, value, symptoms, 0.9, "lm")


def _lm(text: str, expect: str, slot: str | None, client: Any, endpoint: str | None, lm_model: str | None,
        timeout: float) -> Understanding:
    if client is None and not endpoint:
        return _rules(text, expect, slot)
    from haneul.dialog.lm import ChatClient, LMUnavailable

    if client is None:
        client = ChatClient(str(endpoint), model=lm_model, timeout=timeout, max_tokens=128)
    try:
        return _ask_lm(client, text, expect, slot)
    except LMUnavailable as exc:
        log.warning("LM unreachable, the rules read this answer: %s", exc)
        return _rules(text, expect, slot)


def _ask_lm(client: Any, text: str, expect: str, slot: str | None) -> Understanding:
    """The LM's reading of an answer; a reply that does not parse goes to the rules (the LM is up but
    said something else). An unreachable LM raises ``LMUnavailable`` for the caller to handle."""
    reply = client.chat([{"role": "system", "content": LM_SYSTEM},
                         {"role": "user", "content": lm_prompt(text, expect, slot)}])
    try:
        return parse_lm_reply(reply, expect, slot)
    except InvalidInput:
        return _rules(text, expect, slot)


class _LMHealth:
    """Whether an endpoint failed lately, shared by every call that uses it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.down_until = float("-inf")
        self.reason = ""


class LMUnderstander:
    """``understand(method="lm")`` for a whole campaign: an endpoint that fails is left alone for a while.

    Each answer of a call would otherwise wait on a dead endpoint again (up to ``timeout`` seconds
    per answer, for every answer); here the first failure marks the endpoint down for
    ``retry_after_s`` and the rules read the answers meanwhile, so an LM outage costs a call at most
    one ``timeout``. The agent's questions are the scenario's either way; only the reading of the
    answers changes. The failure is logged once per outage and kept in :attr:`notes`;
    :meth:`for_call` gives each call its own notes (the dialer copies them into the call's record)
    while sharing the endpoint's health.
    """

    def __init__(self, endpoint: str | None = None, *, model: str | None = None, timeout: float = 10.0,
                 retry_after_s: float = 60.0, client: Any = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if client is None and not endpoint:
            raise InvalidInput("LMUnderstander needs an endpoint (an OpenAI-compatible base URL such as "
                               "http://127.0.0.1:8000/v1) or a client")
        if timeout <= 0 or retry_after_s < 0:
            raise InvalidInput(f"need timeout > 0 and retry_after_s >= 0; got {timeout}, {retry_after_s}")
        self.endpoint, self.model, self.timeout, self.retry_after_s = endpoint, model, timeout, retry_after_s
        self.clock = clock
        self.notes: list[str] = []
        self._client = client
        self._health = _LMHealth()

    @property
    def client(self) -> Any:
        if self._client is None:
            from haneul.dialog.lm import ChatClient

            self._client = ChatClient(str(self.endpoint), model=self.model, timeout=self.timeout, max_tokens=128)
        return self._client

    def for_call(self) -> LMUnderstander:
        """The same endpoint, client and health, with notes of its own: one per call."""
        view = copy.copy(self)
        view.notes = []
        return view

    @property
    def available(self) -> bool:
        """False while the endpoint is taken to be down (after a failure, for ``retry_after_s``)."""
        return self.clock() >= self._health.down_until

    def __call__(self, text: str, expect: str = "yesno", slot: str | None = None, **_: Any) -> Understanding:
        if not self.available:
            self._note(self._health.reason)
            return _rules(text, expect, slot)
        from haneul.dialog.lm import LMUnavailable

        try:
            return _ask_lm(self.client, text, expect, slot)
        except LMUnavailable as exc:
            self._down(str(exc))
            return _rules(text, expect, slot)

    def _down(self, why: str) -> None:
        with self._health.lock:
            first = self.clock() >= self._health.down_until
            self._health.down_until = self.clock() + self.retry_after_s
            self._health.reason = (f"LM unreachable, answers read by the rules for {self.retry_after_s:g}s: "
                                   f"{why}")
        if first:
            log.warning("%s", self._health.reason)
        self._note(self._health.reason)

    def _note(self, note: str) -> None:
        if note and note not in self.notes:
            self.notes.append(note)


# ------------------------------------------------------------------------------------------------
# one entry point


def understand(text: str, expect: str = "yesno", slot: str | None = None, *, method: str = "auto",
               endpoint: str | None = None, lm_model: str | None = None, timeout: float = 10.0,
               client: Any = None) -> Understanding:
    """Read the callee's answer ``text`` to a question of kind ``expect`` (about symptom ``slot``).

    ``method`` is one of rules, classifier, lm (``endpoint``, an OpenAI-compatible base URL, or a
    ``client`` with ``chat(messages) -> str``; without one, or when it fails, the rules answer and the
    result says ``method="rules"``) or auto (the rules where confident, else the classifier).
    """
    if expect not in EXPECTS:
        raise InvalidInput(f"unknown expect {expect!r}; use one of {', '.join(EXPECTS)}")
    if slot is not None and slot not in SYMPTOMS:
        raise InvalidInput(f"unknown symptom slot {slot!r}; use one of {', '.join(SYMPTOMS)} or None")
    if method not in METHODS:
        raise InvalidInput(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    if not isinstance(text, str):
        raise InvalidInput(f"the answer must be text, got {type(text).__name__}; pass the transcript as a str")
    if method == "rules":
        return _rules(text, expect, slot)
    if method == "classifier":
        return _classify(text, expect, slot)
    if method == "lm":
        return _lm(text, expect, slot, client, endpoint, lm_model, timeout)
    ruled = _rules(text, expect, slot)
    if ruled.confidence >= AUTO_RULES_CONFIDENCE:
        return ruled
    guessed = _classify(text, expect, slot)
    return guessed if guessed.confidence > ruled.confidence else ruled
