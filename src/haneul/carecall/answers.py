"""A seeded generator of labelled Korean phone answers, the training data of the answer classifier.

CareCall (Lee et al., 2020) reads short spoken answers to scripted check-in questions; labelled call
transcripts are not open, so :func:`generate` writes answers from templates: an optional filler
("어", "음"), a yes or no word, what follows it about the asked symptom, sometimes a second clause about
another symptom ("근데 열이 좀 나요"), temperatures and counts read out the three ways Koreans say them
(digits, Sino-Korean through :func:`haneul.text.korean.sino`, native through
:func:`haneul.text.korean.native`), the requests to call later or to talk to a person, and noise. Then
the recogniser's habits: spaces dropped, fillers doubled. The templates are data,
``data/answer_templates.yaml`` next to this module, read and checked on first use.
"""

from __future__ import annotations

import functools
import random
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any

import yaml

from haneul.errors import InvalidInput
from haneul.text.korean import native, sino

__all__ = ["Answer", "generate", "load_templates"]

_SLOTS = ("fever", "cough", "sore_throat", "breathing", "taste_smell", "contact")
_REQUIRED = ("questions", "fillers", "yes_words", "no_words", "hedges", "slot_yes", "slot_no", "symptom_present",
             "symptom_absent", "joiners", "plain_yes", "plain_no", "unknown", "unknown_temperature", "later", "human",
             "unclear", "temperature_no", "temperature_yes", "temperature", "number", "free_yes", "free_no")
# how often each kind of answer is drawn
_MIX = (("slot", 34), ("plain", 14), ("temperature", 16), ("number", 9), ("symptoms", 7), ("free", 4),
        ("unknown", 4), ("later", 4), ("human", 4), ("unclear", 4))


@dataclass(frozen=True)
class Answer:
    question: str
    expect: str
    slot: str | None
    text: str
    intent: str
    value: float | None = None
    symptoms: dict[str, bool] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@functools.lru_cache(maxsize=1)
