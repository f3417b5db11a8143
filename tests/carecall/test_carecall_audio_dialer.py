"""Campaign calls placed through the audio channel: the dashboard fills as it does for text calls, and
alerts fire for exactly the people whose spoken answers warrant them."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import test_carecall_server as server_tests
from fastapi.testclient import TestClient

from haneul.carecall.agent import CallRecord
from haneul.carecall.people import Person
from haneul.carecall.scheduler import CallContext, Scheduler, SimClock, SimulatedAudioDialer, SimulatedDialer
from haneul.carecall.simulate import FEVER, Persona, SimulatedCallee, population
from haneul.carecall.understand import Understanding

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("sox") is None,
                                reason="espeak-ng and sox are needed (bash scripts/sysdeps.sh)")

# the server in-process with the carecall plugin, and a nurse of team "care" (with a viewer and an outsider)
app, clients, engine_of = server_tests.app, server_tests.clients, server_tests.engine_of

START = "2030-02-04"  # far ahead: the server's own worker (real clock) never finds these calls due
ZONE = dt.timezone(dt.timedelta(hours=9))


def cohort() -> list[Persona]:
    """Ten people; two are made to be sure the campaign has something to alert on: one ill with
    breathing difficulty and fever on the first day, one who asks for a person on every call."""
    people = [dataclasses.replace(p, p_no_answer=0.0) if i < 3 else p for i, p in enumerate(population(10, seed=21))]
    people[0] = dataclasses.replace(people[0], infected=True, onset_day=-1, peak=38.6,
                                    symptom_days={"breathing": (0, 3), "cough": (0, 4)}, p_human=0.0, p_later=0.0,
                                    p_hang_up=0.0)
    people[1] = dataclasses.replace(people[1], p_human=1.0)
    return people


PEOPLE = cohort()
PHONES = [f"010-5555-{i:04d}" for i in range(len(PEOPLE))]
E164 = {f"+8210{phone[4:8]}{phone[9:]}": p for p, phone in zip(PEOPLE, PHONES, strict=True)}
CSV = "name,phone,consent,consent_date,call_times,notes\n" + "".join(
    f"{p.name},{phone},yes,2030-01-30,,\n" for p, phone in zip(PEOPLE, PHONES, strict=True))


class Listening(SimulatedAudioDialer):
    """The audio dialer, keeping what each simulated callee meant by each answer (per attempt key)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.meant: dict[str, list[tuple[str | None, Understanding]]] = {}

    def callee(self, person: Person, context: CallContext) -> SimulatedCallee:
        callee = super().callee(person, context)
        said = self.meant.setdefault(context.key, [])
        reply: Callable[..., str | None] = callee.reply

        def listen(utterance: str, day: int = 0, slot_hint: str | None = None) -> str | None:
            text = reply(utterance, day, slot_hint)
            if text is not None:
                said.append((slot_hint, callee.oracle(text)))  # what the callee meant by its words
            return text

        callee.reply = listen  # type: ignore[method-assign]
        return callee


def warranted(persona: Persona, day: int, meant: list[tuple[str | None, Understanding]]) -> set[str]:
    """The alerts one call owes, from the persona's health that day and what the callee said of it:
    a fever of 37.5 or more when asked the temperature, breathing difficulty when asked about it,
    a request for a person at any point."""
    health = persona.health(day)
    codes = set()
    for slot, m in meant:
        if slot == "temperature" and m.value is not None:
            assert m.value == health.temperature  # the callee reads out its true temperature
            if health.temperature >= FEVER:
                codes.add("fever")
        if slot == "breathing" and m.intent in ("yes", "no"):
            assert (m.intent == "yes") == health.breathing
            if health.breathing:
                codes.add("breathing")
        if m.intent == "human":
            codes.add("human")
    return codes


