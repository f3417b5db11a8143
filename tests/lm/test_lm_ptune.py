from __future__ import annotations

from pathlib import Path

import pytest
import torch

from haneul.errors import InvalidInput
from haneul.lm.ptuning import PTuneConfig, _Scorer, ptune, read_nsmc
from haneul.lm.testing import tiny_corpus


def _write_nsmc(path: Path, rows: list[tuple[str, int]]) -> Path:
    path.write_text("id\tdocument\tlabel\n" + "".join(f"{i}\t{t}\t{y}\n" for i, (t, y) in enumerate(rows)), encoding="utf-8")
    return path


def test_read_nsmc_and_bad_rows(tmp_path: Path) -> None:
    good = _write_nsmc(tmp_path / "a.txt", [("좋다", 1), ("별로", 0)])
    assert read_nsmc(good) == [("좋다", 1), ("별로", 0)]
    bad = tmp_path / "b.txt"
    bad.write_text("id\tdocument\tlabel\n1\t좋다\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="b.txt line 2"):
        read_nsmc(bad)


def test_scorer_matches_a_hand_computed_log_likelihood(tiny_model: Path) -> None:
    from transformers import AutoModelForCausalLM

    from haneul.lm.tokenizer import load_tokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    tok = load_tokenizer(tiny_model)
    cfg = PTuneConfig(model="", train="", test="", num_virtual_tokens=0)
    scorer = _Scorer(model, tok, cfg, 128, 0)
    ctx = tok.encode("리뷰: 정말 재미있었어요\n감정:")
    got = scorer.scores([ctx])[0]
    for j, y in enumerate(scorer.labels):
        seq = ctx + tok.encode(cfg.verbalizers[y])
        with torch.no_grad():
            logp = model(torch.tensor([seq])).logits[0].log_softmax(-1)
        want = sum(float(logp[i - 1, seq[i]]) for i in range(len(ctx), len(seq)))
        assert float(got[j]) == pytest.approx(want, abs=1e-4)


def test_ptune_runs_and_compares_with_icl(tiny_model: Path, tmp_path: Path) -> None:
    texts = tiny_corpus(80, seed=5)
    rows = [(t, 1 - i % 2) for i, t in enumerate(texts)]  # tiny_corpus alternates positive / negative
    train = _write_nsmc(tmp_path / "train.txt", rows[:60])
    test = _write_nsmc(tmp_path / "test.txt", rows[60:])
    torch.set_num_threads(1)
    res = ptune(PTuneConfig(model=str(tiny_model), train=str(train), test=str(test), out=str(tmp_path / "adapter"),
                            steps=15, batch_size=4, num_virtual_tokens=4, shots=2, lr=5e-2))
    acc = res["accuracy"]
    assert set(acc) == {"zero_shot", "2_shot_icl", "prompt-tuning"} and all(0 <= v <= 1 for v in acc.values())
    assert res["trainable_params"] == 4 * 48  # 4 virtual tokens x d_model; the model itself stays frozen
    assert res["final_loss"] < res["first_loss"]
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
