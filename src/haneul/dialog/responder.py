"""Memory-grounded responder: the next system turn, bringing up what is remembered (Keep Me Updated §3.3).

A retrieval step ranks the person's memory sentences against the recent dialogue with BM25 — over
character bigrams by default (no analyser needed), or over kiwipiepy content morphemes — and the top
sentences go into the prompt of an OpenAI-compatible chat model. Without an endpoint, or when it
fails, a template asks about the most relevant remembered fact and the result says why.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from haneul.dialog.summarizer import as_turns
from haneul.dialog.text import compact
from haneul.errors import InvalidInput


def _bigram_terms(text: str) -> list[str]:
    key = compact(text)
    return [key[i : i + 2] for i in range(len(key) - 1)] or ([key] if key else [])


def _morpheme_terms(text: str) -> list[str]:
    from haneul.dialog.summarizer import _kiwi

    return [t.form for t in _kiwi().tokenize(text) if t.tag.split("-")[0] in ("NNG", "NNP", "VV", "VA", "XR", "SL", "MAG")]


def bm25_rank(query: str, docs: Sequence[str], *, tokens: str = "bigram", k1: float = 1.2, b: float = 0.75) -> list[tuple[int, float]]:
    """BM25 scores of ``docs`` for ``query``, best first (ties by position); zero scores are dropped."""
    if tokens not in ("bigram", "morpheme"):
        raise InvalidInput(f"unknown retrieval tokens {tokens!r}; use bigram or morpheme")
    split = _bigram_terms if tokens == "bigram" else _morpheme_terms
    dterms = [Counter(split(d)) for d in docs]
    if not docs:
        return []
    avg = sum(sum(c.values()) for c in dterms) / len(docs) or 1.0
    df = Counter(t for c in dterms for t in c)
    q = set(split(query))
    scores = []
    for i, c in enumerate(dterms):
        length = sum(c.values())
        s = 0.0
        for t in q:
            if t not in c:
                continue
            idf = math.log(1 + (len(docs) - df[t] + 0.5) / (df[t] + 0.5))
            s += idf * c[t] * (k1 + 1) / (c[t] + k1 * (1 - b + b * length / avg))
        if s > 0:
            scores.append((i, s))
    return sorted(scores, key=lambda x: (-x[1], x[0]))


@dataclass
class Response:
    text: str
    used_memory: list[str]
    backend: str
    fallback: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "used_memory": self.used_memory, "backend": self.backend, "fallback": self.fallback}


RESPONDER_SYSTEM = (
    "You are a warm Korean care-call agent talking to an older person. Continue the conversation with "
    "one short polite Korean turn. Where it fits, bring up a remembered fact and ask how it is now "
    "(e.g. '지난번에 이가 아프시다고 하셨는데, 지금은 좀 어떠세요?'). Never invent facts not in the memory."
)


class Responder:
    def __init__(self, client: Any | None = None, *, top_k: int = 3, tokens: str = "bigram", history_turns: int = 4):
        self.client = client
        self.top_k = top_k
        self.tokens = tokens
        self.history_turns = history_turns

    def retrieve(self, memory: Sequence[str], dialogue: Sequence[Any]) -> list[str]:
        turns = as_turns(dialogue)
        query = " ".join(t for _, t in turns[-self.history_turns :])
        ranked = bm25_rank(query, memory, tokens=self.tokens)
        picked = [memory[i] for i, _ in ranked[: self.top_k]]
        if not picked and memory:
            picked = list(memory[-self.top_k :])  # nothing overlaps: the newest facts are the best guess
        return picked

    def respond(self, memory: Sequence[str], dialogue: Sequence[Any]) -> Response:
        used = self.retrieve(memory, dialogue)
        if self.client is None:
            return Response(self.template(used), used, "template", "no LM endpoint configured")
        from haneul.dialog.lm import LMUnavailable

        turns = as_turns(dialogue)
        mem = "\n".join(f"- {m}" for m in used) or "- (없음)"
        convo = "\n".join(f"{'상담원' if r == 'system' else '사용자'}: {t}" for r, t in turns)
        try:
            text = self.client.chat([
                {"role": "system", "content": RESPONDER_SYSTEM},
                {"role": "user", "content": f"Memory:\n{mem}\n\nDialogue:\n{convo}\n상담원:"},
            ])
        except LMUnavailable as exc:
            return Response(self.template(used), used, "template", f"LM responder failed ({exc.message}); answered from a template")
        return Response(text.strip(), used, "lm")

    @staticmethod
    def template(used: Sequence[str]) -> str:
        if not used:
            return "요즘 어떻게 지내세요?"
        return f"지난번에 '{used[0]}'라고 기억하고 있는데, 요즘은 좀 어떠세요?"