def test_a_campaign_through_the_audio_dialer_fills_the_dashboard(clients: dict[str, TestClient]) -> None:
    nurse = clients["nurse"]
    people = nurse.post("/api/v1/carecall/people/import", json={"csv": CSV, "filename": "audio.csv"}).json()
    res = nurse.post("/api/v1/carecall/campaigns", json={
        "name": "audio ward", "scenario": "covid", "people": [p["id"] for p in people],
        "schedule": {"start_date": START, "times": ["09:00", "18:00"], "days": 1},
        "retry": {"max_retries": 0}})
    assert res.status_code == 201, res.text
    cid = res.json()["id"]
    assert nurse.post(f"/api/v1/carecall/campaigns/{cid}/start").json()["attempts"] == {"planned": 20}

    clock = SimClock(dt.datetime.fromisoformat(f"{START}T00:00").replace(tzinfo=ZONE).timestamp())
    dialer = Listening(E164, seed=4, clock=clock)
    assert dialer.recognizer_name == "reference"
    assert Scheduler(engine_of(nurse), dialer, now=clock).run_until_idle(clock) == 20

    # the campaign and its calls, as the dashboard reads them
    campaign = nurse.get(f"/api/v1/carecall/campaigns/{cid}").json()
    assert campaign["status"] == "done" and campaign["attempts"] == {"done": 20}
    calls = nurse.get(f"/api/v1/carecall/campaigns/{cid}/calls", params={"record": True}).json()
    assert len(calls) == 20 and {c["key"] for c in calls} == set(dialer.meant)
    text_fields = set(CallRecord(scenario="covid_monitoring").to_dict())
    answered = [c for c in calls if c["outcome"] not in ("no_answer", "failed")]
    assert len(answered) >= 15  # three people always pick up; the rest mostly do
    for c in calls:
        record = c["record"]
        assert set(record) == text_fields and record["channel"] == "audio" and c["error"] is None
    for c in answered:
        record = c["record"]
        assert record["latencies"] and all(0.5 <= x < 3.0 for x in record["latencies"])  # >= the end-of-turn silence
        assert record["transcript"][0]["text"] == "안녕하세요, 보건소 능동감시 확인 전화입니다."
        assert c["summary"] == record["summary"] and record["day"] == 0
    stats = nurse.get(f"/api/v1/carecall/campaigns/{cid}/stats").json()
    assert stats["totals"]["calls"] == 20 and stats["totals"]["answered"] == len(answered)

    # alerts: exactly the ones the persona's answers warrant, call by call
    by_person = {p["id"]: persona for p, persona in zip(people, PEOPLE, strict=True)}
    expected = {(c["id"], code) for c in calls
                for code in warranted(by_person[c["person_id"]], c["day"], dialer.meant[c["key"]])}
    alerts = nurse.get("/api/v1/carecall/alerts", params={"campaign": cid}).json()
    assert {(a["attempt_id"], a["code"]) for a in alerts} == expected
    assert {code for _, code in expected} == {"fever", "breathing", "human"}  # the check is not vacuous
    ill, asks = people[0]["id"], people[1]["id"]
    assert {(a["person_id"], a["code"]) for a in alerts} >= {(ill, "fever"), (ill, "breathing"), (asks, "human")}

    # the memory of an answered call, and the person's page, see the audio call like a text one
    memory = nurse.get(f"/api/v1/carecall/people/{ill}/memory").json()
    assert memory["version"] >= 1 and any(s.startswith("체온 ") for s in memory["sentences"])
    page = nurse.get(f"/carecall/people/{ill}")
    assert page.status_code == 200 and "능동감시 확인 전화" in page.text


