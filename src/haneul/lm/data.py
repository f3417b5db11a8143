"""Data preparation for pre-training (HyperCLOVA §2.1, corpus → tokens): packed token shards on disk.

``prepare_data`` tokenizes text / JSONL (optionally gzip) corpora with a trained tokenizer, in several
processes, and writes a folder of flat token streams — documents joined by the end-of-text token —
as raw ``uint16`` (vocabularies up to 65,536) or ``uint32`` arrays, split into train and validation
by a seeded hash of each document's index so the split is the same on every run and with any number
of workers. ``meta.json`` records tokens, characters and bytes per split; characters per token is what
turns a validation loss into bits per character (:func:`bits_per_char`), the unit that compares
models trained with different tokenizers.

:class:`TokenData` memory-maps the shards and serves training windows; the window of step ``s`` is a
function of ``(seed, s)`` alone, which is what makes resuming a run exact.
"""

from __future__ import annotations

import json
import math
import os
import zlib
from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from haneul.errors import InvalidInput, NotFound
from haneul.io import atomic_open, atomic_write_text

__all__ = ["prepare_data", "TokenData", "bits_per_char", "read_meta"]

FORMAT = "haneul-tokens/1"
CHUNK_DOCS = 512

_worker_tok: Any = None


def _init_worker(tokenizer_dir: str) -> None:
    global _worker_tok
    from haneul.lm.tokenizer import load_tokenizer

    _worker_tok = load_tokenizer(tokenizer_dir)


def _encode_chunk(texts: list[str], tok: Any = None) -> list[tuple[list[int], int, int]]:
    """Token ids, characters and UTF-8 bytes of each text."""
    ids = (tok or _worker_tok).encode_batch(texts)
    return [(i, len(t), len(t.encode("utf-8"))) for i, t in zip(ids, texts, strict=True)]


def _is_val(index: int, seed: int, val_fraction: float) -> bool:
    if val_fraction <= 0:
        return False
    h = zlib.crc32(f"{seed}:{index}".encode())
    return h < val_fraction * 2**32


def _chunks(it: Iterator[str], n: int) -> Iterator[list[str]]:
    while batch := list(islice(it, n)):
        yield batch


class _ShardWriter:
    """Appends tokens to ``<split>-NNNNN.bin`` files, each written atomically when full or at close."""

    def __init__(self, out: Path, split: str, dtype: np.dtype, shard_tokens: int) -> None:
        self.out, self.split, self.dtype, self.shard_tokens = out, split, dtype, shard_tokens
        self.files: list[str] = []
        self._buf: list[np.ndarray] = []
        self._n = 0
        self.tokens = 0

    def add(self, ids: list[int]) -> None:
        arr = np.asarray(ids, dtype=self.dtype)
        self.tokens += arr.size
        while arr.size:
            room = self.shard_tokens - self._n
            self._buf.append(arr[:room])
            self._n += min(room, arr.size)
            arr = arr[room:]
            if self._n >= self.shard_tokens:
                self._flush()

    def _flush(self) -> None:
        if not self._n:
            return
        name = f"{self.split}-{len(self.files):05d}.bin"
        with atomic_open(self.out / name, "wb") as fh:
            for part in self._buf:
                fh.write(part.tobytes())
        self.files.append(name)
        self._buf, self._n = [], 0

    def close(self) -> None:
        self._flush()


