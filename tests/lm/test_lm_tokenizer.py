from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from haneul.errors import InvalidInput
from haneul.lm.tokenizer import (
    KINDS,
    MorphemeSegmenter,
    load_tokenizer,
    min_vocab_size,
    split_words,
    train_tokenizer,
)

KOREAN = [
    "아버지가 방에 들어가신다.",
    "이 영화 정말 재미있었어요 ㅋㅋㅋ 강추합니다!",
    "배우들의 연기가 너무 좋았고 스토리도 탄탄했다.",
    "지루하고 재미없음... 시간 아까움 😡",
    "한국어 형태소 분석기는 mecab-ko를 씁니다 (2024년).",
    "학교에 가서 친구들을 만났다. 漢字도 조금 섞어 본다.",
    "def f(x):\n    return x  # 코드도 토큰화한다",
] * 20

ROUND_TRIP = [
    "",
    " ",
    "   여러   칸의    공백\t\t탭\n\n줄바꿈 ",
    "ㄱㄴㄷ ㅏㅑ 한글 자모",
    "ᄒᆞᆫ글 옛한글 조합형",
    "漢字 한자 混用",
    "emoji 👩‍👩‍👧 🇰🇷 ✨",
    "a\x00b NUL 바이트",
    "\u200b제로폭 공백\ufeff",
    "<|endoftext|>는 특수 토큰 문자열",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for kind in KINDS:
        d = tmp_path_factory.mktemp(kind)
        train_tokenizer(d, texts=KOREAN, kind=kind, vocab_size=400)
        out[kind] = d
    return out


def test_split_words_keeps_surface() -> None:
    assert split_words("a  b\n\nc ") == ["a", " ", " b", "\n\n", "c", " "]
    assert split_words(" x") == [" x"]


def test_segmenter_cuts_morphemes_and_caches() -> None:
    seg = MorphemeSegmenter()
    pieces = seg.segment("아버지가방에 들어가신다")
    assert pieces == ["아버지", "가", "방", "에", " 들어가", "신다"]
    seg.segment("아버지가방에 들어가신다")
    assert seg.hits == 2 and seg.misses == 2


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("text", ROUND_TRIP)
def test_round_trip_examples(trained: dict[str, Path], kind: str, text: str) -> None:
    tok = load_tokenizer(trained[kind])
    assert tok.decode(tok.encode(text)) == text


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_property(trained: dict[str, Path], kind: str) -> None:
    tok = load_tokenizer(trained[kind])

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.text(max_size=60) | st.text(alphabet="가나다 라마\n아버지방ㄱㅏ🙂漢", max_size=40))
    def check(text: str) -> None:
        assert tok.decode(tok.encode(text)) == text
        assert tok.encode_batch([text, "가"]) == [tok.encode(text), tok.encode("가")]

    check()


def test_morpheme_bpe_merges_never_cross_morphemes(trained: dict[str, Path]) -> None:
    tok = load_tokenizer(trained["morpheme-bpe"])
    seg = MorphemeSegmenter()
    for text in KOREAN[:7]:
        pieces = seg.segment(text)
        # every morpheme piece ends exactly at a token end: no token spans two pieces
        enc = tok.backend.encode(pieces, is_pretokenized=True, add_special_tokens=False)
        token_ends = set()
        for word_id, (_, end) in zip(enc.word_ids, enc.offsets, strict=True):
            token_ends.add((word_id, end))
        for w, piece in enumerate(pieces):
            assert (w, len(piece)) in token_ends
        assert enc.ids == tok.encode(text)


def test_plain_transformers_loads_and_round_trips(trained: dict[str, Path]) -> None:
    from transformers import PreTrainedTokenizerFast

    for kind in KINDS:
        hf = PreTrainedTokenizerFast.from_pretrained(trained[kind])
        text = "  한국어   텍스트\n잘 되나요? 🙂"
        assert hf.decode(hf.encode(text)) == text
        assert hf.eos_token == "<|endoftext|>"
    # the vocabulary is shared: for text whose pieces are whole words the ids agree exactly
    tok = load_tokenizer(trained["bpe"])
    assert PreTrainedTokenizerFast.from_pretrained(trained["bpe"]).encode("영화 정말") == tok.encode("영화 정말")


def test_metadata_written(trained: dict[str, Path]) -> None:
    meta = json.loads((trained["morpheme-bpe"] / "haneul.json").read_text())
    assert meta["kind"] == "morpheme-bpe" and meta["vocab_size"] == 400
    assert meta["trained_on"]["documents"] == len(KOREAN)


def test_vocab_too_small(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=f"use --vocab-size {min_vocab_size()}"):
        train_tokenizer(tmp_path, texts=KOREAN, vocab_size=100)


def test_empty_corpus_names_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    with pytest.raises(InvalidInput, match="empty.txt is empty"):
        train_tokenizer(tmp_path / "tok", files=[empty])


def test_non_utf8_corpus_names_file_and_offset(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes("좋은 영화\n".encode() + b"ab\xff\xfe\n")
    with pytest.raises(InvalidInput, match=r"bad.txt is not UTF-8: invalid byte at offset 16"):
        train_tokenizer(tmp_path / "tok", files=[bad])
    gz = tmp_path / "bad.jsonl.gz"
    with gzip.open(gz, "wb") as fh:
        fh.write(b'{"text": "ok"}\n{"text": "\xc3("}\n')
    with pytest.raises(InvalidInput, match=r"bad.jsonl.gz is not UTF-8: invalid byte at offset 25"):
        train_tokenizer(tmp_path / "tok", files=[gz])


def test_train_from_jsonl_gz_file(tmp_path: Path) -> None:
    gz = tmp_path / "c.jsonl.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as fh:
        for t in KOREAN:
            fh.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
    tok = train_tokenizer(tmp_path / "tok", files=[gz], kind="bpe", vocab_size=300)
    assert tok.meta["trained_on"]["documents"] == len(KOREAN)
    assert tok.decode(tok.encode(KOREAN[0])) == KOREAN[0]
