from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from haneul.errors import InvalidInput
from haneul.lm.data import TokenData, bits_per_char, prepare_data, read_meta
from haneul.lm.tokenizer import load_tokenizer


def test_prepare_packs_documents_with_eos(tiny_lm: dict[str, Path]) -> None:
    meta = read_meta(tiny_lm["data"])
    tok = load_tokenizer(tiny_lm["tokenizer"])
    docs = tiny_lm["corpus"].read_text(encoding="utf-8").splitlines()
    assert meta["dtype"] == "uint16"
    assert meta["train"]["documents"] + meta["val"]["documents"] == len(docs) == 600
    assert 20 < meta["val"]["documents"] < 100  # ~10 %
    assert meta["train"]["characters"] + meta["val"]["characters"] == sum(len(d) + 1 for d in docs)
    assert meta["train"]["bytes"] + meta["val"]["bytes"] == sum(len(d.encode()) + 1 for d in docs)
    data = TokenData(tiny_lm["data"])
    stream = np.concatenate([data.splits["train"], data.splits["val"]])
    assert len(stream) == meta["train"]["tokens"] + meta["val"]["tokens"]
    # decoding the streams gives back every document exactly, each followed by the end-of-text token
    text = tok.decode(data.splits["train"].tolist()) + tok.decode(data.splits["val"].tolist())
    assert sorted(t for t in text.split("<|endoftext|>") if t) == sorted(docs)


def test_prepare_is_deterministic_and_worker_independent(tiny_lm: dict[str, Path], tmp_path: Path) -> None:
    a = prepare_data(tiny_lm["tokenizer"], [tiny_lm["corpus"]], tmp_path / "a", val_fraction=0.1, seed=0, workers=2)
    for split in ("train", "val"):
        assert (tmp_path / "a" / a[split]["files"][0]).read_bytes() == (tiny_lm["data"] / a[split]["files"][0]).read_bytes()


def test_jsonl_gz_and_shards(tiny_lm: dict[str, Path], tmp_path: Path) -> None:
    docs = tiny_lm["corpus"].read_text(encoding="utf-8").splitlines()
    gz = tmp_path / "c.jsonl.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as fh:
        for d in docs:
            fh.write(json.dumps({"text": d, "id": 1}, ensure_ascii=False) + "\n")
    meta = prepare_data(tiny_lm["tokenizer"], [gz], tmp_path / "d", val_fraction=0.1, shard_tokens=1000)
    ref = read_meta(tiny_lm["data"])
    assert meta["train"]["tokens"] == ref["train"]["tokens"]
    assert len(meta["train"]["files"]) == -(-meta["train"]["tokens"] // 1000)
    a, b = TokenData(tmp_path / "d"), TokenData(tiny_lm["data"])
    assert np.array_equal(a.splits["train"], b.splits["train"])


def test_batches_depend_only_on_seed_and_step(tiny_lm: dict[str, Path]) -> None:
    data = TokenData(tiny_lm["data"])
    x1, y1 = data.batch(5, 4, 16, seed=3)
    x2, y2 = data.batch(5, 4, 16, seed=3)
    x3, _ = data.batch(6, 4, 16, seed=3)
    assert (x1 == x2).all() and (y1 == y2).all() and not (x1 == x3).all()
    assert (x1[:, 1:] == y1[:, :-1]).all()
    vals = list(data.val_batches(4, 16, 2))
    assert vals and all(x.shape == (4, 16) for x, _ in vals)


def test_bits_per_char() -> None:
    # loss ln(2) nats per token = 1 bit per token; 2 tokens per 4 chars -> 0.5 bits per char
    assert bits_per_char(0.6931471805599453, 2, 4) == pytest.approx(0.5)


def test_missing_and_bad_corpus(tiny_lm: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok\n\x80\n")
    with pytest.raises(InvalidInput, match="bad.txt is not UTF-8: invalid byte at offset 3"):
        prepare_data(tiny_lm["tokenizer"], [bad], tmp_path / "out")
    empty = tmp_path / "e.jsonl"
    empty.write_text("")
    with pytest.raises(InvalidInput, match="e.jsonl is empty"):
        prepare_data(tiny_lm["tokenizer"], [empty], tmp_path / "out")
