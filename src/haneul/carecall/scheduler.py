"""The durable call scheduler: planned calls in the database, claimed by workers under a lease.

CareCall (Lee et al., 2020) phoned every person under monitoring at set times each day; a call that
was planned must be placed once, even when the server restarts in between. So every planned call is
a row of ``carecall_attempts`` with an idempotency key (campaign, person, slot, try number) before
any call is placed. A worker *claims* due rows with one ``UPDATE ... WHERE state='planned'`` (or a
claim whose lease has expired) that stamps them with a fresh lease token, places the calls through a
:class:`Dialer`, and records each outcome with an ``UPDATE ... WHERE lease_token=<its token>``: two
workers racing for the same rows get disjoint sets, and a worker killed between claim and outcome
loses nothing — once its lease expires another worker claims the row again (same key) and only one
outcome is ever recorded. Recording an outcome also opens alerts (the call's own, and
``unreachable`` after three unanswered calls in a row), plans the retry the campaign's policy asks
for (quiet hours respected) and, after an answered call, updates the person's memory
(:mod:`haneul.carecall.memory`) that the next call recalls.

The server's worker (:meth:`Scheduler.start_worker`) claims due calls every second and records each
call when it ends, so a call due while others are on the line starts on time. Time comes from an
injected ``now()``: with :class:`SimClock` a three-day campaign runs in seconds
(:meth:`Scheduler.run_until_idle`), which is how the tests and :func:`run_demo` drive it. The
simulated dialers phone stand-in people over the text channel (:class:`SimulatedDialer`) or the
audio channel (:class:`SimulatedAudioDialer`, espeak-ng speech both ways).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import inspect
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine, and_, func, insert, or_, select, update

from haneul.carecall.agent import CallAgent, CallRecord, Understander
from haneul.carecall.alerts import has_live_alert, open_alert, unanswered_streak
from haneul.carecall.campaigns import UNANSWERED, CampaignSpec, Schedule, attempt_key, expand, retry_due
from haneul.carecall.db import attempts, campaign_people, campaigns, new_id, people
from haneul.carecall.memory import CallMemory
from haneul.carecall.people import Person
from haneul.carecall.scenario import Scenario, resolve
from haneul.carecall.simulate import Persona, SimulatedCallee, population
from haneul.errors import Conflict, InvalidInput, NotFound

__all__ = ["OUTCOMES", "CallContext", "Claim", "Dialer", "Scheduler", "SimClock", "SimulatedAudioDialer",
           "SimulatedDialer", "run_demo"]

log = logging.getLogger(__name__)

#: what a recorded attempt's outcome may be (a call's "completed" is recorded as "answered")
OUTCOMES = ("answered", "no_answer", "busy", "failed", "escalated", "callback_requested", "handed_off", "hung_up")
#: a claim not finished within this many seconds is taken to be dead and is claimed again
LEASE_S = 600.0


@dataclass(frozen=True)
class CallContext:
    """What a dialer needs besides the person and the scenario: the prompt ``fields`` for the agent
    (``name``, ``memory_prompt``), the attempt's idempotency ``key`` (a real channel passes it on so a
    re-placed call is recognised), and where the call sits in the campaign."""

    fields: Mapping[str, str]
    key: str
    campaign_id: int
    day: int
    index: int
    try_number: int


class Dialer(Protocol):
    """Places one call and returns its record; ``place`` may be a coroutine function."""

    def place(self, person: Person, scenario: Scenario, context: CallContext) -> CallRecord | Awaitable[CallRecord]:
        ...


@dataclass(frozen=True)
class Claim:
    """One attempt a worker holds under ``token`` until ``lease_until``."""

    id: int
    key: str
    token: str
    team_id: int | None
    campaign_id: int
    person_id: int
    slot: str
    day: int
    index: int
    try_number: int


class SimClock:
    """A settable clock for accelerated campaigns: ``clock()`` is now, ``advance_to(t)`` jumps ahead."""

    def __init__(self, start: float) -> None:
        self.t = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.t

    def advance_to(self, t: float) -> None:
        with self._lock:
            self.t = max(self.t, float(t))

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.t += seconds


def persona_for(person: Person, seed: int = 0) -> Persona:
    """A stand-in persona for a stored person (deterministic from the phone number), for simulated mode."""
    digest = int(hashlib.sha256(f"{seed}:{person.phone}".encode()).hexdigest()[:8], 16)
    base = population(1, seed=digest)[0]
    return Persona(**{**base.__dict__, "id": f"person-{person.id}", "name": person.name})


@dataclass
class _SimulatedCall:
    """One simulated call being placed: who answers, the agent, and the understander it reads with."""

    callee: SimulatedCallee
    agent: CallAgent
    understander: Any


class SimulatedDialer:
    """Places calls to simulated callees over the text channel (:mod:`haneul.carecall.channels.text`).

    ``personas`` maps a phone number to the persona answering it; anyone else gets a deterministic
    stand-in (:func:`persona_for`). ``oracle=True`` understands every answer exactly as the callee
    meant it (fast and exact, for tests and demos); otherwise ``understander`` reads the Korean text
    (one with a ``for_call()`` method, such as :class:`~haneul.carecall.understand.LMUnderstander`,
    gets a view per call whose ``notes`` land in the call's record).
    """

    #: the record's ``channel``
    channel = "text"

    def __init__(self, personas: Mapping[str, Persona] | None = None, *, seed: int = 0, oracle: bool = True,
                 understander: Understander | None = None, clock: Callable[[], float] = time.time) -> None:
        self.personas = dict(personas or {})
        self.seed, self.oracle, self.understander, self.clock = seed, oracle, understander, clock

    def callee(self, person: Person, context: CallContext) -> SimulatedCallee:
        """Who answers this attempt: the person's persona, with a pick-up roll of its own per try."""
        persona = self.personas.get(person.phone) or persona_for(person, self.seed)
        # each try is its own pick-up roll: a retry of an unanswered call may be answered
        return SimulatedCallee(persona, seed=self.seed, call=context.index * 16 + context.try_number)

    def prepare(self, person: Person, scenario: Scenario, context: CallContext, *,
                clock: Callable[[], float] | None = None) -> _SimulatedCall:
        """The callee and the agent of one call, whatever channel carries it."""
        callee = self.callee(person, context)
        if self.oracle:
            understand: Any = callee.oracle
        else:
            for_call = getattr(self.understander, "for_call", None)
            understand = for_call() if callable(for_call) else self.understander
        agent = CallAgent(scenario, understand, dict(context.fields), person=str(person.id),
                          clock=clock or self.clock)
        agent.record.day = context.day
        return _SimulatedCall(callee, agent, understand)

    def finish(self, call: _SimulatedCall, record: CallRecord) -> CallRecord:
        """Stamp the record with the channel and what the understander noted during the call."""
        record.channel = self.channel
        for note in getattr(call.understander, "notes", None) or ():
            if note not in record.notes:
                record.notes.append(note)
        return record

    async def place(self, person: Person, scenario: Scenario, context: CallContext) -> CallRecord:
        from haneul.carecall.channels.text import run_call_async

        call = self.prepare(person, scenario, context)
        return self.finish(call, await run_call_async(call.agent, call.callee, context.day))


class SimulatedAudioDialer(SimulatedDialer):
    """Places calls to simulated callees over the audio channel (:mod:`haneul.carecall.channels.audio`).

    The same people answer as with :class:`SimulatedDialer` (same personas, same pick-up rolls, same
    answers), but each call is an :class:`~haneul.carecall.channels.audio.AudioCall`: the agent's
    lines are synthesised with espeak-ng at 8 kHz, a :class:`~haneul.carecall.channels.audio.SimulatedCaller`
    speaks the persona's answers back the same way, and the channel's voice activity detection, turn
    taking and silence timeouts decide what is an answer. The records are the text channel's, with
    ``channel="audio"`` and the turn ``latencies``.

    The recogniser is ``recognizer`` (anything with ``transcribe(audio) -> str``, shared by all calls),
    or the model of a ``haneul speech`` ``checkpoint`` (loaded on the first call), or by default a
    :class:`~haneul.carecall.channels.audio.ReferenceRecognizer`, which returns the text the simulated
    caller spoke: that tests the audio path (synthesis, framing, end-pointing, turns), not speech
    recognition. With a real recogniser pass ``oracle=False``: the oracle knows only the exact words
    the callee said, so the understander must read what was recognised.

    By default a call runs on a virtual clock as fast as the CPU allows (:func:`~haneul.carecall.channels.audio.run_simulated`,
    in a worker thread); ``realtime=True`` paces it on the event loop, one 20 ms frame at a time
    (:func:`~haneul.carecall.channels.audio.serve`), as a telephone line would. A call is cut after
    ``max_call_s`` seconds of call time.
    """

    channel = "audio"

    def __init__(self, personas: Mapping[str, Persona] | None = None, *, seed: int = 0, oracle: bool = True,
                 understander: Understander | None = None, clock: Callable[[], float] = time.time,
                 recognizer: Any = None, checkpoint: str | Path | None = None, config: Any = None,
                 realtime: bool = False, max_call_s: float = 600.0) -> None:
        from haneul.carecall.channels.audio import AudioConfig, PhoneVoice
        from haneul.speech.synth import check_tools

        if recognizer is not None and checkpoint is not None:
            raise InvalidInput("pass recognizer= or checkpoint=, not both")
        if checkpoint is not None and not Path(checkpoint).exists():
            raise NotFound(f"speech checkpoint {checkpoint} does not exist; train one with `haneul speech train` "
                           "or leave it out to use the reference recogniser")
        check_tools()  # espeak-ng and sox: fail when the dialer is made, not on every call
        super().__init__(personas, seed=seed, oracle=oracle, understander=understander, clock=clock)
        self.config = config or AudioConfig()
        self.voice = PhoneVoice(self.config)  # shared: prompts and answers repeat across calls
        self.realtime, self.max_call_s = realtime, max_call_s
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self._recognizer = recognizer
        self._loading = threading.Lock()

    @property
    def recognizer_name(self) -> str:
        """What recognises the callers: ``reference``, ``checkpoint PATH`` or the recogniser's class."""
        if self.checkpoint is not None:
            return f"checkpoint {self.checkpoint}"
        return "reference" if self._recognizer is None else type(self._recognizer).__name__

    def _shared_recognizer(self) -> Any:
        if self._recognizer is None and self.checkpoint is not None:
            with self._loading:  # the first calls of a batch arrive together; load the model once
                if self._recognizer is None:
                    from haneul.speech.recognizer import Recognizer

                    self._recognizer = Recognizer.from_checkpoint(self.checkpoint)
        return self._recognizer

    async def place(self, person: Person, scenario: Scenario, context: CallContext) -> CallRecord:
        from haneul.carecall.channels.audio import (
            AudioCall,
            ReferenceRecognizer,
            SimulatedCaller,
            VirtualClock,
            run_simulated,
            serve,
        )

        virtual = VirtualClock()
        started = self.clock()
        # on the virtual clock the transcript's times are the call's own, counted from when it was placed
        call = self.prepare(person, scenario, context,
                            clock=self.clock if self.realtime else (lambda: started + virtual()))
        if not call.callee.picks_up(context.day):
            return self.finish(call, call.agent.no_answer())
        reference = ReferenceRecognizer()
        recognizer = (await asyncio.to_thread(self._shared_recognizer)) or reference
        caller = SimulatedCaller(call.callee, self.voice, day=context.day, config=self.config,
                                 recognizer=reference if recognizer is reference else None)
        if self.realtime:
            line = AudioCall(call.agent, recognizer, self.config, voice=self.voice)
            record = await serve(line, caller, max_s=self.max_call_s)
        else:
            line = AudioCall(call.agent, recognizer, self.config, voice=self.voice, clock=virtual)
            record = await asyncio.to_thread(run_simulated, line, caller, virtual, max_s=self.max_call_s)
        return self.finish(call, record)


@dataclass
class _Placed:
    claim: Claim
    record: CallRecord | None
    error: str | None = None
    started_at: float = 0.0
    ended_at: float = 0.0


@dataclass
class _Cache:
    specs: dict[int, CampaignSpec] = field(default_factory=dict)
    scenarios: dict[str, Scenario] = field(default_factory=dict)


class Scheduler:
    """Campaigns and their planned calls in ``engine`` (migrated), placed through ``dialer``.

    ``now`` is the clock (inject a :class:`SimClock` to accelerate), ``lease_s`` how long a claim is
    held before another worker may take it, ``batch`` how many calls one :meth:`run_due` places
    concurrently, ``memory`` where people's memories are kept (default: the same database).
    """

    def __init__(self, engine: Engine, dialer: Dialer | None = None, *, now: Callable[[], float] = time.time,
                 memory: CallMemory | None = None, lease_s: float = LEASE_S, batch: int = 100,
                 name: str | None = None) -> None:
        self.engine = engine
        self.now = now
        self.dialer: Dialer = dialer or SimulatedDialer(clock=now)
        self.memory = memory if memory is not None else CallMemory(engine)
        self.lease_s, self.batch = lease_s, batch
        self.name = name or f"worker-{uuid.uuid4().hex[:8]}"
        self._cache = _Cache()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- campaigns -------------------------------------------------------------------------------

    def create_campaign(self, spec: CampaignSpec, person_ids: Iterable[int], *, team_id: int | None,
                        owner: str = "local") -> dict[str, Any]:
        """Store a campaign (status draft) for people of its team; :meth:`start` plans its calls."""
        ids = sorted(set(person_ids))
        now = self.now()
        with self.engine.begin() as conn:
            found = {r.id: r.team_id for r in conn.execute(select(people.c.id, people.c.team_id)
                                                            .where(people.c.id.in_(ids)))}
            missing = [i for i in ids if i not in found or found[i] != team_id]
            if missing:
                raise NotFound(f"person {missing[0]} not found in the campaign's team")
            cid = new_id(conn.execute(insert(campaigns).values(
                team_id=team_id, name=spec.name, owner=owner, spec=spec.to_dict(), status="draft",
                created_at=now, updated_at=now)))
            if ids:
                conn.execute(insert(campaign_people), [{"campaign_id": cid, "person_id": i} for i in ids])
        return self.get_campaign(cid)

    def spec(self, campaign_id: int) -> CampaignSpec:
        if campaign_id not in self._cache.specs:
            with self.engine.connect() as conn:
                raw = conn.execute(select(campaigns.c.spec).where(campaigns.c.id == campaign_id)).scalar()
            if raw is None:
                raise NotFound(f"campaign {campaign_id} not found")
            self._cache.specs[campaign_id] = CampaignSpec.from_dict(raw)
        return self._cache.specs[campaign_id]

    def scenario(self, name: str) -> Scenario:
        if name not in self._cache.scenarios:
            self._cache.scenarios[name] = resolve(name)
        return self._cache.scenarios[name]

    def get_campaign(self, campaign_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(campaigns).where(campaigns.c.id == campaign_id)).first()
            if row is None:
                raise NotFound(f"campaign {campaign_id} not found")
            members = conn.execute(select(campaign_people.c.person_id).where(
                campaign_people.c.campaign_id == campaign_id).order_by(campaign_people.c.person_id)).scalars().all()
            counts: dict[str, int] = dict(conn.execute(select(attempts.c.state, func.count()).where(
                attempts.c.campaign_id == campaign_id).group_by(attempts.c.state)).all())
            outcomes: dict[str, int] = dict(conn.execute(select(attempts.c.outcome, func.count()).where(
                attempts.c.campaign_id == campaign_id, attempts.c.state == "done").group_by(attempts.c.outcome)).all())
        return {**dict(row._mapping), "people": list(members), "attempts": counts, "outcomes": outcomes}

    def list_campaigns(self, *, teams: set[int] | None = None) -> list[dict[str, Any]]:
        query = select(campaigns.c.id).order_by(campaigns.c.id)
        if teams is not None:
            query = query.where(campaigns.c.team_id.in_(teams))
        with self.engine.connect() as conn:
            ids = conn.execute(query).scalars().all()
        return [self.get_campaign(i) for i in ids]

    def team_of(self, campaign_id: int) -> int | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(campaigns.c.team_id).where(campaigns.c.id == campaign_id)).first()
        if row is None:
            raise NotFound(f"campaign {campaign_id} not found")
        return row.team_id

    def start(self, campaign_id: int) -> dict[str, Any]:
        """Plan every call of the campaign (once: planning again adds nothing) and let workers place them.

        People without consent get no calls; a person's preferred times replace the campaign's.
        """
        spec = self.spec(campaign_id)
        now = self.now()
        with self.engine.begin() as conn:
            status = conn.execute(select(campaigns.c.status, campaigns.c.team_id).where(
                campaigns.c.id == campaign_id)).first()
            if status is None:
                raise NotFound(f"campaign {campaign_id} not found")
            if status.status == "done":
                raise Conflict(f"campaign {campaign_id} is done; create a new campaign to call again")
            known = set(conn.execute(select(attempts.c.key).where(attempts.c.campaign_id == campaign_id)).scalars())
            members = conn.execute(select(people).join(campaign_people, campaign_people.c.person_id == people.c.id)
                                   .where(campaign_people.c.campaign_id == campaign_id)).all()
            rows = []
            for row in members:
                person = Person.from_row(row._mapping)
                if not person.can_call:
                    continue
                for slot in expand(spec.schedule, spec.quiet, person.call_times):
                    key = attempt_key(campaign_id, person.id, slot.planned, 0)
                    if key in known:
                        continue
                    rows.append({"key": key, "team_id": status.team_id, "campaign_id": campaign_id,
                                 "person_id": person.id, "slot": slot.planned, "day": slot.day,
                                 "slot_index": slot.index, "try_number": 0, "due_at": slot.timestamp,
                                 "state": "planned", "claims": 0, "created_at": now})
            if rows:
                conn.execute(insert(attempts), rows)
            conn.execute(update(campaigns).where(campaigns.c.id == campaign_id).values(
                status="running", updated_at=now))
        return self.get_campaign(campaign_id)

    def pause(self, campaign_id: int) -> dict[str, Any]:
        """Stop placing the campaign's calls (planned ones wait; :meth:`start` resumes)."""
        with self.engine.begin() as conn:
            done = conn.execute(update(campaigns).where(campaigns.c.id == campaign_id,
                                                        campaigns.c.status == "running").values(
                status="paused", updated_at=self.now())).rowcount
        if not done:
            status = self.get_campaign(campaign_id)["status"]
            raise Conflict(f"campaign {campaign_id} is {status}; only a running campaign can be paused")
        return self.get_campaign(campaign_id)

    # -- the worker ------------------------------------------------------------------------------

    def _due(self, now: float) -> Any:
        expired = and_(attempts.c.state == "claimed", attempts.c.lease_until < now)
        return or_(and_(attempts.c.state == "planned", attempts.c.due_at <= now), expired)

    def claim(self, limit: int | None = None) -> list[Claim]:
        """Take up to ``limit`` due attempts of running campaigns under a fresh lease.

        The candidates are read first; the claim itself is one UPDATE that re-checks, row by row, that
        each is still unclaimed (or its lease expired), so racing workers split the rows between them.
        Due attempts inside their campaign's quiet hours are moved to the hours' end instead.
        """
        now = self.now()
        limit = limit or self.batch
        with self.engine.connect() as conn:
            found = conn.execute(
                select(attempts.c.id, attempts.c.campaign_id, attempts.c.state)
                .join(campaigns, campaigns.c.id == attempts.c.campaign_id)
                .where(campaigns.c.status == "running", self._due(now))
                .order_by(attempts.c.due_at, attempts.c.id).limit(limit)).all()
        ids, quiet = [], []
        for row in found:
            spec = self.spec(row.campaign_id)
            local = dt.datetime.fromtimestamp(now, spec.schedule.zone)
            if spec.quiet is not None and spec.quiet.contains(local):
                quiet.append((row.id, spec.quiet.shift(local).timestamp()))
            else:
                ids.append(row.id)
        if quiet:
            with self.engine.begin() as conn:
                for aid, due in quiet:
                    # an expired claim goes back to planned too: it is not placed in the quiet hours either
                    conn.execute(update(attempts).where(attempts.c.id == aid, self._due(now)).values(
                        state="planned", due_at=due, lease_token=None, lease_until=None))
        if not ids:
            return []
        token = uuid.uuid4().hex
        with self.engine.begin() as conn:
            conn.execute(update(attempts).where(attempts.c.id.in_(ids), self._due(now)).values(
                state="claimed", lease_token=token, lease_until=now + self.lease_s, claims=attempts.c.claims + 1))
        with self.engine.connect() as conn:
            rows = conn.execute(select(attempts).where(attempts.c.lease_token == token)
                                .order_by(attempts.c.due_at, attempts.c.id)).all()
        return [Claim(id=r.id, key=r.key, token=token, team_id=r.team_id, campaign_id=r.campaign_id,
                      person_id=r.person_id, slot=r.slot, day=r.day, index=r.slot_index,
                      try_number=r.try_number) for r in rows]

    async def _place(self, claim: Claim, person: Person, remembered: Mapping[str, str]) -> _Placed:
        spec = self.spec(claim.campaign_id)
        scenario = self.scenario(spec.scenario)
        fields = {"name": person.name, **remembered}
        context = CallContext(fields=fields, key=claim.key, campaign_id=claim.campaign_id, day=claim.day,
                              index=claim.index, try_number=claim.try_number)
        started = self.now()
        try:
            result: Any = self.dialer.place(person, scenario, context)
            record = await result if inspect.isawaitable(result) else result
        except Exception as exc:  # a channel failing is an outcome of the call, not of the worker
            log.warning("call %s failed: %s", claim.key, exc)
            return _Placed(claim, None, f"{exc.__class__.__name__}: {exc}"[:500], started, self.now())
        return _Placed(claim, record, None, started, self.now())

    def _ready(self, claims: Sequence[Claim]) -> list[tuple[Claim, Person, Mapping[str, str]]]:
        """The claims to place, each with its person and what is remembered of them; a person without
        consent (withdrawn since the call was planned) is not called: the attempt is skipped."""
        if not claims:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(select(people).where(people.c.id.in_({c.person_id for c in claims}))).all()
        found = {r.id: Person.from_row(r._mapping) for r in rows}
        callable_ = [c for c in claims if c.person_id in found and found[c.person_id].can_call]
        skipped = [c for c in claims if c not in callable_]
        if skipped:
            with self.engine.begin() as conn:
                for c in skipped:
                    conn.execute(update(attempts).where(attempts.c.id == c.id, attempts.c.lease_token == c.token)
                                 .values(state="skipped", lease_token=None, error="no consent"))
        remembered = self.memory.contexts({c.person_id for c in callable_})
        return [(c, found[c.person_id], remembered[c.person_id]) for c in callable_]

    def place(self, claims: Sequence[Claim]) -> list[_Placed]:
        """Place the claimed calls concurrently (a person without consent is not called: skipped)."""
        ready = self._ready(claims)

        async def all_calls() -> list[_Placed]:
            return list(await asyncio.gather(*(self._place(c, person, remembered) for c, person, remembered in ready)))

        return asyncio.run(all_calls()) if ready else []

    def finish(self, placed: Sequence[_Placed]) -> list[bool]:
        """Record outcomes in one transaction; a claim whose lease another worker took is not recorded
        (False). Opens alerts, plans retries, closes finished campaigns; then updates memories."""
        now = self.now()
        kept: list[bool] = []
        answered: list[_Placed] = []
        with self.engine.begin() as conn:
            for p in placed:
                c = p.claim
                outcome = _outcome(p.record)
                record = p.record.to_dict() if p.record is not None else None
                done = conn.execute(update(attempts).where(
                    attempts.c.id == c.id, attempts.c.state == "claimed", attempts.c.lease_token == c.token).values(
                    state="done", lease_token=None, lease_until=None, outcome=outcome, record=record,
                    summary=p.record.summary if p.record else None, error=p.error, started_at=p.started_at,
                    ended_at=p.ended_at)).rowcount
                kept.append(bool(done))
                if not done:
                    log.warning("call %s finished after its lease was taken; its outcome is dropped", c.key)
                    continue
                for alert in (p.record.alerts if p.record else []):
                    open_alert(conn, team_id=c.team_id, campaign_id=c.campaign_id, person_id=c.person_id,
                               attempt_id=c.id, code=alert.code, reason=alert.reason, now=now)
                if outcome in UNANSWERED and unanswered_streak(conn, c.campaign_id, c.person_id) and \
                        not has_live_alert(conn, c.person_id, "unreachable", c.campaign_id):
                    open_alert(conn, team_id=c.team_id, campaign_id=c.campaign_id, person_id=c.person_id,
                               attempt_id=c.id, code="unreachable", reason="3회 연속 전화 받지 않음", now=now)
                self._plan_retry(conn, c, outcome, p.ended_at, now)
                if p.record is not None and p.record.answers and outcome not in UNANSWERED:
                    answered.append(p)
            for cid in {p.claim.campaign_id for p in placed}:
                left = conn.execute(select(func.count()).select_from(attempts).where(
                    attempts.c.campaign_id == cid, attempts.c.state.in_(("planned", "claimed")))).scalar_one()
                if not left:
                    conn.execute(update(campaigns).where(campaigns.c.id == cid, campaigns.c.status == "running")
                                 .values(status="done", updated_at=now))
        # after the outcomes are safe: a memory that fails to update never loses or repeats a call
        self.memory.remember_many([(p.claim.person_id, p.record, self.scenario(self.spec(p.claim.campaign_id).scenario),
                                    p.claim.key) for p in answered if p.record is not None])
        return kept

    def _plan_retry(self, conn: Any, c: Claim, outcome: str, ended_at: float, now: float) -> None:
        spec = self.spec(c.campaign_id)
        due = retry_due(ended_at, outcome, c.try_number, spec)
        if due is None:
            return
        key = attempt_key(c.campaign_id, c.person_id, c.slot, c.try_number + 1)
        if conn.execute(select(attempts.c.id).where(attempts.c.key == key)).first() is not None:
            return
        conn.execute(insert(attempts).values(
            key=key, team_id=c.team_id, campaign_id=c.campaign_id, person_id=c.person_id, slot=c.slot, day=c.day,
            slot_index=c.index, try_number=c.try_number + 1, due_at=due, state="planned", claims=0, created_at=now))

    def run_due(self, limit: int | None = None) -> int:
        """Claim, place and record one batch of due calls; returns how many were placed. It runs the
        calls on an event loop of its own, so call it from a worker thread, not from async code."""
        claims = self.claim(limit)
        if not claims:
            return 0
        placed = self.place(claims)
        self.finish(placed)
        return len(placed)

    def next_due(self) -> float | None:
        """When the next planned call of a running campaign is due (or an expired lease), None if none."""
        with self.engine.connect() as conn:
            planned = conn.execute(select(func.min(attempts.c.due_at)).join(
                campaigns, campaigns.c.id == attempts.c.campaign_id).where(
                campaigns.c.status == "running", attempts.c.state == "planned")).scalar()
            leased = conn.execute(select(func.min(attempts.c.lease_until)).where(
                attempts.c.state == "claimed")).scalar()
        times = [t for t in (planned, leased + 1e-3 if leased is not None else None) if t is not None]
        return min(times) if times else None

    def run_until_idle(self, clock: SimClock, *, max_batches: int = 1_000_000) -> int:
        """With an accelerated clock: place every due call, jump to the next due time, until none is left."""
        total = 0
        for _ in range(max_batches):
            n = self.run_due()
            total += n
            if n:
                continue
            nxt = self.next_due()
            if nxt is None:
                break
            clock.advance_to(nxt)
        return total

    # -- the server's worker thread ----------------------------------------------------------------

    def start_worker(self, interval: float = 1.0) -> None:
        """Place due calls in a background thread until :meth:`stop_worker`.

        The thread keeps one event loop: every ``interval`` seconds it claims what is due (at most
        ``batch`` calls on the line at once) and starts those calls; each call's outcome is recorded
        when that call ends. Calls run for minutes, so a call due while others are still talking
        starts within ``interval`` of its due time instead of waiting for them (which is what a
        claim-place-record batch, :meth:`run_due`, would make it do).
        """
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve(interval)),
                                        name=f"carecall-{self.name}", daemon=True)
        self._thread.start()

    async def _serve(self, interval: float) -> None:
        on_line: set[asyncio.Task[None]] = set()
        writing = asyncio.Lock()  # one outcome transaction at a time: SQLite takes one writer anyway
        while not self._stop.is_set():
            free = self.batch - len(on_line)
            ready: list[tuple[Claim, Person, Mapping[str, str]]] = []
            if free > 0:
                try:
                    async with writing:
                        ready = await asyncio.to_thread(self._claim_ready, free)
                except Exception:  # the database away for a moment: the claims' leases keep the calls safe
                    log.exception("carecall worker")
            for claim, person, remembered in ready:
                task = asyncio.create_task(self._call(claim, person, remembered, writing))
                on_line.add(task)
                task.add_done_callback(on_line.discard)
            if not ready:
                await asyncio.sleep(interval)
        # stopping: the calls on the line end and are recorded (a worker killed instead loses nothing:
        # their leases expire and another worker places them again under the same keys)
        if on_line:
            await asyncio.gather(*on_line, return_exceptions=True)

    def _claim_ready(self, limit: int) -> list[tuple[Claim, Person, Mapping[str, str]]]:
        return self._ready(self.claim(limit))

    async def _call(self, claim: Claim, person: Person, remembered: Mapping[str, str], writing: asyncio.Lock) -> None:
        placed = await self._place(claim, person, remembered)
        try:
            async with writing:
                await asyncio.to_thread(self.finish, [placed])
        except Exception:  # not recorded: the lease expires and the call is placed again under its key
            log.exception("carecall worker: recording call %s", claim.key)

    def stop_worker(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    # -- reads ---------------------------------------------------------------------------------------

    def calls(self, *, campaign_id: int | None = None, person_id: int | None = None, teams: set[int] | None = None,
              states: Sequence[str] = (), with_record: bool = False, limit: int | None = None) -> list[dict[str, Any]]:
        """Attempts by due time: their state, outcome and summary (and the whole record when asked)."""
        cols = [c for c in attempts.c if with_record or c.name != "record"]
        query = select(*cols).order_by(attempts.c.due_at, attempts.c.id)
        if campaign_id is not None:
            query = query.where(attempts.c.campaign_id == campaign_id)
        if person_id is not None:
            query = query.where(attempts.c.person_id == person_id)
        if teams is not None:
            query = query.where(attempts.c.team_id.in_(teams))
        if states:
            query = query.where(attempts.c.state.in_(list(states)))
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [{k: v for k, v in r._mapping.items() if k not in ("lease_token",)} for r in conn.execute(query)]


def _outcome(record: CallRecord | None) -> str:
    if record is None:
        return "failed"
    outcome = record.outcome or "failed"
    outcome = "answered" if outcome == "completed" else outcome
    if outcome not in OUTCOMES:
        raise InvalidInput(f"a dialer returned outcome {outcome!r}; outcomes are {', '.join(OUTCOMES)}")
    return outcome


# ------------------------------------------------------------------------------------------------
# the demo


class _FirstThrough:
    """A dialer that places the first ``n`` calls through ``first`` and every later one through ``rest``."""

    def __init__(self, n: int, first: Dialer, rest: Dialer) -> None:
        self.left, self.first, self.rest = n, first, rest
        self.placed_first = 0

    def place(self, person: Person, scenario: Scenario, context: CallContext) -> CallRecord | Awaitable[CallRecord]:
        if self.left > 0:
            self.left -= 1
            self.placed_first += 1
            return self.first.place(person, scenario, context)
        return self.rest.place(person, scenario, context)


def run_demo(engine_or_service: Engine | Scheduler, people: int = 200, days: int = 3, seed: int = 0, *,
             scenario: str = "covid", times: Sequence[str] = ("09:00", "18:00"), team_id: int | None = None,
             start_date: str | None = None, audio: int = 0) -> dict[str, Any]:
    """Fill a campaign of ``people`` simulated people for ``days`` days through the simulated dialer on
    an accelerated clock; returns the campaign id, call and outcome counts, alerts by code and the
    wall-clock seconds it took. ``engine_or_service`` is a migrated engine or a :class:`Scheduler`
    (whose engine and memory are used; its dialer and clock are replaced for the run). The first
    ``audio`` calls placed go through the :class:`SimulatedAudioDialer` (espeak-ng speech, reference
    recogniser) instead of the text channel; their records say ``channel: audio``."""
    if audio < 0:
        raise InvalidInput(f"audio={audio}: pass how many calls go through the audio channel (0 or more)")
    from haneul.carecall.alerts import list_alerts
    from haneul.carecall.people import PersonIn, add_people

    wall = time.perf_counter()
    engine = engine_or_service.engine if isinstance(engine_or_service, Scheduler) else engine_or_service
    memory = engine_or_service.memory if isinstance(engine_or_service, Scheduler) else None
    first = dt.date.fromisoformat(start_date) if start_date else dt.date.today()
    spec = CampaignSpec(name=f"demo-{seed}", scenario=scenario,
                        schedule=Schedule(start_date=first.isoformat(), times=tuple(times), days=days))
    clock = SimClock(dt.datetime.combine(first, dt.time(0, 0), tzinfo=spec.schedule.zone).timestamp())
    personas = population(people, seed=seed)
    phones = {f"+8210{seed % 100:02d}{i:06d}": p for i, p in enumerate(personas)}
    with engine.begin() as conn:
        stored = add_people(conn, [PersonIn(name=p.name, phone=phone, consent=True, consent_date=first.isoformat())
                                   for phone, p in phones.items()], team_id=team_id)
    dialer: Dialer = SimulatedDialer(phones, seed=seed, clock=clock)
    split = None
    if audio:
        split = _FirstThrough(audio, SimulatedAudioDialer(phones, seed=seed, clock=clock), dialer)
        dialer = split
    scheduler = Scheduler(engine, dialer, now=clock, memory=memory)
    campaign = scheduler.create_campaign(spec, [p.id for p in stored], team_id=team_id, owner="demo")
    scheduler.start(campaign["id"])
    placed = scheduler.run_until_idle(clock)
    done = scheduler.get_campaign(campaign["id"])
    codes = Counter(a["code"] for a in list_alerts(engine, campaign_id=campaign["id"]))
    return {"campaign": campaign["id"], "people": people, "days": days, "calls": placed,
            "audio_calls": split.placed_first if split else 0,
            "outcomes": done["outcomes"], "alerts": dict(codes), "status": done["status"],
            "seconds": round(time.perf_counter() - wall, 2)}

