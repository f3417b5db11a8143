"""haneul.speech: Korean call-speech recognition in the style of ClovaCall (Ha et al., 2020).

ClovaCall corpus tools (manifests, validation, trimming, speaker splits), synthetic call speech
(espeak-ng + a telephone channel) of generated or open-vocabulary sentences, features (161-dim spectrogram, log-mel, SpecAugment), a
DeepSpeech2-style CTC model and LAS, CTC greedy / prefix beam decoding with a character n-gram LM,
training with ``haneul.report`` metrics, CER/WER/RTF evaluation and a streaming recogniser.
Heavy modules (torch) load on first use of the names that need them.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Utterance": "corpus", "Manifest": "corpus", "AudioError": "corpus", "ValidationReport": "corpus",
    "read_manifest": "corpus", "write_manifest": "corpus", "load_audio": "corpus", "write_wav": "corpus",
    "validate": "corpus", "trim_silence": "corpus", "resample": "corpus", "convert_corpus": "corpus",
    "split_by_speaker": "corpus",
    "sino": "korean", "native": "korean", "reservation_sentence": "korean",
    "synthesize": "synth", "phone_channel": "synth", "SynthJob": "synth", "plan_jobs": "synth",
    "read_sentences": "synth", "plan_text_jobs": "synth",
    "draw_sentences": "opentext", "inventory": "opentext", "ksx1001_syllables": "opentext",
    "FeatureConfig": "features", "spectrogram": "features", "log_mel": "features", "normalize": "features",
    "extract": "features", "SpecAugment": "features",
    "Vocabulary": "vocab",
    "greedy_decode": "decode", "prefix_beam_search": "decode", "CharNgramLM": "decode",
    "cer": "metrics", "wer": "metrics", "edit_distance": "metrics", "EvalResult": "metrics",
    "DeepSpeech2": "models", "DS2Config": "models", "LAS": "models", "LASConfig": "models",
    "TrainConfig": "train", "TrainResult": "train", "SpeechDataWarning": "train",
    "Recognizer": "recognizer", "StreamingSession": "recognizer", "Hypothesis": "recognizer", "build_lm": "recognizer",
}  # fmt: skip

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'haneul.speech' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"haneul.speech.{module}"), name)
    globals()[name] = value
    return value
