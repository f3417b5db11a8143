from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from haneul.errors import InvalidInput
from haneul.speech.opentext import (
    draw_sentences,
    inventory,
    ksx1001_syllables,
    read_passages,
    split_sentences,
)
from haneul.speech.synth import is_heldout_sentence
from haneul.text.spoken import is_spoken

REVIEWS = [
    "배우들 연기가 정말 좋았어요. 음악도 최고! 다시 보고 싶네요",
    "2시간이 금방 갔음ㅋㅋ 3번 봤어요",
    "이 영화 너무 good",  # an English word: never drawn
    "스토리가 뻔하다… 그래도 볼만함",
]
PAIRS = [("한 남자가 기타를 치고 있다.", "남자가 악기를 연주한다."), ("아이들이 공원에서 뛰어논다.", "비가 온다.")]


@pytest.fixture
def sources(tmp_path: Path) -> list[Path]:
    jsonl = tmp_path / "reviews.jsonl.gz"
    with gzip.open(jsonl, "wt", encoding="utf-8") as fh:
        for i, text in enumerate(REVIEWS):
            fh.write(json.dumps({"id": i, "text": text}, ensure_ascii=False) + "\n")
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("genre\tscore\tsentence1\tsentence2\n" + "".join(f"x\t1\t{a}\t{b}\n" for a, b in PAIRS))
    txt = tmp_path / "plain.txt"
    txt.write_text("오늘 날씨가 맑습니다.\n\n내일은 비가 올 예정입니다.\n")
    return [jsonl, tsv, txt]


def test_passages_come_from_jsonl_tsv_and_plain_text(sources: list[Path]) -> None:
    assert list(read_passages(sources[0])) == REVIEWS
    assert list(read_passages(sources[1])) == [s for pair in PAIRS for s in pair]
    assert list(read_passages(sources[2])) == ["오늘 날씨가 맑습니다.\n", "내일은 비가 올 예정입니다.\n"]
    assert split_sentences(REVIEWS[0]) == ["배우들 연기가 정말 좋았어요.", "음악도 최고!", "다시 보고 싶네요"]
    assert split_sentences("정말…그래도 볼만함..최고") == ["정말…", "그래도 볼만함", "최고"]


def test_drawn_sentences_are_spoken_on_their_side_and_never_the_excluded(sources: list[Path]) -> None:
    train = draw_sentences(sources, 200, seed=0, templates=0.0, min_syllables=2)
    heldout = draw_sentences(sources, 200, seed=0, split="heldout", templates=0.0, min_syllables=2)
    assert train and all(is_spoken(s) for s in train + heldout)
    assert not set(train) & set(heldout)
    assert not any(is_heldout_sentence(s) for s in train) and all(is_heldout_sentence(s) for s in heldout)
    everything = set(train) | set(heldout)
    assert "두 시간이 금방 갔음 세 번 봤어요" in everything  # read out, laughter dropped
    assert not any("good" in s or "지오오디" in s for s in everything)
    assert len(everything) == len(train) + len(heldout)  # each once
    again = draw_sentences(sources, 200, seed=0, templates=0.0, min_syllables=2)
    assert again == train  # a seed gives the same draw
    kept_out = draw_sentences(sources, 200, seed=0, templates=0.0, min_syllables=2,
                              split="train" if "그래도 볼만함" in train else "heldout", exclude=["그래도, 볼만함!"])
    assert "그래도 볼만함" not in kept_out and len(kept_out) == len(train if "그래도 볼만함" in train else heldout) - 1


def test_each_source_gets_an_equal_share_and_templates_theirs(tmp_path: Path) -> None:
    big, small = tmp_path / "big.txt", tmp_path / "small.txt"
    big.write_text("".join(f"큰 글 {i}번 문장입니다\n" for i in range(200)))
    small.write_text("".join(f"작은 글 {i}번 문장입니다\n" for i in range(6)))
    small_train = [s for s in draw_sentences([small], 50, templates=0.0) if s.startswith("작은")]
    drawn = draw_sentences([big, small], 40, seed=1, templates=0.25)
    assert len(drawn) == len(set(drawn)) == 40
    from_small = [s for s in drawn if s.startswith("작은")]
    from_big = [s for s in drawn if s.startswith("큰")]
    assert sorted(from_small) == sorted(small_train)  # all it has, fewer than its half of 30
    assert len(from_big) == 30 - len(from_small)  # the big one makes up the rest
    assert len(drawn) - 30 == 10  # a quarter from the reservation templates
    only_templates = draw_sentences([], 15, seed=2)
    assert len(only_templates) == 15 and all(is_spoken(s) for s in only_templates)
    assert len(draw_sentences([small], 50, templates=0.0)) == len(small_train)  # fewer than asked: all there is


def test_bad_sources_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        draw_sentences([tmp_path / "none.txt"], 5)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "좋아요"}\nnot json\n')
    with pytest.raises(InvalidInput, match="bad.jsonl:2 is not a JSON object"):
        draw_sentences([bad], 5)
    tsv = tmp_path / "x.tsv"
    tsv.write_text("a\tb\n1\t2\n")
    with pytest.raises(InvalidInput, match="no sentence, document or text column"):
        draw_sentences([tsv], 5)
    english = tmp_path / "en.txt"
    english.write_text("hello world\nthis is english\n")
    with pytest.raises(InvalidInput, match="no speakable sentence"):
        draw_sentences([english], 5)


def test_inventory_counts_ks_x_1001_coverage() -> None:
    syllables = ksx1001_syllables()
    assert len(syllables) == len(set(syllables)) == 2350 and syllables[0] == "가" and syllables[-1] == "힝"
    inv = inventory(["가나 다", "똠얌꿍 가"])
    assert (inv.sentences, inv.characters, inv.distinct) == (2, 7, 6)
    assert inv.ksx1001_covered == 5 and inv.outside_ksx1001 == ["똠"]
    assert inv.to_dict()["ksx1001_coverage"] == round(5 / 2350, 4)
