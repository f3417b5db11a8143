from __future__ import annotations

from pathlib import Path

import pytest

from haneul.lm.testing import write_tiny_corpus


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A synthetic corpus, a morpheme-bpe tokenizer on it and its prepared token folder (built once)."""
    from haneul.lm.data import prepare_data
    from haneul.lm.tokenizer import train_tokenizer

    root = tmp_path_factory.mktemp("tiny-lm")
    corpus = write_tiny_corpus(root / "corpus.txt", n=600)
    tok = root / "tok"
    train_tokenizer(tok, files=[corpus], kind="morpheme-bpe", vocab_size=320)
    data = root / "data"
    prepare_data(tok, [corpus], data, val_fraction=0.1, seed=0)
    return {"root": root, "corpus": corpus, "tokenizer": tok, "data": data}


TINY_MODEL = {"n_layer": 2, "d_model": 48, "n_head": 4, "n_kv_head": 2, "d_ff": 96, "max_seq_len": 128}


@pytest.fixture(scope="session")
def tiny_model(tiny_lm: dict[str, Path]) -> Path:
    """A servable model folder (weights + tokenizer) briefly trained on the synthetic corpus."""
    import torch

    from haneul.lm.pretrain import TrainConfig, pretrain

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = pretrain(
            TrainConfig(
                data=str(tiny_lm["data"]), out=str(tiny_lm["root"] / "run"), preset="ko-nano", model=TINY_MODEL,
                steps=60, batch_size=8, seq_len=64, lr=1e-2, warmup=5, eval_every=60, save_every=1000, log_every=20,
            )
        )
    finally:
        torch.set_num_threads(threads)
    return Path(res["model_dir"])
