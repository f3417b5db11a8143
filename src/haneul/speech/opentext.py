"""Open-vocabulary sentences for synthetic speech, drawn from real Korean text.

The reservation generator (:mod:`haneul.speech.korean`) speaks about 190 distinct characters; a
recogniser trained only on it cannot hear the rest of Korean. This module draws phone-length
sentences from whatever Korean text the user points it at — reviews, news, NLI or STS sentence
pairs, a plain text file — turns each into what is said (:func:`haneul.text.spoken.spoken`: numbers,
dates, Latin letters and symbols read out, punctuation and laughter dropped, sentences with
unreadable parts left out), keeps those of a speakable length, and mixes in a share of reservation
sentences. The result is a text file for ``haneul speech synth --text``.

Sentences are split between training and held-out use by a stable hash of their text, exactly as the
reservation generator's are (:func:`haneul.speech.synth.is_heldout_sentence`), so the two sides never
share a sentence. :func:`inventory` reports what the text covers: distinct characters, and the share
of the 2,350 syllables of KS X 1001 (the Hangul of everyday writing) it contains.

Source formats, by file name (each may be gzip-compressed, ``.gz``):

- ``*.jsonl``: one JSON object a line; its ``text`` (or ``document`` / ``sentence``) field;
- ``*.tsv`` with a header line: every column named ``sentence...``, ``document`` or ``text``;
- anything else: plain text, one passage a line.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from haneul.errors import InvalidInput
from haneul.speech.corpus import stable_hash
from haneul.speech.korean import reservation_sentence
from haneul.speech.synth import is_heldout_sentence
from haneul.text.spoken import spoken

__all__ = ["Inventory", "draw_sentences", "inventory", "ksx1001_syllables", "read_passages", "split_sentences"]

_SENTENCE_END = re.compile(r"(?<=[.!?…。！？~])\s*|[.!?…]{2,}|\n")
_TEXT_FIELDS = ("text", "document", "sentence")
SPLITS = ("train", "heldout")


def ksx1001_syllables() -> list[str]:
    """The 2,350 precomposed Hangul syllables of KS X 1001 (rows 16-40 of its code table)."""
    out = []
    for row in range(0xB0, 0xC9):
        for col in range(0xA1, 0xFF):
            out.append(bytes([row, col]).decode("euc-kr"))
    return out


def _open_text(path: Path) -> IO[str]:
    raw = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # noqa: SIM115 - wrapped
    return io.TextIOWrapper(raw, encoding="utf-8", errors="replace")


def read_passages(path: str | os.PathLike[str]) -> Iterator[str]:
    """The passages of one source file (see the module's docstring for the formats)."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"{path} does not exist; give a text, .jsonl or .tsv file (optionally .gz)")
    kind = Path(path.stem if path.suffix == ".gz" else path.name).suffix
    with _open_text(path) as fh:
        if kind == ".jsonl":
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError:
                    raise InvalidInput(f"{path}:{n} is not a JSON object; write one object a line") from None
                text = next((row[k] for k in _TEXT_FIELDS if isinstance(row, dict) and isinstance(row.get(k), str)),
                            None)
                if text:
                    yield text
        elif kind == ".tsv":
            header = fh.readline().rstrip("\n").split("\t")
            columns = [i for i, name in enumerate(header) if name.startswith("sentence") or name in _TEXT_FIELDS]
            if not columns:
                raise InvalidInput(f"{path} has no sentence, document or text column in its header {header[:8]}")
            for line in fh:
                cells = line.rstrip("\n").split("\t")
                yield from (cells[i] for i in columns if i < len(cells) and cells[i])
        else:
            yield from (line for line in fh if line.strip())


def split_sentences(passage: str) -> list[str]:
    """``passage`` cut at sentence ends (., !, ?, …, runs of them, line breaks); pieces trimmed."""
    return [s.strip() for s in _SENTENCE_END.split(passage) if s and s.strip()]


def _syllables(text: str) -> int:
    return sum(1 for c in text if c != " ")


def _on_side(text: str, split: str) -> bool:
    return is_heldout_sentence(text) == (split == "heldout")


def draw_sentences(
    sources: Sequence[str | os.PathLike[str]],
    n: int,
    *,
    seed: int = 0,
    split: str = "train",
    min_syllables: int = 4,
    max_syllables: int = 40,
    templates: float = 0.1,
    exclude: Iterable[str] = (),
) -> list[str]:
    """``n`` distinct spoken sentences: a share ``templates`` from the reservation generator, the rest
    from ``sources`` in equal shares (a source with fewer sentences than its share gives them all and
    the others make up for it), each share drawn uniformly (reservoir sampling, seeded) from the
    source's speakable sentences of ``min_syllables``..``max_syllables`` syllables whose hash puts them
    on ``split``'s side. Equal shares keep a small source of formal sentences from drowning in a large
    one of reviews. Fewer than ``n`` come back when the sources hold fewer. ``exclude``: sentences never to draw (a test set), compared after reading aloud."""
    if split not in SPLITS:
        raise InvalidInput(f"split {split!r} is unknown; choose one of {', '.join(SPLITS)}")
    if n < 1 or not 0.0 <= templates <= 1.0 or not 1 <= min_syllables <= max_syllables:
        raise InvalidInput("need n >= 1, 0 <= templates <= 1 and 1 <= min_syllables <= max_syllables")
    banned = {t for t in (spoken(e) for e in exclude) if t}
    wanted = n - (round(n * templates) if sources else n)
    rng = random.Random(f"{seed}:{split}:open-text")
    seen: set[int] = set()
    pools = [_reservoir(source, wanted, rng, seen, banned, split, min_syllables, max_syllables)
             for source in sources]
    if sources and not any(pools):
        raise InvalidInput(f"no speakable sentence of {min_syllables}-{max_syllables} syllables in "
                           f"{', '.join(map(str, sources))}; check the files' format")
    out = [text for pool, share in zip(pools, _shares([len(p) for p in pools], wanted), strict=True)
           for text in pool[:share]]
    target, tries = len(out) + n - wanted, 0
    while len(out) < target and tries < 100 * n:  # the templates' share (all of it without sources)
        tries += 1
        text = reservation_sentence(rng)
        key = stable_hash(text)
        if key not in seen and text not in banned and _on_side(text, split):
            seen.add(key)
            out.append(text)
    rng.shuffle(out)
    return out


def _reservoir(source: str | os.PathLike[str], size: int, rng: random.Random, seen: set[int], banned: set[str],
               split: str, min_syllables: int, max_syllables: int) -> list[str]:
    """Up to ``size`` of ``source``'s usable sentences, drawn uniformly; ``seen``
    (hashes of sentences taken anywhere) keeps every sentence once across sources."""
    pool: list[str] = []
    count = 0
    for passage in read_passages(source):
        for sentence in split_sentences(passage):
            text = spoken(sentence)
            if (text is None or not min_syllables <= _syllables(text) <= max_syllables or text in banned
                    or not _on_side(text, split)):
                continue
            key = stable_hash(text)
            if key in seen:
                continue
            seen.add(key)
            count += 1
            if len(pool) < size:
                pool.append(text)
            elif (j := rng.randrange(count)) < size:
                pool[j] = text
    return pool


def _shares(available: Sequence[int], total: int) -> list[int]:
    """Split ``total`` into equal shares, capped by what each source has; the rest goes to the others."""
    shares = [0] * len(available)
    left, open_ = total, sorted(range(len(available)), key=lambda i: available[i])
    while open_ and left > 0:
        each = left // len(open_) or 1
        i = open_.pop(0)
        shares[i] = min(available[i], each, left)
        left -= shares[i]
    return shares


@dataclass
class Inventory:
    """What a set of sentences covers."""

    sentences: int
    characters: int
    distinct: int
    ksx1001_covered: int
    ksx1001_total: int = 2350
    outside_ksx1001: list[str] = field(default_factory=list)
    most_common: list[tuple[str, int]] = field(default_factory=list)

    @property
    def ksx1001_coverage(self) -> float:
        return self.ksx1001_covered / self.ksx1001_total

    def to_dict(self) -> dict[str, Any]:
        return {"sentences": self.sentences, "characters": self.characters, "distinct_characters": self.distinct,
                "ksx1001_covered": self.ksx1001_covered, "ksx1001_total": self.ksx1001_total,
                "ksx1001_coverage": round(self.ksx1001_coverage, 4), "outside_ksx1001": self.outside_ksx1001,
                "most_common": self.most_common}


def inventory(sentences: Iterable[str]) -> Inventory:
    """Characters (spaces aside) of ``sentences``: how many, how many distinct, and how many of the
    KS X 1001 syllables occur; the syllables outside KS X 1001 are listed (rare ones like 똠, 펲)."""
    counts: Counter[str] = Counter()
    total = 0
    for text in sentences:
        counts.update(c for c in text if c != " ")
        total += 1
    ksx = set(ksx1001_syllables())
    return Inventory(sentences=total, characters=sum(counts.values()), distinct=len(counts),
                     ksx1001_covered=len(ksx & counts.keys()),
                     outside_ksx1001=sorted(c for c in counts if c not in ksx),
                     most_common=counts.most_common(20))
