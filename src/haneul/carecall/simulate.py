"""A synthetic population to call: people with habits, illnesses that evolve over days, and Korean answers.

Checking a call flow and its alerts needs people to call whose truth is known; the people CareCall
(Lee et al., 2020) monitors cannot be, so campaigns here phone stand-ins. A :class:`Persona` has a
name, an age, an answering habit (terse, chatty, hedging or confused), chances of not picking up, asking for a later call, asking for a person
or hanging up, and a health course over days: an infected persona has an onset day, a temperature
curve that rises and falls around it and symptoms (cough, sore throat, breathing difficulty, loss of
taste or smell) on days of their own; elderly check-in facts (meals, sleep, pain, mood, needs) vary
day to day. :class:`SimulatedCallee` answers the agent in varied natural Korean — digits, Sino-Korean
numerals (삼십칠 점 오), the old 도/부 reading (37도 5부), hedges, mishearings, requests for later or for a
person — worded from ``scenarios/_callee_phrases.yaml``, and remembers what it meant, so
:meth:`SimulatedCallee.oracle` can stand in for a perfect understander. Everything is deterministic
given the seed.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from haneul.carecall.scenario import SCENARIO_DIR, SYMPTOM_SLOTS
from haneul.carecall.understand import Understanding
from haneul.errors import InvalidInput
from haneul.text.korean import sino

__all__ = ["HABITS", "Health", "Persona", "SimulatedCallee", "population"]

HABITS = ("terse", "chatty", "hedging", "confused")
PHRASES = SCENARIO_DIR / "_callee_phrases.yaml"
FEVER = 37.5

_SURNAMES = "김이박최정강조윤장임한오서신권황안송전홍"
_GIVEN = ("민준", "서연", "지훈", "수빈", "영호", "순자", "말순", "정희", "하늘", "도윤", "예은", "상철", "옥순",
          "재민", "은정", "경수", "미숙", "태호", "영자", "현우", "지아", "병철", "춘자", "성민")  # fmt: skip
# how often a habit says something the agent cannot use, on the first try and on a re-ask
_UNCLEAR = {"terse": (0.03, 0.0), "chatty": (0.05, 0.02), "hedging": (0.12, 0.05), "confused": (0.35, 0.15)}
_UNKNOWN = {"terse": 0.01, "chatty": 0.01, "hedging": 0.08, "confused": 0.05}
# the share of the peak fever a day after onset reaches (day 0 = onset)
_FEVER_SHAPE = (0.6, 1.0, 0.9, 0.6, 0.3, 0.1)


@dataclass(frozen=True)
class Health:
    """How a persona is on one day: the truth the simulated answers come from."""

    day: int
    temperature: float
    cough: bool = False
    sore_throat: bool = False
    breathing: bool = False
    taste_smell: bool = False
    contact: bool = False
    meals: bool = True
    sleep: bool = True
    pain: bool = False
    mood: bool = True
    needs: bool = False

    @property
    def fever(self) -> bool:
        return self.temperature >= FEVER

    @property
    def unwell(self) -> bool:
        return self.fever or self.cough or self.sore_throat or self.breathing or self.pain or not self.sleep


@dataclass(frozen=True)
class Persona:
    """A person under monitoring. ``symptom_days`` maps a symptom to its first and last day after onset."""

    id: str
    name: str
    age: int
    habit: str = "terse"
    p_no_answer: float = 0.0
    p_later: float = 0.0
    p_human: float = 0.0
    p_hang_up: float = 0.0
    p_unmeasured: float = 0.0
    infected: bool = False
    onset_day: int | None = None
    baseline: float = 36.5
    peak: float = 36.5
    symptom_days: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    contact: bool = False
    frailty: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.habit not in HABITS:
            raise InvalidInput(f"unknown habit {self.habit!r}; use one of {', '.join(HABITS)}")

    def health(self, day: int) -> Health:
        """The truth on ``day`` (day 0 is the first day of the campaign)."""
        rng = random.Random(f"{self.seed}:{self.id}:health:{day}")
        since = None if self.onset_day is None else day - self.onset_day
        temp = self.baseline + rng.uniform(-0.2, 0.2)
        if self.infected and since is not None and 0 <= since < len(_FEVER_SHAPE):
            temp += (self.peak - self.baseline) * _FEVER_SHAPE[since]
        # a healthy temperature stays under the line: noise must not invent a fever
        temp = round(min(temp, 37.2) if not self.infected else temp, 1)
        ill = {s: since is not None and lo <= since <= hi for s, (lo, hi) in self.symptom_days.items()}
        frail = self.frailty
        return Health(
            day=day, temperature=temp, cough=ill.get("cough", False), sore_throat=ill.get("sore_throat", False),
            breathing=ill.get("breathing", False), taste_smell=ill.get("taste_smell", False), contact=self.contact,
            meals=rng.random() > frail, sleep=rng.random() > frail * 1.5, pain=rng.random() < frail * 1.5,
            mood=rng.random() > frail, needs=rng.random() < frail * 0.5,
        )


def population(n: int, seed: int = 0, *, infected: float = 0.3, elderly: bool = False) -> list[Persona]:
    """``n`` personas, the same for the same seed; about ``infected`` of them fall ill near the start.

    ``elderly`` draws ages 65–95 (the check-in population) instead of 19–90.
    """
    if n < 0:
        raise InvalidInput(f"population size must be >= 0, got {n}")
    rng = random.Random(f"population:{seed}")
    people = []
    for i in range(n):
        age = rng.randint(65, 95) if elderly else rng.randint(19, 90)
        # older people are likelier to mishear or wander on the phone
        habit_weights = (0.35, 0.25, 0.2, 0.2 + max(0, age - 60) / 100)
        habit = rng.choices(HABITS, weights=habit_weights)[0]
        sick = rng.random() < infected
        onset = rng.randint(-2, 2) if sick else None
        baseline = round(rng.uniform(36.1, 36.8), 1)
        febrile = sick and rng.random() < 0.7
        peak = round(rng.uniform(37.7, 39.3), 1) if febrile else baseline
        days: dict[str, tuple[int, int]] = {}
        if sick:
            for symptom, chance, first, length in (("cough", 0.65, (0, 2), (2, 6)),
                                                   ("sore_throat", 0.5, (0, 1), (1, 4)),
                                                   ("breathing", 0.2, (1, 3), (1, 4)),
                                                   ("taste_smell", 0.3, (1, 3), (2, 7))):
                if rng.random() < chance:
                    start = rng.randint(*first)
                    days[symptom] = (start, start + rng.randint(*length))
        people.append(Persona(
            id=f"p{i:04d}", name=rng.choice(_SURNAMES) + rng.choice(_GIVEN), age=age, habit=habit,
            p_no_answer=rng.choice((0.0, 0.05, 0.1)), p_later=rng.choice((0.0, 0.02, 0.04)),
            p_human=rng.choice((0.0, 0.01, 0.03)), p_hang_up=rng.choice((0.0, 0.01, 0.02)),
            p_unmeasured=rng.choice((0.0, 0.05)), infected=sick, onset_day=onset, baseline=baseline, peak=peak,
            symptom_days=days, contact=sick and rng.random() < 0.5, frailty=round(rng.uniform(0.05, 0.3), 2),
            seed=seed,
        ))
    return people


def _meant(intent: str, value: float | None = None, symptoms: Mapping[str, bool] | None = None) -> Understanding:
    """What the simulated callee meant by its last answer, as an understander would report it."""
    return Understanding(intent, value, dict(symptoms or {}), method="oracle")


@functools.cache
def _phrases() -> dict[str, Any]:
    import yaml

    return yaml.safe_load(PHRASES.read_text(encoding="utf-8"))["answers"]


def _temperature_words(value: float, rng: random.Random) -> str:
    """A temperature the way people read it: 37.5, 37.5도, 삼십칠 점 오 도, 37도 5부, 삼십칠 도 오 부."""
    whole, tenth = int(value), round(value * 10) % 10
    forms = [f"{value:.1f}", f"{value:.1f}도", sino(f"{value:.1f}"), sino(f"{value:.1f}") + " 도"]
    if tenth:
        forms += [f"{whole}도 {tenth}부", f"{sino(whole)} 도 {sino(tenth)} 부"]
    else:
        forms += [f"{whole}도", f"{sino(whole)} 도"]
    return rng.choice(forms)


class SimulatedCallee:
    """One persona picking up one call: ``reply(agent_utterance, day, slot_hint)`` gives its answer.

    ``reply`` returns None when the person hangs up. ``told`` holds what the person conveyed per slot
    (the meaning, not the words) for checking a campaign against the truth.
    """

    def __init__(self, persona: Persona, *, seed: int = 0, call: int = 0) -> None:
        self.persona = persona
        self.seed = seed
        self.call = call
        self.told: dict[str, Understanding] = {}
        self._rngs: dict[int, random.Random] = {}
        self._plans: dict[int, tuple[str, int] | None] = {}
        self._replies: dict[int, int] = {}
        self._attempts: dict[tuple[int, str], int] = {}
        self._last: tuple[str, Understanding] | None = None

    def _rng(self, day: int) -> random.Random:
        if day not in self._rngs:
            self._rngs[day] = random.Random(f"{self.seed}:{self.persona.id}:{day}:{self.call}")
        return self._rngs[day]

    def picks_up(self, day: int) -> bool:
        return self._rng(day).random() >= self.persona.p_no_answer

    def _plan(self, day: int) -> tuple[str, int] | None:
        """Whether this call gets cut short (later, human, hang-up) and at which reply."""
        if day not in self._plans:
            rng, p = self._rng(day), self.persona
            roll, at = rng.random(), rng.randint(1, 6)
            plan = None
            for kind, chance in (("later", p.p_later), ("human", p.p_human), ("hang_up", p.p_hang_up)):
                if roll < chance:
                    plan = (kind, at)
                    break
                roll -= chance
            self._plans[day] = plan
        return self._plans[day]

    def reply(self, agent_utterance: str, day: int = 0, slot_hint: str | None = None) -> str | None:
        rng = self._rng(day)
        n = self._replies[day] = self._replies.get(day, 0) + 1
        plan = self._plan(day)
        if plan is not None and plan[1] == n:
            if plan[0] == "hang_up":
                self._last = None
                return None
            return self._say(plan[0], "*", _meant(plan[0]), rng)
        slot = slot_hint or "*"
        tries = self._attempts[(day, slot)] = self._attempts.get((day, slot), 0) + 1
        first, again = _UNCLEAR[self.persona.habit]
        if rng.random() < (first if tries == 1 else again):
            return self._say("unclear", "*", _meant("unclear"), rng)
        meaning = self._intended(slot, day, rng)
        self.told[slot] = meaning
        return self._say(meaning.intent, slot, meaning, rng)

    def _intended(self, slot: str, day: int, rng: random.Random) -> Understanding:
        h = self.persona.health(day)
        habit = self.persona.habit
        if slot == "temperature":
            # someone with a fever notices it and measures; only the well sometimes skip it
            if not h.fever and rng.random() < self.persona.p_unmeasured:
                return _meant("unknown")
            return _meant("yes", value=h.temperature)
        if slot in ("identity", "health_detail", "needs_detail"):
            return _meant("yes")
        if rng.random() < _UNKNOWN[habit]:
            return _meant("unknown")
        truth: dict[str, bool] = {
            "fever": h.fever, "cough": h.cough, "sore_throat": h.sore_throat, "breathing": h.breathing,
            "taste_smell": h.taste_smell, "contact": h.contact, "meals": h.meals, "sleep": h.sleep,
            "health": not h.pain, "mood": h.mood, "needs": h.needs, "recall": not h.unwell,
        }
        yes = truth.get(slot, True)
        symptoms = {slot: yes} if slot in SYMPTOM_SLOTS else {}
        return _meant("yes" if yes else "no", symptoms=symptoms)

    def _say(self, kind: str, slot: str, meaning: Understanding, rng: random.Random) -> str:
        bank = _phrases()
        habit = self.persona.habit
        options = bank.get(slot, {}).get(kind) or bank["*"].get(kind) or bank["*"]["yes"]
        lines = options.get(habit) or options["terse"]
        text = rng.choice(lines)
        if meaning.value is not None:
            text = text.replace("{t}", _temperature_words(meaning.value, rng))
        text = text.replace("{name}", self.persona.name)
        self._last = (text, meaning)
        return text

    def oracle(self, text: str, expect: str = "yesno", slot: str | None = None, **_: Any) -> Understanding:
        """A perfect understander for this callee: what it meant by ``text`` (unclear for anything else)."""
        if self._last is not None and self._last[0] == text:
            return self._last[1]
        return _meant("unclear")
