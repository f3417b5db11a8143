"""A call through a scenario: records, escalation, re-asks, hand-off, later, hang-up, memory, simulation, CLI."""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from haneul.carecall.agent import CallAgent, CallRecord, memory_context
from haneul.carecall.channels.text import ScriptedCallee, run_call, simulate_campaign
from haneul.carecall.simulate import FEVER, Persona, SimulatedCallee, population
from haneul.cli.main import run
from haneul.errors import InvalidInput


@dataclass(frozen=True)
class Heard:
    intent: str
    value: float | None = None
    symptoms: Mapping[str, bool] = field(default_factory=dict)
    confidence: float = 1.0


def fake(text: str, expect: str = "yesno", slot: str | None = None, **_: object) -> Heard:
    """A tiny deterministic understander: exact words only."""
    words = {"네": "yes", "아니요": "no", "몰라요": "unknown", "상담원": "human", "나중에": "later"}
    if text in words:
        return Heard(words[text])
    if expect == "temperature":
        try:
            return Heard("yes", float(text))
        except ValueError:
            pass
    return Heard("unclear")


def clock() -> Callable[[], float]:
    ticks = itertools.count(1000)
    return lambda: float(next(ticks))


def covid_call(answers: list[str], name: str = "김하늘") -> tuple[CallAgent, list[list[str]]]:
    agent = CallAgent("covid", fake, {"name": name}, clock=clock())
    said = [agent.start()]
    for answer in answers:
        said.append(agent.hear(answer))
    return agent, said


def test_full_call_with_fever_escalates() -> None:
    agent, said = covid_call(["네", "37.8", "네", "아니요", "아니요", "아니요", "아니요"])
    assert said[0] == ["안녕하세요, 보건소 능동감시 확인 전화입니다.", "김하늘님 맞으세요?"]
    assert said[2] == ["열이 조금 있으시네요. 담당 선생님께 바로 알려 드릴게요.", "기침이 나오시나요?"]
    assert agent.done
    r = agent.record
    assert r.outcome == "escalated"
    assert r.temperature == 37.8
    assert [(a.code, a.reason) for a in r.alerts] == [("fever", "발열 (체온 37.8도)")]
    assert r.symptoms == {"cough": True, "sore_throat": False, "breathing": False, "taste_smell": False,
                          "contact": False}
    assert r.summary == "체온 37.8도, 기침 있음, 인후통 없음, 호흡곤란 없음, 미각·후각 이상 없음, 확진자 접촉 없음"
    assert r.answers["temperature"].text == "37.8" and r.answers["cough"].intent == "yes"
    assert r.turns == 7
    assert [t.speaker for t in r.transcript][:3] == ["agent", "agent", "callee"]
    times = [t.at for t in r.transcript]
    assert r.started_at is not None and r.ended_at is not None
    assert times == sorted(times) and r.started_at < times[0] and r.ended_at > times[-1]
    assert r.to_dict()["turns"] == 7 and r.to_dict()["alerts"][0]["code"] == "fever"


def test_normal_temperature_completes_without_alert() -> None:
    agent, said = covid_call(["네", "36.5", "아니요", "아니요", "아니요", "아니요", "아니요"])
    assert said[2] == ["기침이 나오시나요?"]  # no fever remark
    assert agent.record.outcome == "completed" and agent.record.alerts == []
    assert agent.record.summary.startswith("체온 36.5도, 기침 없음")


def test_breathing_difficulty_escalates() -> None:
    agent, said = covid_call(["네", "36.6", "아니요", "아니요", "네", "아니요", "아니요"])
    assert agent.record.outcome == "escalated"
    assert agent.record.alert_codes == {"breathing"}
    assert said[5][0].startswith("많이 불편하시겠어요")


def test_reask_then_give_up_records_unanswered() -> None:
    agent, said = covid_call(["네", "36.5", "음...", "", "뭐라고요"])
    # two re-asks, then the cough question is left unanswered and the call moves on
    assert said[3] == ["기침을 하시는지 네, 아니요로 말씀해 주시겠어요?"]
    assert said[4] == said[3]
    assert said[5] == ["목이 아프거나 따끔거리세요?"]
    cough = agent.record.answers["cough"]
    assert (cough.status, cough.attempts, cough.text) == ("unanswered", 3, "뭐라고요")
    assert "cough" not in agent.record.symptoms
    assert agent.record.transcript[-4].text == ""  # the silence is in the transcript
    agent.hear("아니요")
    assert agent.record.answers["sore_throat"].attempts == 1


def test_reask_then_answer_and_implausible_temperature() -> None:
    agent, said = covid_call(["네", "365", "36.5"])
    assert said[2] == ["체온계에 나온 숫자로 말씀해 주세요. 예를 들면 삼십육 점 오 도처럼요."]
    assert agent.record.temperature == 36.5 and agent.record.answers["temperature"].attempts == 2


