"""DeepSpeech2-style acoustic model: 2-D convolutions over the spectrogram, bidirectional RNN, CTC.

Follows DeepSpeech2 (Amodei et al., 2016, sections 3.1-3.5) as used for the ClovaCall baseline
(Ha et al., 2020, section 4.1): two 2-D convolutions (41x11 then 21x11 kernels over
frequency x time, 32 channels, batch norm, hardtanh) downsample the input, a stack of bidirectional
GRU or LSTM layers reads the sequence, and a linear layer gives per-frame posteriors over the
syllable vocabulary plus the CTC blank. ``forward(feats, lengths, targets=None) -> (log_probs,
out_lengths, loss)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from haneul.errors import InvalidInput


@dataclass(frozen=True)
class DS2Config:
    input_dim: int = 161
    vocab_size: int = 0
    conv_channels: int = 32
    time_stride: int = 2  # total temporal downsampling of the conv front end (1 or 2 or 4)
    rnn_type: str = "gru"
    rnn_hidden: int = 256
    rnn_layers: int = 3
    bidirectional: bool = True
    dropout: float = 0.1

    @staticmethod
    def from_name(name: str, **overrides) -> DS2Config:
        """Named presets: ``tiny`` (tests), ``small`` (one-core real time), ``base``,
        ``clovacall`` (the paper-sized baseline)."""
        presets = {
            "tiny": dict(conv_channels=8, rnn_hidden=64, rnn_layers=1, dropout=0.0),
            "small": dict(conv_channels=16, rnn_hidden=192, rnn_layers=3, time_stride=4),
            "base": dict(conv_channels=32, rnn_hidden=320, rnn_layers=4, time_stride=2),
            "clovacall": dict(conv_channels=32, rnn_type="lstm", rnn_hidden=800, rnn_layers=5, time_stride=2),
        }
        if name not in presets:
            raise InvalidInput(f"DS2 preset {name!r} is unknown; choose one of {', '.join(presets)}")
        return DS2Config(**{**presets[name], **overrides})

    def to_dict(self) -> dict:
        return asdict(self)


class ConvFrontEnd(nn.Module):
    """(B, T, F) -> (B, T', C*F'): two strided 2-D convolutions over (frequency, time)."""

    def __init__(self, cfg: DS2Config) -> None:
        super().__init__()
        if cfg.time_stride not in (1, 2, 4):
            raise InvalidInput(f"time_stride={cfg.time_stride} must be 1, 2 or 4")
        s1 = 2 if cfg.time_stride >= 2 else 1
        s2 = 2 if cfg.time_stride == 4 else 1
        c = cfg.conv_channels
        # (kernel, stride, padding) per layer, as (freq, time)
        self.layers = [((41, 11), (2, s1), (20, 5)), ((21, 11), (2, s2), (10, 5))]
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(cin, c, k, st, p, bias=False), nn.BatchNorm2d(c), nn.Hardtanh(0, 20, inplace=True)
            )
            for cin, (k, st, p) in zip((1, c), self.layers, strict=True)
        )
        f = cfg.input_dim
        for (kf, _), (sf, _), (pf, _) in self.layers:
            f = (f + 2 * pf - kf) // sf + 1
        self.out_dim = c * f

    @staticmethod
    def _next_lengths(lengths: torch.Tensor, layer) -> torch.Tensor:
        (_, kt), (_, st), (_, pt) = layer
        return torch.div(lengths + 2 * pt - kt, st, rounding_mode="floor") + 1

    def out_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            lengths = self._next_lengths(lengths, layer)
        return lengths

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = feats.transpose(1, 2).unsqueeze(1)  # (B, 1, F, T)
        for block, layer in zip(self.blocks, self.layers, strict=True):
            x = block(x)  # (B, C, F', T')
            lengths = self._next_lengths(lengths, layer)
            # zero the frames past each utterance's end: batch norm makes padding non-zero, and it would
            # otherwise leak into the next convolution and the RNN, so a padded batch would decode
            # differently from the same utterance alone
            mask = torch.arange(x.shape[-1], device=x.device)[None, :] < lengths[:, None]
            x = x * mask[:, None, None, :]
        b, c, f, t = x.shape
        return x.permute(0, 3, 1, 2).reshape(b, t, c * f), lengths


class DeepSpeech2(nn.Module):
    def __init__(self, cfg: DS2Config) -> None:
        super().__init__()
        if cfg.vocab_size <= 1:
            raise InvalidInput("DS2Config.vocab_size must be set from the vocabulary (blank + characters)")
        self.cfg = cfg
        self.front = ConvFrontEnd(cfg)
        rnn = nn.GRU if cfg.rnn_type == "gru" else nn.LSTM
        self.rnn = rnn(
            self.front.out_dim,
            cfg.rnn_hidden,
            num_layers=cfg.rnn_layers,
            batch_first=True,
            bidirectional=cfg.bidirectional,
            dropout=cfg.dropout if cfg.rnn_layers > 1 else 0.0,
        )
        width = cfg.rnn_hidden * (2 if cfg.bidirectional else 1)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, cfg.vocab_size)
        self.ctc = nn.CTCLoss(blank=0, zero_infinity=True)

    def forward(
        self,
        feats: torch.Tensor,
        lengths: torch.Tensor,
        targets: torch.Tensor | None = None,
        target_lengths: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """feats (B, T, F), lengths (B,); targets (B, S) padded, target_lengths (B,)."""
        x, out_len = self.front(feats, lengths)
        packed = nn.utils.rnn.pack_padded_sequence(
            x, out_len.cpu().clamp(min=1), batch_first=True, enforce_sorted=False
        )
        y, _ = self.rnn(packed)
        y, _ = nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])
        log_probs = self.head(self.norm(y)).float().log_softmax(-1)  # (B, T', V)
        loss = None
        if targets is not None:
            assert target_lengths is not None
            loss = self.ctc(log_probs.transpose(0, 1), targets, out_len, target_lengths)
        return log_probs, out_len, loss
