"""Training, saving and loading haneul's tokenizers (HyperCLOVA §2.2: Korean-specific tokenisation).

Three kinds, all byte-level so that every Unicode string encodes and decodes back exactly:

- ``morpheme-bpe``: byte-level BPE whose merges never cross a morpheme boundary. Text is cut into
  morpheme pieces by :class:`~haneul.lm.tokenizer.segment.MorphemeSegmenter` (mecab-ko) before BPE,
  both when learning merges and when encoding.
- ``bpe``: plain byte-level BPE with GPT-2's word splitting (the usual baseline).
- ``unigram``: a sentencepiece-style unigram language model over the same byte alphabet.

A trained tokenizer is a folder holding ``tokenizer.json`` and ``tokenizer_config.json`` (loadable by
``transformers.PreTrainedTokenizerFast``) plus ``haneul.json`` (kind and training facts). Loaded by
plain ``transformers``, a morpheme-bpe tokenizer still round-trips exactly and uses the same vocabulary,
but without the morpheme pre-split some merges may span a morpheme; :class:`HaneulTokenizer` applies the
pre-split.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from haneul.errors import InvalidInput, NotFound
from haneul.io import atomic_write_text, sha256_file

__all__ = [
    "KINDS",
    "SPECIAL_TOKENS",
    "EOS_TOKEN",
    "CHAT_TEMPLATE",
    "HaneulTokenizer",
    "min_vocab_size",
    "train_tokenizer",
    "load_tokenizer",
]

KINDS = ("morpheme-bpe", "bpe", "unigram")
EOS_TOKEN = "<|endoftext|>"
SPECIAL_TOKENS = [EOS_TOKEN, "<|im_start|>", "<|im_end|>"]
# ChatML, the template SmolLM2 also uses; the serving layer renders it with jinja2 like transformers.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
META_FILE = "haneul.json"
MAX_PIECE_LENGTH = 16


def min_vocab_size() -> int:
    """The 256 byte symbols plus the special tokens: anything smaller cannot encode every text."""
    return 256 + len(SPECIAL_TOKENS)


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise InvalidInput(f"tokenizer kind {kind!r} is unknown; use one of {', '.join(KINDS)}")
    return kind


def _build(kind: str, vocab_size: int, min_frequency: int) -> tuple[Any, Any]:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if kind == "unigram":
        tok = Tokenizer(models.Unigram())
        trainer = trainers.UnigramTrainer(
            vocab_size=vocab_size,
            special_tokens=SPECIAL_TOKENS,
            initial_alphabet=alphabet,
            max_piece_length=MAX_PIECE_LENGTH,
            show_progress=False,
        )
    else:
        tok = Tokenizer(models.BPE())
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=SPECIAL_TOKENS,
            initial_alphabet=alphabet,
            show_progress=False,
        )
    # GPT-2 word splitting for the baselines and, inside each morpheme piece, for morpheme-bpe (a
    # piece is one word already, so the split changes nothing there but keeps plain-HF use sensible).
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    return tok, trainer


def train_tokenizer(
    out_dir: str | os.PathLike[str],
    *,
    files: Sequence[str | os.PathLike[str]] | None = None,
    texts: Iterable[str] | None = None,
    kind: str = "morpheme-bpe",
    vocab_size: int = 8192,
    min_frequency: int = 2,
    field: str = "text",
    max_docs: int | None = None,
    progress: Any = None,
) -> HaneulTokenizer:
    """Train a tokenizer of ``kind`` on corpus ``files`` (or on ``texts``) and save it in ``out_dir``.

    ``progress`` is an optional callable taking the number of documents read so far.
    """
    _check_kind(kind)
    if vocab_size < min_vocab_size():
        raise InvalidInput(
            f"vocab size {vocab_size} is too small for the byte alphabet (256 bytes + {len(SPECIAL_TOKENS)} "
            f"special tokens); use --vocab-size {min_vocab_size()} or more"
        )
    from haneul.lm.corpus import check_corpus, iter_corpus

    if (files is None) == (texts is None):
        raise InvalidInput("train_tokenizer needs exactly one of files=[...] or texts=[...]")
    if files is not None:
        files = [str(f) for f in files]
        check_corpus(files, field=field)
        source: Iterable[str] = iter_corpus(files, field=field)
    else:
        source = texts  # type: ignore[assignment]

    stats = {"documents": 0, "characters": 0, "bytes": 0}

    def docs() -> Iterator[str]:
        for i, text in enumerate(source):
            if max_docs is not None and i >= max_docs:
                break
            stats["documents"] += 1
            stats["characters"] += len(text)
            stats["bytes"] += len(text.encode("utf-8"))
            if progress is not None and stats["documents"] % 1000 == 0:
                progress(stats["documents"])
            yield text

    tok, trainer = _build(kind, vocab_size, min_frequency)
    start = time.perf_counter()
    if kind == "morpheme-bpe":
        from haneul.lm.tokenizer.segment import MorphemeSegmenter

        seg = MorphemeSegmenter()

        def pieces() -> Iterator[list[str]]:
            # each piece is its own training "sequence", so no pair across pieces is ever counted
            batch: list[str] = []
            for text in docs():
                batch.extend(seg.segment(text))
                if len(batch) >= 4096:
                    yield batch
                    batch = []
            if batch:
                yield batch

        tok.train_from_iterator(pieces(), trainer=trainer)
    else:
        tok.train_from_iterator(docs(), trainer=trainer)
    if stats["documents"] == 0:
        raise InvalidInput("the corpus has no text in it; pass files with at least one non-blank line")
    seconds = time.perf_counter() - start

    meta = {
        "format": "haneul-tokenizer/1",
        "kind": kind,
        "vocab_size": tok.get_vocab_size(),
        "requested_vocab_size": vocab_size,
        "segmenter": "mecab-ko (mecab-ko-dic)" if kind == "morpheme-bpe" else None,
        "special_tokens": SPECIAL_TOKENS,
        "eos_token": EOS_TOKEN,
        "trained_on": {**stats, "files": [os.path.basename(f) for f in files] if files else None},
        "train_seconds": round(seconds, 3),
    }
    return HaneulTokenizer(tok, meta).save(out_dir)


class HaneulTokenizer:
    """A trained tokenizer: ``encode`` / ``decode`` with the morpheme pre-split when the kind needs it."""

    def __init__(self, tokenizer: Any, meta: dict[str, Any]) -> None:
        self._tok = tokenizer
        self.meta = meta
        self.kind: str = meta.get("kind", "bpe")
        self._segmenter: Any = None
        self._ids_cache: dict[str, list[int]] = {}
        self.cache_size = 1_000_000
        if self.kind == "morpheme-bpe":
            from haneul.lm.tokenizer.segment import MorphemeSegmenter

            self._segmenter = MorphemeSegmenter()

    # -- facts
    @property
    def vocab_size(self) -> int:
        return int(self._tok.get_vocab_size())

    @property
    def eos_id(self) -> int:
        return int(self._tok.token_to_id(EOS_TOKEN))

    @property
    def backend(self) -> Any:
        """The underlying ``tokenizers.Tokenizer``."""
        return self._tok

    def token_to_id(self, token: str) -> int | None:
        return self._tok.token_to_id(token)

    # -- encode / decode
    def _word_ids(self, words: list[str]) -> list[list[int]]:
        """Token ids of each word of :func:`split_words`, through the per-word cache.

        Merges never cross a morpheme piece and pieces never cross a word, so a word's ids do not
        depend on its neighbours: warm look-ups skip both mecab and BPE.
        """
        cache = self._ids_cache
        missing = [w for w in dict.fromkeys(words) if w not in cache]
        if missing:
            pieces = [self._segmenter.segment(w) for w in missing]
            encoded = self._tok.encode_batch(pieces, is_pretokenized=True, add_special_tokens=False)
            if len(cache) + len(missing) > self.cache_size:
                cache.clear()
            for w, e in zip(missing, encoded, strict=True):
                cache[w] = e.ids
            return [cache[w] if w in cache else self._word_ids([w])[0] for w in words]
        return [cache[w] for w in words]

    def encode(self, text: str) -> list[int]:
        if self._segmenter is not None:
            from haneul.lm.tokenizer.segment import split_words

            out: list[int] = []
            for ids in self._word_ids(split_words(text)):
                out.extend(ids)
            return out
        return self._tok.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        if self._segmenter is not None:
            from haneul.lm.tokenizer.segment import split_words

            split = [split_words(t) for t in texts]
            flat = self._word_ids([w for words in split for w in words])
            out: list[list[int]] = []
            pos = 0
            for words in split:
                ids: list[int] = []
                for word_ids in flat[pos : pos + len(words)]:
                    ids.extend(word_ids)
                out.append(ids)
                pos += len(words)
            return out
        return [e.ids for e in self._tok.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        return self._tok.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def tokens(self, text: str) -> list[str]:
        """Token strings (byte-level symbols) of ``text``: handy for looking at segmentations."""
        return [self._tok.id_to_token(i) for i in self.encode(text)]

    # -- files
    def save(self, out_dir: str | os.PathLike[str]) -> HaneulTokenizer:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "tokenizer.json", self._tok.to_str(pretty=False))
        config = {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": EOS_TOKEN,
            "eos_token": EOS_TOKEN,
            "unk_token": EOS_TOKEN,
            "pad_token": EOS_TOKEN,
            "additional_special_tokens": SPECIAL_TOKENS[1:],
            # transformers' default clean-up edits spaces around punctuation and breaks the round trip
            "clean_up_tokenization_spaces": False,
            "add_prefix_space": False,
            "model_max_length": 1_000_000,
            "chat_template": CHAT_TEMPLATE,
        }
        atomic_write_text(out / "tokenizer_config.json", json.dumps(config, indent=2, ensure_ascii=False) + "\n")
        special = {"bos_token": EOS_TOKEN, "eos_token": EOS_TOKEN, "unk_token": EOS_TOKEN, "pad_token": EOS_TOKEN}
        atomic_write_text(out / "special_tokens_map.json", json.dumps(special, indent=2) + "\n")
        meta = {**self.meta, "vocab_size": self.vocab_size, "tokenizer_sha256": sha256_file(out / "tokenizer.json")}
        atomic_write_text(out / META_FILE, json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
        self.meta = meta
        return self


def load_tokenizer(path: str | os.PathLike[str]) -> HaneulTokenizer:
    """Load a tokenizer folder written by :func:`train_tokenizer` (or any folder with a tokenizer.json)."""
    from tokenizers import Tokenizer

    folder = Path(path)
    file = folder / "tokenizer.json" if folder.is_dir() else folder
    if not file.is_file():
        raise NotFound(f"no tokenizer.json in {folder}; train one with `haneul lm tokenizer train`")
    meta_file = file.parent / META_FILE
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {"kind": "external"}
    return HaneulTokenizer(Tokenizer.from_file(str(file)), meta)
