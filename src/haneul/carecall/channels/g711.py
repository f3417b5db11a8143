"""G.711 companding (ITU-T G.711): μ-law (PCMU) and A-law (PCMA) for 8 kHz telephone audio, in numpy.

A telephone trunk carries 8-bit companded samples; the audio channel works on 16-bit linear PCM.
Both directions are table lookups: decoding indexes a 256-entry table, encoding a 65 536-entry
table over every 16-bit value, each built once from the segment formulas of the recommendation
(μ-law: fourteen-bit magnitude plus a bias of 33, eight segments of sixteen steps, bits inverted;
A-law: thirteen-bit magnitude, eight segments, even bits inverted with 0x55). The tables give the
same bytes as the widely used Sun reference implementation, which Python's ``audioop`` also follows.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["CODECS", "alaw_decode", "alaw_encode", "decode", "encode", "ulaw_decode", "ulaw_encode"]

#: RTP static payload types (RFC 3551) of the two codecs, by SDP encoding name
CODECS = {"PCMU": 0, "PCMA": 8}

_ULAW_BIAS = 0x84
_ULAW_CLIP = 8159  # 14-bit


def _ulaw_from_linear(x: np.ndarray) -> np.ndarray:
    v = x.astype(np.int32) >> 2  # μ-law works on 14-bit samples
    mask = np.where(v < 0, 0x7F, 0xFF)
    v = np.minimum(np.abs(v), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    seg = np.searchsorted(np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]), v)
    uval = (np.minimum(seg, 7) << 4) | ((v >> (seg + 1)) & 0x0F)
    uval = np.where(seg >= 8, 0x7F, uval)
    return ((uval ^ mask) & 0xFF).astype(np.uint8)


def _linear_from_ulaw(u: np.ndarray) -> np.ndarray:
    u = ~u.astype(np.int32) & 0xFF
    exponent = (u >> 4) & 0x07
    mag = (((u & 0x0F) << 3) + _ULAW_BIAS << exponent) - _ULAW_BIAS
    return np.where(u & 0x80, -mag, mag).astype(np.int16)


def _alaw_from_linear(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.int32) >> 3  # A-law works on 13-bit samples
    mask = np.where(x >= 0, 0xD5, 0x55)
    mag = np.where(x >= 0, x, -x - 1)
    seg = np.searchsorted(np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF]), mag)
    shift = np.where(seg < 2, 1, seg)
    aval = (np.minimum(seg, 7) << 4) | ((mag >> shift) & 0x0F)
    aval = np.where(seg >= 8, 0x7F, aval)  # beyond the last segment: the largest code
    return ((aval ^ mask) & 0xFF).astype(np.uint8)


def _linear_from_alaw(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.int32) ^ 0x55
    seg = (a & 0x70) >> 4
    t = (a & 0x0F) << 4
    t = np.where(seg == 0, t + 8, t + 0x108)
    t = np.where(seg > 1, t << np.maximum(seg - 1, 0), t)
    return np.where(a & 0x80, t, -t).astype(np.int16)


@functools.cache
def _tables() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``name -> (encode table indexed by sample + 32768, decode table indexed by byte)``."""
    linear = np.arange(-32768, 32768, dtype=np.int32)
    codes = np.arange(256, dtype=np.uint8)
    return {
        "PCMU": (_ulaw_from_linear(linear), _linear_from_ulaw(codes)),
        "PCMA": (_alaw_from_linear(linear), _linear_from_alaw(codes)),
    }


def _pcm16(samples: np.ndarray) -> np.ndarray:
    """int16 as given; float audio in [-1, 1] is scaled and clipped."""
    samples = np.asarray(samples)
    if samples.dtype == np.int16:
        return samples
    if np.issubdtype(samples.dtype, np.floating):
        return (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)
    return np.clip(samples, -32768, 32767).astype(np.int16)


def encode(samples: np.ndarray, codec: str = "PCMU") -> bytes:
    """16-bit linear samples (or float in [-1, 1]) as G.711 bytes of ``codec`` (PCMU or PCMA)."""
    table = _tables()[codec][0]
    return table[_pcm16(samples).astype(np.int32) + 32768].tobytes()


def decode(payload: bytes | np.ndarray, codec: str = "PCMU") -> np.ndarray:
    """G.711 bytes of ``codec`` as int16 linear samples."""
    table = _tables()[codec][1]
    return table[np.frombuffer(payload, dtype=np.uint8) if isinstance(payload, bytes | bytearray) else payload]


def ulaw_encode(samples: np.ndarray) -> bytes:
    return encode(samples, "PCMU")


def ulaw_decode(payload: bytes | np.ndarray) -> np.ndarray:
    return decode(payload, "PCMU")


def alaw_encode(samples: np.ndarray) -> bytes:
    return encode(samples, "PCMA")


def alaw_decode(payload: bytes | np.ndarray) -> np.ndarray:
    return decode(payload, "PCMA")