def test_human_handoff_keeps_answers_and_alerts() -> None:
    agent, said = covid_call(["네", "36.9", "상담원"])
    assert agent.done and said[-1] == ["네, 담당 선생님께 바로 연결해 드릴게요. 잠시만 기다려 주세요."]
    r = agent.record
    assert r.outcome == "handed_off"
    assert [(a.code, a.reason) for a in r.alerts] == [("human", "상담원 연결 요청")]
    assert r.temperature == 36.9 and "cough" not in r.answers
    assert r.summary == "체온 36.9도, 상담원 연결 요청"
    with pytest.raises(InvalidInput, match="the call is over"):
        agent.hear("네")


def test_later_ends_politely_with_callback() -> None:
    agent, said = covid_call(["나중에"])
    assert said[-1] == ["네, 알겠습니다. 편하실 때 다시 전화드릴게요. 좋은 하루 보내세요."]
    assert agent.record.outcome == "callback_requested" and agent.record.alerts == []
    assert agent.record.summary == "재통화 요청"


def test_hang_up_mid_question_keeps_answers() -> None:
    agent, _ = covid_call(["네", "37.9", "네"])
    assert agent.expecting == ("yesno", "sore_throat")
    record = agent.hang_up()
    assert agent.done and agent.expecting is None
    assert record.outcome == "hung_up"
    assert record.temperature == 37.9 and record.symptoms == {"cough": True}
    assert record.alert_codes == {"fever"}  # what was said still reaches staff
    assert record.summary == "체온 37.9도, 기침 있음, 통화 중 끊김"


def test_wrong_person_and_missing_context() -> None:
    agent, said = covid_call(["아니요"])
    assert agent.record.outcome == "no_answer" and said[-1][0].startswith("아, 죄송합니다")
    assert agent.record.summary == "본인 확인 안 됨"
    with pytest.raises(InvalidInput, match=r"needs \{name\}"):
        CallAgent("covid", fake, {})


def test_silent_scripted_callee_and_no_answer() -> None:
    record = run_call(CallAgent("covid", fake, {"name": "이"}), ScriptedCallee(["네", "36.4"]))
    assert record.outcome == "hung_up" and record.temperature == 36.4
    nobody = CallAgent("covid", fake, {"name": "이"}).no_answer()
    assert nobody.outcome == "no_answer" and nobody.summary == "전화 받지 않음" and nobody.transcript == []


def test_elderly_recall_uses_the_remembered_symptom() -> None:
    earlier, _ = covid_call(["네", "36.8", "네", "아니요", "아니요", "아니요", "아니요"])
    context = memory_context(earlier.record)
    assert context == {"memory_prompt": "지난번에 기침하신다고 하셨는데 좀 나아지셨어요?"}
    agent = CallAgent("elderly", fake, {"name": "박순자", **context})
    said = agent.start()
    assert said == ["안녕하세요, 박순자 어르신. 잘 지내고 계신지 안부 여쭤보려고 전화드렸어요.",
                    "지난번에 기침하신다고 하셨는데 좀 나아지셨어요?"]
    for answer in ["네", "네", "아니요", "네", "네", "아니요"]:
        agent.hear(answer)
    assert agent.record.outcome == "completed"
    assert agent.record.summary == "지난번 불편했던 점 나아짐, 식사 잘 하심, 잠을 설치심, 아픈 곳 없음, 기분 괜찮음, 필요한 것 없음"
    # nothing remembered: the recall node skips itself
    fresh = CallAgent("elderly", fake, {"name": "박순자", **memory_context(None)})
    assert fresh.start()[-1] == "식사는 잘 챙겨 드시고 계세요?"
    assert memory_context(remembered=["무릎이 아프시다고", "잠을 잘 못 주무신다고"]) == {
        "memory_prompt": "지난번에 무릎이 아프시다고 하시고 잠을 잘 못 주무신다고 하셨는데 좀 나아지셨어요?"}


def test_elderly_mood_and_needs_alert() -> None:
    agent = CallAgent("elderly", fake, {"name": "최"})
    agent.start()
    for answer in ["네", "네", "아니요", "허리가 아파요", "아니요", "네", "보일러가 고장 났어요"]:
        agent.hear(answer)
    r = agent.record
    assert r.outcome == "escalated" and r.alert_codes == {"mood", "needs"}
    assert r.answers["health_detail"].text == "허리가 아파요"
    assert "불편한 곳: 허리가 아파요" in r.summary and "필요한 것: 보일러가 고장 났어요" in r.summary


# ------------------------------------------------------------------------------------------------
# simulation


def test_population_and_callees_are_deterministic() -> None:
    assert population(30, seed=3) == population(30, seed=3)
    assert population(30, seed=3) != population(30, seed=4)
    people = population(30, seed=3)
    assert {p.habit for p in people} == {"terse", "chatty", "hedging", "confused"}
    sick = next(p for p in people if p.infected and p.peak >= 38)
    onset = sick.onset_day or 0
    curve = [sick.health(d).temperature for d in range(onset, onset + 7)]
    assert max(curve) >= FEVER and curve[-1] < FEVER  # the fever rises and passes

    def answers(seed: int) -> list[str | None]:
        callee = SimulatedCallee(sick, seed=seed)
        return [callee.reply("…", 1, slot) for slot in ("identity", "temperature", "cough", "breathing", "meals")]

    assert answers(0) == answers(0)
    assert len({tuple(answers(seed)) for seed in range(6)}) > 1  # another seed, other words


