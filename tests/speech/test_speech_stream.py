from __future__ import annotations

import numpy as np
import pytest
import torch
from speech_helpers import tone

from haneul.errors import InvalidInput
from haneul.speech.features import FeatureConfig
from haneul.speech.models import LAS, DeepSpeech2, DS2Config, LASConfig
from haneul.speech.recognizer import Recognizer, build_lm
from haneul.speech.vocab import Vocabulary


@pytest.fixture
def rec():
    torch.manual_seed(0)
    vocab = Vocabulary(list("가나다 "))
    model = DeepSpeech2(DS2Config.from_name("tiny", input_dim=80, vocab_size=len(vocab))).eval()
    return Recognizer(model, vocab, FeatureConfig.from_name("logmel"))


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
    assert sum(p.shape[0] for p in sess._post) == rec.posteriors(audio).shape[0]
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
