"""The studio plugin on a running server: presets kept to their team, the streaming run route with a
tiny model (tokens arrive, the run is logged), refusals before the stream, a remote model that dies
mid-stream, the token counter and the preset served as an OpenAI-compatible chat endpoint."""

from __future__ import annotations

from typing import Any

import httpx
from studio_helpers import DyingEndpoint, Live, make_user, sse_events

from haneul.platform.testing import wait_for

PRESET: dict[str, Any] = {
    "name": "sentiment", "instruction": "감정을 분류하세요.", "examples": [{"input": "영화가 좋다", "output": "긍정"}],
    "input_template": "입력: {input}", "model": "tiny-ko",
    "params": {"temperature": 0, "max_tokens": 5, "inject_start": "\n답: ", "inject_restart": "\n###\n"},
}


def test_run_streams_tokens_and_logs_the_run(live: Live) -> None:
    with live.http() as c:
        models = {m["name"]: m for m in c.get("/api/v1/studio/models").json()}
        assert models["tiny-ko"]["kind"] == "local" and models["tiny-ko"]["origin"] == "registered"
        assert models["configured-lm"]["kind"] == "remote" and models["configured-lm"]["origin"] == "plugin"
        p = c.post("/api/v1/studio/presets", json={**PRESET, "name": "stream"}).json()
        with c.stream("POST", "/api/v1/studio/run", json={"preset": "stream", "input": "정말 좋다"}) as res:
            assert res.status_code == 200 and res.headers["content-type"].startswith("text/event-stream")
            events = sse_events(res)
        kinds = [k for k, _ in events]
        # no end-of-text token in the tiny model: exactly max_tokens=5 tokens, one event each
        assert kinds == ["token"] * 5 + ["done"], events
        text = "".join(d["text"] for k, d in events if k == "token")
        done = events[-1][1]
        # 2 + 6 + 4 words: "감정을 분류하세요." / "입력: 영화가 좋다 답: 긍정 ###" / "입력: 정말 좋다 답:"
        assert done["prompt_tokens"] == 12 and done["completion_tokens"] == 5
        assert done["finish_reason"] == "length" and done["latency_ms"] > 0 and done["restart"] == "\n###\n"
        assert len(text.split()) == 5

        runs = c.get("/api/v1/studio/runs", params={"preset": "stream"}).json()
        assert len(runs) == 1
        run = runs[0]
        assert run["id"] == done["run_id"] and run["status"] == "done" and run["output"] == text
        assert run["preset_version_id"] == p["latest"]["id"] and run["prompt_tokens"] == 12
        assert run["prompt"].endswith("입력: 정말 좋다\n답: ") and run["params"]["max_tokens"] == 5

        # greedy and the same prompt: the same answer; an edited instruction runs ad hoc
        with c.stream("POST", "/api/v1/studio/run", json={"preset": "stream", "input": "정말 좋다"}) as res:
            again = sse_events(res)
        assert "".join(d["text"] for k, d in again if k == "token") == text
        with c.stream("POST", "/api/v1/studio/run", json={"preset": "stream", "input": "정말 좋다",
                                                          "instruction": "분류하세요."}) as res:
            assert sse_events(res)[-1][0] == "done"
        assert c.get("/api/v1/studio/runs", params={"limit": 1}).json()[0]["preset_version_id"] is None


def test_refusals_come_before_the_stream(live: Live) -> None:
    with live.http() as c:
        c.post("/api/v1/studio/presets", json={**PRESET, "name": "refuse"})
        before = len(c.get("/api/v1/studio/runs").json())
        empty = c.post("/api/v1/studio/run", json={"preset": "refuse", "input": "   "})
        assert empty.status_code == 400 and "the input is empty" in empty.json()["error"]["message"]
        # 12 prompt tokens + max_tokens 53 > the 64-token window
        long = c.post("/api/v1/studio/run", json={"preset": "refuse", "input": "정말 좋다", "params": {"max_tokens": 53}})
        assert long.status_code == 400
        assert long.json()["error"]["message"].startswith(
            "the prompt has 12 tokens but tiny-ko's context window of 64 minus max_tokens=53 leaves 11")
        bad = c.post("/api/v1/studio/run", json={"preset": "refuse", "input": "x", "params": {"top_p": 3}})
        assert bad.status_code == 400 and "top_p=3.0" in bad.json()["error"]["message"]
        missing = c.post("/api/v1/studio/run", json={"input": "x", "model": "nope"})
        assert missing.status_code == 404 and "available models" in missing.json()["error"]["message"]
        assert len(c.get("/api/v1/studio/runs").json()) == before  # nothing was run

        counted = c.post("/api/v1/studio/tokens", json={**{k: v for k, v in PRESET.items() if k != "name"},
                                                        "input": "정말 좋다"}).json()
        assert counted == {"model": "tiny-ko", "tokens": 12, "context_window": 64, "max_tokens": 5, "left": 47}
        assert c.post("/api/v1/studio/tokens", json={"model": "tiny-ko", "text": "a b c"}).json()["tokens"] == 3


