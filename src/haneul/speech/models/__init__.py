"""Acoustic models: DeepSpeech2-style CTC and LAS with location-aware attention."""

from __future__ import annotations

from haneul.speech.models.ctc import DeepSpeech2, DS2Config
from haneul.speech.models.las import LAS, LASConfig

MODEL_KINDS = ("ds2", "las")

__all__ = ["DeepSpeech2", "DS2Config", "LAS", "LASConfig", "MODEL_KINDS"]
