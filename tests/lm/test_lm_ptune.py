from __future__ import annotations

import json
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


@pytest.mark.parametrize("method", ["prompt-tuning", "p-tuning"])
def test_a_saved_soft_prompt_decodes_as_the_peft_model_does(tiny_model: Path, tmp_path: Path, method: str) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from haneul.lm.generate import Generator
    from haneul.lm.ptuning import load_soft_prompt, main

    texts = tiny_corpus(24, seed=3)
    rows = [(t, 1 - i % 2) for i, t in enumerate(texts)]
    config = {"model": str(tiny_model), "train": str(_write_nsmc(tmp_path / "train.txt", rows[:16])),
              "test": str(_write_nsmc(tmp_path / "test.txt", rows[16:])), "out": str(tmp_path / "soft"),
              "method": method, "steps": 3, "batch_size": 4, "num_virtual_tokens": 3, "shots": 1, "lr": 0.5,
              "template": "리뷰: {text} 감정:", "verbalizers": {"0": " 부정", "1": " 긍정"}}
    (tmp_path / "config.json").write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    torch.set_num_threads(1)
    assert main([str(tmp_path / "config.json")]) == 0  # how a studio session runs it
    base, vectors, record = load_soft_prompt(tmp_path / "soft")
    assert base == tiny_model.resolve() and tuple(vectors.shape) == (3, 48) and record["method"] == method

    gen = Generator.from_pretrained(base).with_soft_prompt(vectors)
    plain = Generator.from_pretrained(base)
    assert gen.context_window == plain.context_window - 3
    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), tmp_path / "soft").eval()
    prompts = ["리뷰: 정말 재미있었어요 감정:", "리뷰: 별로 감정:"] + [f"리뷰: {t} 감정:" for t in texts[16:]]
    got = gen.generate(prompts, temperature=0, max_tokens=6, repetition_penalty=1.0, stop_at_eos=False)
    for prompt, completion in zip(prompts, got, strict=True):
        seq = gen.tokenizer.encode(prompt)
        want = []
        for _ in range(6):  # greedy by whole forward passes (PEFT's own cached generate drifts from them)
            with torch.no_grad():
                want.append(int(peft(input_ids=torch.tensor([seq + want])).logits[0, -1].argmax()))
        assert completion.token_ids == want
    # the vectors change answers: without them the same model says something else for some prompts
    bare = plain.generate(prompts, temperature=0, max_tokens=6, repetition_penalty=1.0, stop_at_eos=False)
    assert any(a.token_ids != b.token_ids for a, b in zip(bare, got, strict=True))


def test_a_soft_prompt_of_another_model_or_a_missing_folder_is_refused(tiny_model: Path, tmp_path: Path) -> None:
    from haneul.errors import NotFound
    from haneul.lm.generate import Generator
    from haneul.lm.ptuning import load_soft_prompt

    with pytest.raises(NotFound, match="not a learned soft prompt"):
        load_soft_prompt(tmp_path)
    with pytest.raises(InvalidInput, match="does not fit"):
        Generator.from_pretrained(tiny_model).with_soft_prompt(torch.zeros(3, 7))
