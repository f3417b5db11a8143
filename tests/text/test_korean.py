from __future__ import annotations

import ast
import unicodedata
from pathlib import Path

import pytest

import haneul.text.korean as korean
from haneul.text.korean import (
    clock,
    final_consonant,
    has_final_consonant,
    josa,
    month,
    native,
    normalize,
    particle_form,
    read_digits,
    sino,
)

# --------------------------------------------------------------------------------------------------
# particles


@pytest.mark.parametrize(
    ("word", "expected"),
    [("서울", "서울로"), ("길", "길로"), ("물", "물로"), ("나무", "나무로"), ("학교", "학교로"),
     ("집", "집으로"), ("부산", "부산으로"), ("밥", "밥으로"), ("10일", "10일로")],
)  # fmt: skip
def test_euro_ro_takes_ro_after_a_vowel_and_after_rieul(word, expected):
    assert josa(word, "으로/로") == expected


@pytest.mark.parametrize(
    ("word", "obj", "direction"),
    [("0", "0을", "0으로"),  # 영
     ("1", "1을", "1로"),  # 일: ㄹ takes 로
     ("2", "2를", "2로"),  # 이
     ("3", "3을", "3으로"),  # 삼
     ("6", "6을", "6으로"),  # 육
     ("7", "7을", "7로"),  # 칠
     ("8", "8을", "8로"),  # 팔
     ("9", "9를", "9로"),  # 구
     ("10", "10을", "10으로"),  # 십
     ("12", "12를", "12로"),  # 십이
     ("100", "100을", "100으로"),  # 백
     ("1000", "1000을", "1000으로"),  # 천
     ("1,000", "1,000을", "1,000으로"),
     ("10000", "10000을", "10000으로"),  # 만
     ("1000000000000", "1000000000000를", "1000000000000로"),  # 일조
     ("3.5", "3.5를", "3.5로"),  # 삼 점 오
     ("1.0", "1.0을", "1.0으로"),  # 일 점 영
     ("제21", "제21을", "제21로")],  # 이십일
)  # fmt: skip
def test_a_trailing_number_is_read_in_sino_korean(word, obj, direction):
    assert josa(word, "을/를") == obj
    assert josa(word, "으로/로") == direction


@pytest.mark.parametrize(
    ("word", "subject", "direction"),
    [("URL", "URL이", "URL로"),  # 유알엘
     ("CM", "CM이", "CM으로"),  # 씨엠
     ("SNS", "SNS가", "SNS로"),  # 에스엔에스
     ("LG", "LG가", "LG로"),  # 엘지
     ("KTX", "KTX가", "KTX로"),
     ("Google", "Google이", "Google로"),  # 구글
     ("email", "email이", "email로"),  # 이메일
     ("iPhone", "iPhone이", "iPhone으로"),  # 아이폰
     ("game", "game이", "game으로"),  # 게임
     ("Samsung", "Samsung이", "Samsung으로"),  # 삼성
     ("app", "app이", "app으로"),  # 앱
     ("robot", "robot이", "robot으로"),  # 로봇
     ("book", "book이", "book으로"),  # 북
     ("server", "server가", "server로"),  # 서버
     ("test", "test가", "test로"),  # 테스트
     ("YouTube", "YouTube가", "YouTube로"),  # 유튜브
     ("MP3", "MP3이", "MP3으로")],  # 엠피삼
)  # fmt: skip
def test_latin_letters_are_read_by_letter_name_or_loanword_sound(word, subject, direction):
    assert josa(word, "이/가") == subject
    assert josa(word, "으로/로") == direction


def test_closing_brackets_and_quotes_are_skipped():
    assert josa("서울)", "으로/로") == "서울)로"
    assert josa("(집)", "으로/로") == "(집)으로"
    assert josa("'사과'", "을/를") == "'사과'를"
    assert josa("“밥”", "을/를") == "“밥”을"
    assert josa("「학교」", "이/가") == "「학교」가"
    assert josa('"3"', "을/를") == '"3"을'
    assert final_consonant("서울 ") == "ㄹ"


def test_either_form_or_order_of_a_pair_picks_the_form_the_word_needs():
    assert particle_form("밥", "는") == "은" and particle_form("사과", "은") == "는"
    assert particle_form("밥", "를/을") == "을" and particle_form("사과", "을") == "를"
    assert particle_form("동생", "와") == "과" and particle_form("친구", "과/와") == "와"
    assert particle_form("서울", "로") == "로" and particle_form("부산", "로") == "으로"
    assert josa("서울", "으로서") == "서울로서" and josa("학생", "으로서") == "학생으로서"
    assert josa("친구", "이나/나") == "친구나" and josa("동생", "나") == "동생이나"
    assert josa("동생", "랑") == "동생이랑" and josa("친구", "이랑/랑") == "친구랑"


def test_vocative_and_copula_forms():
    assert josa("영숙", "아/야") == "영숙아" and josa("철수", "아/야") == "철수야"
    assert josa("영숙", "야") == "영숙아"  # 야 alone is the vocative pair
    assert josa("학생", "이야/야") == "학생이야" and josa("친구", "이야/야") == "친구야"
    assert josa("학생", "이에요/예요") == "학생이에요" and josa("친구", "예요") == "친구예요"
    assert josa("학생", "이다/다") == "학생이다" and josa("친구", "이다") == "친구다"
    assert josa("해오름", "이죠/죠") == "해오름이죠" and josa("김민수", "이고요") == "김민수고요"


