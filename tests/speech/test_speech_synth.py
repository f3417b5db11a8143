from __future__ import annotations

import itertools

import numpy as np
import pytest
from speech_helpers import SR, needs_tts, tone

from haneul.errors import InvalidInput
from haneul.speech.corpus import read_manifest, validate
from haneul.speech.synth import (
    HELDOUT_VARIANTS,
    TRAIN_VARIANTS,
    Sentence,
    is_heldout_sentence,
    plan_jobs,
    plan_text_jobs,
    read_sentences,
)


def test_heldout_split_never_shares_sentences_or_voices_with_train():
    train = list(itertools.islice(plan_jobs(1, "train"), 400))
    held = list(itertools.islice(plan_jobs(2, "heldout"), 100))
    assert not set(TRAIN_VARIANTS) & set(HELDOUT_VARIANTS)
    assert {j.variant for j in train} <= set(TRAIN_VARIANTS)
    assert {j.variant for j in held} <= set(HELDOUT_VARIANTS)
    assert not {j.text for j in train} & {j.text for j in held}
    assert all(is_heldout_sentence(j.text) for j in held) and not any(
        is_heldout_sentence(j.text) for j in train
    )
    assert not {j.speaker_id for j in train} & {j.speaker_id for j in held}


def test_plan_is_deterministic_and_noise_share_respected():
    a = list(itertools.islice(plan_jobs(9, "train", noise=0.5), 200))
    b = list(itertools.islice(plan_jobs(9, "train", noise=0.5), 200))
    assert a == b
    noisy = sum(j.snr_db is not None for j in a)
    assert 60 < noisy < 140
    assert all(10 <= j.snr_db <= 30 for j in a if j.snr_db is not None)
    with pytest.raises(InvalidInput):
        next(plan_jobs(0, "valid"))
    with pytest.raises(InvalidInput):
        next(plan_jobs(0, "train", noise=2.0))


def _band_energy(audio: np.ndarray, freq: float) -> float:
    spec = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    f = np.fft.rfftfreq(len(audio), 1 / SR)
    return float(spec[(f > freq * 0.9) & (f < freq * 1.1)].max())


@needs_tts
def test_phone_channel_is_a_300_3400_band_pass_at_16k_output():
    from haneul.speech.synth import phone_channel

    mix = tone(100, 1.0, amp=0.2) + tone(1000, 1.0, amp=0.2) + tone(5000, 1.0, amp=0.2)
    out = phone_channel(mix, SR)
    assert abs(len(out) - SR) < 50
    mid = _band_energy(out[2000:-2000], 1000)
    assert _band_energy(out[2000:-2000], 100) < 0.05 * mid  # below the band: > 26 dB down
    assert _band_energy(out[2000:-2000], 5000) < 0.01 * mid  # above 4 kHz: gone after 8 kHz sampling


@needs_tts
def test_synthesize_is_deterministic_and_valid(tmp_path):
    from haneul.speech.synth import synthesize

    a = synthesize(tmp_path / "a", hours=0.004, seed=4, noise=0.5, workers=2)
    b = synthesize(tmp_path / "b", hours=0.004, seed=4, noise=0.5, workers=1)
    ma, mb = read_manifest(a.manifest), read_manifest(b.manifest)
    assert ma.items == mb.items and a.seconds >= 0.004 * 3600
    for u in ma:
        assert (ma.audio_path(u)).read_bytes() == (mb.audio_path(u)).read_bytes()
    assert validate(ma).passed  # 16 kHz mono readable audio, non-empty text
    assert sorted(p.name for p in (tmp_path / "a" / "wavs").iterdir()) == sorted(u.wav for u in ma)
    with pytest.raises(InvalidInput):
        synthesize(tmp_path / "c", hours=0)


def test_own_sentences_go_round_by_round_with_different_voices_and_no_hash_filter():
    texts = ["여보세요", "내일 예약 취소할게요", "주차 되나요"]
    assert not all(is_heldout_sentence(t) for t in texts)  # so a hash filter would have dropped some
    sentences = [Sentence(t, f"line {i}") for i, t in enumerate(texts, 1)]
    jobs = plan_text_jobs(sentences, seed=3, split="heldout", repeat=3)
    assert [j.text for j in jobs] == texts * 3  # every sentence once, then again, then again
    for t in texts:
        voices = [j.variant for j in jobs if j.text == t]
        assert len(set(voices)) == 3 and set(voices) <= set(HELDOUT_VARIANTS)
    assert len({j.name for j in jobs}) == 9 and jobs[4].origin == "line 2"
    assert jobs == plan_text_jobs(sentences, seed=3, split="heldout", repeat=3)
    assert jobs != plan_text_jobs(sentences, seed=4, split="heldout", repeat=3)
    with pytest.raises(InvalidInput, match="--repeat 9"):
        plan_text_jobs(sentences, seed=3, split="heldout", repeat=9)  # only 8 held-out voices


def test_read_sentences_skips_blank_and_comment_lines(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text(
        "\ufeff# my sentences\n\n  여보세요   예약이요 \r\n# later\n주차 되나요\n", encoding="utf-8"
    )
    assert read_sentences(path) == [
        Sentence("여보세요 예약이요", "mine.txt line 3"),
        Sentence("주차 되나요", "mine.txt line 5"),
    ]
    path.write_bytes("여보세요".encode("euc-kr"))
    with pytest.raises(InvalidInput, match="not UTF-8"):
        read_sentences(path)
    path.write_text("# nothing\n\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="no sentence"):
        read_sentences(path)


@needs_tts
def test_synthesize_own_sentences(tmp_path):
    from haneul.speech.synth import synthesize

    texts = ["여보세요", "  내일   예약 취소할게요"]
    a = synthesize(tmp_path / "a", texts=texts, split="heldout", repeat=2, seed=1, workers=2)
    b = synthesize(tmp_path / "b", texts=texts, split="heldout", repeat=2, seed=1, workers=1)
    ma, mb = read_manifest(a.manifest), read_manifest(b.manifest)
    assert [u.text for u in ma] == ["여보세요", "내일 예약 취소할게요"] * 2  # normalised, all of them
    assert ma.items == mb.items and validate(ma).passed
    assert all(ma.audio_path(u).read_bytes() == mb.audio_path(u).read_bytes() for u in ma)
    short = synthesize(tmp_path / "c", 0.0001, texts=texts, repeat=2, seed=1, workers=1)  # stops at 0.36 s
    assert short.utterances == 1
    with pytest.raises(InvalidInput, match=r"^sentence 2: espeak-ng produced no sound"):
        synthesize(tmp_path / "d", texts=["여보세요", "...", "네"], workers=1)
    with pytest.raises(InvalidInput, match="--hours"):
        synthesize(tmp_path / "e")
