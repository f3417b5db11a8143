"""The call itself: a turn machine that walks a scenario one answer at a time, whatever the channel.

CareCall (Lee et al., 2020, the call scenario) asks each monitored person the same questions, re-asks when it did
not understand, hands the call to staff when asked, and sends the answers with alerts to public-health
staff. :class:`CallAgent` does exactly that and nothing about transport: :meth:`CallAgent.start`
returns what the agent says first, :meth:`CallAgent.hear` takes what the callee said (text from a
terminal, a simulator or a speech recogniser) and returns the agent's next lines, and
:attr:`CallAgent.record` is the :class:`CallRecord` staff read: answers with their raw text,
temperature, symptoms, alerts with reasons, a timed transcript and a Korean one-line summary that
the dialogue memory (:mod:`haneul.dialog`, Keep Me Updated) can take as a session summary.

What an answer means comes from an *understander* (by default
:func:`haneul.carecall.understand.understand`, imported on first use); anything with the same call
signature works, so tests and simulations can pass their own. :func:`memory_context` is the hook
for the successor's memory-grounded small talk: it turns an earlier call into the ``memory_prompt``
a scenario's ``recall`` node says.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from haneul.carecall.scenario import SYMPTOM_SLOTS, Node, Scenario, resolve
from haneul.errors import HaneulError, InvalidInput

__all__ = [
    "Alert",
    "Answer",
    "CallAgent",
    "CallRecord",
    "Turn",
    "Understander",
    "Understood",
    "answer_phrase",
    "default_understander",
    "memory_context",
]

#: a temperature outside this range is a mishearing (365 for 36.5, a year), so the agent asks again
PLAUSIBLE_TEMPERATURE = (30.0, 45.0)
HUMAN_REASON = "상담원 연결 요청"
# what the agent says when a scenario has no on_human / on_later node of its own
_DEFAULT_HANDOFF = "네, 담당자에게 바로 연결해 드릴게요. 잠시만 기다려 주세요."
_DEFAULT_LATER = "네, 알겠습니다. 편하실 때 다시 전화드릴게요."
_DEFAULT_REPROMPT = "죄송하지만 잘 못 들었어요. {prompt}"
_ENDINGS = {"handed_off": HUMAN_REASON, "callback_requested": "재통화 요청", "hung_up": "통화 중 끊김"}


class Understood(Protocol):
    """The fields of an understanding the agent reads (see ``haneul.carecall.understand.Understanding``)."""

    @property
    def intent(self) -> str: ...

    @property
    def value(self) -> float | None: ...

    @property
    def symptoms(self) -> Mapping[str, bool]: ...


Understander = Callable[..., Understood]


def default_understander() -> Understander:
    """The package's understander, imported only when a call first needs it."""
    try:
        from haneul.carecall.understand import understand
    except ModuleNotFoundError as exc:
        if exc.name != "haneul.carecall.understand":
            raise
        raise HaneulError("haneul.carecall.understand is not installed; pass understander= to CallAgent") from None
    return understand


@dataclass(frozen=True)
class _Silence:
    intent: str = "unclear"
    value: float | None = None
    symptoms: Mapping[str, bool] = field(default_factory=dict)


@dataclass
class Answer:
    """What the callee said to one question: ``status`` is answered, unknown (모름) or unanswered."""

    slot: str
    node: str
    text: str
    intent: str
    value: float | None = None
    status: str = "answered"
    attempts: int = 1


@dataclass(frozen=True)
class Alert:
    """Something staff must look at: ``code`` for filters (fever, breathing, human), ``reason`` to read."""

    code: str
    reason: str
    node: str


@dataclass(frozen=True)
class Turn:
    """One utterance: ``speaker`` is agent or callee, ``at`` seconds since the epoch (the agent's clock)."""

    speaker: str
    text: str
    at: float
    node: str | None = None


@dataclass
class CallRecord:
    """The result of one call, filled as the call goes; final once :attr:`CallAgent.done`."""

    scenario: str
    person: str = ""
    outcome: str | None = None
    answers: dict[str, Answer] = field(default_factory=dict)
    temperature: float | None = None
    symptoms: dict[str, bool] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)
    transcript: list[Turn] = field(default_factory=list)
    summary: str = ""
    started_at: float | None = None
    ended_at: float | None = None
    day: int | None = None
    #: how the call was carried (text, audio); set by the channel, "" when nobody said
    channel: str = ""
    #: audio channel: seconds from the end of each caller turn to the agent's reply (empty over text)
    latencies: list[float] = field(default_factory=list)
    #: what went wrong behind the call without ending it, e.g. an unreachable LM the rules stood in for
    notes: list[str] = field(default_factory=list)

    @property
    def turns(self) -> int:
        """How many times the callee spoke (silences included)."""
        return sum(1 for t in self.transcript if t.speaker == "callee")

    @property
    def escalated(self) -> bool:
        return bool(self.alerts)

    @property
    def alert_codes(self) -> set[str]:
        return {a.code for a in self.alerts}

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["turns"] = self.turns
        return out


