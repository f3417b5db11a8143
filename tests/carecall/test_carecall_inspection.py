"""Proactive inspection and the staff statistics: the risk rule and the logistic model on hand-made
histories, the evaluation on a small simulated cohort against random order, the daily figures of a
hand-checked campaign, and the stats / ranking routes and page (another team: 404)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterator
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from haneul.carecall.agent import Answer, CallRecord
from haneul.carecall.channels.text import simulate_campaign
from haneul.carecall.inspection import (
    CallObservation,
    evaluate,
    fit_logistic,
    observe,
    person_features,
    rank,
    rule_score,
    training_set,
)
from haneul.carecall.scheduler import Scheduler, SimClock, SimulatedDialer
from haneul.carecall.simulate import population
from haneul.carecall.stats import day_stats
from haneul.errors import InvalidInput
from haneul.platform import plugins


def calls(person: str, temps: list[float | None], symptoms: dict[int, dict[str, bool]] | None = None,
          unanswered: Collection[int] = ()) -> list[CallObservation]:
    """Two calls a day: call i is on day i // 2."""
    return [CallObservation(person, i // 2, i not in unanswered, None if i in unanswered else t,
                            (symptoms or {}).get(i, {})) for i, t in enumerate(temps)]


RISING = calls("rising", [36.6, 36.6, 36.9, 37.0, 37.2, 37.3])  # below 37.5 throughout, climbing
STEADY = calls("steady", [36.9, 36.8, 36.9, 36.8, 36.9, 36.8])
FEVER = calls("fever", [36.7, 37.9, 38.6, 38.2, 37.6, 37.0], {1: {"cough": True}, 3: {"cough": True, "breathing": True}})
SILENT = calls("silent", [36.5, 36.6, 36.6, None, None, None], unanswered={3, 4, 5})


def test_features_read_a_history_up_to_a_day() -> None:
    f = person_features(FEVER, day=2)
    assert f["t_max"] == pytest.approx(38.6 - 36.5) and f["t_last"] == pytest.approx(37.0 - 36.5)
    assert f["fever_calls"] == 4 and f["symptoms_ever"] == 2 and f["breathing"] == 1
    assert f["days_since_first"] == 2  # the fever of call 1 (day 0) came first
    assert f["symptom_share"] == pytest.approx(2 / 6) and f["symptoms_today"] == 0
    early = person_features(FEVER, day=0)  # nothing after day 0 is seen
    assert early["t_max"] == pytest.approx(37.9 - 36.5) and early["symptoms_ever"] == 1
    assert person_features(RISING, 2)["t_slope"] == pytest.approx(1.35 / 4.375)
    assert person_features(STEADY, 2)["t_slope"] == pytest.approx(-0.075 / 4.375)
    silent = person_features(SILENT, 2)
    assert silent["unanswered_streak"] == 3 and silent["unanswered_share"] == 0.5
    assert person_features([], 3) == {**person_features([], 3), "t_max": 0.0, "contact": 0.0}


def test_rule_ranks_rising_above_steady_with_reasons() -> None:
    ranked = rank(RISING + STEADY + FEVER + SILENT, day=2)
    assert [r.person for r in ranked] == ["fever", "rising", "silent", "steady"]
    by = {r.person: r for r in ranked}
    # fever, 38.5 or more, two symptoms, breathing, a first symptom (the fever) two days ago
    assert by["fever"].score == 3 + 1 + 1.5 * 2 + 2 + 1
    assert by["fever"].reasons == ("최고 체온 38.6도", "증상 2개", "호흡곤란", "증상 시작 2일 전")
    assert by["rising"].reasons == ("체온 상승 +0.3도/일",) and by["steady"].score == 0
    assert by["silent"].reasons == ("연속 미응답 3회",)
    # on day 0 nobody is rising yet: the fever alone leads
    assert rule_score(person_features(RISING, 0)) == (0.0, [])
    with pytest.raises(InvalidInput, match="use one of rule, model"):
        rank(RISING, method="best")


def test_logistic_model_learns_which_way_fever_points() -> None:
    hot = [person_features(calls(f"h{i}", [36.6, 37.6 + i / 10]), 0) for i in range(5)]
    cold = [person_features(calls(f"c{i}", [36.5, 36.6 + i / 20]), 0) for i in range(5)]
    model = fit_logistic(hot + cold, [True] * 5 + [False] * 5, l2=1.0)
    assert model.weights[model.features.index("t_max")] > 0
    p_hot, why = model.score(hot[0])
    p_cold, _ = model.score(cold[0])
    assert p_hot > 0.5 > p_cold and why and why[0].split()[0] in ("t_max", "t_last", "fever_calls", "t_slope",
                                                                  "onset_recent", "days_since_first")
    again = type(model).from_dict(model.to_dict())
    assert again.score(hot[0])[0] == pytest.approx(p_hot)


