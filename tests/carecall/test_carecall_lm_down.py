"""The LM that reads answers is down: calls go on with the scenario's questions, the rules read the
answers, the outcome is recorded, the record and the log say the LM was unreachable, and a call waits
on the dead endpoint at most once (one timeout), not once per answer."""

from __future__ import annotations

import datetime as dt
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from haneul.carecall.agent import CallAgent
from haneul.carecall.campaigns import CampaignSpec, RetryPolicy, Schedule
from haneul.carecall.channels.text import ScriptedCallee, run_call
from haneul.carecall.people import PersonIn, add_people
from haneul.carecall.scheduler import Scheduler, SimClock, SimulatedDialer
from haneul.carecall.simulate import population
from haneul.carecall.understand import LMUnderstander, understand
from haneul.dialog import lm as dialog_lm

START = "2030-03-04"
TIMEOUT = 0.75


@pytest.fixture
def closed_port() -> int:
    """A 127.0.0.1 port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def attempts(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The timeout of every request made to an LM endpoint (the real request is still made)."""
    seen: list[float] = []
    chat = dialog_lm.ChatClient.chat

    def counted(self: Any, messages: list[dict[str, str]]) -> str:
        seen.append(self.timeout)
        return chat(self, messages)

    monkeypatch.setattr(dialog_lm.ChatClient, "chat", counted)
    return seen


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    from haneul.carecall.db import MIGRATIONS
    from haneul.dialog.stores import DIALOG_MIGRATIONS
    from haneul.platform.db import make_engine, migrate, version_table

    eng = make_engine(f"sqlite:///{tmp_path / 'lm-down.db'}")
    migrate(eng)
    migrate(eng, MIGRATIONS, version_table=version_table("carecall"))
    migrate(eng, DIALOG_MIGRATIONS, version_table=version_table("dialog"))
    yield eng
    eng.dispose()


def test_one_call_completes_with_the_scripted_questions(closed_port: int, attempts: list[float],
                                                        caplog: pytest.LogCaptureFixture) -> None:
    lm = LMUnderstander(f"http://127.0.0.1:{closed_port}/v1", timeout=TIMEOUT)
    answers = ["네 맞아요", "삼십팔 점 이 도요", "기침은 좀 나요", "아니요", "아니요 숨은 괜찮아요", "아니요", "없어요"]
    agent = CallAgent("covid", lm, {"name": "김하늘"})
    with caplog.at_level(logging.WARNING, logger="haneul.carecall.understand"):
        record = run_call(agent, ScriptedCallee(answers))
    # the scenario's questions, every one, and the rules' reading of the answers
    asked = [t.node for t in record.transcript if t.speaker == "agent"]
    assert asked == ["greeting", "identity", "intro", "temperature", "fever_note", "cough", "sore_throat", "breathing",
                     "taste_smell", "contact", "closing"]
    assert record.outcome == "escalated" and record.temperature == 38.2 and record.symptoms["cough"] is True
    assert record.alert_codes == {"fever"}
    # one request to the dead endpoint, with the configured timeout; the other six answers did not wait
    assert attempts == [TIMEOUT]
    assert not lm.available and len(lm.notes) == 1 and lm.notes[0].startswith("LM unreachable")
    assert sum("LM unreachable" in r.getMessage() for r in caplog.records) == 1


def test_a_campaign_records_outcomes_and_says_the_lm_was_unreachable(engine: Engine, closed_port: int,
                                                                     attempts: list[float],
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    personas = population(4, seed=5)
    phones = {f"+82107777{i:04d}": p for i, p in enumerate(personas)}
    with engine.begin() as conn:
        stored = add_people(conn, [PersonIn(name=p.name, phone=phone, consent=True) for phone, p in phones.items()],
                            team_id=None)
    spec = CampaignSpec(name="lm down", scenario="covid", retry=RetryPolicy(max_retries=0),
                        schedule=Schedule(start_date=START, times=("09:00", "18:00"), days=1))
    clock = SimClock(dt.datetime.combine(dt.date.fromisoformat(START), dt.time(0, 0),
                                         tzinfo=spec.schedule.zone).timestamp())
    # the endpoint stays marked down for an hour of wall time: longer than this test, shorter than an outage
    lm = LMUnderstander(f"http://127.0.0.1:{closed_port}/v1", timeout=TIMEOUT, retry_after_s=3600)
    scheduler = Scheduler(engine, SimulatedDialer(phones, seed=5, oracle=False, understander=lm, clock=clock),
                          now=clock)
    campaign = scheduler.create_campaign(spec, [p.id for p in stored], team_id=None)
    scheduler.start(campaign["id"])
    with caplog.at_level(logging.WARNING, logger="haneul.carecall.understand"):
        assert scheduler.run_until_idle(clock) == 8

    calls = scheduler.calls(campaign_id=campaign["id"], with_record=True)
    assert [c["state"] for c in calls] == ["done"] * 8 and all(c["error"] is None for c in calls)
    answered = [c for c in calls if c["outcome"] not in ("no_answer", "busy", "failed")]
    assert answered and all(c["outcome"] != "failed" for c in calls)
    for c in answered:
        record = c["record"]
        assert record["channel"] == "text" and record["summary"] == c["summary"]
        assert any(t["node"] == "temperature" for t in record["transcript"])  # asked as scripted
        assert [n for n in record["notes"] if n.startswith("LM unreachable")], record["notes"]
        assert "unreachable" in record["notes"][0] and str(closed_port) in record["notes"][0]
    # one request to the endpoint in the whole campaign, with the configured timeout: the LM costs the
    # campaign at most one timeout of waiting, whatever the number of answers
    assert attempts == [TIMEOUT]
    assert sum("LM unreachable" in r.getMessage() for r in caplog.records) == 1


def test_the_endpoint_is_tried_again_after_the_pause(closed_port: int, attempts: list[float]) -> None:
    now = [0.0]
    lm = LMUnderstander(f"http://127.0.0.1:{closed_port}/v1", timeout=TIMEOUT, retry_after_s=60,
                        clock=lambda: now[0])
    call = lm.for_call()
    assert call("네", "yesno", "cough").intent == "yes" and attempts == [TIMEOUT]
    assert call("아니요", "yesno", "cough").intent == "no" and attempts == [TIMEOUT]  # still marked down
    assert not lm.available and lm.notes == []  # the view keeps the call's notes; the health is shared
    now[0] = 61.0
    assert lm.available
    assert call("37.9도", "temperature").value == 37.9 and attempts == [TIMEOUT, TIMEOUT]


def test_a_working_lm_is_used_and_notes_nothing() -> None:
    class Fake:
        def chat(self, messages: list[dict[str, str]]) -> str:
            return '{"intent": "yes", "value": null, "symptoms": {"cough": true}}'

    lm = LMUnderstander(client=Fake())
    heard = lm("그런 편이에요", "yesno", "cough")
    assert (heard.intent, heard.method, heard.symptoms) == ("yes", "lm", {"cough": True}) and lm.notes == []


def test_understand_lm_warns_when_it_falls_back(closed_port: int, attempts: list[float],
                                               caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="haneul.carecall.understand"):
        heard = understand("37.8도요", "temperature", method="lm", endpoint=f"http://127.0.0.1:{closed_port}/v1",
                           timeout=TIMEOUT)
    assert (heard.method, heard.value) == ("rules", 37.8) and attempts == [TIMEOUT]
    assert any("LM unreachable" in r.getMessage() for r in caplog.records)