def test_final_consonant_helpers():
    assert final_consonant("서울") == "ㄹ" and final_consonant("닭") == "ㄺ" and final_consonant("사과") == ""
    assert final_consonant("3") == "ㅁ" and final_consonant("2") == ""
    assert has_final_consonant("밥") and has_final_consonant("URL")
    assert not has_final_consonant("사과") and not has_final_consonant("2")
    # decomposed (NFD) text is read like the precomposed syllables
    assert josa(unicodedata.normalize("NFD", "밥"), "을/를").endswith("을")


def test_empty_and_unreadable_words():
    for word in ("", "  ", ")", "'\""):
        assert final_consonant(word) is None and not has_final_consonant(word)
        with pytest.raises(ValueError, match="cannot choose a particle"):
            josa(word, "은/는")
    # an end this module cannot read (Hanja, a symbol, an emoji) takes the vowel form
    for word in ("漢", "?", "😀"):
        assert final_consonant(word) is None
        assert josa(word, "은/는") == word + "는" and josa(word, "으로/로") == word + "로"


def test_unknown_particle_names_itself_and_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown particle '에게/께'; use one of 이/가, 을/를"):
        josa("밥", "에게/께")
    with pytest.raises(ValueError, match="unknown particle '도'"):
        particle_form("밥", "도")


# --------------------------------------------------------------------------------------------------
# numbers


@pytest.mark.parametrize(
    ("n", "compact"),
    [(0, "영"), (1, "일"), (10, "십"), (11, "십일"), (15, "십오"), (20, "이십"), (31, "삼십일"), (100, "백"),
     (110, "백십"), (365, "삼백육십오"), (1000, "천"), (2024, "이천이십사"), (10000, "만"), (12000, "만이천"),
     (12345, "만이천삼백사십오"), (45000, "사만오천"), (120000, "십이만"), (100000000, "일억"),
     (10**12, "일조")],
)  # fmt: skip
def test_sino_korean_as_one_word(n, compact):
    assert sino(n, spaced=False) == compact


@pytest.mark.parametrize(
    ("n", "text"),
    [(12345, "만 이천삼백사십오"), (10000, "만"), (11000, "만 천"), (45000, "사만 오천"), (120000, "십이만"),
     (123456789, "일억 이천삼백사십오만 육천칠백팔십구"), (100010000, "일억 만"), (200000000, "이억"),
     (-3, "마이너스 삼"), (-12000, "마이너스 만 이천"), (3.14, "삼 점 일사"), ("0.05", "영 점 영오"),
     (-0.5, "마이너스 영 점 오"), ("10.0", "십 점 영"), ("-0", "영")],
)  # fmt: skip
def test_sino_korean_spaced_by_man_negative_and_decimal(n, text):
    assert sino(n) == text


@pytest.mark.parametrize("bad", [True, "3a", "", "1e5", float("nan"), 10**20, None])
def test_sino_rejects_what_it_cannot_read(bad):
    with pytest.raises(ValueError, match="cannot read"):
        sino(bad)


@pytest.mark.parametrize(
    ("n", "counter", "text"),
    [(1, True, "한"), (1, False, "하나"), (2, True, "두"), (2, False, "둘"), (3, True, "세"), (3, False, "셋"),
     (4, True, "네"), (4, False, "넷"), (5, True, "다섯"), (10, True, "열"), (12, True, "열두"),
     (20, True, "스무"), (20, False, "스물"), (21, True, "스물한"), (30, True, "서른"), (45, True, "마흔다섯"),
     (99, False, "아흔아홉"), (99, True, "아흔아홉")],
)  # fmt: skip
def test_native_korean(n, counter, text):
    assert native(n, counter) == text


@pytest.mark.parametrize("bad", [0, 100, -1, True, 2.0])
def test_native_range(bad):
    with pytest.raises(ValueError, match="1..99"):
        native(bad)


def test_digits_dates_and_times():
    assert read_digits("010-1234-0567") == "공일공 일이삼사 공오육칠"
    assert read_digits("02 120", zero="영") == "영이 일이영"
    with pytest.raises(ValueError, match="digit by digit"):
        read_digits("010-12a4")
    assert month(6) == "유월" and month(10) == "시월" and month(3) == "삼월" and month(12) == "십이월"
    with pytest.raises(ValueError, match="1..12"):
        month(13)
    assert clock(7) == "일곱 시" and clock(12, 30) == "열두 시 반" and clock(3, 15) == "세 시 십오 분"


def test_normalize_composes_and_collapses_spaces():
    assert normalize(unicodedata.normalize("NFD", "  밥을\t먹다 \n")) == "밥을 먹다"


def test_the_module_imports_nothing_else_from_haneul():
    tree = ast.parse(Path(korean.__file__).read_text(encoding="utf-8"))
    modules = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    modules += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in modules if m.split(".")[0] == "haneul"]