def test_observe_reads_records_and_stored_dicts() -> None:
    record = CallRecord(scenario="covid_monitoring", person="p1", outcome="escalated", temperature=37.8,
                        symptoms={"cough": True}, day=2)
    record.answers["temperature"] = Answer("temperature", "temperature", "37.8도요", "yes", 37.8)
    seen = observe(record)
    assert (seen.person, seen.day, seen.answered, seen.temperature) == ("p1", 2, True, 37.8)
    stored = observe({"outcome": "no_answer", "answers": {}, "symptoms": {"cough": True}}, person="7", day=1)
    assert (stored.answered, stored.symptoms) == (False, {})
    assert observe(None, person="7", day=0).answered is False


def test_evaluation_beats_random_on_a_small_cohort() -> None:
    days = 3
    people = population(120, seed=3, infected=0.15)
    records = simulate_campaign(people, "covid", days=days, calls_per_day=2, seed=3, oracle=True)
    truth = {p.id: p.infected for p in people}
    train_people = population(120, seed=4, infected=0.15)
    train = simulate_campaign(train_people, "covid", days=days, calls_per_day=2, seed=4, oracle=True)
    model = fit_logistic(*training_set([observe(r) for r in train], {p.id: p.infected for p in train_people},
                                       range(days)))
    result = evaluate([observe(r) for r in records], truth, days, model=model, seed=0)
    cases = sum(truth.values())
    assert result["rule"]["cases"] == cases == 25 and result["rule"]["tests_per_day"] == 12
    for method in ("rule", "model"):
        assert result[method]["recall_top10"] > 2 * result["random"]["recall_top10"], result
        assert result[method]["precision_top10"] >= 0.75
        assert result[method]["found_by_day"][-1] >= result["random"]["found_by_day"][-1]
        assert result[method]["mean_day_found"] < result["random"]["mean_day_found"]
    curve = result["rule"]["recall_at"]
    assert list(curve.values()) == sorted(curve.values())  # more tests never find fewer cases


def test_day_stats_on_a_hand_checked_campaign() -> None:
    first = dt.date(2030, 1, 7)
    rec = lambda temp, **s: {"temperature": temp, "symptoms": s}  # noqa: E731
    rows = [
        {"id": 1, "day": 0, "state": "done", "outcome": "answered", "record": rec(36.5, cough=False)},
        {"id": 2, "day": 0, "state": "done", "outcome": "escalated", "record": rec(38.0, cough=True)},
        {"id": 3, "day": 0, "state": "done", "outcome": "no_answer", "record": None},
        {"id": 4, "day": 0, "state": "done", "outcome": "hung_up", "record": rec(None, breathing=True)},
        {"id": 5, "day": 1, "state": "done", "outcome": "answered", "record": rec(36.7, contact=True)},
        {"id": 6, "day": 1, "state": "planned", "outcome": None, "record": None},
    ]
    noon = dt.datetime(2030, 1, 8, 12, tzinfo=dt.UTC).timestamp()
    alerts = [{"code": "fever", "attempt_id": 2, "created_at": 0.0},
              {"code": "breathing", "attempt_id": 4, "created_at": 0.0},
              {"code": "unreachable", "attempt_id": None, "created_at": noon}]
    d0, d1, d2 = day_stats(rows, alerts, days=3, first_day=first)
    assert (d0.date, d0.calls, d0.answered, d0.answer_rate) == ("2030-01-07", 4, 3, 0.75)
    assert d0.outcomes == {"answered": 1, "escalated": 1, "hung_up": 1, "no_answer": 1}
    assert d0.symptom_rates == {"fever": 1 / 3, "cough": 1 / 3, "sore_throat": 0.0, "breathing": 1 / 3,
                                "taste_smell": 0.0, "contact": 0.0}
    assert d0.alerts == {"breathing": 1, "fever": 1}
    assert (d1.calls, d1.answered, d1.planned, d1.symptom_rates["contact"], d1.alerts) == (1, 1, 1, 1.0,
                                                                                           {"unreachable": 1})
    assert (d2.calls, d2.answer_rate, d2.symptom_rates["fever"]) == (0, None, None)


# ------------------------------------------------------------------------------------------------
# the server

START = "2030-01-07"
PEOPLE = population(6, seed=11)
PHONES = [f"010-5555-{i:04d}" for i in range(len(PEOPLE))]
CSV = "name,phone,consent\n" + "".join(f"{p.name},{ph},yes\n" for p, ph in zip(PEOPLE, PHONES, strict=True))


