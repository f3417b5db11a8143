"""The text channel: a call as lines of text, with a person at a terminal, a script or a simulated callee.

:func:`run_call` drives one :class:`~haneul.carecall.agent.CallAgent` against a :class:`Callee` until
the call ends and returns its :class:`~haneul.carecall.agent.CallRecord`. :func:`simulate_campaign`
phones a whole simulated population, ``calls_per_day`` rounds a day (CareCall called twice a day,
Lee et al. 2020), each round's calls running concurrently on one asyncio loop; every call opens
with what that person said in their previous answered call (:func:`~haneul.carecall.agent.memory_context`),
which is how the elderly check-in's ``recall`` node gets its memory.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from haneul.carecall.agent import CallAgent, CallRecord, Understander, default_understander, memory_context
from haneul.carecall.scenario import Scenario, resolve
from haneul.carecall.simulate import Persona, SimulatedCallee
from haneul.errors import InvalidInput

__all__ = ["Callee", "ScriptedCallee", "TerminalCallee", "run_call", "run_call_async", "simulate_campaign"]

#: a call longer than this many answers is stuck (a callee that never says anything usable)
MAX_TURNS = 200


class Callee(Protocol):
    """Whoever answers the phone. ``reply`` returns None to hang up; it may also be a coroutine."""

    def picks_up(self, day: int) -> bool: ...

    def reply(self, agent_utterance: str, day: int, slot_hint: str | None) -> str | None: ...


class ScriptedCallee:
    """Answers from a list, one per question; hangs up when the list runs out."""

    def __init__(self, answers: Iterable[str]) -> None:
        self.answers = list(answers)
        self._next = 0

    @classmethod
    def from_file(cls, path: str | Path) -> ScriptedCallee:
        """One answer per line; a line holding only ``-`` is silence, lines starting with ``#`` are skipped."""
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        return cls("" if line.strip() == "-" else line.strip() for line in lines
                   if line.strip() and not line.lstrip().startswith("#"))

    def picks_up(self, day: int) -> bool:
        return True

    def reply(self, agent_utterance: str, day: int = 0, slot_hint: str | None = None) -> str | None:
        if self._next >= len(self.answers):
            return None
        self._next += 1
        return self.answers[self._next - 1]


class TerminalCallee:
    """A person typing answers: the agent's lines are printed, an empty line is silence, EOF hangs up."""

    def __init__(self, read: Callable[[str], str] = input, write: Callable[[str], Any] = print,
                 agent_label: str = "상담원") -> None:
        self.read, self.write, self.agent_label = read, write, agent_label

    def picks_up(self, day: int) -> bool:
        return True

    def reply(self, agent_utterance: str, day: int = 0, slot_hint: str | None = None) -> str | None:
        self.end(agent_utterance)
        try:
            return self.read("나> ")
        except (EOFError, KeyboardInterrupt):
            self.write("")  # end the prompt's line before the record is printed
            return None

    def end(self, agent_utterance: str) -> None:
        """The agent's last lines, after which nobody answers."""
        for line in agent_utterance.splitlines():
            self.write(f"{self.agent_label}> {line}")


async def run_call_async(agent: CallAgent, callee: Callee, day: int = 0, *, max_turns: int = MAX_TURNS) -> CallRecord:
    """:func:`run_call` as a coroutine; the callee's ``reply`` may be async (a network or audio channel)."""
    agent.record.day = day
    if not callee.picks_up(day):
        return agent.no_answer()
    said = agent.start()
    while not agent.done:
        expecting = agent.expecting
        if agent.record.turns >= max_turns or expecting is None:
            agent.hang_up()
            break
        answer: Any = callee.reply("\n".join(said), day, expecting[1])
        if inspect.isawaitable(answer):
            answer = await answer
        else:
            await asyncio.sleep(0)  # let the other calls of a campaign take their turn
        if answer is None:
            agent.hang_up()
            break
        said = agent.hear(answer)
    end = getattr(callee, "end", None)
    if callable(end) and said and agent.record.outcome != "hung_up":
        end("\n".join(said))
    return agent.record


def run_call(agent: CallAgent, callee: Callee, day: int = 0, *, max_turns: int = MAX_TURNS) -> CallRecord:
    """Run one call to its end (or the callee's hang-up) and return the record.

    It starts its own event loop; code already inside one awaits :func:`run_call_async` instead.
    """
    return asyncio.run(run_call_async(agent, callee, day, max_turns=max_turns))


def simulate_campaign(
    population: Sequence[Persona],
    scenario: Scenario | str | Path,
    days: int = 3,
    calls_per_day: int = 2,
    seed: int = 0,
    *,
    understander: Understander | None = None,
    oracle: bool = False,
    concurrency: int = 50,
    clock: Callable[[], float] = time.time,
) -> list[CallRecord]:
    """Call every persona ``calls_per_day`` times a day for ``days`` days; records in call order.

    ``oracle=True`` understands every answer perfectly (each callee says what it meant), which
    measures the scenario alone; otherwise ``understander`` (default: the package's) reads the text.
    At most ``concurrency`` calls are in progress at once. The same seed gives the same records.
    Like :func:`run_call` it starts its own event loop.
    """
    return asyncio.run(_campaign(population, scenario, days, calls_per_day, seed, understander=understander,
                                 oracle=oracle, concurrency=concurrency, clock=clock))


async def _campaign(
    population: Sequence[Persona],
    scenario: Scenario | str | Path,
    days: int,
    calls_per_day: int,
    seed: int,
    *,
    understander: Understander | None,
    oracle: bool,
    concurrency: int,
    clock: Callable[[], float],
) -> list[CallRecord]:
    if days < 0 or calls_per_day < 1 or concurrency < 1:
        raise InvalidInput(f"need days >= 0, calls_per_day >= 1 and concurrency >= 1; got {days}, "
                           f"{calls_per_day}, {concurrency}")
    plan = scenario if isinstance(scenario, Scenario) else resolve(scenario)
    if not oracle and understander is None:
        understander = default_understander()
    gate = asyncio.Semaphore(concurrency)
    last: dict[str, CallRecord] = {}  # each person's latest answered call, for the recall node
    records: list[CallRecord] = []

    async def call(persona: Persona, day: int, index: int) -> CallRecord:
        callee = SimulatedCallee(persona, seed=seed, call=index)
        context = {"name": persona.name, **memory_context(last.get(persona.id))}
        agent = CallAgent(plan, callee.oracle if oracle else understander, context, person=persona.id, clock=clock)
        async with gate:
            return await run_call_async(agent, callee, day)

    for day in range(days):
        for index in range(calls_per_day):
            # a round's calls overlap; the next round waits so it can recall this one
            jobs: list[Awaitable[CallRecord]] = [call(p, day, index) for p in population]
            done = await asyncio.gather(*jobs)
            for persona, record in zip(population, done, strict=True):
                if record.answers:
                    last[persona.id] = record
            records.extend(done)
    return records