def prepare_data(
    tokenizer_dir: str | os.PathLike[str],
    corpus: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    val_fraction: float = 0.01,
    seed: int = 0,
    workers: int = 1,
    field: str = "text",
    shard_tokens: int = 1 << 28,
    max_docs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Tokenize ``corpus`` into ``out_dir`` and return the ``meta.json`` record.

    ``progress(documents, bytes)`` is called after each chunk of documents.
    """
    from haneul.io import sha256_file
    from haneul.lm.corpus import check_corpus, iter_corpus
    from haneul.lm.tokenizer import load_tokenizer

    if not 0.0 <= val_fraction < 1.0:
        raise InvalidInput(f"val_fraction={val_fraction} must be in [0, 1); try 0.01")
    tok = load_tokenizer(tokenizer_dir)
    check_corpus(corpus, field=field)
    eos = tok.eos_id
    dtype = np.dtype(np.uint16 if tok.vocab_size <= 1 << 16 else np.uint32)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    writers = {s: _ShardWriter(out, s, dtype, shard_tokens) for s in ("train", "val")}
    stats = {s: {"documents": 0, "characters": 0, "bytes": 0} for s in ("train", "val")}

    docs: Iterator[str] = iter_corpus(corpus, field=field)
    if max_docs is not None:
        docs = islice(docs, max_docs)
    chunks = _chunks(docs, CHUNK_DOCS)
    pool = None
    if workers > 1:
        import multiprocessing as mp

        # spawn: the parent may hold threads (torch, the metrics reporter) that fork would copy
        pool = mp.get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(str(tokenizer_dir),))
        # imap keeps order, so the output is identical whatever the number of workers
        encoded: Iterator[list[tuple[list[int], int, int]]] = pool.imap(_encode_chunk, chunks, chunksize=1)
    else:
        encoded = (_encode_chunk(c, tok) for c in chunks)

    index = 0
    total_bytes = 0
    try:
        for chunk in encoded:
            for doc_ids, n_chars, n_bytes in chunk:
                split = "val" if _is_val(index, seed, val_fraction) else "train"
                writers[split].add([*doc_ids, eos])
                st = stats[split]
                st["documents"] += 1
                # the end-of-text token stands for one separator character (a newline)
                st["characters"] += n_chars + 1
                st["bytes"] += n_bytes + 1
                total_bytes += n_bytes + 1
                index += 1
            if progress is not None:
                progress(index, total_bytes)
    finally:
        if pool is not None:
            pool.terminate()
    for w in writers.values():
        w.close()
    if writers["train"].tokens == 0:
        raise InvalidInput("no training tokens were produced; pass a larger corpus or a smaller val_fraction")
    meta: dict[str, Any] = {
        "format": FORMAT,
        "dtype": dtype.name,
        "vocab_size": tok.vocab_size,
        "eos_id": eos,
        "tokenizer": str(Path(tokenizer_dir).resolve()),
        "tokenizer_kind": tok.kind,
        "tokenizer_sha256": sha256_file(Path(tokenizer_dir) / "tokenizer.json"),
        "seed": seed,
        "val_fraction": val_fraction,
        "corpus": [os.path.basename(str(c)) for c in corpus],
    }
    for split, w in writers.items():
        meta[split] = {**stats[split], "tokens": w.tokens, "files": w.files}
    atomic_write_text(out / "meta.json", json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    return meta


def read_meta(data_dir: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(data_dir) / "meta.json"
    if not path.is_file():
        raise NotFound(f"no meta.json in {data_dir}; create the folder with `haneul lm prepare`")
    meta = json.loads(path.read_text())
    if meta.get("format") != FORMAT:
        raise InvalidInput(f"{path} is not a haneul token folder (format {meta.get('format')!r}); re-run `haneul lm prepare`")
    return meta


def bits_per_char(loss_nats: float, tokens: int, characters: int) -> float:
    """Mean per-token loss (nats) → bits per character of the text those tokens encode."""
    return loss_nats / math.log(2) * tokens / max(characters, 1)


class TokenData:
    """Memory-mapped token shards of one prepared folder."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.dir = Path(data_dir)
        self.meta = read_meta(self.dir)
        dtype = np.dtype(self.meta["dtype"])
        self.splits: dict[str, np.ndarray] = {}
        for split in ("train", "val"):
            parts = [np.memmap(self.dir / f, dtype=dtype, mode="r") for f in self.meta[split]["files"]]
            if len(parts) == 1:
                self.splits[split] = parts[0]
            elif parts:
                self.splits[split] = np.concatenate(parts)  # several shards: one copy in memory
            else:
                self.splits[split] = np.zeros(0, dtype=dtype)

    def limit_train(self, tokens: int) -> None:
        """Train on the first ``tokens`` training tokens only (a corpus-size experiment); the meta's
        train figures are scaled to match."""
        if tokens < 1:
            raise InvalidInput(f"train_tokens {tokens} must be at least 1")
        have = len(self.splits["train"])
        if tokens >= have:
            return
        self.splits["train"] = self.splits["train"][:tokens]
        m = dict(self.meta["train"])
        share = tokens / max(have, 1)
        m.update(tokens=tokens, characters=int(m["characters"] * share), bytes=int(m["bytes"] * share),
                 documents=int(m["documents"] * share))
        self.meta = {**self.meta, "train": m}

    def chars_per_token(self, split: str = "val") -> float:
        m = self.meta[split]
        return m["characters"] / max(m["tokens"], 1)

    def window(self, split: str, start: int, length: int) -> np.ndarray:
        return np.asarray(self.splits[split][start : start + length], dtype=np.int64)

    def batch(self, step: int, batch_size: int, seq_len: int, seed: int = 0) -> tuple[Any, Any]:
        """Training batch of step ``step``: ``batch_size`` random windows chosen from ``(seed, step)`` only."""
        import torch

        data = self.splits["train"]
        n = len(data) - seq_len - 1
        if n <= 0:
            raise InvalidInput(
                f"the training split has {len(data)} tokens, fewer than one window of {seq_len + 1}; "
                "use a smaller --seq-len or a larger corpus"
            )
        rng = np.random.default_rng([seed, step])
        starts = rng.integers(0, n + 1, size=batch_size)
        x = np.stack([self.window("train", s, seq_len + 1) for s in starts])
        t = torch.from_numpy(x)
        return t[:, :-1], t[:, 1:]

    def val_batches(self, batch_size: int, seq_len: int, max_batches: int) -> Iterator[tuple[Any, Any]]:
        """Fixed, evenly spread validation windows (the same every evaluation)."""
        import torch

        data = self.splits["val"]
        n_windows = (len(data) - 1) // seq_len
        if n_windows <= 0:
            return
        count = min(n_windows, batch_size * max_batches)
        stride = n_windows // count
        starts = [i * stride * seq_len for i in range(count)]
        for i in range(0, count, batch_size):
            x = np.stack([self.window("val", s, seq_len + 1) for s in starts[i : i + batch_size]])
            t = torch.from_numpy(x)
            yield t[:, :-1], t[:, 1:]
