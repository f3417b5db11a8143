from __future__ import annotations

from pathlib import Path

import pytest
import torch

from haneul.errors import InvalidInput
from haneul.lm.config import GPTConfig
from haneul.lm.generate import Generator, SamplingParams, _held_back, render_chat, sample_next
from haneul.lm.model import GPT
from haneul.lm.tokenizer import load_tokenizer

CFG = GPTConfig(vocab_size=320, n_layer=2, n_head=4, n_kv_head=2, d_model=32, d_ff=64, max_seq_len=48)


@pytest.fixture(scope="module")
def gen(tiny_model: Path) -> Generator:
    return Generator.from_pretrained(tiny_model, name="tiny")


def test_random_model_batch(tiny_lm: dict[str, Path]) -> None:
    torch.manual_seed(0)
    g = Generator(GPT(CFG), load_tokenizer(tiny_lm["tokenizer"]))
    res = g.generate(["이", "이 영화는 정말 재미"], temperature=0, max_tokens=5, stop_at_eos=False)
    assert [len(c.token_ids) for c in res] == [5, 5]
    assert res[1].token_ids == _naive_greedy(g.model, g.tokenizer.encode("이 영화는 정말 재미"), 5)


def _naive_greedy(model: GPT, ids: list[int], n: int) -> list[int]:
    out = list(ids)
    for _ in range(n):
        logits, _ = model(torch.tensor([out]))
        out.append(int(logits[0, -1].argmax()))
    return out[len(ids) :]


def test_greedy_with_cache_equals_naive_loop(gen: Generator) -> None:
    prompts = ["이 영화는 정말", "배우", "스토리가 너무 지루했어요 하지만"]
    res = gen.generate(prompts, temperature=0, max_tokens=6, stop_at_eos=False)
    for prompt, c in zip(prompts, res, strict=True):
        ids = gen.tokenizer.encode(prompt)
        assert c.token_ids == _naive_greedy(gen.model, ids, 6)
        assert c.prompt_tokens == len(ids) and c.finish_reason == "length"
        assert c.text == gen.tokenizer.decode(c.token_ids)


def test_seeded_sampling_is_reproducible_and_batch_matches_single(gen: Generator) -> None:
    p = SamplingParams(max_tokens=8, temperature=1.0, top_k=50, top_p=0.9, seed=7, stop_at_eos=False)
    a = gen.generate("영화", p)[0].token_ids
    b = gen.generate("영화", p)[0].token_ids
    assert a == b
    assert gen.generate("영화", SamplingParams(max_tokens=8, seed=8, stop_at_eos=False))[0].token_ids != a


def test_stop_strings_and_streaming(gen: Generator) -> None:
    full = gen.generate("이 영화는", temperature=0, max_tokens=12, stop_at_eos=False)[0].text
    assert len(full) > 3
    stop = full[2:4]
    cut = gen.generate("이 영화는", temperature=0, max_tokens=12, stop=[stop], stop_at_eos=False)[0]
    assert cut.text == full[: full.find(stop)] and cut.finish_reason == "stop"
    streamed = list(gen.stream("이 영화는", temperature=0, max_tokens=12, stop_at_eos=False))
    assert "".join(streamed) == full and len(streamed) > 1
    assert "".join(gen.stream("이 영화는", temperature=0, max_tokens=12, stop=[stop], stop_at_eos=False)) == cut.text


def test_sampling_filters_by_hand() -> None:
    logits = torch.tensor([[1.0, 3.0, 2.0, -1.0]])
    assert int(sample_next(logits, None, SamplingParams(temperature=0), None)) == 1
    g = torch.Generator().manual_seed(0)
    draws = {int(sample_next(logits, None, SamplingParams(top_k=2), g)) for _ in range(200)}
    assert draws == {1, 2}
    # softmax([3, 2, 1, -1]) ≈ [.66, .24, .09, .01]: top_p 0.8 keeps the first two
    draws = {int(sample_next(logits, None, SamplingParams(top_p=0.8), g)) for _ in range(200)}
    assert draws == {1, 2}
    # repetition penalty 4 turns logit 3 into 0.75 (< 1): greedy moves to token 2
    assert int(sample_next(logits, torch.tensor([[1]]), SamplingParams(temperature=0, repetition_penalty=4.0), None)) == 2
    with pytest.raises(InvalidInput, match="top_p"):
        SamplingParams(top_p=0).check()


def test_held_back_tail() -> None:
    assert _held_back("abc</", ["</s>"]) == 2
    assert _held_back("abc", ["</s>"]) == 0


def test_prompt_longer_than_context(gen: Generator) -> None:
    with pytest.raises(InvalidInput, match="context window is 128"):
        gen.generate("영화 " * 100, max_tokens=2)


def test_chat_template() -> None:
    text = render_chat(None, [{"role": "user", "content": "안녕"}])
    assert text == "<|im_start|>user\n안녕<|im_end|>\n<|im_start|>assistant\n"
