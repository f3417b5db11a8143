"""Session summariser: a dialogue session → short sentences of *new* information about the user.

Keep Me Updated (§3.1) summarises each session into sentences such as "노인정에 다니심" before the
memory update. Three backends live here:

* :class:`LMSummarizer` prompts any OpenAI-compatible chat endpoint; when it times out or fails,
  the extractive backend answers instead and the result says so;
* :class:`ExtractiveSummarizer` needs no LM: it keeps the user's declarative sentences that carry
  content (a noun and a predicate; no questions, no "네" / "고마워요"), drops fillers and first-person
  subjects, and rewrites the sentence ending into the summary style with kiwipiepy's morpheme
  analysis and joiner — "-(으)심" (honorific) when the user is the subject, "-음/-ㅁ" when another
  subject is named ("딸이 서울에 삶"), "-고 계심" for a progressive "-고 있어요". Sentences that repeat
  the current memory are skipped.
* :class:`FineTunedSummarizer` runs a causal LM fine-tuned on (dialogue, summary) pairs of
  CareCall-memory-format files (``haneul dialog train-summarizer``, :mod:`haneul.dialog.finetune`):
  the prompt is the current memory and the dialogue as "시스템: …" / "사용자: …" lines
  (:func:`finetune_prompt`), the answer one summary sentence per line or "없음"; decoding is greedy.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from haneul.dialog.text import MAX_SENTENCE_CHARS, DialogWarning, bigrams, clean_sentences, jaccard, normalize
from haneul.errors import InvalidInput, NotFound

_PREDICATES = ("VV", "VA", "VX", "VCP", "VCN", "XSV", "XSA")
_NOUNS = ("NNG", "NNP", "NR", "SL", "SN", "NNB")
_FIRST_PERSON = {"저", "나", "제", "내", "우리"}
_PAST = {"었", "았", "였", "었었", "았었"}
# verbs with a lexical honorific form: 먹다 → 드시다, 자다 → 주무시다
_HONORIFIC_VERBS = {("먹", "VV"): "드시", ("마시", "VV"): "드시", ("자", "VV"): "주무시"}
_NOT_NEW = 0.8
# other people (and pets) as a topic ("딸은 …") make the sentence about them, not the user
_OTHERS = {"딸", "아들", "손자", "손녀", "손주", "남편", "아내", "부인", "며느리", "사위", "친구", "동생", "언니", "누나",
           "형", "오빠", "선생님", "의사", "강아지", "고양이", "가족", "엄마", "아빠", "어머니", "아버지"}  # a sentence this similar to a memory sentence is not new information


@dataclass
class SummaryResult:
    sentences: list[str]
    backend: str
    fallback: str | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"sentences": self.sentences, "backend": self.backend, "fallback": self.fallback, "warnings": self.warnings}


def as_turns(dialogue: Sequence[Any]) -> list[tuple[str, str]]:
    """Accept Turn objects or ``{"role", "text"}`` dicts; returns ``(role, text)`` pairs."""
    out = []
    for i, turn in enumerate(dialogue):
        role = getattr(turn, "role", None) if not isinstance(turn, dict) else turn.get("role")
        text = getattr(turn, "text", None) if not isinstance(turn, dict) else turn.get("text")
        if role not in ("system", "user") or not isinstance(text, str):
            raise InvalidInput(f"dialogue[{i}] must be {{\"role\": \"system\"|\"user\", \"text\": str}}, got {turn!r:.60}")
        out.append((role, text))
    return out


_KIWI: Any = None
_KIWI_LOCK = threading.Lock()


def _kiwi():
    global _KIWI
    with _KIWI_LOCK:
        if _KIWI is None:
            from kiwipiepy import Kiwi

            _KIWI = Kiwi()
        return _KIWI


def _tag(t: Any) -> str:
    return t.tag.split("-")[0]


def to_summary_style(sentence: str) -> str | None:
    """Rewrite one user sentence into the memory style, or ``None`` when it carries no information."""
    kiwi = _kiwi()
    toks = list(kiwi.tokenize(sentence))
    if not toks or sentence.rstrip().endswith("?") or any(t.form == "?" for t in toks):
        return None
    # leading interjections, conjunctions, punctuation and a first-person subject carry no information
    while toks and (_tag(toks[0]) in ("IC", "MAJ", "SP", "SF", "SS") or (_tag(toks[0]) == "NP" and toks[0].form in _FIRST_PERSON)):
        first = toks.pop(0)
        if _tag(first) == "NP" and toks and _tag(toks[0]) in ("JKS", "JX", "JKG"):
            toks.pop(0)
    content = [t for t in toks if _tag(t) in _NOUNS and t.form not in _FIRST_PERSON]
    last_pred = max((i for i, t in enumerate(toks) if _tag(t) in _PREDICATES), default=None)
    if last_pred is None or not content:
        return None
    past = any(t.form in _PAST and _tag(t) == "EP" for t in toks[last_pred + 1 :])
    pred = toks[last_pred]
    # keep the speaker's own spelling and spacing up to the predicate; only the ending is rebuilt
    prefix = sentence[toks[0].start : pred.start] if last_pred > 0 else ""
    head = [(pred.form, pred.tag)]
    third_person = any(
        _tag(t) == "JKS" or (_tag(t) == "JX" and i > 0 and toks[i - 1].form in _OTHERS)
        for i, t in enumerate(toks[:last_pred])
    )
    if pred.form == "있" and last_pred > 0 and toks[last_pred - 1].form == "고" and not third_person:
        head = [("계시", "VV")]  # "-고 있어요" → "-고 계심"
        tail = [("었", "EP"), ("음", "ETN")] if past else [("음", "ETN")]
    elif _tag(pred) in ("VCP", "VCN") or pred.form in ("있", "없") or third_person:
        tail = [("었", "EP"), ("음", "ETN")] if past else [("음", "ETN")]
    elif (pred.form, _tag(pred)) in _HONORIFIC_VERBS:
        head = [(_HONORIFIC_VERBS[(pred.form, _tag(pred))], "VV")]
        tail = [("었", "EP"), ("음", "ETN")] if past else [("음", "ETN")]
    else:
        tail = [("시", "EP"), ("었", "EP"), ("음", "ETN")] if past else [("시", "EP"), ("음", "ETN")]
    return normalize(prefix + kiwi.join(head + tail))


class Summarizer:
    name = "summarizer"

    def summarize(self, dialogue: Sequence[Any], memory: Sequence[str] = ()) -> SummaryResult:
        raise NotImplementedError


class ExtractiveSummarizer(Summarizer):
    """Rule-based summaries of the user's turns; needs kiwipiepy but no LM."""

    name = "extractive"

    def __init__(self, max_sentences: int = 10, max_chars: int = MAX_SENTENCE_CHARS):
        self.max_sentences = max_sentences
        self.max_chars = max_chars

    def summarize(self, dialogue: Sequence[Any], memory: Sequence[str] = ()) -> SummaryResult:
        turns = as_turns(dialogue)
        kiwi = _kiwi()
        known = [bigrams(m) for m in memory]
        out: list[str] = []
        for role, text in turns:
            if role != "user" or not text.strip():
                continue
            for sent in kiwi.split_into_sents(text):
                styled = to_summary_style(sent.text)
                if not styled:
                    continue
                grams = bigrams(styled)
                if any(jaccard(grams, k) >= _NOT_NEW for k in known):
                    continue
                known.append(grams)
                out.append(styled)
        kept, warns = clean_sentences(out[: self.max_sentences], where="summary", max_chars=self.max_chars)
        return SummaryResult(kept, self.name, warnings=warns)


