"""Charts people read at a glance: the metric route's chart options (times, step range, min/max band,
CSV) through the API, and the session and compare pages' chart controls in headless Chromium."""

from __future__ import annotations

import csv
import io
import json
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from platform_helpers import LiveServer, wait_for

PY = sys.executable


def _session_with_points(api: TestClient, points: dict[str, tuple[list[int], list[float], list[float]]]) -> int:
    res = api.post("/api/v1/sessions", json={"command": [PY, "-c", "pass"]})
    assert res.status_code == 201, res.text
    sid = res.json()["id"]
    platform = api.app.state.platform
    platform.ingest_metrics(sid, {key: (np.array(s, dtype=np.int64), np.array(v, dtype=float), np.array(t, dtype=float))
                                  for key, (s, v, t) in points.items()})
    return sid


def test_times_flag_adds_each_points_time_and_leaves_the_plain_answer_alone(api: TestClient) -> None:
    sid = _session_with_points(api, {"loss": ([0, 1, 2, 3], [4.0, 3.0, 2.0, 1.0], [100.0, 101.5, 103.0, 110.0])})
    plain = api.get(f"/api/v1/sessions/{sid}/metrics/loss").json()
    assert "times" not in plain and "band" not in plain
    timed = api.get(f"/api/v1/sessions/{sid}/metrics/loss", params={"times": 1}).json()
    assert timed["steps"] == [0, 1, 2, 3] and timed["times"] == [100.0, 101.5, 103.0, 110.0]
    assert timed["total"] == plain["total"] == 4 and timed["last_id"] == plain["last_id"]
    # a later batch: after_id returns only it, with its own times
    platform = api.app.state.platform
    platform.ingest_metrics(sid, {"loss": (np.array([4]), np.array([0.5]), np.array([120.0]))})
    later = api.get(f"/api/v1/sessions/{sid}/metrics/loss", params={"times": 1, "after_id": timed["last_id"]}).json()
    assert later["steps"] == [4] and later["times"] == [120.0] and later["last_id"] > timed["last_id"]


def test_step_range_with_times_keeps_points_and_times_together(api: TestClient) -> None:
    # two batches out of step order: the answer is in step order and each time stays with its step
    sid = _session_with_points(api, {"acc": ([10, 11, 12], [0.1, 0.2, 0.3], [1010.0, 1011.0, 1012.0])})
    api.app.state.platform.ingest_metrics(
        sid, {"acc": (np.array([5, 6, 13]), np.array([0.05, 0.06, 0.13]), np.array([1005.0, 1006.0, 1013.0]))})
    got = api.get(f"/api/v1/sessions/{sid}/metrics/acc",
                  params={"times": 1, "step_min": 6, "step_max": 12}).json()
    assert got["steps"] == [6, 10, 11, 12]
    assert got["values"] == [0.06, 0.1, 0.2, 0.3]
    assert got["times"] == [1006.0, 1010.0, 1011.0, 1012.0]
    assert got["total"] == 4


def test_band_gives_each_buckets_span_min_and_max_only_when_downsampled(api: TestClient) -> None:
    n = 100
    values = [float(i % 10) for i in range(n)]  # each run of 10 holds 0..9
    values[37] = 50.0  # a spike inside the fourth bucket
    sid = _session_with_points(api, {"x": (list(range(n)), values, [1000.0 + i for i in range(n)])})
    got = api.get(f"/api/v1/sessions/{sid}/metrics/x", params={"max_points": 20, "band": 1, "times": 1}).json()
    band = got["band"]
    # 20 points -> 10 buckets of 10 steps each
    assert band["step_first"] == list(range(0, 100, 10)) and band["step_last"] == list(range(9, 100, 10))
    assert band["min"] == [0.0] * 10
    assert band["max"] == [9.0, 9.0, 9.0, 50.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0]
    assert band["time_first"][3] == 1030.0 and band["time_last"][3] == 1039.0
    # the line still holds each bucket's min and max points, with their own times
    assert 37 in got["steps"] and got["times"][got["steps"].index(37)] == 1037.0
    assert len(got["steps"]) <= 20
    full = api.get(f"/api/v1/sessions/{sid}/metrics/x", params={"band": 1}).json()
    assert full["band"] is None and len(full["steps"]) == n