@pytest.fixture
def clients(haneul_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, TestClient]]:
    """A nurse of team "care" and an outsider of team "other", on a server with the carecall plugin."""
    from haneul.platform.server import create_app
    from haneul.settings import Settings

    installed = plugins.discover
    entry = EntryPoint(name="carecall", value="haneul.carecall.server:plugin", group=plugins.GROUP)
    monkeypatch.setattr(plugins, "discover", lambda: {**installed(), "carecall": entry})
    app = create_app(Settings(home=haneul_home, capacity_cpus=2), server_url="http://testserver")
    with TestClient(app):
        accounts = app.state.accounts
        for user in ("nurse", "outsider"):
            accounts.create_user(user)
        accounts.create_team("care", owner="nurse")
        accounts.create_team("other", owner="outsider")
        out = {}
        for user in ("nurse", "outsider"):
            client = TestClient(app)
            client.headers["Authorization"] = f"Bearer {accounts.create_token(user)['token']}"
            out[user] = client
        yield out


def seed_campaign(nurse: TestClient) -> int:
    people = nurse.post("/api/v1/carecall/people/import", json={"csv": CSV}).json()
    campaign = nurse.post("/api/v1/carecall/campaigns", json={
        "name": "ward 9", "scenario": "covid", "people": [p["id"] for p in people],
        "schedule": {"start_date": START, "times": ["09:00", "18:00"], "days": 2}}).json()
    nurse.post(f"/api/v1/carecall/campaigns/{campaign['id']}/start")
    zone = dt.timezone(dt.timedelta(hours=9))
    clock = SimClock(dt.datetime.fromisoformat(f"{START}T00:00").replace(tzinfo=zone).timestamp())
    personas = {f"+8210{ph[4:8]}{ph[9:]}": p for p, ph in zip(PEOPLE, PHONES, strict=True)}
    engine = nurse.app.state.platform.engine  # type: ignore[attr-defined]
    Scheduler(engine, SimulatedDialer(personas, seed=11, clock=clock), now=clock).run_until_idle(clock)
    return int(campaign["id"])


def test_stats_and_ranking_routes_and_page(clients: dict[str, TestClient]) -> None:
    nurse, outsider = clients["nurse"], clients["outsider"]
    cid = seed_campaign(nurse)
    calls_done = nurse.get(f"/api/v1/carecall/campaigns/{cid}/calls", params={"state": "done", "record": True}).json()
    alerts = nurse.get("/api/v1/carecall/alerts", params={"campaign": cid}).json()

    stats = nurse.get(f"/api/v1/carecall/campaigns/{cid}/stats")
    assert stats.status_code == 200, stats.text
    body = stats.json()
    assert [d["date"] for d in body["days"]] == ["2030-01-07", "2030-01-08"]
    assert body["totals"]["calls"] == len(calls_done) and body["people"] == 6
    for d in body["days"]:
        mine = [c for c in calls_done if c["day"] == d["day"]]
        picked = [c for c in mine if c["outcome"] not in ("no_answer", "busy", "failed")]
        assert d["calls"] == len(mine) and d["answered"] == len(picked)
        assert sum(d["outcomes"].values()) == d["calls"]
        coughs = sum(bool(c["record"]["symptoms"].get("cough")) for c in picked)
        assert d["symptom_rates"]["cough"] == pytest.approx(coughs / len(picked))
    assert sum(sum(d["alerts"].values()) for d in body["days"]) == len(alerts)

    ranking = nurse.get(f"/api/v1/carecall/campaigns/{cid}/ranking", params={"top": 3}).json()
    assert ranking["day"] == 1 and ranking["people"] == 6 and len(ranking["items"]) == 3
    scores = [r["score"] for r in ranking["items"]]
    assert scores == sorted(scores, reverse=True) and [r["rank"] for r in ranking["items"]] == [1, 2, 3]
    infected = {p.name for p in PEOPLE if p.infected}
    assert ranking["items"][0]["reasons"] and ranking["items"][0]["name"] in infected
    assert nurse.get(f"/api/v1/carecall/campaigns/{cid}/ranking", params={"method": "x"}).status_code in (400, 422)

    page = nurse.get(f"/carecall/campaigns/{cid}/stats")
    assert page.status_code == 200, page.text
    assert '<script src="/static/plotly.min.js"></script>' in page.text
    assert all(f'id="{c}"' in page.text for c in ("chart-answer", "chart-symptoms", "chart-alerts", "ranking"))
    assert ranking["items"][0]["name"] in page.text.split('id="ranking"')[1]
    assert f'href="/carecall/campaigns/{cid}/stats"' in nurse.get(f"/carecall/campaigns/{cid}").text

    for url in (f"/api/v1/carecall/campaigns/{cid}/stats", f"/api/v1/carecall/campaigns/{cid}/ranking",
                f"/carecall/campaigns/{cid}/stats"):
        res = outsider.get(url)
        assert res.status_code == 404 and "not found" in res.text, (url, res.status_code)
    assert nurse.get("/api/v1/carecall/campaigns/999/stats").status_code == 404
