"""The optimiser's pages: the studies list, a study's page and the compact trial table behind it, kept
to the study's team; in a browser, every plot drawn, the table virtualised and sortable, and an edit of
a running study's space that the next trials follow."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from haneul.platform.testing import LiveServer, as_admin, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from bench_tune_page import seed_finished_study  # noqa: E402  the benchmark's 10,000-trial study, smaller


@pytest.fixture
def app_client(haneul_home: Path) -> Iterator[TestClient]:
    """The server in-process (no trial runs: studies are written into its tables)."""
    from haneul.platform.server import create_app
    from haneul.settings import Settings

    app = create_app(Settings(home=haneul_home, capacity_cpus=2), server_url="http://testserver")
    with TestClient(app) as client:
        yield as_admin(client)


def engine_of(client: TestClient) -> Any:
    return client.app.state.platform.engine  # type: ignore[attr-defined]


def test_study_page_shows_status_best_and_forms(app_client: TestClient) -> None:
    sid = seed_finished_study(engine_of(app_client), 30)
    table = app_client.get(f"/api/v1/tune/studies/{sid}/table").json()
    complete = [r for r in table["rows"] if r[1] == "complete"]
    best = min(complete, key=lambda r: r[2])

    page = app_client.get(f"/tune/{sid}")
    assert page.status_code == 200, page.text
    html = page.text
    assert '<span class="status done" id="study-status">done</span>' in html
    assert f"{best[2]:.4g} (trial {best[0]})" in html
    params = dict(zip(table["params"], best[len(table["columns"]):], strict=True))
    assert f"lr={params['lr']:.4g}, dim={params['dim']}, dropout={params['dropout']:.4g}, opt={params['opt']}" in html
    assert "30 / 10000 launched · 27 complete · 3 pruned" in html
    # a low/high pair for each numeric parameter, an "add" box for the categorical one, the budget
    for name in ("lr", "dim", "dropout"):
        assert f'aria-label="{name} low"' in html and f'aria-label="{name} high"' in html
    assert 'data-param="opt" data-type="categorical"' in html
    assert 'name="trials" type="number" min="1" value="10000"' in html
    # the same page by the study's name; the list links to it and shows its best
    assert app_client.get("/tune/big").status_code == 200
    listing = app_client.get("/tune").text
    assert f'<a href="/tune/{sid}">big</a>' in listing and f"{best[2]:.4g}" in listing


def test_trial_table_is_compact_and_polls_only_what_can_change(app_client: TestClient) -> None:
    sid = seed_finished_study(engine_of(app_client), 50)
    res = app_client.get(f"/api/v1/tune/studies/{sid}/table")
    assert res.status_code == 200, res.text
    data = res.json()
    assert data["study"]["status"] == "done" and data["params"] == ["lr", "dim", "dropout", "opt"]
    cols = {name: i for i, name in enumerate(data["columns"])}
    assert [r[cols["number"]] for r in data["rows"]] == list(range(50))
    pruned = data["rows"][9]
    assert pruned[cols["state"]] == "pruned" and pruned[cols["value"]] is None and pruned[cols["last_step"]] == 3
    failed = data["rows"][49]
    assert failed[cols["state"]] == "failed" and failed[cols["reason"]] == "session failed: exit 1"
    # the parameters follow the fixed columns, in the space's order, as the trial's own rows hold them
    trials = app_client.get(f"/api/v1/tune/studies/{sid}/trials").json()
    first = len(data["columns"])
    for row, trial in zip(data["rows"], trials, strict=True):
        assert dict(zip(data["params"], row[first:], strict=True)) == trial["params"]
        assert row[cols["value"]] == trial["value"]
    # a poll asks for the trials above the last settled one
    after = app_client.get(f"/api/v1/tune/studies/{sid}/table", params={"after": 46}).json()
    assert [r[0] for r in after["rows"]] == [47, 48, 49]
    # and the page's other data routes read the seeded journal: trial 9 was pruned after 3 steps
    inter = {t["number"]: t for t in app_client.get(f"/api/v1/tune/studies/{sid}/intermediate").json()}
    assert inter[9]["state"] == "pruned" and inter[9]["steps"] == [1, 2, 3]

    assert app_client.get(f"/api/v1/tune/studies/{sid}/table", params={"after": -2}).status_code == 400
    missing = app_client.get("/api/v1/tune/studies/nope/table")
    assert missing.status_code == 404 and "not found" in missing.json()["error"]["message"]
    assert app_client.get("/tune/nope").status_code == 404


def _user(client: TestClient, name: str, team: str) -> dict[str, str]:
    res = client.post("/api/v1/users", json={"name": name, "team": team, "role": "member"})
    assert res.status_code == 201, res.text
    token = client.post(f"/api/v1/users/{name}/tokens", json={"name": "test"}).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def test_another_teams_study_is_not_found(app_client: TestClient) -> None:
    teams = {}
    for team in ("red", "blue"):
        res = app_client.post("/api/v1/teams", json={"name": team})
        assert res.status_code == 201, res.text
        teams[team] = res.json()["id"]
    red, blue = _user(app_client, "a", "red"), _user(app_client, "b", "blue")
    sid = seed_finished_study(engine_of(app_client), 5, team_id=teams["red"])

    assert app_client.get(f"/tune/{sid}", headers=red).status_code == 200
    assert app_client.get(f"/api/v1/tune/studies/{sid}/table", headers=red).status_code == 200
    for path in (f"/tune/{sid}", "/tune/big", f"/api/v1/tune/studies/{sid}/table"):
        res = app_client.get(path, headers=blue)
        assert res.status_code == 404, (path, res.text)
    assert "big" not in app_client.get("/tune", headers=blue).text.split("<h1>Studies</h1>")[1]


# ---------------------------------------------------------------------- in a browser
def _seed_live(server: LiveServer, n: int, **kwargs: Any) -> int:
    from haneul.platform.db import make_engine
    from haneul.settings import Settings

    engine = make_engine(Settings(home=server.home).database_url)  # the live server's database
    try:
        return seed_finished_study(engine, n, **kwargs)
    finally:
        engine.dispose()


PLOTS = ("plot-history", "plot-compute", "plot-importance", "plot-contour", "plot-parallel", "plot-intermediate",
         "plot-lineage")


@pytest.mark.browser
def test_study_page_draws_every_plot_and_a_virtual_sortable_table(tune_server: LiveServer, page: Any) -> None:
    sid = _seed_live(tune_server, 2000, parents=True)
    page.goto(tune_server.login_url(f"/tune/{sid}"))
    page.wait_for_function("document.getElementById('trial-total').textContent === '2000 trials'", timeout=20_000)
    page.wait_for_function("document.getElementById('plot-importance').data?.[0]?.x?.length === 4", timeout=30_000)
    traces = page.evaluate("""ids => Object.fromEntries(ids.map(id => {
        const el = document.getElementById(id);
        return [id, (el.data || []).map(t => [t.type, (t.x || t.dimensions || []).length])];
    }))""", list(PLOTS))
    assert traces["plot-history"][0] == ["scatter", 1800]  # every complete trial (2000 - 160 pruned - 40 failed)
    assert traces["plot-parallel"] == [["parcoords", 5]]   # four parameters and the objective
    assert traces["plot-contour"][0][0] == "contour"
    assert {t[0] for t in traces["plot-intermediate"]} == {"scatter"} and len(traces["plot-intermediate"]) == 4
    assert traces["plot-lineage"] and traces["plot-lineage"][1][1] == 2000
    assert page.evaluate("document.querySelectorAll('#plot-slices .slice').length") == 4

    # the table holds only the rows in view (plus a margin), yet scrolls over all 2000
    drawn = page.evaluate("document.querySelectorAll('#trials tbody tr[data-number]').length")
    assert 0 < drawn < 200
    page.evaluate("document.getElementById('trials-scroll').scrollTop = 1e9")
    page.wait_for_selector('#trials tbody tr[data-number="1999"]')
    # sorting by value puts the best trial first
    page.click('#trials thead a[data-key="value"]')
    page.evaluate("document.getElementById('trials-scroll').scrollTop = 0")
    best = page.evaluate("document.getElementById('study-best').textContent").split("(trial ")[1].rstrip(")")
    page.wait_for_function("n => document.querySelector('#trials tbody tr[data-number]').dataset.number === n", arg=best)


@pytest.mark.browser
def test_an_edit_of_the_space_on_the_page_is_followed_by_the_next_trials(tune_server: LiveServer, quadratic: Path,
                                                                         page: Any) -> None:
    spec = {"name": "quad", "command": [sys.executable, "train.py", "--x", "{x}", "--sleep", "0.3"],
            "cwd": str(quadratic), "objective": {"metric": "loss", "direction": "minimize"},
            "space": {"x": {"type": "float", "low": -1.0, "high": 1.0}},
            "budget": {"trials": 8, "concurrent": 1, "cpus": 1}, "algorithm": {"sampler": "random", "seed": 0}}
    with tune_server.http() as http:
        res = http.post("/api/v1/tune/studies", json={"spec": spec})
        assert res.status_code == 201, res.text
        page.goto(tune_server.login_url("/tune/quad"))
        # the first trial's points arrive while the page polls
        page.wait_for_function("(document.getElementById('plot-intermediate').data || [])"
                               ".some(t => t.x.filter(x => x !== null).length > 0)", timeout=30_000)

        page.fill('[aria-label="x low"]', "0.9")
        page.fill('[aria-label="x high"]', "1.0")
        page.click("#edit-btn")
        page.wait_for_function("document.getElementById('edit-message').textContent.startsWith('applied')")
        edited_at = time.time()
        assert http.get("/api/v1/tune/studies/quad").json()["spec"]["space"]["x"] == {
            "type": "float", "low": 0.9, "high": 1.0}

        def launched_after() -> dict[str, Any] | None:
            late = [t for t in http.get("/api/v1/tune/studies/quad/trials").json() if t["created_at"] > edited_at]
            return late[0] if late else None

        trial = wait_for(launched_after, timeout=40, interval=0.3)
        assert 0.9 <= trial["params"]["x"] <= 1.0, trial
        # the page's table picks the new trial up by itself
        page.wait_for_selector(f'#trials tbody tr[data-number="{trial["number"]}"]', timeout=10_000)

        # a hand-written trial enqueued from the page is the next one launched
        page.fill('#enqueue-form input[name="x"]', "0.95")
        page.click("#enqueue-btn")
        page.wait_for_function("document.getElementById('enqueue-message').textContent.startsWith('queued')")
        wait_for(lambda: any(t["params"]["x"] == 0.95 for t in http.get("/api/v1/tune/studies/quad/trials").json()),
                 timeout=40, interval=0.3)

        # a bad edit answers one line on the page and changes nothing
        page.fill('[aria-label="x low"]', "2")
        page.click("#edit-btn")
        page.wait_for_selector("#tune-error:not([hidden])")
        assert "empty range" in page.text_content("#tune-error")
        page.click("#stop-btn")
        page.wait_for_selector("#resume-btn:not([hidden])")
        assert page.text_content("#study-status") == "stopped"
        assert http.get("/api/v1/tune/studies/quad").json()["spec"]["space"]["x"]["low"] == 0.9
