"""The durable scheduler: racing workers place each call once, a killed worker's call is placed again
under the same key and recorded once, a 200-person x 3-day simulated campaign alerts exactly the people
the simulator made febrile or breathless, memory carries one call into the next, and nobody without
consent is called."""

from __future__ import annotations

import datetime as dt
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from haneul.carecall.agent import Alert, CallAgent, CallRecord
from haneul.carecall.alerts import list_alerts
from haneul.carecall.campaigns import CampaignSpec, QuietHours, RetryPolicy, Schedule
from haneul.carecall.channels.text import ScriptedCallee, run_call_async
from haneul.carecall.db import MIGRATIONS, attempts, people
from haneul.carecall.memory import CallMemory
from haneul.carecall.people import Person, PersonIn, add_people
from haneul.carecall.scenario import Scenario
from haneul.carecall.scheduler import CallContext, Scheduler, SimClock, SimulatedDialer, run_demo
from haneul.carecall.simulate import population

START = "2026-03-02"
ZONE = Schedule(start_date=START).zone


def midnight(date: str = START) -> float:
    return dt.datetime.fromisoformat(f"{date}T00:00:00").replace(tzinfo=ZONE).timestamp()


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from haneul.dialog.stores import DIALOG_MIGRATIONS
    from haneul.platform.db import make_engine, migrate, version_table

    path = tmp_path_factory.mktemp("carecall-db") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    migrate(engine, MIGRATIONS, version_table=version_table("carecall"))
    migrate(engine, DIALOG_MIGRATIONS, version_table=version_table("dialog"))
    engine.dispose()
    return path


@pytest.fixture
def db_url(migrated: Path, tmp_path: Path) -> str:
    shutil.copy(migrated, tmp_path / "t.db")
    return f"sqlite:///{tmp_path / 't.db'}"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    from haneul.platform.db import make_engine

    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def add(engine: Engine, n: int, *, consent: Sequence[bool] = ()) -> list[Person]:
    rows = [PersonIn(name=f"사람{i}", phone=f"+82105555{i:04d}", consent=consent[i] if consent else True)
            for i in range(n)]
    with engine.begin() as conn:
        return add_people(conn, rows, team_id=None)


@dataclass
class CountingDialer:
    """Answers every call at once ("answered", or what ``outcome`` says) and counts each key it placed."""

    outcome: str = "completed"
    alerts: Sequence[Alert] = ()
    delay: float = 0.0
    placed: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def place(self, person: Person, scenario: Scenario, context: CallContext) -> CallRecord:
        with self.lock:
            self.placed[context.key] += 1
        if self.delay:
            time.sleep(self.delay)  # widen the window in which two workers could both hold a call
        return CallRecord(scenario=scenario.id, person=str(person.id), outcome=self.outcome, alerts=list(self.alerts),
                          summary="통화함")


def spec(days: int = 1, times: Sequence[str] = ("09:00", "18:00"), scenario: str = "covid",
         retry: RetryPolicy | None = None, start: str = START) -> CampaignSpec:
    return CampaignSpec(name="ward 7", scenario=scenario, schedule=Schedule(start_date=start, times=tuple(times),
                                                                             days=days),
                        retry=retry or RetryPolicy(), quiet=QuietHours("21:00", "08:00"))


