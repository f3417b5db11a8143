"""The carecall plugin on the server: people import, campaigns, calls and their CSV export, alerts
through ack / assign / resolve with an audit trail, memory read / correct / revert, the pages, and
another team's member answered 404 on every carecall route."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from haneul.carecall.scheduler import Scheduler, SimClock, SimulatedDialer
from haneul.carecall.simulate import population
from haneul.platform import plugins

START = "2030-01-07"  # far enough ahead that the server's own worker (on the real clock) leaves it alone
PEOPLE = population(6, seed=11)
PHONES = [f"010-4444-{i:04d}" for i in range(len(PEOPLE))]
CSV = "name,phone,consent,consent_date,call_times,notes\n" + "".join(
    f"{p.name},{phone},{'no' if i == 5 else 'yes'},2029-12-30,,\n" for i, (p, phone) in enumerate(zip(PEOPLE, PHONES, strict=True)))


@pytest.fixture
def app(haneul_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The server in-process with the carecall plugin mounted (as its entry point will register it)."""
    from haneul.platform.server import create_app
    from haneul.settings import Settings

    installed = plugins.discover
    entry = EntryPoint(name="carecall", value="haneul.carecall.server:plugin", group=plugins.GROUP)
    monkeypatch.setattr(plugins, "discover", lambda: {**installed(), "carecall": entry})
    yield create_app(Settings(home=haneul_home, capacity_cpus=2), server_url="http://testserver")


@pytest.fixture
def clients(app: Any) -> Iterator[dict[str, TestClient]]:
    """A nurse of team "care", a viewer of it, and an outsider who belongs to team "other"."""
    with TestClient(app):
        accounts = app.state.accounts
        for user in ("nurse", "viewer", "outsider"):
            accounts.create_user(user)
        accounts.create_team("care", owner="nurse")
        accounts.set_member("care", "viewer", "viewer")
        accounts.create_team("other", owner="outsider")
        out = {}
        for user in ("nurse", "viewer", "outsider"):
            client = TestClient(app)
            client.headers["Authorization"] = f"Bearer {accounts.create_token(user)['token']}"
            out[user] = client
        yield out


def engine_of(client: TestClient) -> Any:
    return client.app.state.platform.engine  # type: ignore[attr-defined]


def seed(nurse: TestClient) -> dict[str, Any]:
    """Import people, create and start a campaign, and run its two days on an accelerated clock."""
    res = nurse.post("/api/v1/carecall/people/import", json={"csv": CSV, "filename": "ward.csv"})
    assert res.status_code == 201, res.text
    people = res.json()
    res = nurse.post("/api/v1/carecall/campaigns", json={
        "name": "ward 7", "scenario": "covid", "people": [p["id"] for p in people],
        "schedule": {"start_date": START, "times": ["09:00", "18:00"], "days": 2}})
    assert res.status_code == 201, res.text
    campaign = res.json()
    assert campaign["status"] == "draft"
    started = nurse.post(f"/api/v1/carecall/campaigns/{campaign['id']}/start")
    assert started.status_code == 200 and started.json()["attempts"] == {"planned": 5 * 2 * 2}
    zone = dt.timezone(dt.timedelta(hours=9))
    clock = SimClock(dt.datetime.fromisoformat(f"{START}T00:00").replace(tzinfo=zone).timestamp())
    personas = {f"+8210{phone[4:8]}{phone[9:]}": p for p, phone in zip(PEOPLE, PHONES, strict=True)}
    worker = Scheduler(engine_of(nurse), SimulatedDialer(personas, seed=11, clock=clock), now=clock)
    worker.run_until_idle(clock)
    return {"people": people, "campaign": campaign}


