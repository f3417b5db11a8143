"""The playground in a browser: a preset's editors filled, the live token counter, Ctrl+Enter streaming
the answer, saving a new version and diffing it with the first."""

from __future__ import annotations

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
