"""Syllable (character) vocabulary built from training transcripts.

ClovaCall's baselines (Ha et al., 2020, section 4.1) predict Hangul syllables directly, spaces
included. Ids 0-3 are reserved: the CTC blank, the unknown symbol (any character not seen in the
training text), and the LAS start/end markers. Characters outside the vocabulary are mapped to the
unknown symbol and counted, so a data problem shows up as a number instead of a crash.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable

from haneul.errors import InvalidInput
from haneul.text.korean import normalize as normalize_text

BLANK, UNK, SOS, EOS = "<blank>", "<unk>", "<sos>", "<eos>"
SPECIALS = [BLANK, UNK, SOS, EOS]




class Vocabulary:
    """Bidirectional map between characters and ids; counts out-of-vocabulary characters."""

    def __init__(self, chars: Iterable[str]) -> None:
        self.itos: list[str] = list(SPECIALS) + [c for c in chars if c not in SPECIALS]
        self.stoi = {c: i for i, c in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise InvalidInput("vocabulary characters must be unique")
        self.oov: Counter[str] = Counter()

    blank = 0
    unk = 1
    sos = 2
    eos = 3

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1) -> Vocabulary:
        """Characters of ``texts`` seen at least ``min_count`` times, most frequent first."""
        counts: Counter[str] = Counter()
        for t in texts:
            counts.update(normalize_text(t))
        chars = sorted((c for c, n in counts.items() if n >= min_count), key=lambda c: (-counts[c], c))
        if not chars:
            raise InvalidInput(
                "cannot build a vocabulary from empty transcripts; check the manifest's text fields"
            )
        return cls(chars)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        """Ids of ``text``'s characters; unknown characters become ``<unk>`` and are counted in ``oov``."""
        ids = []
        for c in normalize_text(text):
            i = self.stoi.get(c)
            if i is None or i < len(SPECIALS):
                self.oov[c] += 1
                i = self.unk
            ids.append(i)
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``, dropping blank/start/end; ``<unk>`` shows as U+FFFD."""
        out = []
        for i in ids:
            i = int(i)
            if i == self.unk:
                out.append("\ufffd")
            elif i >= len(SPECIALS):
                out.append(self.itos[i])
        return "".join(out)

    def to_json(self) -> str:
        return json.dumps(self.itos[len(SPECIALS) :], ensure_ascii=False)

    @classmethod
    def from_json(cls, body: str) -> Vocabulary:
        return cls(json.loads(body))
