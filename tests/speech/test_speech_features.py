from __future__ import annotations

import numpy as np
import pytest
import torch
from speech_helpers import tone

from haneul.errors import InvalidInput
from haneul.speech.features import (
    FeatureConfig,
    SpecAugment,
    extract,
    log_mel,
    mel_filterbank,
    normalize,
    num_frames,
    spectrogram,
)


def test_spectrogram_is_161_dim_with_peak_at_the_tone_bin():
    cfg = FeatureConfig()
    assert (cfg.n_fft, cfg.hop, cfg.dim) == (320, 160, 161)  # 20 ms Hamming, 10 ms hop at 16 kHz
    for freq, bin_ in [(1000, 20), (2500, 50), (300, 6)]:  # bins are 16000/320 = 50 Hz apart
        s = spectrogram(tone(freq, 1.0))
        assert s.shape == (101, 161)
        assert int(s[10:-10].argmax(dim=1).mode().values) == bin_


def test_spectrogram_values_match_numpy_reference():
    x = tone(1000, 0.1)
    s = spectrogram(x)
    # frame 3 is centred on sample 480: window samples 320..640
    w = np.hamming(320)
    ref = np.log1p(np.abs(np.fft.rfft(x[320:640] * w)))
    assert np.allclose(s[3].numpy(), ref, atol=1e-3)


def test_log_mel_peak_follows_filterbank():
    cfg = FeatureConfig.from_name("logmel")
    assert cfg.dim == 80 and cfg.n_fft == 400
    fb = mel_filterbank(80, 400, 16000)
    assert fb.shape == (201, 80)
    peaks = fb.max(dim=0).values
    assert (peaks > 0).all()  # every filter catches at least one FFT bin
    assert (peaks <= 1).all()
    # overlapping HTK triangles form a partition of unity between the first and the last centre
    inner = fb.sum(dim=1)[5:190]
    assert torch.allclose(inner, torch.ones_like(inner), atol=1e-5)
    m = log_mel(tone(1000, 1.0), cfg)
    assert m.shape == (101, 80)
    assert int(m[50].argmax()) == int(fb[25].argmax())  # 1000 Hz is FFT bin 25 at 40 Hz spacing


def test_normalize_and_frame_count():
    feats = extract(tone(700, 0.55) + 0.01, FeatureConfig())
    assert feats.shape[0] == num_frames(int(0.55 * 16000), FeatureConfig())
    n = normalize(torch.randn(50, 4) * 3 + 7)
    assert torch.allclose(n.mean(0), torch.zeros(4), atol=1e-5)
    assert torch.allclose(n.std(0, unbiased=False), torch.ones(4), atol=1e-3)


def test_specaugment_masks_bands_and_spans_deterministically():
    feats = torch.ones(200, 80)
    aug = SpecAugment(freq_masks=1, freq_width=10, time_masks=1, time_width=30)
    a = aug(feats, torch.Generator().manual_seed(0))
    b = aug(feats, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == feats.shape and torch.equal(feats, torch.ones(200, 80))
    zero_cols = (a == 0).all(dim=0).sum().item()
    zero_rows = (a == 0).all(dim=1).sum().item()
    assert zero_cols <= 10 and zero_rows <= 30
    assert (a == 0).any()  # with these seeds something is masked
    assert ((a == 0) | (a == 1)).all()


def test_bad_feature_input():
    with pytest.raises(InvalidInput):
        FeatureConfig("mfcc")
    with pytest.raises(InvalidInput, match="mono"):
        spectrogram(np.zeros((2, 100), np.float32))