def test_audio_and_text_dialers_hear_the_same_answers() -> None:
    """Same persona, same attempt: the audio channel records what the text channel records."""
    from haneul.carecall.scenario import resolve

    scenario = resolve("covid")
    person = Person(id=7, team_id=None, name=PEOPLE[0].name, phone="+821055550000", consent=True)
    context = CallContext(fields={"name": PEOPLE[0].name}, key="k", campaign_id=1, day=0, index=0, try_number=0)
    clock = SimClock(1.9e9)
    text = asyncio.run(SimulatedDialer({person.phone: PEOPLE[0]}, seed=4, clock=clock).place(person, scenario, context))
    audio = asyncio.run(SimulatedAudioDialer({person.phone: PEOPLE[0]}, seed=4, clock=clock)
                        .place(person, scenario, context))
    assert (text.channel, audio.channel) == ("text", "audio")
    assert audio.outcome == text.outcome == "escalated"
    assert audio.answers == text.answers and audio.alert_codes == text.alert_codes == {"fever", "breathing"}
    assert [t.text for t in audio.transcript] == [t.text for t in text.transcript]
    assert len(audio.latencies) == audio.turns and not text.latencies
    assert audio.ended_at is not None and audio.ended_at > audio.started_at == clock()  # call time on the virtual clock


def test_the_server_picks_the_dialer_from_its_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from haneul.carecall.server import DIALERS, make_dialer
    from haneul.errors import InvalidInput, NotFound

    assert "simulated-audio" in DIALERS
    assert make_dialer("off") is None
    assert type(make_dialer("simulated")) is SimulatedDialer
    audio = make_dialer("simulated-audio", SimpleNamespace(carecall_asr_checkpoint=None))
    assert isinstance(audio, SimulatedAudioDialer) and audio.oracle and audio.recognizer_name == "reference"
    with pytest.raises(NotFound, match="does not exist"):
        make_dialer("simulated-audio", SimpleNamespace(carecall_asr_checkpoint="/nonexistent/ckpt.pt"))
    with pytest.raises(InvalidInput, match="simulated-audio"):
        make_dialer("telepathy")


