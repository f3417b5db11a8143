"""P-tuning from the studio: a preset's prompt becomes the template, the soft prompt is learned as a platform
session on an uploaded table, and once done it is a model of its team's picker (``ptune:NAME``) that runs
in the playground and in a batch test beside the few-shot preset."""

from __future__ import annotations

from typing import Any

import pytest
from studio_helpers import Live, make_user, sse_events

from haneul.errors import InvalidInput
from haneul.platform.testing import wait_for
from haneul.studio.ptune import label_of, template_of
from haneul.studio.service import VersionFields

PRESET: dict[str, Any] = {
    "instruction": "감정을 분류하세요.", "examples": [{"input": "영화가 좋다", "output": "긍정"}],
    "input_template": "입력: {input}", "model": "tiny-ko",
    "params": {"temperature": 0, "max_tokens": 1, "inject_start": "\n답: ", "inject_restart": "\n###\n"},
}
# 40 rows of the tiny tokenizer's words: 좋다 is 긍정 (1), 싫다 is 부정 (0)
ROWS = [("정말 좋다" if i % 2 else "영화가 싫다", "긍정" if i % 2 else "0") for i in range(40)]


def table() -> str:
    return "document,label\n" + "".join(f"{d},{y}\n" for d, y in ROWS)


def test_the_template_is_the_presets_prompt_without_examples() -> None:
    content = VersionFields.from_dict({**PRESET, "instruction": "{중괄호} 분류"})
    template = template_of(content)
    assert template.format(text="정말 좋다") == "{중괄호} 분류\n\n입력: 정말 좋다\n답: "
    with pytest.raises(InvalidInput, match="completion mode"):
        template_of(VersionFields.from_dict({**PRESET, "mode": "chat"}))
    assert [label_of(v, ["부정", "긍정"], 1) for v in ("0", "1", "부정", " 긍정 ")] == [0, 1, 0, 1]
    with pytest.raises(InvalidInput, match="row 7 has label '중립'"):
        label_of("중립", ["부정", "긍정"], 7)


def test_ptune_from_the_studio_finishes_as_a_session_and_is_a_model_of_its_team(live: Live) -> None:
    live.app.state.platform.server_url = live.url  # the session reports its loss to this server
    with live.http() as c:
        assert c.post("/api/v1/studio/presets", json={**PRESET, "name": "tune-me"}).status_code == 201
        c.post("/api/v1/studio/presets", json={**PRESET, "name": "chatty", "mode": "chat"})
        body = {"preset": "tune-me", "name": "soft-nsmc", "upload": table(), "upload_name": "reviews.csv",
                "input_column": "document", "label_column": "label", "labels": ["부정", "긍정"],
                "steps": 20, "virtual_tokens": 2, "lr": 0.3, "batch_size": 4, "shots": 1, "test_rows": 10}
        refused = [c.post("/api/v1/studio/ptune", json={**body, **bad}) for bad in (
            {"preset": "chatty"}, {"label_column": "stars"}, {"test_rows": 40}, {"name": "no spaces"})]
        assert [r.status_code for r in refused] == [400] * 4
        assert "completion mode" in refused[0].json()["error"]["message"]
        assert "its columns are document, label" in refused[1].json()["error"]["message"]
        assert "not more than test_rows=40" in refused[2].json()["error"]["message"]

        started = c.post("/api/v1/studio/ptune", json=body)
        assert started.status_code == 201, started.text
        job = started.json()
        assert job["n_train"] == 30 and job["n_test"] == 10 and job["session_id"] and job["model"] is None
        assert c.post("/api/v1/studio/ptune", json=body).status_code == 409  # the name is taken

        def finished() -> dict[str, Any] | None:
            j = c.get(f"/api/v1/studio/ptune/{job['id']}").json()
            return j if j["status"] in ("done", "failed") else None

        job = wait_for(finished, timeout=180, interval=0.5)
        assert job["status"] == "done", job
        assert job["model"] == "ptune:soft-nsmc"
        assert set(job["accuracy"]) == {"zero_shot", "1_shot_icl", "prompt-tuning"}
        assert all(0 <= v <= 1 for v in job["accuracy"].values())
        session = c.get(f"/api/v1/sessions/{job['session_id']}").json()
        assert session["status"] == "done" and "ptune_loss" in session["metrics"]
        assert "soft-nsmc" in c.get("/studio/ptune").text

        models = {m["name"]: m for m in c.get("/api/v1/studio/models").json()}
        assert models["ptune:soft-nsmc"]["kind"] == "local" and models["ptune:soft-nsmc"]["origin"] == "ptune"
        # the playground runs the tuned model on the preset's prompt without its examples
        with c.stream("POST", "/api/v1/studio/run", json={
                "preset": "tune-me", "model": "ptune:soft-nsmc", "examples": [], "input": "정말 좋다"}) as res:
            events = sse_events(res)
        assert events[-1][0] == "done", events
        # 2 + 4 words, and the window left is the tiny model's 64 less the 2 learned vectors
        assert events[-1][1]["prompt_tokens"] == 6
        tokens = c.post("/api/v1/studio/tokens", json={"model": "ptune:soft-nsmc", "text": "정말 좋다"}).json()
        assert tokens["context_window"] == 62

        # a batch test of the tuned prompt beside one of the few-shot preset, on the same held-out rows
        c.post("/api/v1/studio/presets", json={**PRESET, "name": "tuned", "model": "ptune:soft-nsmc", "examples": []})
        held_out = "document,label\n" + "".join(f"{d},{y}\n" for d, y in ROWS[30:])
        tests = [c.post("/api/v1/studio/batch-tests", json={
            "preset": name, "upload": held_out, "upload_name": "test.csv", "input_column": "document",
            "expected_column": "label", "label_map": {"0": "부정", "1": "긍정"}}).json() for name in ("tuned", "tune-me")]

        def scored() -> list[dict[str, Any]] | None:
            got = [c.get(f"/api/v1/studio/batch-tests/{t['id']}").json() for t in tests]
            return got if all(t["status"] in ("done", "failed") for t in got) else None

        done = wait_for(scored, timeout=120, interval=0.5)
        assert [t["status"] for t in done] == ["done", "done"], done
        assert all(t["rows_done"] == 10 and 0 <= t["score"] <= 100 for t in done)

        # another team neither sees nor runs the soft prompt
        assert c.post("/api/v1/teams", json={"name": "ptune-elsewhere"}).status_code == 201
        other = make_user(c, "ptune-stranger", "ptune-elsewhere")
        assert "ptune:soft-nsmc" not in {m["name"] for m in c.get("/api/v1/studio/models", headers=other).json()}
        assert c.get(f"/api/v1/studio/ptune/{job['id']}", headers=other).status_code == 404
        assert c.post("/api/v1/studio/tokens", headers=other,
                      json={"model": "ptune:soft-nsmc", "text": "정말"}).status_code == 404
