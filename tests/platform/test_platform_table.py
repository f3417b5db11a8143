"""The sessions table over a large result (one scroll area that draws only the rows in view), the keys
route behind its column picker, and system metrics kept out of a session's main charts."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from platform_helpers import LiveServer
from sqlalchemy import Engine, insert, update

from haneul.platform.db import MetricKey, Session, make_engine
from haneul.platform.db.models import SessionParam, SessionTag
from haneul.settings import Settings


def _insert_sessions(engine: Engine, n: int, *, project: str = "default", archived: bool = False) -> list[int]:
    """``n`` finished sessions written straight into the database (no processes behind them), in one
    statement; their ids in creation order."""
    now = time.time()
    rows = [dict(name=f"exp-{i}", owner=f"user{i % 7}", status="done", command=["python", "train.py"], env={},
                 cpus=1.0, gpus=0, memory=0, priority=0, executor="local", token_hash="x", workdir=None,
                 log_path=None, created_at=now - n + i, project=project, archived=archived) for i in range(n)]
    with engine.begin() as conn:
        first = conn.execute(insert(Session).returning(Session.id), rows).scalars().all()
    return sorted(first)


def _params(engine: Engine, sid: int, **values: Any) -> None:
    with engine.begin() as conn:
        conn.execute(insert(SessionParam), [
            dict(session_id=sid, key=k, value=v, num=float(v) if isinstance(v, int | float) else None,
                 text=None if isinstance(v, int | float) else str(v)) for k, v in values.items()])


def _tags(engine: Engine, sid: int, **values: str) -> None:
    with engine.begin() as conn:
        conn.execute(insert(SessionTag), [dict(session_id=sid, key=k, value=v) for k, v in values.items()])


def _metrics(engine: Engine, sid: int, *keys: str) -> None:
    with engine.begin() as conn:
        conn.execute(insert(MetricKey), [dict(session_id=sid, key=k, count=1, last_step=0, last_value=0.5)
                                         for k in keys])


# ---------------------------------------------------------------------- the keys route
def test_keys_route_lists_every_key_of_the_matching_sessions(api: TestClient) -> None:
    engine = api.app.state.platform.engine
    nsmc, klue = _insert_sessions(engine, 1, project="nsmc")[0], _insert_sessions(engine, 1, project="klue")[0]
    (hidden,) = _insert_sessions(engine, 1, project="klue", archived=True)
    _params(engine, nsmc, lr=1e-3, batch=32)
    _params(engine, klue, lr=1e-4, opt="adamw")
    _params(engine, hidden, secret_trick=1)
    _tags(engine, nsmc, model="bert")
    _tags(engine, klue, note="baseline")
    _metrics(engine, nsmc, "loss", "sys/cpu_percent")
    _metrics(engine, klue, "acc", "loss")

    res = api.get("/api/v1/sessions/keys")
    assert res.status_code == 200, res.text
    assert res.json() == {"params": ["batch", "lr", "opt"], "metrics": ["acc", "loss", "sys/cpu_percent"],
                          "tags": ["model", "note"]}
    # the same filters as the list: a search expression, a project, the archived switch
    klue_keys = {"params": ["lr", "opt"], "metrics": ["acc", "loss"], "tags": ["note"]}
    assert api.get("/api/v1/sessions/keys", params={"filter": 'project = "klue"'}).json() == klue_keys
    assert api.get("/api/v1/sessions/keys", params={"project": "klue"}).json() == klue_keys
    assert api.get("/api/v1/sessions/keys", params={"filter": "params.batch >= 32"}).json() == {
        "params": ["batch", "lr"], "metrics": ["loss", "sys/cpu_percent"], "tags": ["model"]}
    assert api.get("/api/v1/sessions/keys", params={"archived": "1"}).json() == {
        "params": ["secret_trick"], "metrics": [], "tags": []}
    assert api.get("/api/v1/sessions/keys", params={"archived": "all", "limit": 2}).json() == {
        "params": ["batch", "lr"], "metrics": ["acc", "loss"], "tags": ["model", "note"]}
    assert api.get("/api/v1/sessions/keys", params={"filter": "params.lr > 1"}).json() == {
        "params": [], "metrics": [], "tags": []}

    bad = api.get("/api/v1/sessions/keys", params={"filter": "params.lr <"})
    assert bad.status_code == 400 and "position" in bad.json()["error"]["message"]
    assert api.get("/api/v1/sessions/keys", params={"limit": 0}).status_code == 400
    assert api.get("/api/v1/sessions/keys", params={"archived": "maybe"}).status_code == 400


# ---------------------------------------------------------------------- system metrics
def test_system_keys_stay_out_of_the_main_charts_and_are_counted_apart(api: TestClient) -> None:
    engine = api.app.state.platform.engine
    (sid,) = _insert_sessions(engine, 1)
    # a full page of the run's own keys and three system keys: one page, and it follows new keys
    own = [f"k{i:02d}" for i in range(24)]
    _metrics(engine, sid, *own, "sys/cpu_percent", "sys/rss_mb", "sys/gpu0_util")
    page = api.get(f"/sessions/{sid}").text
    assert re.findall(r'class="chart" data-key="([^"]+)"', page) == own
    assert '<span class="muted" id="key-total">24 keys</span>' in page and "+ 3 system" in page
    assert 'data-follow-all="true"' in page and 'id="key-filter"' not in page
    assert 'data-skip-prefix="sys/"' in page
    # a filter matching a system key finds no main chart
    found = api.get(f"/sessions/{sid}", params={"mq": "cpu"}).text
    assert re.findall(r'class="chart" data-key="([^"]+)"', found) == [] and "no key contains" in found
    # one key more makes two pages of the run's keys, still without the system ones
    _metrics(engine, sid, "zz")
    second = api.get(f"/sessions/{sid}", params={"mpage": 2}).text
    assert re.findall(r'class="chart" data-key="([^"]+)"', second) == ["zz"]
    assert "page 2 / 2" in second and "keys 25–25 of 25" in second and 'data-follow-all="false"' in second
    platform = api.app.state.platform
    assert platform.count_metric_keys(sid) == 28
    assert platform.count_metric_keys(sid, exclude_prefix="sys/") == 25
    assert [k["key"] for k in platform.metric_keys(sid, q="u", exclude_prefix="sys/")] == []
    assert [k["key"] for k in platform.metric_keys(sid, q="u")] == ["sys/cpu_percent", "sys/gpu0_util"]


def test_a_session_with_only_system_keys_has_no_main_charts(api: TestClient) -> None:
    engine = api.app.state.platform.engine
    (sid,) = _insert_sessions(engine, 1)
    _metrics(engine, sid, "sys/cpu_percent", "sys/rss_mb")
    page = api.get(f"/sessions/{sid}").text
    assert re.findall(r'class="chart" data-key="([^"]+)"', page) == []
    assert 'id="no-metrics"' in page and ">0 keys<" in page and "+ 2 system" in page


# ---------------------------------------------------------------------- the table in a browser
N = 10_000


def _row_ids(page: Any) -> list[int]:
    return page.evaluate("[...document.querySelectorAll('#sessions tbody tr[data-id]')].map((r) => +r.dataset.id)")


def _scroll(page: Any, top: str) -> None:
    page.evaluate(f"(() => {{ const s = document.getElementById('sessions-scroll'); s.scrollTop = {top}; }})()")


@pytest.mark.browser
def test_the_table_scrolls_through_ten_thousand_sessions(live_server: LiveServer, page) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(Settings(home=live_server.home).database_url)
    ids = _insert_sessions(engine, N)
    first, last = ids[-1], ids[0]  # newest first
    _params(engine, last, only_on_the_last=1.0)  # a key no session of the first rows carries

    page.goto(live_server.login_url("/"))
    page.wait_for_selector(f"tr[data-id='{first}']")
    assert page.text_content("#total") == f"{N} sessions"
    assert not page.is_visible("#pager")  # the scroll area replaces the page links
    assert len(_row_ids(page)) < 300

    # the end of the scroll area holds the oldest session, and the table stays small
    _scroll(page, "s.scrollHeight")
    page.wait_for_selector(f"tr[data-id='{last}']")
    rows = _row_ids(page)
    assert len(rows) < 300 and rows[-1] == last
    assert rows == list(range(rows[0], rows[0] - len(rows), -1))  # consecutive, newest first

    # the middle: the row under the header is the one its scroll position stands for
    _scroll(page, "s.scrollHeight / 2")
    under_header = """(() => {
        const s = document.getElementById('sessions-scroll'), box = s.getBoundingClientRect();
        const head = s.querySelector('thead th').getBoundingClientRect().height;  // sticky: stays on top
        const r = document.elementFromPoint(box.left + 20, box.top + head + 2).closest('tr');
        return r && r.dataset.id ? [+r.dataset.id, Math.floor(s.scrollTop / r.getBoundingClientRect().height)] : null;
    })()"""
    page.wait_for_function(under_header)  # the block of that position has arrived
    row_id, index = page.evaluate(under_header)
    assert abs(row_id - (first - index)) <= 1 and 4000 < index < 6000
    assert len(_row_ids(page)) < 300

    # ticks survive scrolling away: pick the newest and the oldest session, then compare them
    _scroll(page, "0")
    page.wait_for_selector(f"tr[data-id='{first}']")
    page.check(f"tr[data-id='{first}'] .pick")
    _scroll(page, "s.scrollHeight")
    page.wait_for_selector(f"tr[data-id='{last}']")
    page.check(f"tr[data-id='{last}'] .pick")

    # the live refresh fetches the rows in view again, and redraws only a row that changed
    neighbour = f"document.querySelector(\"tr[data-id='{last + 1}']\")"
    page.evaluate(f"{neighbour}.dataset.mark = 'kept'")
    with engine.begin() as conn:
        conn.execute(update(Session).where(Session.id == last).values(name="renamed-oldest"))
    page.wait_for_function(f"(document.querySelector(\"tr[data-id='{last}']\") || {{}}).textContent"
                           "?.includes('renamed-oldest')", timeout=20_000)
    assert page.is_checked(f"tr[data-id='{last}'] .pick")
    assert page.evaluate(f"{neighbour}.dataset.mark") == "kept"

    # the column picker offers every key of the matching sessions, not only those of the first rows
    page.click("#column-picker summary")
    page.wait_for_selector(".col-pick[value='params.only_on_the_last']")

    page.click("#compare-btn")
    page.wait_for_url(re.compile(r"/compare\?ids="))
    assert sorted(page.url.split("ids=")[1].split("&")[0].split(",")) == sorted([str(first), str(last)])
    engine.dispose()


@pytest.mark.browser
def test_every_block_honours_the_filter_and_sort(live_server: LiveServer, page) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(Settings(home=live_server.home).database_url)
    ids = _insert_sessions(engine, 3000)
    half = ids[1500]
    page.goto(live_server.login_url(f"/?filter=id+>%3D+{half}&sort=id&desc=false"))
    page.wait_for_selector(f"tr[data-id='{half}']")
    assert page.text_content("#total") == "1500 sessions"
    _scroll(page, "s.scrollHeight")
    page.wait_for_selector(f"tr[data-id='{ids[-1]}']")
    rows = _row_ids(page)
    assert rows[-1] == ids[-1] and rows == sorted(rows) and min(rows) >= half
    engine.dispose()


def test_the_first_rows_come_with_the_page(api: TestClient) -> None:
    """Before any script runs the page holds the first block of rows, the count and the page links."""
    engine = api.app.state.platform.engine
    ids = _insert_sessions(engine, 120)
    page = api.get("/").text
    assert re.findall(r'<tr data-id="(\d+)">', page) == [str(i) for i in ids[::-1][:50]]
    assert "120 sessions" in page and 'data-total="120"' in page and 'data-block="50"' in page
    assert "page 1 / 3" in page and 'id="sessions-scroll"' in page
    third = api.get("/", params={"page": 3}).text
    assert re.findall(r'<tr data-id="(\d+)">', third) == [str(i) for i in ids[::-1][100:]]
    assert 'data-offset="100"' in third
