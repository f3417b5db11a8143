"""The playground in a browser: a preset's editors filled, the live token counter, Ctrl+Enter streaming
the answer, saving a new version and diffing it with the first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from studio_helpers import Live

from haneul.platform.testing import wait_for

PRESET: dict[str, Any] = {
    "name": "browser", "instruction": "감정을 분류하세요.", "examples": [{"input": "영화가 좋다", "output": "긍정"}],
    "input_template": "입력: {input}", "model": "tiny-ko",
    "params": {"temperature": 0, "max_tokens": 5, "inject_start": "\n답: ", "inject_restart": "\n###\n"},
}


@pytest.mark.browser
def test_playground_counts_runs_saves_and_diffs(live: Live, page: Any) -> None:
    with live.http() as c:
        pid = c.post("/api/v1/studio/presets", json=PRESET).json()["id"]
    page.goto(live.login_url(f"/studio/playground?preset={pid}"))
    assert page.input_value("#instruction") == "감정을 분류하세요."
    assert page.input_value(".ex-output") == "긍정" and page.input_value("#p-inject_start") == "\\n답: "
    assert page.input_value("#model") == "tiny-ko"
    # the prompt with an empty input: 감정을 분류하세요. 입력: 영화가 좋다 답: 긍정 ### 입력: 답: (10 words)
    page.wait_for_function("document.getElementById('token-count').textContent.startsWith('10 tokens')")
    assert page.text_content("#token-count") == "10 tokens · 49 left of 64 after 5 max tokens"
    page.fill("#input", "정말 좋다")
    page.wait_for_function("document.getElementById('token-count').textContent.startsWith('12 tokens')")

    page.press("#input", "Control+Enter")
    page.wait_for_function("document.getElementById('run-stats').textContent.includes('completion tokens')")
    assert "12 prompt + 5 completion tokens" in page.text_content("#run-stats")
    with live.http() as c:
        run = c.get("/api/v1/studio/runs", params={"preset": str(pid)}).json()[0]
    assert run["status"] == "done" and page.text_content("#output") == run["output"]
    assert page.is_enabled("#run-btn") and not page.is_enabled("#stop-btn")

    page.fill("#p-temperature", "0.5")
    page.fill("#save-note", "warmer")
    with page.expect_navigation():
        page.click("#save-btn")
    assert page.url.endswith(f"preset={pid}&version=2")
    assert page.input_value("#p-temperature") == "0.5"
    boxes = page.locator("#versions input[type=checkbox]")
    assert boxes.count() == 2
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.click("#diff-btn")
    page.wait_for_selector("#diff table")
    assert "params.temperature" in page.text_content("#diff") and "v1 → v2" in page.text_content("#diff")

    # a long answer, stopped half-way with the stop button
    page.select_option("#model", "tiny-long")
    page.fill("#p-max_tokens", "4000")
    assert page.input_value("#input") == "정말 좋다"  # kept across the save's page load
    page.fill("#input", " ")
    page.click("#run-btn")  # refused before anything runs, and said so
    page.wait_for_function("!document.getElementById('studio-error').hidden")
    assert page.text_content("#studio-error").startswith("the input is empty")
    page.fill("#input", "정말 좋다")
    page.click("#run-btn")
    page.wait_for_function("document.getElementById('output').textContent.length > 0")
    assert page.is_hidden("#studio-error")
    page.click("#stop-btn")
    page.wait_for_function("document.getElementById('run-stats').textContent === 'stopped'")
    assert page.is_enabled("#run-btn") and not page.is_enabled("#stop-btn")
    with live.http() as c:
        wait_for(lambda: c.get("/api/v1/studio/runs", params={"limit": 1}).json()[0]["status"] == "stopped", timeout=30)


@pytest.mark.browser
def test_compare_two_presets_then_batch_test_one_on_200_rows(live: Live, page: Any, tmp_path: Path) -> None:
    with live.http() as c:
        for name, tokens in (("left", 3), ("right", 2)):
            body = {**PRESET, "name": f"side-{name}", "params": {**PRESET["params"], "max_tokens": tokens}}
            assert c.post("/api/v1/studio/presets", json=body).status_code == 201
    page.goto(live.login_url("/studio/compare"))
    columns = page.locator("#compare-columns section")
    assert columns.count() == 2
    columns.nth(0).locator(".c-preset").select_option(label="side-left (v1)")
    columns.nth(1).locator(".c-preset").select_option(label="side-right (v1)")
    page.fill("#compare-input", "정말 좋다")
    page.click("#compare-run")
    page.wait_for_function("[...document.querySelectorAll('.c-stats')].every((e) => e.textContent.includes('tokens'))")
    for i, name in enumerate(("side-left", "side-right")):
        with live.http() as c:
            run = c.get("/api/v1/studio/runs", params={"preset": name, "limit": 1}).json()[0]
        assert columns.nth(i).locator(".c-output").text_content() == run["output"] and run["status"] == "done"
        assert f"+ {3 - i} tokens" in columns.nth(i).locator(".c-stats").text_content()
    assert page.is_enabled("#compare-run") and page.is_hidden("#compare-error")

    # the batch test page: a table of 200 reviews uploaded, the test followed to its score
    table = tmp_path / "reviews.csv"
    table.write_text("document,label\n" + "".join(f"{'정말 좋다' if i % 2 else '영화가 싫다'},{i % 2}\n"
                                                  for i in range(200)), encoding="utf-8")
    live.app.state.platform.server_url = live.url  # the session reports its progress to this server
    page.goto(live.login_url("/studio/batch"))
    form = page.locator("#batch-form")
    form.locator("select[name=preset]").select_option(label="side-left")
    form.locator("input[name=upload]").set_input_files(str(table))
    form.locator("input[name=label_map]").fill('{"0": "부정", "1": "긍정"}')
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    tid = int(page.url.rsplit("/", 1)[1])
    page.wait_for_function("document.getElementById('batch-status').textContent === 'done'", timeout=120_000)
    with live.http() as c:
        test = c.get(f"/api/v1/studio/batch-tests/{tid}").json()
    assert test["status"] == "done" and test["n_rows"] == 200 and test["dataset"] == "upload:reviews.csv"
    assert page.text_content("#batch-score") == f"{test['score']:.2f}"
    assert page.locator("#batch-rows tbody tr").count() == 200
