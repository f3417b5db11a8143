"""Small building blocks for tests and quick benchmarks: a tiny tokenizer and Llama model built from
config in memory, and a hand-computable toy backend.

Nothing here downloads weights; everything is built in a second on a CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from haneul.evals.backends.base import Backend, cut_at_stop

SAMPLE_TEXTS = (
    "리뷰: 정말 재미있는 영화였다 감정: 긍정",
    "리뷰: 지루하고 별로였다 감정: 부정",
    "전제: 그는 집에 갔다 가설: 그는 밖에 있다 관계: 아니오 예 아마도",
    "문장 1: 남자가 춤을 춘다 문장 2: 한 남자가 춤을 추고 있다 유사도: 0 1 2 3 4 5",
    "질문: 한글을 만든 사람은? 답변: 세종대왕",
    "<|im_start|>user\n안녕하세요<|im_end|>\n<|im_start|>assistant\n반갑습니다<|im_end|>\n",
    "The quick brown fox jumps over the lazy dog. A B C D 정답:",
)


def tiny_tokenizer(texts: Sequence[str] = SAMPLE_TEXTS, vocab_size: int = 300) -> Any:
    """A byte-level BPE tokenizer trained on ``texts``, wrapped as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(list(texts), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


def tiny_llama(tokenizer: Any, seed: int = 0, hidden: int = 32, layers: int = 2, max_positions: int = 512) -> Any:
    """:func:`haneul.lm.testing.tiny_llama` sized to ``tokenizer`` (its vocabulary and special tokens)."""
    from haneul.lm.testing import tiny_llama as build

    return build(len(tokenizer), hidden=hidden, layers=layers, max_positions=max_positions, seed=seed,
                 bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                 pad_token_id=tokenizer.pad_token_id)  # fmt: skip


class ToyBackend(Backend):
    """A backend whose scores are given by a plain function, so expected results are hand-computable.

    ``score(context, continuation) -> (logprob, n_tokens)``; generation returns ``answer(prompt)``.
    Every call is counted, which tests use to check that resumed runs skip finished items.
    """

    name = "toy"

    def __init__(
        self,
        score: Callable[[str, str], tuple[float, int]],
        answer: Callable[[str], str] | None = None,
        max_length: int | None = None,
        fail_after: int | None = None,
    ) -> None:
        self.score = score
        self.answer = answer or (lambda prompt: "")
        self.max_length = max_length
        self.fail_after = fail_after
        self.calls = 0

    def _tick(self) -> None:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("toy backend crashed on purpose")

    def loglikelihood(self, context: str, continuations: Sequence[str]) -> list[tuple[float, int]]:
        self._tick()
        return [self.score(context, c) for c in continuations]

    def generate(self, prompt: str, max_new_tokens: int, stop: Sequence[str]) -> str:
        self._tick()
        return cut_at_stop(self.answer(prompt), stop)

    def token_count(self, text: str) -> int | None:
        # one "token" per whitespace-separated word keeps length checks hand-computable
        return len(text.split()) if self.max_length else None
