"""The model contract the harness scores against: option log-likelihoods and greedy generation.

A backend implements two primitives. ``loglikelihood(context, continuations)`` returns, per
continuation, the summed log-probability of its tokens after the context and its token count;
``generate`` continues prompts greedily until a stop string. Backends that cannot give
log-probabilities (some OpenAI-compatible servers) set ``supports_loglikelihood = False`` and the
runner answers choice tasks by generation instead.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence


class Backend(ABC):
    name: str = "backend"
    #: the longest prompt + answer in tokens, or None when unknown (no fit check is made)
    max_length: int | None = None
    supports_loglikelihood: bool = True

    @abstractmethod
    def loglikelihood(self, context: str, continuations: Sequence[str]) -> list[tuple[float, int]]:
        """``[(sum log p(continuation | context), n_tokens), ...]`` for each continuation."""

    def loglikelihood_many(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[tuple[float, int]]]:
        """Score many ``(context, continuations)`` requests; backends that can batch override this."""
        return [self.loglikelihood(context, conts) for context, conts in requests]

    @abstractmethod
    def generate(self, prompt: str, max_new_tokens: int, stop: Sequence[str]) -> str:
        """Greedy continuation of ``prompt``, cut before the first stop string."""

    def token_count(self, text: str) -> int | None:
        """Tokens in ``text`` (for the context-length check), or None when the backend cannot tell."""
        return None

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "max_length": self.max_length}


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    cut = len(text)
    for s in stop:
        if s:
            pos = text.find(s)
            if pos != -1:
                cut = min(cut, pos)
    return text[:cut]
