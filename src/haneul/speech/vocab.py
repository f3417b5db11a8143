"""Syllable (character) vocabularies: every Hangul syllable, or those of the training transcripts.

ClovaCall's baselines (Ha et al., 2020, section 4.1) predict Hangul syllables directly, spaces
included. :meth:`Vocabulary.hangul` holds all 11,172 precomposed syllables, so no Korean transcript
has a character the model cannot output (a syllable never heard in training is merely unlikely);
:meth:`Vocabulary.build` holds only the characters of the training text, most frequent first (the
ClovaCall recipe: about two thousand syllables for their corpus). Ids 0-3 are reserved: the CTC blank,
the unknown symbol, and the LAS start/end markers. Characters outside the vocabulary are mapped to the
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
#: the precomposed Hangul syllables, 가 (U+AC00) to 힣 (U+D7A3)
HANGUL = "".join(chr(c) for c in range(0xAC00, 0xD7A4))
#: output units a recogniser can be trained with (see the module's docstring)
UNITS = ("hangul", "corpus")


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
    def hangul(cls) -> Vocabulary:
        """The space and every Hangul syllable, in code order."""
        return cls(" " + HANGUL)

    @classmethod
    def for_units(cls, units: str, texts: Iterable[str]) -> Vocabulary:
        """The vocabulary of ``units`` (one of :data:`UNITS`); ``texts`` are the training transcripts."""
        if units == "hangul":
            return cls.hangul()
        if units == "corpus":
            return cls.build(texts)
        raise InvalidInput(f"--units {units!r} is unknown; choose one of {', '.join(UNITS)}")

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
