from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from speech_helpers import tone, write


@pytest.fixture
def tone_corpus(tmp_path: Path):
    """Six tiny 'utterances' (tones whose pitch spells the text), three speakers, in ClovaCall layout."""
    from haneul.speech.corpus import Utterance, write_manifest

    texts = ["가나", "나다", "다가", "가다", "나가", "다나"]
    freqs = {"가": 400.0, "나": 900.0, "다": 1600.0}
    items = []
    for i, text in enumerate(texts):
        audio = np.concatenate([tone(freqs[c], 0.3) for c in text])
        write(tmp_path / "wavs" / f"u{i}.wav", audio)
        items.append(Utterance(f"u{i}.wav", text, f"spk{i % 3}"))
    return write_manifest(tmp_path / "manifest.json", items)