def states(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(select(attempts).order_by(attempts.c.id)).all()


def test_two_racing_workers_never_place_a_call_twice(engine: Engine, db_url: str) -> None:
    from haneul.platform.db import make_engine

    who = add(engine, 30)
    clock = SimClock(midnight() + 19 * 3600)  # 19:00: both of the day's calls are due, quiet hours not begun
    dialer = CountingDialer(delay=0.004)
    first = Scheduler(engine, dialer, now=clock, batch=4, name="a")
    campaign = first.create_campaign(spec(), [p.id for p in who], team_id=None)
    first.start(campaign["id"])
    # the second worker has an engine (a connection pool) of its own, as another process would
    other = make_engine(db_url)
    second = Scheduler(other, dialer, now=clock, batch=4, name="b")
    placed: dict[str, int] = {}

    def work(worker: Scheduler) -> None:
        n = 0
        while (got := worker.run_due()) or worker.next_due() is not None and worker.next_due() <= clock():
            n += got
        placed[worker.name] = n

    threads = [threading.Thread(target=work, args=(w,)) for w in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    other.dispose()
    rows = states(engine)
    assert len(rows) == 60 and {r.state for r in rows} == {"done"} and {r.outcome for r in rows} == {"answered"}
    assert set(dialer.placed) == {r.key for r in rows}
    assert set(dialer.placed.values()) == {1}  # no key placed twice
    assert {r.claims for r in rows} == {1}
    assert placed["a"] + placed["b"] == 60 and placed["a"] > 0 and placed["b"] > 0  # both did some
    assert first.get_campaign(campaign["id"])["status"] == "done"


def test_a_killed_worker_loses_nothing_and_the_call_is_recorded_once(engine: Engine) -> None:
    who = add(engine, 1)
    clock = SimClock(midnight() + 9 * 3600)
    dialer = CountingDialer(outcome="escalated", alerts=[Alert("fever", "발열 (체온 38.2도)", "temperature")])
    dying = Scheduler(engine, dialer, now=clock, lease_s=120, name="dying")
    campaign = dying.create_campaign(spec(times=("09:00",)), [who[0].id], team_id=None)
    dying.start(campaign["id"])
    claims = dying.claim()
    assert len(claims) == 1
    key = claims[0].key
    placed_by_dying = dying.place(claims)  # the call went out, then the worker was killed before recording it
    survivor = Scheduler(engine, dialer, now=clock, lease_s=120, name="survivor")
    assert survivor.run_due() == 0  # the lease still holds: nobody else places it
    clock.advance(121)  # the lease expires
    assert survivor.run_due() == 1
    assert dialer.placed == Counter({key: 2})  # placed again under the same idempotency key
    assert dying.finish(placed_by_dying) == [False]  # the dead worker's late outcome is refused
    (row,) = states(engine)
    assert (row.key, row.state, row.outcome, row.claims) == (key, "done", "escalated", 2)
    assert [a["code"] for a in list_alerts(engine)] == ["fever"]  # one outcome, one alert
    assert survivor.next_due() is None and survivor.get_campaign(campaign["id"])["status"] == "done"


def test_unanswered_calls_are_retried_and_three_in_a_row_alert(engine: Engine) -> None:
    who = add(engine, 1)
    clock = SimClock(midnight())
    dialer = CountingDialer(outcome="no_answer")
    scheduler = Scheduler(engine, dialer, now=clock)
    campaign = scheduler.create_campaign(spec(times=("09:00", "20:30"), retry=RetryPolicy(2, 30)), [who[0].id],
                                         team_id=None)
    scheduler.start(campaign["id"])
    scheduler.run_until_idle(clock)
    rows = states(engine)
    when = [dt.datetime.fromtimestamp(r.started_at, ZONE).strftime("%d %H:%M") for r in rows]
    # 09:00 and two retries 30 minutes apart; 20:30, then 21:00 is quiet: the retries go to 08:00, 08:30
    assert sorted(when) == ["02 09:00", "02 09:30", "02 10:00", "02 20:30", "03 08:00", "03 08:30"]
    assert sorted((r.slot[11:16], r.try_number) for r in rows) == [
        ("09:00", 0), ("09:00", 1), ("09:00", 2), ("20:30", 0), ("20:30", 1), ("20:30", 2)]
    unreachable = [a for a in list_alerts(engine) if a["code"] == "unreachable"]
    assert len(unreachable) == 1  # one open alert for the streak, not one per further miss


def test_simulated_campaign_alerts_exactly_the_febrile_and_breathless(engine: Engine) -> None:
    personas = population(200, seed=7)
    phones = {f"+82107{i:07d}": p for i, p in enumerate(personas)}
    with engine.begin() as conn:
        stored = add_people(conn, [PersonIn(name=p.name, phone=ph, consent=True) for ph, p in phones.items()],
                            team_id=None)
    persona_of = {p.id: phones[p.phone] for p in stored}
    clock = SimClock(midnight())
    scheduler = Scheduler(engine, SimulatedDialer(phones, seed=7, clock=clock), now=clock)
    campaign = scheduler.create_campaign(spec(days=3), [p.id for p in stored], team_id=None)
    scheduler.start(campaign["id"])
    placed = scheduler.run_until_idle(clock)
    calls = [c for c in scheduler.calls(campaign_id=campaign["id"], with_record=True)]
    assert placed == len(calls) and {c["state"] for c in calls} == {"done"}
    assert sum(1 for c in calls if c["try_number"] == 0) == 200 * 3 * 2
    assert any(c["try_number"] > 0 for c in calls)  # some nobody answered were called again
    expected: set[tuple[int, str]] = set()
    for c in calls:
        record = c["record"]
        truth = persona_of[c["person_id"]].health(c["day"])
        told = {slot for slot, a in record["answers"].items() if a["status"] == "answered"}
        codes = {a["code"] for a in record["alerts"]}
        assert ("fever" in codes) == (truth.fever and "temperature" in told), (c["key"], record["summary"])
        assert ("breathing" in codes) == (truth.breathing and "breathing" in told), (c["key"], record["summary"])
        if "temperature" in told:
            assert record["temperature"] == truth.temperature
        expected |= {(c["person_id"], code) for code in codes & {"fever", "breathing"}}
    raised = {(a["person_id"], a["code"]) for a in list_alerts(engine) if a["code"] in ("fever", "breathing")}
    assert raised == expected and len({p for p, _ in raised}) >= 30
    febrile = {pid for pid, persona in persona_of.items() if any(persona.health(d).fever for d in range(3))}
    assert {p for p, code in raised if code == "fever"} <= febrile
    assert scheduler.get_campaign(campaign["id"])["status"] == "done"


@dataclass
class ScriptedDialer:
    """Each call answered from the next script, words understood exactly (네 / 아니요 / numbers)."""

    scripts: list[list[str]]
    heard: list[list[str]] = field(default_factory=list)

    async def place(self, person: Person, scenario: Scenario, context: CallContext) -> CallRecord:
        agent = CallAgent(scenario, exact, dict(context.fields), person=str(person.id))
        callee = ScriptedCallee(self.scripts.pop(0))
        said: list[str] = []
        original = callee.reply

        def reply(utterance: str, day: int = 0, slot: str | None = None) -> str | None:
            said.append(utterance)
            return original(utterance, day, slot)

        callee.reply = reply  # type: ignore[method-assign]
        record = await run_call_async(agent, callee, context.day)
        self.heard.append(said)
        return record


@dataclass(frozen=True)
class Heard:
    intent: str
    value: float | None = None
    symptoms: dict[str, bool] = field(default_factory=dict)


def exact(text: str, expect: str = "yesno", slot: str | None = None, **_: object) -> Heard:
    if expect == "temperature":
        return Heard("yes", float(text))
    return Heard({"네": "yes", "아니요": "no"}.get(text, "unclear"))


COVID_WITH_COUGH = ["네", "36.8", "네", "아니요", "아니요", "아니요", "아니요"]
ELDERLY_POOR_SLEEP = ["네", "네", "아니요", "네", "네", "아니요"]  # recall, meals, sleep, health, mood, needs


def test_the_second_call_refers_to_the_first_through_memory(engine: Engine) -> None:
    (kim,) = add(engine, 1)
    clock = SimClock(midnight())
    dialer = ScriptedDialer([COVID_WITH_COUGH, ELDERLY_POOR_SLEEP, ["네", "네", "네", "네", "네", "아니요"]])
    scheduler = Scheduler(engine, dialer, now=clock)
    covid = scheduler.create_campaign(spec(times=("09:00",)), [kim.id], team_id=None)
    scheduler.start(covid["id"])
    scheduler.run_until_idle(clock)
    memory = CallMemory(engine)
    assert "기침 있음" in memory.sentences(kim.id)
    elderly = scheduler.create_campaign(spec(days=2, times=("10:00",), scenario="elderly", start="2026-03-03"),
                                        [kim.id], team_id=None)
    scheduler.start(elderly["id"])
    scheduler.run_until_idle(clock)
    # the first check-in asks about the cough the monitoring call heard; the next one about the poor sleep
    assert dialer.heard[1][0].splitlines()[-1] == "지난번에 기침하신다고 하셨는데 좀 나아지셨어요?"
    assert dialer.heard[2][0].splitlines()[-1] == "지난번에 기침하신다고 하시고 잠을 잘 못 주무신다고 하셨는데 좀 나아지셨어요?"
    # an answer to the same question replaces the old one instead of piling up
    kept = memory.sentences(kim.id)
    assert "잠 잘 주무심" in kept and "잠을 설치심" not in kept
    history = memory.get(kim.id)["history"]
    assert [v["by"] for v in history] == ["call", "call", "call"]
    # staff correct it (a new version by them), then revert to what the first call left
    fixed = memory.correct(kim.id, ["무릎이 아프심"], by="nurse")
    assert (fixed["version"], fixed["by"], fixed["sentences"]) == (4, "nurse", ["무릎이 아프심"])
    assert memory.context(kim.id) == {}  # nothing the agent knows how to ask about
    back = memory.revert(kim.id, 1, by="nurse")
    assert back["version"] == 5 and back["reverted_from"] == 1 and "기침 있음" in back["sentences"]
    assert memory.context(kim.id) == {"memory_prompt": "지난번에 기침하신다고 하셨는데 좀 나아지셨어요?"}


def test_a_person_without_consent_is_never_called(engine: Engine) -> None:
    who = add(engine, 3, consent=[True, False, True])
    clock = SimClock(midnight())
    dialer = CountingDialer()
    scheduler = Scheduler(engine, dialer, now=clock)
    campaign = scheduler.create_campaign(spec(times=("09:00",), days=2), [p.id for p in who], team_id=None)
    scheduler.start(campaign["id"])
    assert {r.person_id for r in states(engine)} == {who[0].id, who[2].id}  # nothing planned for the refusal
    # consent withdrawn after planning: the planned calls are skipped, not placed
    with engine.begin() as conn:
        conn.execute(update(people).where(people.c.id == who[2].id).values(consent=False))
    scheduler.run_until_idle(clock)
    rows = states(engine)
    assert {(r.person_id, r.state) for r in rows} == {(who[0].id, "done"), (who[2].id, "skipped")}
    assert {key.split(":")[1] for key in dialer.placed} == {f"p{who[0].id}"}
    assert scheduler.get_campaign(campaign["id"])["attempts"] == {"done": 2, "skipped": 2}


def test_pause_holds_calls_and_start_again_plans_nothing_twice(engine: Engine) -> None:
    who = add(engine, 2)
    clock = SimClock(midnight())
    dialer = CountingDialer()
    scheduler = Scheduler(engine, dialer, now=clock)
    campaign = scheduler.create_campaign(spec(times=("09:00",), days=2), [p.id for p in who], team_id=None)
    assert scheduler.start(campaign["id"])["attempts"] == {"planned": 4}
    scheduler.pause(campaign["id"])
    clock.advance_to(midnight("2026-03-05"))
    assert scheduler.run_due() == 0 and not dialer.placed
    assert scheduler.start(campaign["id"])["attempts"] == {"planned": 4}  # the same four, not eight
    scheduler.run_until_idle(clock)
    assert sum(dialer.placed.values()) == 4


def test_run_demo_fills_a_campaign(engine: Engine) -> None:
    result = run_demo(engine, people=12, days=2, seed=3, start_date=START)
    assert result["status"] == "done" and result["people"] == 12
    assert result["calls"] == sum(result["outcomes"].values()) >= 12 * 2 * 2
    with engine.connect() as conn:
        assert conn.execute(select(attempts.c.state).distinct()).scalars().all() == ["done"]