SUMMARY_SYSTEM = (
    "You write the long-term memory of a care call service. From the dialogue, list only NEW facts about "
    "the user (health, daily life, family, plans) that are not already in the memory, as short Korean "
    "sentences in the nominal honorific style, e.g. '노인정에 다니심', '식사를 잘 하심'. One fact per line, "
    "each starting with '- '. Write '- 없음' when there is nothing new."
)


def summary_prompt(turns: Sequence[tuple[str, str]], memory: Sequence[str]) -> str:
    role_name = {"system": "상담원", "user": "사용자"}
    lines = ["Memory:"] + ([f"- {m}" for m in memory] or ["- (없음)"]) + ["", "Dialogue:"]
    lines += [f"{role_name[r]}: {t}" for r, t in turns]
    lines += ["", "New facts:"]
    return "\n".join(lines)


def parse_summary(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        line = line.strip().lstrip("-*•0123456789.) ").strip()
        if line and line not in ("없음", "(없음)"):
            out.append(line)
    return out


class LMSummarizer(Summarizer):
    """Summaries from an OpenAI-compatible chat model; falls back to ``fallback`` on failure."""

    name = "lm"

    def __init__(self, client: Any, fallback: Summarizer | None = None, max_chars: int = MAX_SENTENCE_CHARS):
        self.client = client
        self.fallback = fallback
        self.max_chars = max_chars

    def summarize(self, dialogue: Sequence[Any], memory: Sequence[str] = ()) -> SummaryResult:
        from haneul.dialog.lm import LMUnavailable

        turns = as_turns(dialogue)
        try:
            text = self.client.chat([{"role": "system", "content": SUMMARY_SYSTEM},
                                     {"role": "user", "content": summary_prompt(turns, memory)}])
        except LMUnavailable as exc:
            fb = self.fallback or ExtractiveSummarizer(max_chars=self.max_chars)
            res = fb.summarize(dialogue, memory)
            res.fallback = f"LM summariser failed ({exc.message}); summarised by the {fb.name} backend instead"
            return res
        kept, warns = clean_sentences(parse_summary(text), where="summary", max_chars=self.max_chars)
        return SummaryResult(kept, self.name, warnings=warns)


SUMMARIZERS = ("extractive", "lm", "finetuned")


def get_summarizer(name: str = "extractive", *, endpoint: str | None = None, lm_model: str | None = None,
                   timeout: float = 30.0, api_key: str | None = None, model: str | Path | None = None) -> Summarizer:
    """Resolve a summariser by name: extractive, lm (needs ``endpoint``) or finetuned (needs ``model``)."""
    key = name.strip().lower().replace("-", "")
    if key == "extractive":
        return ExtractiveSummarizer()
    if key in ("finetuned", "ft"):
        if not model:
            raise InvalidInput("the finetuned summariser needs a model folder; pass --model DIR made by "
                               "`haneul dialog train-summarizer`")
        return FineTunedSummarizer.load(model)
    if key == "lm":
        if not endpoint:
            raise InvalidInput("the lm summariser needs an endpoint; pass --endpoint http://HOST:PORT/v1")
        from haneul.dialog.lm import ChatClient

        return LMSummarizer(ChatClient(endpoint, model=lm_model, timeout=timeout, api_key=api_key))
    raise InvalidInput(f"unknown summariser {name!r}; use one of {', '.join(SUMMARIZERS)}")


# ------------------------------------------------------------------------------------------------
# fine-tuned backend: one prompt format shared by training (haneul.dialog.finetune) and inference

NOTHING_NEW = "없음"
_SPEAKER = {"system": "시스템", "user": "사용자"}


def finetune_prompt(turns: Sequence[tuple[str, str]], memory: Sequence[str]) -> str:
    """The fine-tuned summariser's input: the memory so far, then the session as speaker lines."""
    lines = ["다음 대화에서 사용자에 대해 새로 알게 된 정보를 한 줄에 한 문장씩 쓰세요. 없으면 '없음'.", "", "기억:"]
    lines += [f"- {m}" for m in memory] or [f"- {NOTHING_NEW}"]
    lines += ["", "대화:"] + [f"{_SPEAKER[r]}: {normalize(t)}" for r, t in turns]
    return "\n".join(lines)


def finetune_target(summary: Sequence[str]) -> str:
    """The answer the model learns: one summary sentence per line, or "없음" for a session without news."""
    return "\n".join(normalize(x) for x in summary if normalize(x)) or NOTHING_NEW


def summary_examples(episodes: Sequence[Sequence[Any]]) -> list[list[dict[str, str]]]:
    """Chat examples ``[user: prompt, assistant: target]``, one per session of CareCall-memory episodes."""
    out = []
    for episode in episodes:
        for sess in episode:
            turns = [(t.role, t.text) for t in sess.dialogue]
            out.append([{"role": "user", "content": finetune_prompt(turns, sess.memory)},
                        {"role": "assistant", "content": finetune_target(sess.summary)}])
    return out


def parse_finetuned(text: str) -> list[str]:
    """Lines of the model's answer; "없음" and blank lines carry no sentence."""
    out = []
    for line in text.splitlines():
        line = line.strip().removeprefix("- ").strip()
        if line and line not in (NOTHING_NEW, f"({NOTHING_NEW})"):
            out.append(line)
    return out


class FineTunedSummarizer(Summarizer):
    """Summaries from a causal LM fine-tuned by ``haneul dialog train-summarizer`` (greedy decoding).

    The answer is split into lines, cleaned like every other summary (blank lines skipped, long
    sentences truncated with a warning) and lines that repeat the memory or an earlier line are
    dropped. A dialogue too long for the model's context loses its oldest turns, with a warning.
    """

    name = "finetuned"

    def __init__(self, generator: Any, *, max_new_tokens: int = 160, max_chars: int = MAX_SENTENCE_CHARS):
        self.generator = generator
        self.max_new_tokens = max_new_tokens
        self.max_chars = max_chars

    @classmethod
    def load(cls, folder: str | Path, **kwargs: Any) -> FineTunedSummarizer:
        from haneul.lm.generate import Generator

        path = Path(folder).expanduser()
        if not (path / "config.json").is_file():
            raise NotFound(f"no fine-tuned summariser in {path}; train one with "
                           "`haneul dialog train-summarizer --data FILE --base MODEL -o DIR`")
        return cls(Generator.from_pretrained(path), **kwargs)

    def _prompt(self, turns: list[tuple[str, str]], memory: Sequence[str]) -> tuple[str, list[str]]:
        gen = self.generator
        budget = gen.context_window - self.max_new_tokens
        dropped = 0
        while True:
            prompt = gen.render_chat([{"role": "user", "content": finetune_prompt(turns[dropped:], memory)}])
            if len(gen.encode_prompt(prompt)) <= budget or dropped >= len(turns):
                break
            dropped += 1
        notes = []
        if dropped:
            notes.append(f"the dialogue is too long for the summariser's context of {gen.context_window} tokens; "
                         f"its first {dropped} turns were left out")
            warnings.warn(notes[-1], DialogWarning, stacklevel=3)
        return prompt, notes

    def summarize(self, dialogue: Sequence[Any], memory: Sequence[str] = ()) -> SummaryResult:
        from haneul.lm.generate import SamplingParams

        turns = as_turns(dialogue)
        prompt, notes = self._prompt(turns, memory)
        params = SamplingParams(max_tokens=self.max_new_tokens, temperature=0.0, stop=["<|im_end|>"])
        text = self.generator.generate(prompt, params)[0].text
        kept, warns = clean_sentences(parse_finetuned(text), where="summary", max_chars=self.max_chars)
        known = [bigrams(m) for m in memory]
        out = []
        for sent in kept:
            grams = bigrams(sent)
            if any(jaccard(grams, k) >= _NOT_NEW for k in known):
                continue  # the model restated something already remembered
            known.append(grams)
            out.append(sent)
        return SummaryResult(out, self.name, warnings=notes + warns)