def test_people_campaign_calls_alerts_and_memory(clients: dict[str, TestClient]) -> None:
    nurse, viewer = clients["nurse"], clients["viewer"]
    bad = nurse.post("/api/v1/carecall/people/import",
                     json={"csv": "name,phone,consent\n,010-1,perhaps\n", "filename": "bad.csv"})
    assert bad.status_code == 400
    assert bad.json()["error"]["message"].splitlines() == [
        "bad.csv:2:name: missing name",
        "bad.csv:2:phone: '010-1' is not a Korean phone number (wrong prefix or length); "
        "write it as 010-1234-5678 or 02-123-4567",
        "bad.csv:2:consent: 'perhaps' is not yes/no"]
    data = seed(nurse)
    cid, people = data["campaign"]["id"], data["people"]
    refused = people[5]
    assert refused["consent"] is False and refused["phone"] == "+821044440005"

    campaign = nurse.get(f"/api/v1/carecall/campaigns/{cid}").json()
    assert campaign["status"] == "done" and sum(campaign["outcomes"].values()) >= 20
    calls = nurse.get(f"/api/v1/carecall/campaigns/{cid}/calls").json()
    assert {c["person_id"] for c in calls} == {p["id"] for p in people[:5]}  # the refusal is never called
    assert nurse.get(f"/api/v1/carecall/people/{refused['id']}/calls").json() == []
    mine = nurse.get(f"/api/v1/carecall/people/{people[0]['id']}/calls", params={"record": True}).json()
    assert mine and all(c["person_id"] == people[0]["id"] for c in mine)
    assert any(c["record"] and c["record"]["transcript"] for c in mine)

    exported = nurse.get(f"/api/v1/carecall/campaigns/{cid}/calls.csv")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == len(calls) and {r["outcome"] for r in rows} == {c["outcome"] for c in calls}
    assert {r["phone"] for r in rows} == {p["phone"] for p in people[:5]}

    # alerts: the ones calls raised, moved along by staff, every change audited
    alerts = nurse.get("/api/v1/carecall/alerts", params={"campaign": cid}).json()
    raised = {(c["person_id"], a["code"]) for c in nurse.get(
        f"/api/v1/carecall/campaigns/{cid}/calls", params={"record": True}).json() for a in c["record"]["alerts"]}
    assert {(a["person_id"], a["code"]) for a in alerts} >= raised and alerts
    aid = alerts[0]["id"]
    assert viewer.post(f"/api/v1/carecall/alerts/{aid}/ack").status_code == 403  # a viewer only reads
    assert nurse.post(f"/api/v1/carecall/alerts/{aid}/ack").json()["state"] == "acknowledged"
    assert nurse.post(f"/api/v1/carecall/alerts/{aid}/ack").status_code == 409
    assigned = nurse.post(f"/api/v1/carecall/alerts/{aid}/assign", json={"assignee": "viewer"}).json()
    assert (assigned["state"], assigned["assignee"]) == ("assigned", "viewer")
    assert nurse.post(f"/api/v1/carecall/alerts/{aid}/resolve", json={"note": "보건소 방문 안내"}).json()["state"] == \
        "resolved"
    history = nurse.get(f"/api/v1/carecall/alerts/{aid}").json()["history"]
    assert [(h["action"], h["actor"], h["from_state"], h["to_state"]) for h in history] == [
        ("opened", "carecall", None, "open"), ("acknowledged", "nurse", "open", "acknowledged"),
        ("assigned", "nurse", "acknowledged", "assigned"), ("resolved", "nurse", "assigned", "resolved")]
    assert history[-1]["note"] == "보건소 방문 안내"
    assert aid not in {a["id"] for a in nurse.get("/api/v1/carecall/alerts", params={"state": "open"}).json()}

    # memory: what the calls left, a correction by staff, a revert
    pid = people[0]["id"]
    memory = nurse.get(f"/api/v1/carecall/people/{pid}/memory").json()
    assert memory["version"] >= 1 and any(s.startswith("체온 ") for s in memory["sentences"])
    fixed = nurse.put(f"/api/v1/carecall/people/{pid}/memory",
                      json={"sentences": ["기침 있음", "무릎이 아프심"], "expected_version": memory["version"]})
    assert fixed.status_code == 200, fixed.text
    assert (fixed.json()["by"], fixed.json()["version"]) == ("nurse", memory["version"] + 1)
    stale = nurse.put(f"/api/v1/carecall/people/{pid}/memory",
                      json={"sentences": ["x"], "expected_version": memory["version"]})
    assert stale.status_code == 409
    reverted = nurse.post(f"/api/v1/carecall/people/{pid}/memory/revert", json={"version": 1}).json()
    assert reverted["reverted_from"] == 1 and reverted["by"] == "nurse"
    assert viewer.put(f"/api/v1/carecall/people/{pid}/memory", json={"sentences": []}).status_code == 403

    pause = nurse.post(f"/api/v1/carecall/campaigns/{cid}/pause")
    assert pause.status_code == 409  # a finished campaign cannot be paused