def test_callee_reads_numbers_in_korean_ways() -> None:
    persona = Persona(id="t", name="정하늘", age=70, habit="terse", infected=True, onset_day=0, baseline=36.5,
                      peak=38.5)
    said = {SimulatedCallee(persona, seed=s).reply("체온?", 1, "temperature") or "" for s in range(60)}
    truth = persona.health(1).temperature
    assert truth >= FEVER
    whole, tenth = str(truth).split(".")
    assert any(f"{truth}" in s for s in said)
    assert any("삼십" in s and "점" in s for s in said)  # 삼십팔 점 오
    assert any(f"{whole}도 {tenth}부" in s for s in said)  # the old 도/부 reading


def _told(record: CallRecord, slot: str) -> bool:
    answer = record.answers.get(slot)
    return answer is not None and answer.status == "answered"


def test_campaign_escalates_exactly_the_sick_who_say_so() -> None:
    people = population(200, seed=7)
    records = simulate_campaign(people, "covid", days=3, calls_per_day=1, seed=7, oracle=True, concurrency=50,
                                clock=clock())
    assert len(records) == 600
    by_id = {p.id: p for p in people}
    assert [r.day for r in records] == [d for d in range(3) for _ in people]
    expected, alerted = set(), set()
    for r in records:
        assert r.day is not None
        truth = by_id[r.person].health(r.day)
        if _told(r, "temperature"):
            assert r.temperature == truth.temperature
        fever = truth.fever and _told(r, "temperature")
        breathing = truth.breathing and _told(r, "breathing")
        assert ("fever" in r.alert_codes) == fever, (r.person, r.day, r.summary)
        assert ("breathing" in r.alert_codes) == breathing, (r.person, r.day, r.summary)
        if fever or breathing:
            expected.add(r.person)
        if r.alert_codes & {"fever", "breathing"}:
            alerted.add(r.person)
    assert alerted == expected
    assert len(expected) >= 30
    # nearly every fever in the population was reported: the simulation is not hiding the signal
    feverish = {(p.id, d) for p in people for d in range(3) if p.health(d).fever}
    reported = {(r.person, r.day) for r in records if "fever" in r.alert_codes}
    assert reported <= feverish and len(reported) >= 0.8 * len(feverish)
    outcomes = {r.outcome for r in records}
    assert {"completed", "escalated", "no_answer"} <= outcomes
    again = simulate_campaign(people[:20], "covid", days=2, calls_per_day=2, seed=7, oracle=True, clock=clock())
    assert [r.summary for r in again] == [r.summary for r in simulate_campaign(
        people[:20], "covid", days=2, calls_per_day=2, seed=7, oracle=True, clock=clock())]


def test_elderly_campaign_recalls_the_previous_call() -> None:
    people = population(40, seed=5, elderly=True)
    records = simulate_campaign(people, "elderly", days=2, calls_per_day=1, seed=5, oracle=True, clock=clock())
    second = [r for r in records[40:] if r.outcome != "no_answer"]
    recalled = [r for r in second if "recall" in {t.node for t in r.transcript}]
    assert recalled, "someone was unwell on day 0 and is asked about it on day 1"
    assert all(t.text.startswith("지난번에 ") for r in recalled for t in r.transcript
               if t.node == "recall" and t.speaker == "agent")


# ------------------------------------------------------------------------------------------------
# the real understander and the CLI


def test_real_understander_call() -> None:
    understand = pytest.importorskip("haneul.carecall.understand").understand
    agent = CallAgent("covid", functools.partial(understand, method="rules"), {"name": "김하늘"})
    agent.start()
    for answer in ["네 맞아요", "삼십칠 점 팔 도요", "기침은 안 해요", "목이 좀 따가워요", "아니요 괜찮아요",
                   "아니요", "없어요"]:
        agent.hear(answer)
    r = agent.record
    assert r.outcome == "escalated" and r.alert_codes == {"fever"}
    assert r.temperature == 37.8
    assert r.symptoms["cough"] is False and r.symptoms["sore_throat"] is True and r.symptoms["breathing"] is False


def test_cli_chat_runs_a_scripted_call(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("haneul.carecall.understand")
    script = tmp_path / "answers.txt"
    script.write_text("# one answer per line\n네\n36.4도요\n아니요\n-\n아니요\n아니요\n아니요\n아니요\n", encoding="utf-8")
    code = run(["carecall", "chat", "--scenario", "covid", "--name", "김하늘", "--script", str(script),
                "--method", "rules", "--json"])
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    assert record["outcome"] == "completed" and record["temperature"] == 36.4
    assert record["transcript"][1]["text"] == "김하늘님 맞으세요?"
    assert record["answers"]["sore_throat"]["attempts"] == 2  # the silence was re-asked
    assert run(["carecall", "chat", "--script", str(script), "--method", "rules"]) == 0
    shown = capsys.readouterr().out
    assert "상담원> 홍길동님 맞으세요?" in shown and "나> 36.4도요" in shown and "completed" in shown
