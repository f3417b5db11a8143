"""Morpheme segmentation for the morpheme-aware tokenizer (HyperCLOVA §2.2, "morpheme-aware byte-level BPE").

Text is cut into *pieces* whose concatenation is exactly the input: whitespace runs, and the morphemes
of each eojeol (space-separated word) as found by mecab-ko with mecab-ko-dic. A single space in front of
a word is attached to its first morpheme (as GPT-2 does), so that byte-level BPE trained on the pieces
learns "space + word start" tokens. BPE merges are learned and applied inside one piece at a time, so
no token ever spans a morpheme boundary, and the pieces keep the surface form, so decoding the tokens
gives back the input byte for byte.

mecab is analysed one eojeol at a time (its result then cannot depend on neighbouring words) and kept
in a bounded cache: Korean text repeats eojeols heavily, so most look-ups never reach mecab.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["MorphemeSegmenter", "split_words"]

_RUNS = re.compile(r"\s+|\S+")


def split_words(text: str) -> list[str]:
    """Whitespace runs and space-prefixed words: ``"a  b"`` -> ``["a", " ", " b"]``."""
    out: list[str] = []
    pending = ""
    for m in _RUNS.finditer(text):
        run = m.group()
        if run[0].isspace():
            if run[-1] == " " and m.end() < len(text):
                if len(run) > 1:
                    out.append(run[:-1])
                pending = " "
            else:
                out.append(run)
        else:
            out.append(pending + run)
            pending = ""
    return out


class MorphemeSegmenter:
    """Cuts text into morpheme pieces with mecab-ko; ``"".join(segment(x)) == x`` always holds."""

    def __init__(self, cache_size: int = 500_000) -> None:
        import mecab_ko

        self._tagger = mecab_ko.Tagger()
        self._cache: dict[str, tuple[str, ...]] = {}
        self.cache_size = cache_size
        self.hits = 0
        self.misses = 0

    def __getstate__(self) -> dict[str, object]:  # worker processes build their own tagger
        return {"cache_size": self.cache_size}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__(int(state["cache_size"]))  # type: ignore[misc, arg-type]

    def morphemes(self, word: str) -> tuple[str, ...]:
        """Surface morphemes of one eojeol (no whitespace inside); they concatenate to ``word``."""
        cached = self._cache.get(word)
        if cached is not None:
            self.hits += 1
            return cached
        self.misses += 1
        parts = self._analyse(word)
        if len(self._cache) >= self.cache_size:
            self._cache.clear()  # cheap and bounded; frequent words come back at once
        self._cache[word] = parts
        return parts

    def _analyse(self, word: str) -> tuple[str, ...]:
        parsed = self._tagger.parse(word)
        parts: list[str] = []
        pos = 0
        for line in parsed.split("\n"):
            if not line or line == "EOS":
                continue
            surface = line.split("\t", 1)[0]
            # mecab is a C library: NUL bytes end its input and odd characters may be dropped or
            # re-spelled, so each surface must be found where we expect it; otherwise the rest of
            # the word stays one piece and the round trip is still exact.
            if surface and word.startswith(surface, pos):
                parts.append(surface)
                pos += len(surface)
            else:
                break
        if pos < len(word):
            parts.append(word[pos:])
        return tuple(parts)

    def segment(self, text: str) -> list[str]:
        """Pieces of ``text``: whitespace runs and morphemes, a leading space kept on the first one."""
        out: list[str] = []
        for word in split_words(text):
            if word[0].isspace() and (len(word) == 1 or word[1].isspace()):
                out.append(word)
                continue
            if word[0] == " ":
                parts = self.morphemes(word[1:])
                out.append(" " + parts[0])
                out.extend(parts[1:])
            else:
                out.extend(self.morphemes(word))
        return out

    def segment_many(self, texts: Iterable[str]) -> list[list[str]]:
        return [self.segment(t) for t in texts]