def load_templates() -> dict[str, Any]:
    """The templates in ``data/answer_templates.yaml``; raises InvalidInput when a section is missing."""
    text = resources.files("haneul.carecall").joinpath("data", "answer_templates.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    missing = [k for k in _REQUIRED if k not in data]
    missing += [f"questions.{s}" for s in (*_SLOTS, "plain", "temperature", "number", "symptoms", "free")
                if s not in data.get("questions", {})]
    missing += [f"{part}.{s}" for part in ("symptom_present", "symptom_absent") for s in _SLOTS
                if s not in data.get(part, {})]
    if missing:
        raise InvalidInput(f"answer_templates.yaml lacks {', '.join(missing)}; restore them from the repository")
    return data


class _Writer:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.t = load_templates()

    def pick(self, key: str) -> str:
        return self.rng.choice(self.t[key])

    def fill(self, template: str) -> str:
        return " ".join(template.replace("{hedge}", self.rng.choice(self.t["hedges"])).split())

    def lead(self, word_key: str | None, p: float = 0.7) -> str:
        """A filler, then maybe a yes / no word: "어 네", "음 아니요"."""
        parts = [self.pick("fillers")] if self.rng.random() < 0.25 else []
        if word_key and self.rng.random() < p:
            parts.append(self.pick(word_key))
        return " ".join(parts)

    def question(self, key: str) -> str:
        return self.rng.choice(self.t["questions"][key])

    def symptom_clause(self, exclude: str | None) -> tuple[str, str, bool]:
        other = self.rng.choice([s for s in _SLOTS if s != exclude])
        present = self.rng.random() < 0.5
        return other, self.fill(self.rng.choice(self.t["symptom_present" if present else "symptom_absent"][other])), present

    # -- the kinds of answer

    def slot(self) -> Answer:
        slot = self.rng.choice(_SLOTS)
        yes = self.rng.random() < 0.5
        word = "yes_words" if yes else "no_words"
        body = self.fill(self.pick("slot_yes" if yes else "slot_no")) if self.rng.random() < 0.7 else ""
        if self.rng.random() < 0.3:  # name the symptom itself instead of the generic phrase
            body = self.fill(self.rng.choice(self.t["symptom_present" if yes else "symptom_absent"][slot]))
        lead = self.lead(word, p=0.9 if not body else 0.6)
        if not body and not any(w in lead for w in self.t[word]):
            lead = (lead + " " + self.pick(word)).strip()
        symptoms = {slot: yes}
        text = f"{lead} {body}"
        if self.rng.random() < 0.25:
            other, clause, present = self.symptom_clause(slot)
            text += f" {self.pick('joiners')} {clause}"
            symptoms[other] = present
        return Answer(self.question(slot), "yesno", slot, text, "yes" if yes else "no", None, symptoms)

    def plain(self) -> Answer:
        yes = self.rng.random() < 0.5
        word = "yes_words" if yes else "no_words"
        body = self.pick("plain_yes" if yes else "plain_no") if self.rng.random() < 0.75 else ""
        lead = self.lead(word, p=0.6 if body else 1.0)
        if not body and not lead.strip():
            lead = self.pick(word)
        return Answer(self.question("plain"), "yesno", None, f"{lead} {body}", "yes" if yes else "no")

    def temperature(self) -> Answer:
        spec = self.t["temperature"]
        lo, hi = round(spec["low"] * 10), round(spec["high"] * 10)
        tenths = self.rng.randint(lo, hi)
        value = tenths / 10
        r = self.rng.random()
        if r < 0.12:
            return self._temperature_words()
        spoken, value = self._spoken_temperature(tenths)
        text = self.rng.choice(spec["templates"]).replace("{t}", spoken)
        symptoms = {}
        if self.rng.random() < 0.15:
            other, clause, present = self.symptom_clause("fever")
            text += f" {self.pick('joiners')} {clause}"
            symptoms[other] = present
        return Answer(self.question("temperature"), "temperature", None, f"{self.lead(None)} {text}", "yes", value,
                      symptoms)

    def _spoken_temperature(self, tenths: int) -> tuple[str, float]:
        whole, tenth = divmod(tenths, 10)
        value = tenths / 10
        style = self.rng.randrange(7)
        if style == 0:
            return f"{value:.1f}도", value
        if style == 1:
            return f"{value:.1f}", value
        if style == 2:
            return (f"{whole}도 {tenth}부" if tenth else f"{whole}도"), value
        if style == 3:
            return sino(f"{value:.1f}") + " 도", value
        if style == 4:
            if tenth == 5 and self.rng.random() < 0.5:
                return f"{native(whole)} 도 반", value
            return (f"{native(whole)} 도 {sino(tenth)} 부" if tenth else f"{native(whole)} 도"), value
        if style == 5:
            return f"{tenths}", value  # the point was not heard: 378
        return sino(whole) + " 점 " + sino(tenth) + " 도", value

    def _temperature_words(self) -> Answer:
        r = self.rng.random()
        if r < 0.4:
            return Answer(self.question("temperature"), "temperature", None, self.pick("temperature_no"), "no", None,
                          {"fever": False})
        if r < 0.6:
            return Answer(self.question("temperature"), "temperature", None, self.pick("temperature_yes"), "yes", None,
                          {"fever": True})
        return Answer(self.question("temperature"), "temperature", None, self.pick("unknown_temperature"), "unknown")

    def number(self) -> Answer:
        spec = self.t["number"]
        if self.rng.random() < 0.12:
            return Answer(self.question("number"), "number", None, self.rng.choice(spec["none"]), "no", 0.0)
        n = self.rng.randint(1, 12)
        counter = self.rng.choice(spec["counters"])
        if counter == "회" or self.rng.random() < 0.2:
            spoken = (sino(n) if self.rng.random() < 0.5 else str(n)) + " " + counter
        else:
            spoken = native(n) + " " + counter
        value = float(n)
        if counter == "시간" and self.rng.random() < 0.3:
            spoken += " 반"
            value += 0.5
        text = self.rng.choice(spec["templates"]).replace("{n}", spoken)
        return Answer(self.question("number"), "number", None, f"{self.lead(None)} {text}", "yes", value)

    def symptoms(self) -> Answer:
        symptoms: dict[str, bool] = {}
        clauses = []
        for _ in range(self.rng.randint(1, 3)):
            slot, clause, present = self.symptom_clause(None)
            if slot in symptoms:
                continue
            symptoms[slot] = present
            clauses.append(clause)
        text = f" {self.pick('joiners')} ".join(clauses) if self.rng.random() < 0.5 else " ".join(clauses)
        intent = "yes" if any(symptoms.values()) else "no"
        return Answer(self.question("symptoms"), "symptoms", None, f"{self.lead(None)} {text}", intent, None, symptoms)

    def free(self) -> Answer:
        yes = self.rng.random() < 0.6
        return Answer(self.question("free"), "free", None, self.pick("free_yes" if yes else "free_no"),
                      "yes" if yes else "no")

    def request(self, intent: str) -> Answer:
        expect, slot, question = self._any_question()
        if intent == "unknown" and expect == "temperature" and self.rng.random() < 0.5:
            text = self.pick("unknown_temperature")
        else:
            text = self.pick(intent)
        if intent in ("later", "human") and self.rng.random() < 0.3:
            text = f"{self.pick('no_words')} {text}"
        return Answer(question, expect, slot, f"{self.lead(None)} {text}" if intent != "unclear" else text, intent)

    def _any_question(self) -> tuple[str, str | None, str]:
        kind = self.rng.choice(("slot", "plain", "temperature", "number", "symptoms", "free"))
        if kind == "slot":
            slot = self.rng.choice(_SLOTS)
            return "yesno", slot, self.question(slot)
        if kind == "plain":
            return "yesno", None, self.question("plain")
        return kind, None, self.question(kind)


def _asr(text: str, rng: random.Random) -> str:
    """The recogniser's habits: one answer in five loses its spaces, some lose one space."""
    text = " ".join(text.split())
    r = rng.random()
    if r < 0.2:
        return text.replace(" ", "")
    if r < 0.35 and " " in text:
        words = text.split(" ")
        i = rng.randrange(len(words) - 1)
        return " ".join(words[:i] + [words[i] + words[i + 1]] + words[i + 2:])
    return text


def generate(n: int, seed: int = 0) -> list[Answer]:
    """``n`` labelled answers drawn with ``seed`` (the same seed gives the same list)."""
    if n < 0:
        raise InvalidInput(f"cannot generate {n} answers; pass n >= 0")
    rng = random.Random(seed)
    writer = _Writer(rng)
    kinds = [k for k, _ in _MIX]
    weights = [w for _, w in _MIX]
    out = []
    for _ in range(n):
        kind = rng.choices(kinds, weights)[0]
        if kind in ("unknown", "later", "human", "unclear"):
            answer = writer.request(kind)
        else:
            answer = getattr(writer, kind)()
        text = _asr(answer.text, rng) if answer.intent != "unclear" else answer.text
        out.append(Answer(answer.question, answer.expect, answer.slot, text, answer.intent, answer.value,
                          dict(answer.symptoms)))
    return out
