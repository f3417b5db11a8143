"""Acoustic features: the ClovaCall LAS baseline's 161-dim log spectrogram, 80-dim log-mel, SpecAugment.

The ClovaCall baselines (Ha et al., 2020, section 4.1) feed a log-magnitude spectrogram from a 20 ms
Hamming window with a 10 ms hop at 16 kHz: a 320-point FFT gives 161 frequency bins. The log-mel
alternative uses a 25 ms window and 80 triangular mel filters (HTK mel scale). Both are normalised
per utterance (zero mean, unit variance per dimension). SpecAugment (Park et al., 2019) masks random
frequency bands and time spans during training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from haneul.errors import InvalidInput

FEATURE_KINDS = ("spectrogram", "logmel")


@dataclass(frozen=True)
class FeatureConfig:
    kind: str = "spectrogram"
    sample_rate: int = 16_000
    window_ms: float = 20.0
    hop_ms: float = 10.0
    n_mels: int = 80
    normalize: bool = True

    def __post_init__(self) -> None:
        if self.kind not in FEATURE_KINDS:
            raise InvalidInput(
                f"feature kind {self.kind!r} is unknown; choose one of {', '.join(FEATURE_KINDS)}"
            )

    @property
    def n_fft(self) -> int:
        return int(round(self.sample_rate * self.window_ms / 1000))

    @property
    def hop(self) -> int:
        return int(round(self.sample_rate * self.hop_ms / 1000))

    @property
    def dim(self) -> int:
        return self.n_fft // 2 + 1 if self.kind == "spectrogram" else self.n_mels

    @staticmethod
    def from_name(name: str) -> FeatureConfig:
        """``spectrogram`` (161-dim, ClovaCall LAS) or ``logmel`` (80-dim, 25 ms window)."""
        if name == "spectrogram":
            return FeatureConfig("spectrogram")
        if name == "logmel":
            return FeatureConfig("logmel", window_ms=25.0)
        raise InvalidInput(f"feature preset {name!r} is unknown; choose one of {', '.join(FEATURE_KINDS)}")


def _as_tensor(audio: np.ndarray | torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(audio, dtype=torch.float32)
    if x.dim() != 1:
        raise InvalidInput(f"audio must be mono 1-D, got shape {tuple(x.shape)}; average the channels first")
    return x


def magnitude(audio: np.ndarray | torch.Tensor, cfg: FeatureConfig) -> torch.Tensor:
    """|STFT| with a Hamming window, frames centred on multiples of the hop: (T, n_fft//2+1)."""
    x = _as_tensor(audio)
    if x.numel() < cfg.n_fft:
        x = torch.nn.functional.pad(x, (0, cfg.n_fft - x.numel()))
    window = torch.hamming_window(cfg.n_fft, periodic=False)
    spec = torch.stft(
        x,
        cfg.n_fft,
        hop_length=cfg.hop,
        win_length=cfg.n_fft,
        window=window,
        center=True,
        return_complex=True,
    )
    return spec.abs().T.contiguous()


def spectrogram(audio: np.ndarray | torch.Tensor, cfg: FeatureConfig | None = None) -> torch.Tensor:
    """log(1 + |STFT|): (T, 161) at 16 kHz with the default 20 ms window."""
    cfg = cfg or FeatureConfig("spectrogram")
    return torch.log1p(magnitude(audio, cfg))


def mel_filterbank(
    n_mels: int, n_fft: int, sample_rate: int, fmin: float = 0.0, fmax: float | None = None
) -> torch.Tensor:
    """Triangular filters on the HTK mel scale: (n_fft//2+1, n_mels), each peaking at 1."""
    fmax = fmax or sample_rate / 2

    def to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def to_hz(m):
        return 700.0 * (10 ** (np.asarray(m) / 2595.0) - 1.0)

    edges = to_hz(np.linspace(to_mel(fmin), to_mel(fmax), n_mels + 2))
    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None, :] - lo) / (mid - lo)
    down = (hi - freqs[None, :]) / (hi - mid)
    fb = np.clip(np.minimum(up, down), 0.0, None)
    return torch.tensor(fb.T, dtype=torch.float32)


_FB_CACHE: dict[tuple[int, int, int], torch.Tensor] = {}


def log_mel(audio: np.ndarray | torch.Tensor, cfg: FeatureConfig | None = None) -> torch.Tensor:
    """log(mel power + 1e-6): (T, n_mels)."""
    cfg = cfg or FeatureConfig.from_name("logmel")
    key = (cfg.n_mels, cfg.n_fft, cfg.sample_rate)
    if key not in _FB_CACHE:
        _FB_CACHE[key] = mel_filterbank(*key)
    power = magnitude(audio, cfg) ** 2
    return torch.log(power @ _FB_CACHE[key] + 1e-6)


def normalize(feats: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Per-utterance mean and variance normalisation of each feature dimension (over time)."""
    mean = feats.mean(dim=0, keepdim=True)
    std = feats.std(dim=0, unbiased=False, keepdim=True)
    return (feats - mean) / (std + eps)


def extract(audio: np.ndarray | torch.Tensor, cfg: FeatureConfig) -> torch.Tensor:
    """Features for one utterance as configured: (T, cfg.dim)."""
    feats = spectrogram(audio, cfg) if cfg.kind == "spectrogram" else log_mel(audio, cfg)
    return normalize(feats) if cfg.normalize else feats


def num_frames(n_samples: int, cfg: FeatureConfig) -> int:
    """Frames :func:`extract` returns for ``n_samples`` samples (centred STFT)."""
    return max(n_samples, cfg.n_fft) // cfg.hop + 1


@dataclass(frozen=True)
class SpecAugment:
    """Frequency and time masking (no time warping); masked cells are set to the utterance mean (0
    after normalisation)."""

    freq_masks: int = 2
    freq_width: int = 15
    time_masks: int = 2
    time_width: int = 40
    max_time_ratio: float = 0.2

    def __call__(self, feats: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        out = feats.clone()
        t, f = out.shape

        def rand(n: int) -> int:
            return int(torch.randint(0, max(1, n), (1,), generator=generator))

        for _ in range(self.freq_masks):
            w = rand(self.freq_width + 1)
            start = rand(f - w + 1)
            out[:, start : start + w] = 0.0
        tmax = min(self.time_width, int(self.max_time_ratio * t))
        for _ in range(self.time_masks):
            w = rand(tmax + 1)
            start = rand(t - w + 1)
            out[start : start + w, :] = 0.0
        return out