def test_the_server_worker_places_audio_calls_when_the_setting_asks(haneul_home: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """``HANEUL_CARECALL_DIALER=simulated-audio``: the server's own worker phones due calls over audio."""
    from importlib.metadata import EntryPoint

    from haneul.platform import plugins
    from haneul.platform.server import create_app
    from haneul.settings import Settings

    installed = plugins.discover
    entry = EntryPoint(name="carecall", value="haneul.carecall.server:plugin", group=plugins.GROUP)
    monkeypatch.setattr(plugins, "discover", lambda: {**installed(), "carecall": entry})
    server = create_app(Settings(home=haneul_home, capacity_cpus=2, carecall_dialer="simulated-audio"),
                        server_url="http://testserver")
    with TestClient(server):
        accounts = server.state.accounts
        accounts.create_user("nurse")
        accounts.create_team("care", owner="nurse")
        nurse = TestClient(server)
        nurse.headers["Authorization"] = f"Bearer {accounts.create_token('nurse')['token']}"
        people = nurse.post("/api/v1/carecall/people/import", json={"csv": CSV, "filename": "a.csv"}).json()[:2]
        today = dt.datetime.now(ZONE).date().isoformat()
        cid = nurse.post("/api/v1/carecall/campaigns", json={
            "name": "now", "scenario": "covid", "people": [p["id"] for p in people], "quiet": None,
            "schedule": {"start_date": today, "times": ["00:00"], "days": 1}, "retry": {"max_retries": 0}}).json()["id"]
        nurse.post(f"/api/v1/carecall/campaigns/{cid}/start")  # due since midnight: the worker takes them
        for _ in range(600):
            calls = nurse.get(f"/api/v1/carecall/campaigns/{cid}/calls", params={"record": True}).json()
            if all(c["state"] == "done" for c in calls):
                break
            time.sleep(0.1)
        assert [c["state"] for c in calls] == ["done", "done"]
        assert all(c["record"]["channel"] == "audio" for c in calls)


class Held:
    """A dialer whose first call stays on the line until a second call has started (or 20 s pass)."""

    def __init__(self) -> None:
        self.second_started = threading.Event()
        self.calls = 0

    async def place(self, person: Person, scenario: Any, context: CallContext) -> CallRecord:
        self.calls += 1
        if self.calls > 1:
            self.second_started.set()
        else:
            for _ in range(200):
                if self.second_started.is_set():
                    break
                await asyncio.sleep(0.1)
        return CallRecord(scenario="covid_monitoring", person=str(person.id), outcome="completed",
                          summary="second call started while this one ran" if self.second_started.is_set() else "")


def test_a_call_falling_due_while_another_is_on_the_line_is_placed_at_once(tmp_path: Path) -> None:
    """The worker does not wait for the calls on the line before it places the next due one."""
    from sqlalchemy import update

    from haneul.carecall.campaigns import CampaignSpec, RetryPolicy, Schedule
    from haneul.carecall.db import MIGRATIONS, attempts
    from haneul.carecall.people import PersonIn, add_people
    from haneul.dialog.stores import DIALOG_MIGRATIONS
    from haneul.platform.db import make_engine, migrate, version_table

    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    migrate(engine)
    migrate(engine, MIGRATIONS, version_table=version_table("carecall"))
    migrate(engine, DIALOG_MIGRATIONS, version_table=version_table("dialog"))
    with engine.begin() as conn:
        stored = add_people(conn, [PersonIn(name=n, phone=f"+82105555{i:04d}", consent=True)
                                   for i, n in enumerate(("가", "나"))], team_id=None)
    dialer = Held()
    scheduler = Scheduler(engine, dialer)
    spec = CampaignSpec(name="w", scenario="covid", retry=RetryPolicy(max_retries=0), quiet=None,
                        schedule=Schedule(start_date="2030-01-01", times=("09:00",), days=1))
    cid = scheduler.create_campaign(spec, [p.id for p in stored], team_id=None)["id"]
    scheduler.start(cid)
    now = time.time()
    with engine.begin() as conn:  # the first call is due now, the second half a second later
        for person, due in zip(stored, (now - 1, now + 0.5), strict=True):
            conn.execute(update(attempts).where(attempts.c.person_id == person.id).values(due_at=due))
    scheduler.start_worker(interval=0.1)
    try:
        for _ in range(400):
            if scheduler.get_campaign(cid)["status"] == "done":
                break
            time.sleep(0.1)
    finally:
        scheduler.stop_worker()
    first, second = scheduler.calls(campaign_id=cid)
    assert (first["state"], second["state"]) == ("done", "done")
    assert first["summary"] == "second call started while this one ran"
    assert second["started_at"] < first["ended_at"]


class Shrugs:
    """A recogniser that hears every caller turn as "잘 모르겠어요" (and counts the audio it got)."""

    sample_rate = 16000

    def __init__(self) -> None:
        self.turns: list[int] = []

    def transcribe(self, audio: Any) -> str:
        self.turns.append(len(audio))
        return "잘 모르겠어요"


def test_a_plugged_in_recogniser_hears_the_callers_and_the_understander_reads_it() -> None:
    from functools import partial

    from haneul.carecall.scenario import resolve
    from haneul.carecall.understand import understand

    shrugs = Shrugs()
    dialer = SimulatedAudioDialer({"+821055550002": PEOPLE[2]}, seed=4, recognizer=shrugs, oracle=False,
                                  understander=partial(understand, method="rules"), clock=SimClock(1.9e9))
    assert dialer.recognizer_name == "Shrugs"
    person = Person(id=9, team_id=None, name=PEOPLE[2].name, phone="+821055550002", consent=True)
    context = CallContext(fields={"name": PEOPLE[2].name}, key="k", campaign_id=1, day=0, index=0, try_number=0)
    record = asyncio.run(dialer.place(person, resolve("covid"), context))
    # every answer the caller spoke reached the recogniser, resampled to the 16 kHz it asked for
    assert len(shrugs.turns) == record.turns and all(n > 0.2 * 16000 for n in shrugs.turns)
    # "I don't know" to "is this you?" is no identity: the call ends at the wrong-person node
    assert record.channel == "audio" and record.answers["identity"].status == "unanswered"
    assert [t.text for t in record.transcript if t.speaker == "callee"] == ["잘 모르겠어요"] * record.turns