def test_pages_show_campaigns_a_day_and_a_timeline(clients: dict[str, TestClient]) -> None:
    nurse = clients["nurse"]
    data = seed(nurse)
    cid, pid = data["campaign"]["id"], data["people"][0]["id"]
    listing = nurse.get("/carecall")
    assert listing.status_code == 200 and f'<a href="/carecall/campaigns/{cid}">ward 7</a>' in listing.text
    day = nurse.get(f"/carecall/campaigns/{cid}", params={"date": START})
    assert day.status_code == 200, day.text
    slots = re.findall(r'<tr data-id="\d+"><td>(\d\d:\d\d)</td>', day.text.split('id="calls"')[1])
    assert slots.count("09:00") >= 5 and slots.count("18:00") >= 5  # and any retries of them
    person = nurse.get(f"/carecall/people/{pid}")
    assert person.status_code == 200
    assert "김" in person.text or data["people"][0]["name"] in person.text
    assert "안녕하세요, 보건소 능동감시 확인 전화입니다." in person.text  # the transcript
    assert 'id="memory"' in person.text and "체온 " in person.text
    assert "CareCall" in person.text  # the nav entry


def route_bodies(ids: dict[str, int], care: int) -> dict[tuple[str, str], Any]:
    """A valid body for each carecall route that takes one (so only the team check can refuse it)."""
    return {
        ("POST", "/api/v1/carecall/people/import"): {"csv": "name,phone,consent\n남,010-9999-0000,yes\n",
                                                     "team": care},
        ("POST", "/api/v1/carecall/campaigns"): {"name": "x", "scenario": "covid", "people": [ids["pid"]],
                                                 "schedule": {"start_date": START}, "team": care},
        ("PUT", "/api/v1/carecall/people/{pid}/memory"): {"sentences": ["x"]},
        ("POST", "/api/v1/carecall/people/{pid}/memory/revert"): {"version": 0},
        ("POST", "/api/v1/carecall/alerts/{aid}/assign"): {"assignee": "outsider"},
    }


def api_routes(routes: Any) -> Iterator[APIRoute]:
    """The app's routes, looking inside included routers (which FastAPI may keep as routers of their own)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from api_routes(inner.routes)


def test_an_outsider_gets_404_on_every_carecall_route(clients: dict[str, TestClient]) -> None:
    nurse, outsider = clients["nurse"], clients["outsider"]
    data = seed(nurse)
    alerts = nurse.get("/api/v1/carecall/alerts").json()
    care = data["people"][0]["team_id"]
    ids = {"pid": data["people"][0]["id"], "cid": data["campaign"]["id"], "aid": alerts[0]["id"]}
    bodies = route_bodies(ids, care)
    walked = []
    for route in api_routes(outsider.app.routes):  # type: ignore[attr-defined]
        if "carecall" not in route.path:
            continue
        for method in sorted(route.methods - {"HEAD"}):
            walked.append((method, route.path))
            url = route.path.format(**ids)
            params = {"campaign": ids["cid"]} if route.path == "/api/v1/carecall/alerts" else {}
            res = outsider.request(method, url, json=bodies.get((method, route.path)), params=params)
            if "{" not in route.path and method == "GET" and not params:
                # a listing: answered, without anything of the other team
                assert res.status_code == 200, (method, route.path, res.text)
                assert "ward 7" not in res.text and all(p["phone"] not in res.text for p in data["people"])
            else:
                assert res.status_code == 404, (method, route.path, res.status_code, res.text)
                assert str(ids["pid"]) in res.text or "not found" in res.text
    # every route was walked: the API and the pages
    assert len(walked) == 25, walked
    # the same alert list for the outsider's own (empty) view, and the nurse still sees everything
    assert outsider.get("/api/v1/carecall/alerts").json() == []
    assert nurse.get(f"/api/v1/carecall/campaigns/{ids['cid']}").status_code == 200