def test_a_model_that_dies_mid_stream_fails_the_run_and_keeps_the_preset(live: Live) -> None:
    dying = DyingEndpoint(["긍정", " 입니다"])
    with live.http() as c:
        ep = c.post("/api/v1/studio/endpoints", json={"name": "flaky", "url": dying.url, "model": "remote-lm"})
        assert ep.status_code == 201, ep.text
        assert "endpoint:flaky" in [m["name"] for m in c.get("/api/v1/studio/models").json()]
        p = c.post("/api/v1/studio/presets", json={**PRESET, "name": "remote", "model": "endpoint:flaky"}).json()
        with c.stream("POST", "/api/v1/studio/run", json={"preset": "remote", "input": "정말 좋다"}) as res:
            events = sse_events(res)
        assert [k for k, _ in events] == ["token", "token", "error"]
        err = events[-1][1]
        assert err["code"] == "upstream_error" and "flaky" in err["message"]
        assert dying.requests[0]["model"] == "remote-lm" and dying.requests[0]["stream"] is True
        assert dying.requests[0]["prompt"].endswith("입력: 정말 좋다\n답: ")

        run = c.get("/api/v1/studio/runs", params={"preset": "remote"}).json()[0]
        assert run["id"] == err["run_id"] and run["status"] == "failed" and run["output"] == "긍정 입니다"
        assert run["error"] == err["message"]
        after = c.get("/api/v1/studio/presets/remote").json()
        assert after["versions"] == 1 and after["latest"] == p["latest"]
        # the endpoint is gone now: the next run fails at once, as an error event
        with c.stream("POST", "/api/v1/studio/run", json={"preset": "remote", "input": "정말 좋다"}) as res:
            assert [k for k, _ in sse_events(res)] == ["error"]


def test_another_teams_preset_is_not_found(live: Live) -> None:
    teams = {}
    with live.http() as admin:
        for team in ("red", "blue"):
            res = admin.post("/api/v1/teams", json={"name": team})
            assert res.status_code == 201
            teams[team] = res.json()["id"]
        red, blue = make_user(admin, "ann", "red"), make_user(admin, "bob", "blue")
        viewer = make_user(admin, "vic", "red", role="viewer")
    with httpx.Client(base_url=live.url, headers=red, timeout=60) as c:
        p = c.post("/api/v1/studio/presets", json={**PRESET, "name": "secret"})
        assert p.status_code == 201, p.text
        pid = p.json()["id"]
        assert c.get(f"/api/v1/studio/presets/{pid}").status_code == 200
        # a fork goes to a team its maker may write, and only there
        assert c.post(f"/api/v1/studio/presets/{pid}/fork", json={"team": teams["blue"]}).status_code == 404
        forked = c.post(f"/api/v1/studio/presets/{pid}/fork", json={})
        assert forked.status_code == 201 and forked.json()["name"] == "secret-copy"
        assert forked.json()["team_id"] == teams["red"]
    with httpx.Client(base_url=live.url, headers=viewer, timeout=60) as c:
        assert c.get(f"/api/v1/studio/presets/{pid}").status_code == 200
        saved = c.post(f"/api/v1/studio/presets/{pid}/versions", json={"instruction": "x"})
        assert saved.status_code == 403 and "may only read" in saved.json()["error"]["message"]
        with c.stream("POST", "/api/v1/studio/run", json={"preset": str(pid), "input": "좋다"}) as res:
            assert res.status_code == 200 and sse_events(res)[-1][0] == "done"  # running changes no preset
    with httpx.Client(base_url=live.url, headers=blue, timeout=60) as c:
        for method, path, body in (
            ("GET", f"/api/v1/studio/presets/{pid}", None), ("GET", "/api/v1/studio/presets/secret", None),
            ("GET", f"/api/v1/studio/presets/{pid}/versions", None),
            ("GET", f"/api/v1/studio/presets/{pid}/diff?a=1&b=1", None),
            ("GET", f"/api/v1/studio/presets/{pid}/export", None),
            ("POST", f"/api/v1/studio/presets/{pid}/versions", {"instruction": "x"}),
            ("POST", f"/api/v1/studio/presets/{pid}/fork", {}),
            ("DELETE", f"/api/v1/studio/presets/{pid}", None),
            ("POST", "/api/v1/studio/run", {"preset": str(pid), "input": "좋다"}),
            ("POST", "/v1/presets/secret/chat/completions", {"model": "x", "messages": [{"role": "user", "content": "좋다"}]}),
            ("GET", f"/studio/playground?preset={pid}", None),
        ):
            res = c.request(method, path, json=body)
            assert res.status_code == 404, (method, path, res.text)
        assert "secret" not in c.get("/studio").text
        assert all(p["name"] != "secret" for p in c.get("/api/v1/studio/presets").json())
        assert c.post("/api/v1/studio/presets", json={**PRESET, "name": "secret"}).status_code == 201  # its own


