from __future__ import annotations

import numpy as np
import pytest
import torch
from speech_helpers import tone

from haneul.errors import InvalidInput
from haneul.speech.corpus import read_manifest
from haneul.speech.decode import greedy_decode
from haneul.speech.features import FeatureConfig
from haneul.speech.metrics import cer
from haneul.speech.models import LAS, DeepSpeech2, DS2Config, LASConfig
from haneul.speech.recognizer import Recognizer, build_lm
from haneul.speech.vocab import Vocabulary


@pytest.fixture
def rec():
    """A tiny random DS2 recogniser on one torch thread (on a busy 2-core machine, thread hand-offs
    cost more than the tiny model's chunk windows themselves)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    vocab = Vocabulary(list("가나다 "))
    model = DeepSpeech2(DS2Config.from_name("tiny", input_dim=80, vocab_size=len(vocab))).eval()
    yield Recognizer(model, vocab, FeatureConfig.from_name("logmel"))
    torch.set_num_threads(threads)


def _speechlike(seconds=2.3):
    rng = np.random.default_rng(1)
    parts = [tone(f, 0.1) for f in rng.uniform(200, 3000, int(seconds * 10))]
    return (np.concatenate(parts) + 0.01 * rng.standard_normal(int(seconds * 10) * 1600)).astype(np.float32)


def test_one_big_chunk_reproduces_the_offline_posteriors(rec):
    audio = _speechlike()
    sess = rec.stream(chunk_ms=5000, rescore_final=False)
    for i in range(0, len(audio), 4000):
        sess.accept(audio[i : i + 4000])
    final = sess.finish()
    offline = rec.posteriors(audio)
    streamed = np.concatenate(sess._post)
    assert streamed.shape == offline.shape
    assert np.abs(streamed - offline).max() < 1e-4
    assert final.is_final and final.text == rec.transcribe(audio)


def test_small_chunks_give_growing_partials_and_an_offline_final(rec):
    audio = _speechlike()
    sess = rec.stream(chunk_ms=320, left_ms=640, lookahead_ms=160)
    hyps = [sess.accept(audio[i : i + 1000]) for i in range(0, len(audio), 1000)]
    assert [h.audio_s for h in hyps] == sorted(h.audio_s for h in hyps)
    assert not any(h.is_final for h in hyps)
    final = sess.finish()
    assert final.audio_s == pytest.approx(len(audio) / 16000)
    # every output frame is emitted exactly once
    assert sess._emitted == rec.posteriors(audio).shape[0] and sess._post == []  # no posteriors hoarded
    assert final.text == rec.transcribe(audio)  # the final pass rescores the whole utterance
    with pytest.raises(InvalidInput, match="finished"):
        sess.accept(audio[:100])


def test_stream_input_checks(rec):
    with pytest.raises(InvalidInput, match="mono"):
        rec.stream().accept(np.zeros((2, 100), np.float32))
    las = LAS(LASConfig.from_name("tiny", input_dim=80, vocab_size=8)).eval()
    with pytest.raises(InvalidInput, match="CTC"):
        Recognizer(las, Vocabulary(list("가나다 ")), FeatureConfig.from_name("logmel")).stream()
    assert rec.stream().finish().text == ""


def test_beam_with_lm_runs_through_the_recognizer(rec):
    rec.lm = build_lm(["가나 다", "나다"], rec.vocab, order=3)
    rec.beam = 4
    assert isinstance(rec.transcribe(_speechlike(0.5)), str)
    assert rec.vocab.oov == {}  # LM text does not count as out-of-vocabulary audio transcripts


def test_a_two_minute_stream_costs_the_same_per_chunk_and_ends_with_the_final(rec):
    audio = np.tile(_speechlike(4.0), 30)  # two minutes
    window_limit = (800 + 640 + 320) * 16  # left context + chunk + look-ahead, in samples
    frames_seen: list[int] = []
    hook = rec.model.register_forward_hook(lambda module, args, out: frames_seen.append(args[0].shape[1]))
    sess = rec.stream(chunk_ms=640, left_ms=800, lookahead_ms=320)
    step = 16000 * 640 // 1000
    partials = [sess.accept(audio[i : i + step]).text for i in range(0, len(audio), step)]
    assert len(sess._window) <= window_limit + step  # the kept audio does not grow with the call
    final = sess.finish()
    hook.remove()
    *chunks, full = frames_seen
    assert len(chunks) >= 185 and max(chunks) <= window_limit // 160 + 1  # every chunk: one bounded window
    assert full == len(audio) // 160 + 1  # then one full-utterance pass for the final
    assert final.is_final and final.audio_s == pytest.approx(120.0)
    assert final.text == rec.transcribe(audio) and partials[-1]


def test_partials_extended_chunk_by_chunk_equal_one_greedy_pass(rec):
    audio = np.tile(_speechlike(2.0), 5)
    sess = rec.stream(chunk_ms=320, left_ms=320, lookahead_ms=160, rescore_final=False)
    for i in range(0, len(audio), 3000):
        sess.accept(audio[i : i + 3000])
    final = sess.finish()  # greedy over every chunk's posteriors at once
    assert len(sess._post) > 20 and final.text and sess.partial_text() == final.text


def _spaces_for_silence(model, vocab):
    """Make ``model`` emit ' ', blank, ' ', blank, ... with a '가' every eighth frame: greedy decoding
    gives runs of spaces, as a long silence can."""
    space, ga = vocab.stoi[" "], vocab.stoi["가"]

    def hook(module, args, out):
        log_probs, lengths, loss = out
        t = torch.arange(log_probs.shape[1])
        symbol = torch.where(t % 8 == 4, ga, torch.where(t % 2 == 1, vocab.blank, space))
        forced = torch.full_like(log_probs, -30.0)
        forced[:, t, symbol] = 0.0
        return forced, lengths, loss

    return model.register_forward_hook(hook)


def test_hypotheses_collapse_runs_of_spaces_and_trim_the_ends(rec, monkeypatch):
    audio = _speechlike(1.5)
    _spaces_for_silence(rec.model, rec.vocab)
    raw = rec.vocab.decode(greedy_decode(rec.posteriors(audio)))
    assert "   " in raw and raw.startswith(" ")  # the model does emit runs of spaces

    def clean(text: str) -> bool:
        return "가" in text and "  " not in text and text == text.strip()

    greedy = rec.transcribe(audio)
    assert clean(greedy) and greedy == " ".join(raw.split())
    rec.beam = 4
    assert rec.transcribe(audio) == greedy  # prefix beam search on the same forced posteriors
    rec.beam = 1
    for rescore in (True, False):
        sess = rec.stream(chunk_ms=320, left_ms=320, lookahead_ms=160, rescore_final=rescore)
        partials = [sess.accept(audio[i : i + 2000]).text for i in range(0, len(audio), 2000)]
        assert all(clean(p) for p in partials if p) and any(partials)
        assert clean(sess.finish().text)

    vocab = Vocabulary(list("가나다 "))
    las = Recognizer(LAS(LASConfig.from_name("tiny", input_dim=80, vocab_size=len(vocab))).eval(), vocab,
                     FeatureConfig.from_name("logmel"))  # fmt: skip
    spaced = [vocab.stoi[c] for c in "  가  나 "]
    monkeypatch.setattr(las.model, "decode", lambda x, lengths: [spaced])
    monkeypatch.setattr(las.model, "beam_search", lambda x, lengths, **kw: [[(spaced, 0.0)]])
    assert las.transcribe(audio) == "가 나"
    las.beam = 4
    assert las.transcribe(audio) == "가 나"


def _read_tones(audio: np.ndarray) -> str:
    """A perfect recogniser for ``tone_corpus``: each 0.3 s tone's pitch is its syllable."""
    names = {400: "가", 900: "나", 1600: "다"}
    out = []
    for i in range(0, len(audio) - 2400, 4800):
        peak = np.fft.rfftfreq(4800, 1 / 16000)[np.abs(np.fft.rfft(audio[i : i + 4800])).argmax()]
        out.append(names[min(names, key=lambda f: abs(f - peak))])
    return "".join(out)


