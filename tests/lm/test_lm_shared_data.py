from __future__ import annotations

import gzip
import json
from itertools import islice
from pathlib import Path

import pytest

from haneul.lm.tokenizer import train_tokenizer


def test_morpheme_bpe_on_real_reviews(shared_data: Path | None, tmp_path: Path) -> None:
    if shared_data is None:
        pytest.skip("the shared Korean data is not available")
    with gzip.open(shared_data / "ko-reviews" / "reviews.jsonl.gz", "rt", encoding="utf-8") as fh:
        train = [json.loads(line)["text"] for line in islice(fh, 2000)]
    with gzip.open(shared_data / "nsmc" / "ratings_test.txt.gz", "rt", encoding="utf-8") as fh:
        held = [line.split("\t")[1] for line in islice(fh, 1, 501)]
    tok = train_tokenizer(tmp_path, texts=train, kind="morpheme-bpe", vocab_size=2000)
    ids = tok.encode_batch(held)
    assert [tok.decode(i) for i in ids] == held
    tokens = sum(len(i) for i in ids)
    chars = sum(len(t) for t in held)
    # Korean text costs well under one token per character, and more than the 1/3 a byte-perfect
    # 3-byte syllable vocabulary would give at this size
    assert 0.33 < tokens / chars < 1.0
