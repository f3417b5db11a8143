from __future__ import annotations

import warnings

import pytest
import torch
from speech_helpers import needs_tts

from haneul.errors import InvalidInput
from haneul.speech.corpus import Utterance, read_manifest, resample, write_manifest, write_wav
from haneul.speech.train import SpeechDataWarning, TrainConfig, load_checkpoint, train
from haneul.speech.vocab import Vocabulary


def _cfg(tmp_path, **kw):
    base = dict(model="ds2", preset="tiny", features="logmel", epochs=1, batch_size=3, lr=3e-3, warmup_steps=2,
                specaugment=False, eval_every=1000, out_dir=str(tmp_path / "run"), threads=1)  # fmt: skip
    base.update(kw)
    return TrainConfig(**base)


def test_bad_audio_is_skipped_with_a_listed_warning(tone_corpus, tmp_path):
    m = read_manifest(tone_corpus)
    (m.wav_dir / "u1.wav").write_bytes(b"garbage" * 30)
    data = (m.wav_dir / "u2.wav").read_bytes()
    (m.wav_dir / "u2.wav").write_bytes(data[: len(data) // 3])
    items = m.items + [Utterance("gone.wav", "가", "spk0")]
    path = write_manifest(tmp_path / "with_bad.json", items)
    with pytest.warns(SpeechDataWarning) as rec:
        res = train(_cfg(tmp_path, max_steps=2), read_manifest(path, m.wav_dir), m)
    text = "\n".join(str(w.message) for w in rec)
    for name in ("train:u1.wav", "train:u2.wav", "train:gone.wav", "dev:u1.wav"):
        assert name in text
    assert res.steps == 2 and len(res.skipped) == 5 and res.best_checkpoint.is_file()


def test_out_of_vocabulary_dev_characters_are_counted(tone_corpus, tmp_path):
    m = read_manifest(tone_corpus)
    dev = write_manifest(
        tmp_path / "dev.json", [Utterance("u0.wav", "가마", "x"), Utterance("u1.wav", "바나", "y")]
    )
    with pytest.warns(SpeechDataWarning, match="2 dev character"):
        res = train(_cfg(tmp_path, max_steps=1, units="corpus"), m, read_manifest(dev, m.wav_dir))
    assert res.oov == {"마": 1, "바": 1}


def test_hangul_units_leave_no_korean_character_out(tone_corpus, tmp_path):
    """Trained on three syllables, the model can still write every other one; only non-Hangul is <unk>."""
    m = read_manifest(tone_corpus)
    dev = write_manifest(tmp_path / "dev.json", [Utterance("u0.wav", "가마", "x"), Utterance("u1.wav", "똠얌꿍 7", "y")])
    with pytest.warns(SpeechDataWarning, match="1 dev character"):
        res = train(_cfg(tmp_path, max_steps=1), m, read_manifest(dev, m.wav_dir))
    assert res.oov == {"7": 1}
    ckpt = load_checkpoint(res.out_dir / "last.pt")
    vocab = Vocabulary.from_json(ckpt["vocab"])
    assert len(vocab) == 4 + 1 + 11172 and vocab.decode(vocab.encode("똠얌꿍 힣")) == "똠얌꿍 힣"
    with pytest.raises(InvalidInput, match="--units 'bytes' is unknown"):
        _cfg(tmp_path, units="bytes")


def test_resume_continues_from_last_checkpoint(tone_corpus, tmp_path):
    m = read_manifest(tone_corpus)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = train(_cfg(tmp_path, max_steps=2, eval_every=2), m, m)
        assert first.steps == 2
        ckpt = load_checkpoint(first.out_dir / "last.pt")
        assert ckpt["step"] == 2 and ckpt["kind"] == "ds2"
        second = train(_cfg(tmp_path, max_steps=5, eval_every=2), m, m)
    assert second.steps == 5
    assert [h["step"] for h in second.history] == [2, 4, 5]
    fresh = train(_cfg(tmp_path, max_steps=1, resume=False), m, m)
    assert fresh.steps == 1


def test_metrics_go_through_haneul_report(tone_corpus, tmp_path, haneul_home):
    import haneul

    m = read_manifest(tone_corpus)
    train(_cfg(tmp_path, max_steps=2, eval_every=1), m, m)
    haneul.flush()
    rows = "\n".join(p.read_text() for p in haneul_home.rglob("metrics.csv"))
    assert "loss" in rows and "dev_cer" in rows and "lr" in rows


FIVE = ["주차 가능한가요", "네 감사합니다", "예약 취소해 주세요", "세 명이요", "내일 저녁 일곱 시"]


def _five(tmp_path):
    from haneul.speech.synth import espeak

    items = []
    for i, text in enumerate(FIVE):
        audio, sr = espeak(text, "m3", 175, 50, 100)
        write_wav(tmp_path / "wavs" / f"{i}.wav", resample(audio, sr, 16000))
        items.append(Utterance(f"{i}.wav", text, str(i)))
    return read_manifest(write_manifest(tmp_path / "five.json", items))


@needs_tts
def test_ds2_overfits_five_utterances(tmp_path):
    """The model must learn five spoken sentences (CER near 0 on its own training data); with the
    transcripts' own characters as units, as ClovaCall's recipe has it, that takes 110 steps."""
    torch.manual_seed(0)
    m = _five(tmp_path)
    res = train(_cfg(tmp_path, max_steps=110, batch_size=5, lr=5e-3, warmup_steps=10, eval_every=30,
                     units="corpus"), m, m)
    assert res.history[0]["dev_cer"] > 0.3  # after 30 steps it does not know them yet
    assert res.best_cer <= 0.1

    from haneul.speech.recognizer import Recognizer

    rec = Recognizer.from_checkpoint(res.best_checkpoint)
    result, rows = rec.evaluate(m)
    assert result.cer <= 0.1 and result.rtf > 0


@needs_tts
@pytest.mark.slow
def test_las_overfits_five_utterances(tmp_path):
    """With the hybrid CTC loss (its presets' default) LAS learns the five sentences too; on five
    utterances the CTC term slows the speller down a little (plain LAS needs 80 steps, this 120)."""
    m = _five(tmp_path)
    res = train(
        _cfg(tmp_path, model="las", max_steps=120, batch_size=5, lr=5e-3, warmup_steps=10, eval_every=40,
             units="corpus"), m, m
    )
    assert res.best_cer <= 0.1

    from haneul.speech.recognizer import Recognizer

    rec = Recognizer.from_checkpoint(res.best_checkpoint, beam=4)  # beam search through the Recognizer
    result, _ = rec.evaluate(m)
    assert result.cer <= 0.1


def test_stereo_and_other_rates_are_converted_not_skipped(tone_corpus, tmp_path):
    import numpy as np
    import soundfile as sf

    m = read_manifest(tone_corpus)
    audio, sr = sf.read(str(m.wav_dir / "u0.wav"), dtype="float32")
    from haneul.speech.corpus import resample as rs

    narrow = rs(audio, sr, 8000)
    sf.write(str(m.wav_dir / "u0.wav"), np.stack([narrow, narrow], axis=1), 8000, subtype="PCM_16")
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpeechDataWarning)  # nothing may be skipped
        res = train(_cfg(tmp_path, max_steps=1), m, m)
    assert res.skipped == []


def test_learning_rate_decays_with_whichever_budget_runs_out_first():
    from haneul.speech.train import lr_at

    cfg = TrainConfig(lr=1.0, warmup_steps=10, max_minutes=60)
    assert lr_at(cfg, 0, 1000) == pytest.approx(0.1)  # warm-up
    assert lr_at(cfg, 10, 1000, minutes=0) == pytest.approx(1.0)
    # halfway through the time budget but only 1 % through the steps: half-way down the cosine
    assert lr_at(cfg, 20, 1000, minutes=30) == pytest.approx(0.05 + 0.95 * 0.5)
    assert lr_at(cfg, 20, 1000, minutes=60) == pytest.approx(0.05)
    assert lr_at(cfg, 1000, 1000, minutes=1) == pytest.approx(0.05)  # steps ran out first
    no_clock = TrainConfig(lr=1.0, warmup_steps=10)
    assert lr_at(no_clock, 20, 1000, minutes=500) == pytest.approx(lr_at(no_clock, 20, 1000))