def _number(value: float) -> str:
    return f"{value:.1f}" if value != int(value) or value >= 30 else f"{value:g}"


class _Context(dict):
    """Prompt fields; a missing one is an error naming the field, not a KeyError mid-call."""

    def __missing__(self, key: str) -> str:
        raise InvalidInput(f"a prompt needs {{{key}}}; pass context={{'{key}': ...}} to CallAgent")


class CallAgent:
    """One call through ``scenario``: ``start()``, then ``hear(text)`` until ``done``; the result is ``record``.

    ``understander(text, expect=..., slot=...)`` says what an answer means (default: the package's);
    ``context`` fills prompt placeholders such as ``{name}`` and ``{memory_prompt}``; ``clock`` stamps
    the transcript (pass a fake one for reproducible records).
    """

    def __init__(
        self,
        scenario: Scenario | str | Path,
        understander: Understander | None = None,
        context: Mapping[str, Any] | None = None,
        *,
        person: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.scenario = scenario if isinstance(scenario, Scenario) else resolve(scenario)
        self.context = _Context(context or {})
        self._understander = understander
        self._clock = clock
        self._pending: Node | None = None
        self._attempts = 0
        self._direct: set[str] = set()  # symptom slots answered by their own question
        self._started = False
        self.done = False
        self.record = CallRecord(scenario=self.scenario.id, person=person or str(self.context.get("name", "")))
        self._check_context()

    def _check_context(self) -> None:
        """Fail before dialling, not in the middle of a call, when a prompt needs a field nobody gave."""
        for node in self.scenario.nodes.values():
            missing = self.scenario.placeholders(node) - set(node.requires) - set(self.context)
            if missing and not node.requires:
                name = sorted(missing)[0]
                raise InvalidInput(f"node {node.id!r} of {self.scenario.id} needs {{{name}}}; "
                                   f"pass context={{'{name}': ...}} to CallAgent")

    # -- the channel-facing interface ---------------------------------------------------------

    @property
    def expecting(self) -> tuple[str, str | None] | None:
        """``(expect, slot)`` of the question waiting for an answer, or None."""
        if self._pending is None or self.done:
            return None
        return self._pending.expect, self._pending.slot

    def start(self) -> list[str]:
        """Begin the call; returns the agent's first utterances (up to and including the first question)."""
        if self._started:
            raise InvalidInput("this call has already started; create a new CallAgent for another call")
        self._started = True
        self.record.started_at = self._clock()
        return self._run(self.scenario.start)

    def hear(self, text: str) -> list[str]:
        """What the callee said (``""`` for silence); returns what the agent says next."""
        if self.done:
            raise InvalidInput("the call is over; create a new CallAgent for another call")
        if self._pending is None:
            raise InvalidInput("the call has not started; call start() first")
        node = self._pending
        text = (text or "").strip()
        self._log("callee", text, node.id)
        heard = self._understand(text, node) if text else _Silence()
        if heard.intent == "human":
            return self._leave(self.scenario.on_human, "handed_off")
        if heard.intent == "later":
            return self._leave(self.scenario.on_later, "callback_requested")
        self._attempts += 1
        if not self._usable(node, heard, text):
            if self._attempts <= node.retries:
                return self._say([self._fill(node.reprompt or _DEFAULT_REPROMPT, node, prompt=self._fill(
                    node.prompt, node))], node)
            self._keep(node, text, heard, status="unanswered")
            return self._run(node.mismatch if node.type == "identity" else node.next)
        self._keep(node, text, heard)
        return self._run(self._route(node, heard))

    def hang_up(self) -> CallRecord:
        """The callee hung up: the call ends as hung_up, keeping every answer given so far."""
        if not self.done:
            self._finish("hung_up")
        return self.record

    def no_answer(self) -> CallRecord:
        """Nobody picked up: the call ends as no_answer without a word said."""
        if self._started:
            raise InvalidInput("the call was answered; use hang_up() to end it")
        self._started = True
        self.record.started_at = self._clock()
        self._finish("no_answer")
        return self.record

    # -- steps ---------------------------------------------------------------------------------

    def _understand(self, text: str, node: Node) -> Understood:
        if self._understander is None:
            self._understander = default_understander()
        # the slot is a hint about which symptom a bare 네 / 아니요 confirms; other slots mean nothing to it
        slot = node.slot if node.slot in SYMPTOM_SLOTS else None
        return self._understander(text, expect=node.expect, slot=slot)

    @staticmethod
    def _usable(node: Node, heard: Understood, text: str) -> bool:
        """Whether the answer settles the question; if not, the agent asks again."""
        if node.type == "identity":
            return heard.intent in ("yes", "no")
        if node.expect == "yesno":
            return heard.intent in ("yes", "no", "unknown")
        if node.expect == "temperature":
            if heard.value is None:
                return heard.intent in ("no", "unknown")  # not measured: an answer, without a number
            low, high = PLAUSIBLE_TEMPERATURE
            return low <= heard.value <= high
        if node.expect == "number":
            return heard.value is not None or heard.intent in ("no", "unknown")
        if node.expect == "symptoms":
            return heard.intent != "unclear" or bool(heard.symptoms)
        return bool(text)  # free text: anything said is the answer

    def _keep(self, node: Node, text: str, heard: Understood, *, status: str = "answered") -> None:
        """Store the answer, its symptoms and the alerts it raises."""
        slot = node.slot or node.id
        value = heard.value if status == "answered" else None
        if status == "answered" and heard.intent == "unknown" and node.expect != "free":
            status = "unknown"
        if node.expect == "temperature" and value is None and status == "answered":
            status = "unknown"
        self.record.answers[slot] = Answer(slot=slot, node=node.id, text=text, intent=heard.intent, value=value,
                                           status=status, attempts=self._attempts)
        if status == "unanswered":
            return
        if node.expect == "temperature" and value is not None:
            self.record.temperature = float(value)
        for name, present in (heard.symptoms or {}).items():
            if name not in self._direct:  # a symptom told in passing; its own question has the last word
                self.record.symptoms[name] = bool(present)
        if node.slot in SYMPTOM_SLOTS and node.expect == "yesno" and heard.intent in ("yes", "no"):
            self.record.symptoms[node.slot] = heard.intent == "yes"
            self._direct.add(node.slot)
        for rule in node.alerts:
            if rule.when(heard) and rule.code not in self.record.alert_codes:
                shown = "" if value is None else _number(float(value))
                self.record.alerts.append(Alert(rule.code, self._fill(rule.reason, node, value=shown), node.id))

    @staticmethod
    def _route(node: Node, heard: Understood) -> str | None:
        if node.type == "identity":
            return node.next if heard.intent == "yes" else node.mismatch
        for branch in node.branches:
            if branch.when(heard):
                return branch.goto
        return node.next

    def _run(self, nid: str | None) -> list[str]:
        """Say nodes from ``nid`` on until one waits for an answer or ends the call."""
        said: list[str] = []
        self._pending = None
        while nid is not None:
            node = self.scenario.nodes[nid]
            if any(not self.context.get(key) for key in node.requires):
                nid = node.next  # e.g. a recall node with nothing remembered
                continue
            said += self._say([self._fill(node.prompt, node)], node)
            if node.asks:
                self._pending, self._attempts = node, 0
                return said
            if node.ends:
                self._end_at(node)
                return said
            nid = node.next
        self._finish("completed")
        return said

    def _leave(self, target: str | None, outcome: str) -> list[str]:
        """The callee asked for a person or for a later call: go to the scenario's node for it."""
        if target is not None:
            return self._run(target)
        said = self._say([_DEFAULT_HANDOFF if outcome == "handed_off" else _DEFAULT_LATER], None)
        if outcome == "handed_off":
            self._alert("human", HUMAN_REASON, self._pending.id if self._pending else "")
        self._finish(outcome)
        return said

    def _end_at(self, node: Node) -> None:
        if node.type == "handoff":
            self._alert("human", node.reason or HUMAN_REASON, node.id)
            self._finish("handed_off")
        else:
            self._finish(node.outcome)

    def _alert(self, code: str, reason: str, node: str) -> None:
        if code not in self.record.alert_codes:
            self.record.alerts.append(Alert(code, reason, node))

    def _finish(self, outcome: str) -> None:
        if outcome == "completed" and self.record.alerts:
            outcome = "escalated"
        self.record.outcome = outcome
        self.record.ended_at = self._clock()
        self.record.summary = self.summarize()
        self._pending = None
        self.done = True

    # -- text ----------------------------------------------------------------------------------

    def _fill(self, template: str, node: Node, **extra: str) -> str:
        fields = _Context({**self.context, **extra})
        try:
            return template.format_map(fields)
        except InvalidInput as exc:
            raise InvalidInput(f"node {node.id!r}: {exc.message}") from None

    def _say(self, lines: list[str], node: Node | None) -> list[str]:
        for line in lines:
            self._log("agent", line, node.id if node else None)
        return lines

    def _log(self, speaker: str, text: str, node: str | None) -> None:
        self.record.transcript.append(Turn(speaker, text, self._clock(), node))

    def summarize(self) -> str:
        """The answers as one Korean line, e.g. ``체온 37.8도, 기침 있음, 인후통 없음``."""
        parts: list[str] = []
        for answer in self.record.answers.values():
            node = self.scenario.nodes[answer.node]
            phrase = answer_phrase(node, answer)
            if phrase:
                parts.append(phrase)
        if self.record.outcome == "no_answer" and not self.record.answers:
            parts.append("전화 받지 않음")
        elif self.record.outcome in _ENDINGS:
            parts.append(_ENDINGS[self.record.outcome])
        return ", ".join(parts)


def answer_phrase(node: Node, answer: Answer) -> str:
    label = node.label or node.slot or node.id
    if node.type == "identity":
        return "" if answer.intent == "yes" else "본인 확인 안 됨"
    if answer.status == "unanswered":
        return f"{label} 응답 없음"
    if answer.intent in node.summary:
        return node.summary[answer.intent]
    if node.expect == "temperature":
        return f"{label} {_number(answer.value)}도" if answer.value is not None else f"{label} 모름"
    if node.expect == "number" and answer.value is not None:
        return f"{label} {answer.value:g}"
    if node.expect in ("free", "symptoms"):
        return f"{label}: {answer.text}"
    return {"yes": f"{label} 있음", "no": f"{label} 없음"}.get(answer.intent, f"{label} 모름")


# ------------------------------------------------------------------------------------------------
# memory hook

#: how the agent recalls an earlier answer: (slot, what it was) -> the clause before "하셨는데"
REMEMBERED: dict[tuple[str, str], str] = {
    ("fever", "yes"): "열이 있으시다고",
    ("cough", "yes"): "기침하신다고",
    ("sore_throat", "yes"): "목이 아프시다고",
    ("breathing", "yes"): "숨이 차시다고",
    ("taste_smell", "yes"): "맛이나 냄새를 잘 못 느끼신다고",
    ("health", "no"): "몸이 불편하시다고",
    ("sleep", "no"): "잠을 잘 못 주무신다고",
    ("meals", "no"): "식사를 잘 못 하신다고",
    ("mood", "no"): "기분이 가라앉는다고",
}


def memory_context(previous: CallRecord | None = None, *, remembered: list[str] | None = None) -> dict[str, str]:
    """``{"memory_prompt": "지난번에 기침하신다고 하셨는데 좀 나아지셨어요?"}`` from an earlier call.

    ``previous`` is the person's last :class:`CallRecord`; ``remembered`` gives the clauses directly
    (e.g. ``["무릎이 아프시다고"]``, from a memory store) and wins over ``previous``. At most two
    are said, so the question stays one breath long. Returns ``{}`` when there is nothing to recall,
    which makes a scenario's ``recall`` node skip itself.
    """
    clauses = list(remembered or [])
    if not clauses and previous is not None:
        if previous.temperature is not None and "fever" in previous.alert_codes:
            clauses.append(REMEMBERED[("fever", "yes")])
        for name, present in previous.symptoms.items():
            clause = REMEMBERED.get((name, "yes" if present else "no"))
            if clause and clause not in clauses:
                clauses.append(clause)
        for slot, answer in previous.answers.items():
            clause = REMEMBERED.get((slot, answer.intent)) if answer.status == "answered" else None
            if clause and clause not in clauses and slot not in SYMPTOM_SLOTS:
                clauses.append(clause)
    if not clauses:
        return {}
    said = " 하시고 ".join(clauses[:2])
    return {"memory_prompt": f"지난번에 {said} 하셨는데 좀 나아지셨어요?"}