def test_csv_download_has_every_point_with_its_time(api: TestClient) -> None:
    sid = _session_with_points(api, {"eval/loss": ([0, 1, 2], [0.5, 1 / 3, 0.25], [1.5, 2.5, 3.5])})
    res = api.get(f"/api/v1/sessions/{sid}/metrics/eval/loss", params={"format": "csv"})
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/csv")
    assert res.headers["content-disposition"] == f'attachment; filename="session-{sid}-eval_loss.csv"'
    rows = list(csv.reader(io.StringIO(res.text)))
    assert rows[0] == ["step", "value", "time"]
    assert [(int(s), float(v), float(t)) for s, v, t in rows[1:]] == [(0, 0.5, 1.5), (1, 1 / 3, 2.5), (2, 0.25, 3.5)]
    ranged = api.get(f"/api/v1/sessions/{sid}/metrics/eval/loss", params={"format": "csv", "step_min": 1})
    assert ranged.text.splitlines()[1:] == [f"1,{1 / 3!r},2.5", "2,0.25,3.5"]
    bad = api.get(f"/api/v1/sessions/{sid}/metrics/eval/loss", params={"format": "xml"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_input"
    missing = api.get(f"/api/v1/sessions/{sid}/metrics/nope", params={"format": "csv"})
    assert missing.status_code == 404


def test_spec_documents_the_chart_options(api: TestClient) -> None:
    op = api.get("/api/v1/openapi.json").json()["paths"]["/api/v1/sessions/{sid}/metrics/{key}"]["get"]
    names = {p["name"] for p in op["parameters"]}
    assert {"times", "band", "format", "step_min", "step_max"} <= names
    assert "text/csv" in op["responses"]["200"]["content"]



def test_params_diff_keeps_only_keys_whose_values_differ() -> None:
    from haneul.platform.server.web import params_diff

    sessions = [
        {"id": 1, "params": {"lr": 0.1, "bs": 32, "opt": "adam", "ema": True, "warmup": 100}},
        {"id": 2, "params": {"lr": 0.01, "bs": 32, "opt": "adam", "ema": 1, "warmup": 100}},
        {"id": 3, "params": {"lr": 0.001, "bs": 32, "opt": "sgd", "ema": True}},
    ]
    diff = params_diff(sessions)
    # bs is equal everywhere; ema True vs 1 differs (a flag is not a count); warmup is missing in #3
    assert diff.recorded and diff.keys == ["ema", "lr", "opt", "warmup"]
    assert diff.numeric == ["lr"]  # ema holds a bool, warmup is missing in one session
    assert params_diff([{"id": 1}, {"id": 2}]) == type(diff)(False, [], [])
    assert params_diff([{"id": 1, "params": {"a": 1}}, {"id": 2, "params": {"a": 1}}]).keys == []


def test_compare_page_charts_each_chosen_key_and_says_when_no_param_differs(api: TestClient) -> None:
    one = _session_with_points(api, {"loss": ([0, 1], [2.0, 1.5], [1.0, 2.0]), "acc": ([0, 1], [0.1, 0.4], [1.0, 2.0])})
    two = _session_with_points(api, {"loss": ([0, 1], [2.0, 1.25], [1.0, 2.0])})
    page = api.get(f"/compare?ids={one},{two}&key=loss&key=acc")
    assert page.status_code == 200
    html = page.text
    assert '<div class="compare-chart" data-key="loss">' in html and '<div class="compare-chart" data-key="acc">' in html
    assert "<td>1.25</td>" in html and "<td>0.4</td>" in html and "<td>-</td>" in html  # #2 never reported acc
    # both sessions ran the same command, so their params (if the server records them) are equal
    assert 'id="params-same"' in html or 'id="params-none"' in html
    assert 'id="parcoords"' not in html
    default = api.get(f"/compare?ids={one},{two}").text
    assert default.count('class="compare-chart"') == 1 and 'data-key="acc"' in default  # the first key


# ---------------------------------------------------------------------- pages in headless Chromium

TRAIN = """
import sys, haneul
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
lr, n = float(args.get("--lr", 0.1)), int(args.get("--n", 50))
for i in range(n):
    haneul.report(step=i, loss=(i % 7) + 1.0 + lr, acc=i / n)
"""


def _run(live_server: LiveServer, folder: Path, name: str, *args: str) -> str:
    sid = live_server.cli("run", "--name", name, "--", "python", "train.py", *args, cwd=folder).stdout.strip()
    assert sid.isdigit(), sid
    wait_for(lambda: _status(live_server, sid) == "done", timeout=60)
    return sid


def _status(live_server: LiveServer, sid: str) -> str:
    with urllib.request.urlopen(urllib.request.Request(f"{live_server.url}/api/v1/sessions/{sid}", headers=live_server.headers())) as res:
        return json.load(res)["status"]


def _ema(values: list[float], weight: float) -> list[float]:
    out, last = [], 0.0
    for i, v in enumerate(values):
        last = last * weight + (1 - weight) * v
        out.append(last / (1 - weight ** (i + 1)))
    return out


@pytest.fixture
def train_folder(tmp_path: Path) -> Path:
    (tmp_path / "train.py").write_text(TRAIN)
    return tmp_path


LOSS = "document.querySelector('.chart[data-key=loss]')"


@pytest.mark.browser
def test_session_page_toolbar_smooths_logs_and_switches_the_x_axis(
        live_server: LiveServer, train_folder: Path, page) -> None:  # type: ignore[no-untyped-def]
    sid = _run(live_server, train_folder, "toolbar", "--lr", "0.5")
    page.goto(live_server.login_url(f"/sessions/{sid}"))
    page.wait_for_function(f"{LOSS} && {LOSS}.data && {LOSS}.data[0].x.length === 50", timeout=20_000)
    raw = page.evaluate(f"{LOSS}.data[0].y")
    assert raw == [(i % 7) + 1.5 for i in range(50)]
    assert page.evaluate(f"{LOSS}.data[1].visible") is False  # smoothing 0: the raw line alone

    page.evaluate("const s = document.getElementById('smooth'); s.value = '0.6'; s.dispatchEvent(new Event('input'))")
    smoothed = page.evaluate(f"{LOSS}.data[1].y")
    assert page.evaluate(f"{LOSS}.data[1].visible") is True
    assert smoothed == pytest.approx(_ema(raw, 0.6), rel=1e-12)
    assert smoothed != pytest.approx(raw)  # the smoothing really moved the line
    assert page.evaluate(f"{LOSS}.data[0].y") == raw  # the faint raw trace keeps every value

    assert page.evaluate(f"{LOSS}.layout.yaxis.type") == "linear"
    page.check("#logy")
    assert page.evaluate(f"{LOSS}.layout.yaxis.type") == "log"
    assert page.evaluate(f"{LOSS}.layout.yaxis.title.text") == "loss"

    assert page.evaluate(f"{LOSS}.layout.xaxis.title.text") == "step"
    page.select_option("#xaxis", "time")
    assert page.evaluate(f"{LOSS}.layout.xaxis.title.text") == "time"
    assert page.evaluate(f"{LOSS}.layout.xaxis.type") == "date"
    page.select_option("#xaxis", "rel")
    assert page.evaluate(f"{LOSS}.layout.xaxis.title.text").startswith("time since start (")
    rel = page.evaluate(f"{LOSS}.data[0].x")
    assert rel == sorted(rel) and 0 <= rel[0] <= rel[-1] < 120  # seconds since the session started

    # the view is in the URL: a fresh load of the link draws the same
    query = page.evaluate("location.search")
    assert "smooth=0.6" in query and "logy=1" in query and "x=rel" in query
    page.goto(live_server.login_url(f"/sessions/{sid}{query}"))
    page.wait_for_function(f"{LOSS} && {LOSS}.data && {LOSS}.data[0].x.length === 50", timeout=20_000)
    assert page.evaluate(f"{LOSS}.layout.yaxis.type") == "log"
    assert page.evaluate(f"{LOSS}.data[1].y") == pytest.approx(_ema(raw, 0.6), rel=1e-12)
    assert page.evaluate(f"{LOSS}.layout.xaxis.title.text").startswith("time since start (")
    assert page.input_value("#xaxis") == "rel" and page.is_checked("#logy")


@pytest.mark.browser
def test_downsampled_chart_draws_a_band_and_zoom_fetches_every_point(
        live_server: LiveServer, train_folder: Path, page) -> None:  # type: ignore[no-untyped-def]
    sid = _run(live_server, train_folder, "long", "--n", "5000")
    page.goto(live_server.login_url(f"/sessions/{sid}"))
    page.wait_for_function(f"{LOSS} && {LOSS}.data && {LOSS}.data.length === 4", timeout=60_000)
    assert page.evaluate(f"{LOSS}.data[0].x.length") <= 2000
    band = page.evaluate(f"[{LOSS}.data[2].y, {LOSS}.data[3].y, {LOSS}.data[3].fill]")
    assert band[2] == "tonexty" and min(band[0]) == 1.1 and max(band[1]) == 7.1
    page.evaluate(f"Plotly.relayout({LOSS}, {{'xaxis.range': [100, 200]}})")
    page.wait_for_function(f"{LOSS}.data.length === 2", timeout=60_000)
    assert page.evaluate(f"{LOSS}.data[0].x") == list(range(100, 201))
    assert page.evaluate(f"{LOSS}.data[0].y") == [(i % 7) + 1.1 for i in range(100, 201)]
    page.evaluate(f"Plotly.relayout({LOSS}, {{'xaxis.autorange': true}})")
    page.wait_for_function(f"{LOSS}.data.length === 4", timeout=60_000)
    page.uncheck("#band")
    assert page.evaluate(f"{LOSS}.data.length") == 2
    # on a time axis a dragged range (date strings) is mapped to steps and fetched in full too
    page.check("#band")
    page.select_option("#xaxis", "time")
    page.evaluate(f"""(() => {{
        const x = {LOSS}.data[0].x, iso = (ms) => new Date(ms).toISOString().replace("T", " ").replace("Z", "");
        Plotly.relayout({LOSS}, {{"xaxis.range[0]": iso(x[200]), "xaxis.range[1]": iso(x[400])}});
    }})()""")
    page.wait_for_function(f"{LOSS}.data.length === 2", timeout=60_000)
    ys = [round(y - 1.1) for y in page.evaluate(f"{LOSS}.data[0].y")]
    assert len(ys) > 2 and all(b == (a + 1) % 7 for a, b in zip(ys, ys[1:], strict=False))  # consecutive steps


@pytest.mark.browser
def test_compare_overlays_sessions_by_name_and_lists_the_params_that_differ(
        live_server: LiveServer, train_folder: Path, page) -> None:  # type: ignore[no-untyped-def]
    runs = [("alpha", "0.1", "adam"), ("beta", "0.01", "adam"), ("gamma", "0.001", "sgd")]
    sids = [_run(live_server, train_folder, name, "--lr", lr, "--opt", opt, "--seed", "1") for name, lr, opt in runs]
    page.goto(live_server.login_url(f"/compare?ids={','.join(sids)}&key=loss&key=acc"))
    for key in ("loss", "acc"):
        page.wait_for_function(f"document.querySelector('.compare-chart[data-key={key}]').data", timeout=20_000)
    charts = page.evaluate("[...document.querySelectorAll('.compare-chart')].map("
                           "(d) => [d.dataset.key, d.data.map((t) => t.name), d.data[0].y.length])")
    names = [f"{name} #{sid}" for (name, _, _), sid in zip(runs, sids, strict=True)]
    assert charts == [["loss", names, 50], ["acc", names, 50]]
    assert page.evaluate("document.querySelector('.compare-chart[data-key=acc]').layout.yaxis.title.text") == "acc"
    # smoothing: the smoothed lines keep the session names, each raw line follows faint
    page.evaluate("const s = document.getElementById('smooth'); s.value = '0.5'; s.dispatchEvent(new Event('input'))")
    page.check("#logy")
    chart = "document.querySelector('.compare-chart[data-key=loss]')"
    assert page.evaluate(f"{chart}.data.map((t) => t.name)") == [*names, *(f"{n} (raw)" for n in names)]
    raw = page.evaluate(f"{chart}.data[3].y")
    assert raw == [(i % 7) + 1.1 for i in range(50)]
    assert page.evaluate(f"{chart}.data[0].y") == pytest.approx(_ema(raw, 0.5), rel=1e-12)
    assert page.evaluate(f"{chart}.layout.yaxis.type") == "log"
    assert "smooth=0.5" in page.evaluate("location.search") and "logy=1" in page.evaluate("location.search")

    session = json.loads(urllib.request.urlopen(urllib.request.Request(f"{live_server.url}/api/v1/sessions/{sids[0]}", headers=live_server.headers())).read())
    if "params" not in session:
        pytest.skip("the session answer carries no `params` yet, so there is no params diff to check")
    assert session["params"]["lr"] == 0.1
    rows = page.evaluate("[...document.querySelectorAll('#params-diff tbody tr')].map("
                         "(r) => [...r.children].map((c) => c.textContent))")
    assert rows == [["lr", "0.1", "0.01", "0.001"], ["opt", "adam", "adam", "sgd"]]  # seed and n are equal
    page.wait_for_function("document.getElementById('parcoords').data", timeout=20_000)
    dims = page.evaluate("document.getElementById('parcoords').data[0].dimensions.map((d) => [d.label, d.values])")
    assert dims == [["lr", [0.1, 0.01, 0.001]], ["loss (latest)", [1.1, 1.01, 1.001]]]


@pytest.mark.browser
def test_live_points_arrive_with_smoothing_and_a_time_axis_on(
        live_server: LiveServer, tmp_path: Path, page) -> None:  # type: ignore[no-untyped-def]
    gate = tmp_path / "go"
    (tmp_path / "live.py").write_text(
        "import os, time, haneul\n"
        "for i in range(300):\n"
        "    haneul.report(step=i, loss=1.0 / (i + 1))\n"
        "    if i == 100:\n"
        "        haneul.flush()\n"
        f"        while not os.path.exists({str(gate)!r}):\n"
        "            time.sleep(0.05)\n"
    )
    sid = live_server.cli("run", "--", "python", "live.py", cwd=tmp_path).stdout.strip()
    page.goto(live_server.login_url(f"/sessions/{sid}?smooth=0.9&x=time"))
    # the chart appears once the first points are stored, which may be after the page loaded
    page.wait_for_function(f"{LOSS} && {LOSS}.data && {LOSS}.data[0].x.length >= 101", timeout=60_000)
    assert page.text_content("#status") == "running"
    assert page.evaluate(f"{LOSS}.layout.xaxis.type") == "date"
    gate.touch()
    page.wait_for_function("document.getElementById('status').textContent === 'done'", timeout=30_000)
    page.wait_for_function(f"{LOSS}.data[0].x.length >= 300", timeout=30_000)
    page.wait_for_timeout(1000)
    raw = page.evaluate(f"{LOSS}.data[0].y")
    assert raw == [1.0 / (i + 1) for i in range(300)]  # every point once, in order
    assert page.evaluate(f"{LOSS}.data[1].y") == pytest.approx(_ema(raw, 0.9), rel=1e-12)
    assert page.evaluate(f"{LOSS}.data[0].x.length") == page.evaluate(f"{LOSS}.data[1].x.length") == 300
