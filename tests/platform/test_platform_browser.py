"""The session page in headless Chromium: a chart and log lines appear while the session runs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from platform_helpers import LiveServer

pytestmark = pytest.mark.browser


def test_session_page_shows_live_chart_and_log(live_server: LiveServer, tmp_path: Path, page) -> None:  # type: ignore[no-untyped-def]
    gate = tmp_path / "go"
    (tmp_path / "live.py").write_text(
        textwrap.dedent(f"""
        import os, time, haneul
        for i in range(600):
            haneul.report(step=i, loss=1.0 / (i + 1))
            if i % 20 == 0:
                print(f"tick {{i}}", flush=True)
            if i == 100:
                haneul.flush()
                while not os.path.exists({str(gate)!r}):  # hold until the page has been checked live
                    time.sleep(0.05)
            time.sleep(0.002)
        print("all done", flush=True)
    """)
    )
    sid = live_server.cli("run", "--", "python", "live.py", cwd=tmp_path).stdout.strip()
    page.goto(live_server.login_url(f"/sessions/{sid}"))
    # while the session is still running, the chart and the log fill in through SSE
    page.wait_for_selector(".chart[data-key=loss] .main-svg", timeout=20_000)
    page.wait_for_function("document.getElementById('log').textContent.includes('tick 100')", timeout=20_000)
    assert page.text_content("#status") == "running"
    points = page.evaluate("document.querySelector('.chart[data-key=loss]').data[0].x.length")
    assert points >= 100
    gate.touch()
    page.wait_for_function("document.getElementById('log').textContent.includes('all done')", timeout=30_000)
    page.wait_for_function("document.getElementById('status').textContent === 'done'", timeout=30_000)
    # every point arrives, none twice (the stream resumes after the last point id it sent)
    page.wait_for_function(
        "document.querySelector('.chart[data-key=loss]').data[0].x.length >= 600", timeout=30_000
    )
    page.wait_for_timeout(1500)
    assert page.evaluate("document.querySelector('.chart[data-key=loss]').data[0].x.length") == 600
    # the sessions list shows it with its latest metric; compare overlays it
    page.goto(live_server.login_url("/"))
    row = page.text_content(f"tr[data-id='{sid}']")
    assert "done" in row and "loss=" in row
    page.goto(live_server.login_url(f"/compare?ids={sid}&key=loss"))
    page.wait_for_selector(".compare-chart[data-key=loss] .main-svg", timeout=20_000)
    name = page.evaluate("document.querySelector('.compare-chart[data-key=loss]').data[0].name")
    assert name.endswith(f" #{sid}") and len(name) > len(f" #{sid}")  # the session's name, then its id
