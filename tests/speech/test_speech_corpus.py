from __future__ import annotations

import json

import numpy as np
import pytest
from speech_helpers import SR, tone, write

from haneul.errors import InvalidInput, NotFound
from haneul.speech.corpus import (
    AudioError,
    Utterance,
    convert_corpus,
    load_audio,
    read_manifest,
    split_by_speaker,
    trim_silence,
    validate,
    write_manifest,
)


def test_manifest_round_trip_keeps_hangul_and_order(tmp_path):
    items = [
        Utterance("a.wav", "내일 저녁 일곱 시 세 명이요", "03319"),
        Utterance("b/c.wav", "주차 되나요", "00042"),
    ]
    path = write_manifest(tmp_path / "m.json", items)
    raw = path.read_text(encoding="utf-8")
    assert "내일 저녁" in raw  # not \uXXXX-escaped, as in the ClovaCall files
    assert json.loads(raw) == [u.to_dict() for u in items]
    m = read_manifest(path)
    assert m.items == items
    assert m.wav_dir == tmp_path  # no wavs/ folder beside it
    (tmp_path / "wavs").mkdir()
    assert read_manifest(path).audio_path(items[1]) == tmp_path / "wavs" / "b" / "c.wav"


def test_missing_speaker_id_defaults(tmp_path):
    p = tmp_path / "m.json"
    p.write_text('[{"wav": "x.wav", "text": "네"}]', encoding="utf-8")
    assert read_manifest(p).items[0].speaker_id == "0"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("[]", "is empty"),
        ("{}", "JSON list"),
        ('[{"wav": "a.wav"}]', "'wav' and 'text'"),
        ("[{", "not valid"),
    ],
)
def test_bad_manifests_give_one_line_errors(tmp_path, body, needle):
    p = tmp_path / "m.json"
    p.write_text(body, encoding="utf-8")
    with pytest.raises(InvalidInput) as err:
        read_manifest(p)
    assert needle in err.value.message and "\n" not in err.value.message


def test_missing_manifest(tmp_path):
    with pytest.raises(NotFound):
        read_manifest(tmp_path / "nope.json")


def _bad_corpus(tmp_path):
    wavs = tmp_path / "wavs"
    write(wavs / "good.wav", tone(440, 0.5))
    write(wavs / "rate8k.wav", tone(440, 0.5, sr=8000), sr=8000)
    write(wavs / "stereo.wav", np.stack([tone(440, 0.5), tone(880, 0.5)], axis=1))
    (wavs / "corrupt.wav").write_bytes(b"this is not audio at all" * 10)
    full = write(wavs / "full.wav", tone(440, 1.0)).read_bytes()
    (wavs / "truncated.wav").write_bytes(full[: len(full) // 2])
    write(wavs / "empty_text.wav", tone(440, 0.5))
    items = [
        Utterance("good.wav", "좋아요", "a"),
        Utterance("rate8k.wav", "팔 킬로", "a"),
        Utterance("stereo.wav", "스테레오", "b"),
        Utterance("corrupt.wav", "깨짐", "b"),
        Utterance("truncated.wav", "잘림", "c"),
        Utterance("missing.wav", "없음", "c"),
        Utterance("empty_text.wav", "  ", "c"),
    ]
    return read_manifest(write_manifest(tmp_path / "m.json", items))


def test_validation_report_finds_each_problem(tmp_path):
    rep = validate(_bad_corpus(tmp_path))
    kinds = {(w, k) for w, k, _ in rep.problems}
    assert kinds == {
        ("rate8k.wav", "sample_rate"),
        ("stereo.wav", "channels"),
        ("corrupt.wav", "corrupt"),
        ("truncated.wav", "corrupt"),
        ("missing.wav", "missing"),
        ("empty_text.wav", "empty_text"),
    }
    assert rep.total == 7 and rep.ok == 1 and not rep.passed
    assert rep.to_dict()["problems"][0]["wav"]
    # readable audio: good 0.5 + 8k 0.5 + stereo 0.5 + empty-text 0.5 seconds
    assert rep.seconds == pytest.approx(2.0)


def test_load_audio_converts_rate_and_channels_and_rejects_truncation(tmp_path):
    m = _bad_corpus(tmp_path)
    up = load_audio(m.wav_dir / "rate8k.wav")
    assert len(up) == 8000  # 0.5 s at 16 kHz
    stereo = load_audio(m.wav_dir / "stereo.wav")
    expected = (tone(440, 0.5) + tone(880, 0.5)) / 2
    assert np.abs(stereo - expected).max() < 2e-4  # 16-bit quantisation only
    with pytest.raises(AudioError, match="truncated"):
        load_audio(m.wav_dir / "truncated.wav")
    with pytest.raises(AudioError, match="unreadable"):
        load_audio(m.wav_dir / "corrupt.wav")
    with pytest.raises(AudioError, match="missing"):
        load_audio(m.wav_dir / "missing.wav")


def test_trim_silence_at_25_db():
    quiet = 10 ** (-30 / 20) * 0.5  # 30 dB below the tone: trimmed
    audible = 10 ** (-20 / 20) * 0.5  # 20 dB below: kept
    audio = np.concatenate([np.zeros(SR // 2), tone(500, 1.0), tone(500, 0.5, amp=quiet)]).astype(np.float32)
    out = trim_silence(audio, SR)
    assert abs(len(out) - SR) <= 0.05 * SR  # frame-based: up to one 25 ms frame of slack at each end
    audio2 = np.concatenate([tone(500, 1.0), tone(500, 0.5, amp=audible)]).astype(np.float32)
    assert abs(len(trim_silence(audio2, SR)) - 1.5 * SR) <= 0.05 * SR
    assert trim_silence(np.zeros(SR, np.float32), SR).size == 0


def test_convert_corpus_resamples_trims_and_lists_skips(tmp_path):
    m = _bad_corpus(tmp_path)
    path, skipped = convert_corpus(m, tmp_path / "clean")
    clean = read_manifest(path)
    assert [u.wav for u in clean] == ["good.wav", "rate8k.wav", "stereo.wav"]
    assert {w for w, _ in skipped} == {"corrupt.wav", "truncated.wav", "missing.wav", "empty_text.wav"}
    assert validate(clean).passed


def test_split_by_speaker_is_disjoint_complete_and_deterministic():
    items = [Utterance(f"{s}_{i}.wav", "네", f"s{s}") for s in range(10) for i in range(s + 1)]
    parts = split_by_speaker(items, dev=0.1, test=0.1, seed=3)
    spk = {k: {u.speaker_id for u in v} for k, v in parts.items()}
    assert (
        not (spk["train"] & spk["dev"])
        and not (spk["train"] & spk["test"])
        and not (spk["dev"] & spk["test"])
    )
    assert sorted(u.wav for v in parts.values() for u in v) == sorted(u.wav for u in items)
    assert all(parts[k] for k in ("train", "dev", "test"))
    assert parts == split_by_speaker(items, dev=0.1, test=0.1, seed=3)
    with pytest.raises(InvalidInput, match="speaker"):
        split_by_speaker(items[:1] + items[1:3], dev=0.1, test=0.1)  # two speakers, three splits
    with pytest.raises(InvalidInput, match="empty"):
        split_by_speaker([])