def test_unreadable_files_count_as_errors_unless_skipped(rec, tone_corpus, monkeypatch):
    monkeypatch.setattr(rec, "transcribe", _read_tones)
    m = read_manifest(tone_corpus)
    (m.wav_dir / "u1.wav").unlink()  # missing
    (m.wav_dir / "u2.wav").write_bytes(b"RIFF....WAVEfmt ")  # corrupt
    counted, rows = rec.evaluate(m)
    skipped, _ = rec.evaluate(m, skip_unreadable=True)
    readable = {r["wav"]: r["hyp"] for r in rows if r["hyp"] is not None}
    assert len(readable) == 4 and [r["wav"] for r in rows if r.get("unreadable")] == ["u1.wav", "u2.wav"]
    refs = [u.text for u in m]
    hyps = [readable.get(u.wav, "") for u in m]  # an unreadable file: the whole reference deleted
    assert counted.cer == pytest.approx(cer(refs, hyps))
    assert counted.utterances == 6 and counted.unreadable == 2 and not counted.skip_unreadable
    kept = [i for i, u in enumerate(m) if u.wav in readable]
    assert skipped.cer == pytest.approx(cer([refs[i] for i in kept], [hyps[i] for i in kept]))
    assert skipped.utterances == 4 and skipped.unreadable == 2 and skipped.skip_unreadable
    assert skipped.cer == 0.0 and counted.cer == pytest.approx(4 / 12)  # 4 of 12 characters deleted
    assert counted.audio_s == skipped.audio_s == pytest.approx(4 * 0.6)  # no audio, no RTF share
    assert counted.to_dict()["unreadable"] == 2 and counted.to_dict()["skip_unreadable"] is False