def test_pages_render(live: Live) -> None:
    with live.http() as c:
        p = c.post("/api/v1/studio/presets", json={**PRESET, "name": "paged"}).json()
        c.post(f"/api/v1/studio/presets/{p['id']}/versions", json={"params": {"temperature": 0.5}, "note": "warmer"})
        listing = c.get("/studio")
        assert listing.status_code == 200 and f'href="/studio/playground?preset={p["id"]}">paged</a>' in listing.text
        assert '<a href="/studio">Studio</a>' in listing.text
        page = c.get(f"/studio/playground?preset={p['id']}&version=1")
        assert page.status_code == 200
        assert 'id="studio-state"' in page.text and '"temperature": 0.0' in page.text and "v1" in page.text
        assert c.get("/studio/playground").status_code == 200
        assert c.get("/static/studio/studio.js").status_code == 200
        spec = c.get("/api/v1/openapi.json")
        assert spec.status_code == 200
        paths = spec.json()["paths"]
        assert "/api/v1/studio/run" in paths and "/v1/presets/{name}/chat/completions" in paths
        assert "404" in paths["/api/v1/studio/presets/{preset}"]["get"]["responses"]


def test_stopping_the_stream_logs_a_stopped_run(live: Live) -> None:
    slow = DyingEndpoint(["토큰 "] * 200, delay=0.05)  # ten seconds of answer unless stopped
    with live.http() as c:
        c.post("/api/v1/studio/endpoints", json={"name": "slow", "url": slow.url})
        c.post("/api/v1/studio/presets", json={**PRESET, "name": "stoppable", "model": "endpoint:slow"})
        with c.stream("POST", "/api/v1/studio/run", json={"preset": "stoppable", "input": "좋다"}) as res:
            lines = res.iter_lines()
            assert next(lines) == "event: token"  # then the playground's stop button closes the stream
        run = wait_for(lambda: next((r for r in c.get("/api/v1/studio/runs", params={"preset": "stoppable"}).json()
                                     if r["status"] != "running"), None), timeout=10)
        assert run["status"] == "stopped" and run["output"].startswith("토큰")
        assert slow.hung_up.wait(10)  # the remote stream was closed too, not read to its end


def test_stopping_a_local_model_frees_it_for_the_next_run(live: Live) -> None:
    body: dict[str, Any] = {"model": "tiny-long", "input": "좋다", "params": {"temperature": 0, "max_tokens": 4000}}
    with live.http() as c:
        with c.stream("POST", "/api/v1/studio/run", json=body) as res:
            assert next(res.iter_lines()) == "event: token"
        run = wait_for(lambda: next((r for r in c.get("/api/v1/studio/runs", params={"limit": 1}).json()
                                     if r["status"] != "running"), None), timeout=30)
        assert run["model"] == "tiny-long" and run["status"] == "stopped"
        assert 1 <= len(run["output"].split()) < 4000
        # the model's lock went with the stopped stream: the next run on it finishes
        body["params"]["max_tokens"] = 3
        with c.stream("POST", "/api/v1/studio/run", json=body) as res:
            events = sse_events(res)
        assert [k for k, _ in events] == ["token"] * 3 + ["done"]
