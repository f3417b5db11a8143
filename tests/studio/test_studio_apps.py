"""Test apps, preset API keys and the team safety filter: a share link used logged out (page and streamed
run), revoked links, rate limits with Retry-After, apps kept to their team, the official ``openai`` client
with a preset key, and the word-list filter on input and output of the playground, an app and the
endpoint; and, in a browser, an app published on the presets page and used from a logged-out context."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from studio_helpers import WORDS, Live, make_user, sse_events

from haneul.errors import InvalidInput
from haneul.studio.apps import RateLimiter
from haneul.studio.filters import (
    NOTICE,
    Blocked,
    FilterSettings,
    Screen,
    Verdict,
    WordList,
    normalize,
    register,
    resolve,
)

PRESET: dict[str, Any] = {
    "instruction": "감정을 분류하세요.", "examples": [{"input": "영화가 좋다", "output": "긍정"}],
    "input_template": "입력: {input}", "model": "tiny-ko",
    "params": {"temperature": 0, "max_tokens": 5, "inject_start": "\n답: ", "inject_restart": "\n###\n"},
}
CHAT = {**PRESET, "mode": "chat", "params": {"temperature": 0, "max_tokens": 4}}


def anonymous(live: Live) -> httpx.Client:
    return httpx.Client(base_url=live.url, timeout=60, follow_redirects=False)


def runs(c: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    return c.get("/api/v1/studio/runs", params=params).json()


# --------------------------------------------------------------------------------------------------
# the library parts


def test_word_list_matches_after_normalisation() -> None:
    words = WordList(["바보", "Idiot", "bad word"])
    assert normalize("ＩＤＩＯＴ!!") == "idiot" and normalize("바\u200b보") == "바보"
    for text in ("너는 바보야", "바 보", "바\u200b보", "You IDIOT.", "ｉｄｉｏｔ", "a BAD-word here"):
        assert words.check(text).blocked, text
    verdict = words.check("정말 바보 같다")
    assert verdict.reason == "the word list matched '바보'"
    for text in ("idiotic plan", "좋은 영화", "bad words", "badword"):
        assert not words.check(text).blocked, text


def test_a_registered_classifier_is_used_by_name() -> None:
    class Shouting:
        def check(self, text: str) -> Verdict:
            return Verdict(text.isupper(), "all capitals")

    register("shouting", Shouting)
    screen = Screen(FilterSettings.from_dict({"words": "바보", "classifier": "shouting", "on_output": False}))
    with pytest.raises(Blocked, match="refused by the team's safety filter: all capitals"):
        screen.input("HELLO")
    with pytest.raises(Blocked, match="matched '바보'"):
        screen.input("바보")
    screen.input("hello")
    assert not screen.output("HELLO").blocked  # the output side is off
    with pytest.raises(InvalidInput, match="classifier 'nope' is unknown; available: .*shouting"):
        resolve("nope")


def test_token_bucket_refills_at_the_rate() -> None:
    limiter = RateLimiter()
    assert [limiter.take("a", 2, now=0.0) for _ in range(2)] == [None, None]
    assert limiter.take("a", 2, now=0.0) == pytest.approx(30.0)  # 2 a minute: one every 30 s
    assert limiter.take("a", 2, now=15.0) == pytest.approx(15.0)
    assert limiter.take("a", 2, now=30.0) is None
    assert limiter.take("b", 2, now=30.0) is None  # another app's bucket is its own


# --------------------------------------------------------------------------------------------------
# test apps


def test_share_link_works_logged_out_and_revoking_it_is_a_404(live: Live) -> None:
    with live.http() as admin, anonymous(live) as stranger:
        p = admin.post("/api/v1/studio/presets", json={**PRESET, "name": "share"}).json()
        admin.post(f"/api/v1/studio/presets/{p['id']}/versions", json={"instruction": "분류하세요."})
        made = admin.post("/api/v1/studio/apps", json={"preset": "share", "title": "감정 분류기",
                                                       "description": "문장의 감정을 알려 드려요"})
        assert made.status_code == 201, made.text
        app = made.json()
        assert app["url"] == f"{live.url}/studio/apps/{app['token']}" and len(app["token"]) >= 32
        pinned = admin.post("/api/v1/studio/apps", json={"preset": "share", "version": 1}).json()
        assert pinned["title"] == "share"

        page = stranger.get(f"/studio/apps/{app['token']}")
        assert page.status_code == 200
        assert "감정 분류기" in page.text and "문장의 감정을 알려 드려요" in page.text
        assert "temperature" not in page.text and "분류하세요" not in page.text  # no parameters, no prompt
        with stranger.stream("POST", f"/studio/apps/{app['token']}/run", json={"input": "정말 좋다"}) as res:
            assert res.status_code == 200
            events = sse_events(res)
        assert [k for k, _ in events] == ["token"] * 5 + ["done"]
        with stranger.stream("POST", f"/studio/apps/{pinned['token']}/run", json={"input": "정말 좋다"}) as res:
            assert sse_events(res)[-1][0] == "done"
        latest, first = runs(admin, preset="share", limit=2)
        assert latest["source"] == first["source"] == "app" and latest["status"] == "done"
        assert first["output"] == "".join(d["text"] for k, d in events if k == "token")
        versions = {v["number"]: v["id"] for v in admin.get("/api/v1/studio/presets/share/versions").json()}
        assert first["preset_version_id"] == versions[2] and latest["preset_version_id"] == versions[1]
        assert first["prompt"].startswith("분류하세요.")

        # the link opens that app and nothing else
        assert stranger.get("/studio").status_code == 303
        assert stranger.get("/api/v1/studio/apps").status_code == 401
        assert stranger.post("/api/v1/studio/run", json={"preset": "share", "input": "좋다"}).status_code == 401

        assert admin.delete(f"/api/v1/studio/apps/{app['id']}").status_code == 204
        gone = stranger.get(f"/studio/apps/{app['token']}")
        assert gone.status_code == 404 and "switched off by its owner" in gone.text
        refused = stranger.post(f"/studio/apps/{app['token']}/run", json={"input": "좋다"})
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found"
        unknown = stranger.get("/studio/apps/" + "x" * 32)
        assert unknown.status_code == 404 and "no app at this link" in unknown.text
        listed = {a["id"]: a for a in admin.get("/api/v1/studio/apps", params={"preset": "share"}).json()}
        assert listed[app["id"]]["revoked_at"] is not None and listed[pinned["id"]]["revoked_at"] is None


def test_an_apps_rate_limit_answers_429_with_retry_after(live: Live) -> None:
    with live.http() as admin, anonymous(live) as stranger:
        admin.post("/api/v1/studio/presets", json={**PRESET, "name": "limited"})
        app = admin.post("/api/v1/studio/apps", json={"preset": "limited", "rate_per_minute": 2}).json()
        url = f"/studio/apps/{app['token']}/run"
        for _ in range(2):
            with stranger.stream("POST", url, json={"input": "좋다"}) as res:
                assert sse_events(res)[-1][0] == "done"
        before = len(runs(admin, preset="limited"))
        res = stranger.post(url, json={"input": "좋다"})
        assert res.status_code == 429 and res.json()["error"]["code"] == "too_many_requests"
        assert 1 <= int(res.headers["Retry-After"]) <= 30  # one request every 30 s refills
        assert "2 requests a minute" in res.json()["error"]["message"]
        assert len(runs(admin, preset="limited")) == before  # nothing ran


def test_other_teams_cannot_see_or_manage_an_app(live: Live) -> None:
    with live.http() as admin:
        for team in ("apps-red", "apps-blue"):
            assert admin.post("/api/v1/teams", json={"name": team}).status_code == 201
        red, blue = make_user(admin, "ria", "apps-red"), make_user(admin, "ben", "apps-blue")
        viewer = make_user(admin, "val", "apps-red", role="viewer")
    with live.http() as c:
        c.headers.update(red)
        assert c.post("/api/v1/studio/presets", json={**PRESET, "name": "team-app"}).status_code == 201
        app = c.post("/api/v1/studio/apps", json={"preset": "team-app"}).json()
        key = c.post("/api/v1/studio/presets/team-app/keys", json={}).json()
        c.headers.update(blue)
        assert c.get("/api/v1/studio/apps").json() == []
        assert c.delete(f"/api/v1/studio/apps/{app['id']}").status_code == 404
        assert c.delete(f"/api/v1/studio/keys/{key['id']}").status_code == 404
        assert c.post("/api/v1/studio/apps", json={"preset": "team-app"}).status_code == 404
        assert c.get("/api/v1/studio/presets/team-app/keys").status_code == 404
        c.headers.update(viewer)
        assert [a["id"] for a in c.get("/api/v1/studio/apps").json()] == [app["id"]]
        assert c.delete(f"/api/v1/studio/apps/{app['id']}").status_code == 403
        assert c.post("/api/v1/studio/apps", json={"preset": "team-app"}).status_code == 403
        c.headers.update(red)
        assert c.delete(f"/api/v1/studio/apps/{app['id']}").status_code == 204


# --------------------------------------------------------------------------------------------------
# preset keys


def test_preset_key_works_with_the_openai_client_until_revoked(live: Live) -> None:
    openai = pytest.importorskip("openai")
    with live.http() as admin:
        admin.post("/api/v1/studio/presets", json={**CHAT, "name": "keyed"})
        admin.post("/api/v1/studio/presets", json={**CHAT, "name": "other"})
        made = admin.post("/api/v1/studio/presets/keyed/keys", json={"name": "ci", "rate_per_minute": 2})
        assert made.status_code == 201, made.text
        key = made.json()
        assert key["key"].startswith("hnk-") and key["prefix"] == key["key"][:12] and "key_hash" not in key
        assert f'base_url="{live.url}/v1/presets/keyed"' in key["snippets"]["python"]
        assert f'api_key="{key["key"]}"' in key["snippets"]["python"]
        assert f"Authorization: Bearer {key['key']}" in key["snippets"]["curl"]
        listed = admin.get("/api/v1/studio/presets/keyed/keys").json()
        assert [k["id"] for k in listed] == [key["id"]] and "key" not in listed[0] and "key_hash" not in listed[0]

    client = openai.OpenAI(base_url=f"{live.url}/v1/presets/keyed", api_key=key["key"], max_retries=0)
    messages: Any = [{"role": "user", "content": "정말 좋다"}]
    answer = client.chat.completions.create(model="keyed", messages=messages)
    assert answer.usage is not None and answer.usage.completion_tokens == 4 and answer.usage.prompt_tokens == 14
    with live.http() as admin:
        run = runs(admin, preset="keyed")[0]
        assert run["source"] == "endpoint" and run["created_by"] == f"key {key['prefix']}"
        assert run["output"] == answer.choices[0].message.content
        assert admin.get("/api/v1/studio/presets/keyed/keys").json()[0]["last_used_at"] is not None

    wrong = openai.OpenAI(base_url=f"{live.url}/v1/presets/other", api_key=key["key"], max_retries=0)
    with pytest.raises(openai.AuthenticationError, match="not for preset 'other'"):
        wrong.chat.completions.create(model="other", messages=messages)
    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {key['key']}"}) as raw:
        # the key reaches its preset's endpoint and no other route
        assert raw.get("/api/v1/studio/presets").status_code == 401
        client.chat.completions.create(model="keyed", messages=messages)
        limited = raw.post("/v1/presets/keyed/chat/completions", json={"messages": messages})
        assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 30
        assert limited.json()["error"]["code"] == "too_many_requests"
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="keyed", messages=messages)

    with live.http() as admin:
        assert admin.delete(f"/api/v1/studio/keys/{key['id']}").status_code == 204
    with pytest.raises(openai.AuthenticationError, match="unknown or was revoked"):
        client.chat.completions.create(model="keyed", messages=messages)
    bogus = openai.OpenAI(base_url=f"{live.url}/v1/presets/keyed", api_key="hnk-" + "a" * 40, max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bogus.chat.completions.create(model="keyed", messages=messages)


# --------------------------------------------------------------------------------------------------
# the safety filter


def test_the_word_list_filters_input_and_output_everywhere(live: Live) -> None:
    with live.http() as admin:
        assert admin.post("/api/v1/teams", json={"name": "safe"}).status_code == 201
        writer, viewer = make_user(admin, "sam", "safe"), make_user(admin, "sue", "safe", role="viewer")
        missing = admin.put("/api/v1/studio/filters", json={"team": 9999, "words": ["x"]})
        assert missing.status_code == 404 and "team 9999 not found" in missing.text
    with live.http() as c:
        c.headers.update(writer)
        c.post("/api/v1/studio/presets", json={**PRESET, "name": "guarded"})
        c.post("/api/v1/studio/presets", json={**CHAT, "name": "guarded-chat"})
        app = c.post("/api/v1/studio/apps", json={"preset": "guarded"}).json()
        key = c.post("/api/v1/studio/presets/guarded-chat/keys", json={"rate_per_minute": 100}).json()["key"]
        assert c.get("/api/v1/studio/filters").json()["configured"] is False
        c.headers.update(viewer)
        assert c.put("/api/v1/studio/filters", json={"words": ["바보"]}).status_code == 403
        c.headers.update(writer)
        res = c.put("/api/v1/studio/filters", json={"words": "바보\nidiot", "on_output": False})
        assert res.status_code == 200 and res.json()["words"] == ["바보", "idiot"]
        bad = c.put("/api/v1/studio/filters", json={"words": [], "classifier": "nope"})
        assert bad.status_code == 400 and "safety classifier 'nope' is unknown" in bad.text

        # input: refused before anything runs, naming the reason
        before = len(runs(c))
        res = c.post("/api/v1/studio/run", json={"preset": "guarded", "input": "너는 바 보야"})
        assert res.status_code == 400 and res.json()["error"]["code"] == "content_filtered"
        assert "the word list matched '바보'" in res.json()["error"]["message"]
        with anonymous(live) as stranger:
            res = stranger.post(f"/studio/apps/{app['token']}/run", json={"input": "You IDIOT"})
            assert res.status_code == 400 and "matched 'idiot'" in res.json()["error"]["message"]
        endpoint = httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {key}"}, timeout=60)
        res = endpoint.post("/v1/presets/guarded-chat/chat/completions",
                            json={"messages": [{"role": "user", "content": "ｉｄｉｏｔ"}]})
        assert res.status_code == 400 and res.json()["error"]["type"] == "invalid_request_error"
        assert "refused by the team's safety filter" in res.json()["error"]["message"]
        assert len(runs(c)) == before

        # output: every word the tiny model can write is blocked, so each answer is cut at its first word
        blocked = [w for w in WORDS if normalize(w)]
        c.put("/api/v1/studio/filters", json={"words": blocked, "on_input": False})
        with c.stream("POST", "/api/v1/studio/run", json={"preset": "guarded", "input": "정말 좋다"}) as res:
            events = sse_events(res)
        assert events[-1][0] == "filtered" and events[-1][1]["notice"] == NOTICE
        assert "the word list matched" in events[-1][1]["reason"]
        with anonymous(live) as stranger:
            with stranger.stream("POST", f"/studio/apps/{app['token']}/run", json={"input": "정말 좋다"}) as res:
                assert sse_events(res)[-1][0] == "filtered"
        body = {"messages": [{"role": "user", "content": "정말 좋다"}]}
        plain = endpoint.post("/v1/presets/guarded-chat/chat/completions", json=body).json()
        assert plain["choices"][0] == {"index": 0, "message": {"role": "assistant", "content": NOTICE},
                                       "finish_reason": "content_filter"}
        with endpoint.stream("POST", "/v1/presets/guarded-chat/chat/completions", json={**body, "stream": True}) as res:
            lines = [line for line in res.iter_lines() if line.startswith("data:")]
        assert lines[-1] == "data: [DONE]" and '"finish_reason": "content_filter"' in lines[-2]
        endpoint.close()
        logged = runs(c, limit=4)
        assert [r["status"] for r in logged] == ["filtered"] * 4
        assert [r["source"] for r in logged] == ["endpoint", "endpoint", "app", "playground"]
        assert all(r["error"].startswith("the word list matched") for r in logged)


# --------------------------------------------------------------------------------------------------
# in a browser


@pytest.mark.browser
def test_publish_an_app_and_use_it_logged_out(live: Live, page: Any) -> None:
    with live.http() as c:
        c.post("/api/v1/studio/presets", json={**PRESET, "name": "browser-app"})
    page.goto(live.login_url("/studio"))
    form = page.locator("#app-publish")
    form.locator("select[name=preset]").select_option(label="browser-app")
    form.locator("input[name=title]").fill("감정 앱")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#app-share-link[href^='http']")
    link = page.get_attribute("#app-share-link", "href")
    assert link and "/studio/apps/" in link
    page.wait_for_selector("#apps tbody tr")

    stranger = page.context.browser.new_context()  # no login cookie
    try:
        other = stranger.new_page()
        other.goto(link)
        assert other.url == link and other.text_content("#app-title") == "감정 앱"
        assert other.locator("header nav").count() == 0  # the visitor sees the app, not the platform
        other.fill("#app-input", "정말 좋다")
        other.click("#app-run")
        other.wait_for_function("document.getElementById('studio-app').dataset.done !== undefined")
        with live.http() as c:
            run = runs(c, preset="browser-app")[0]
        assert run["source"] == "app" and other.text_content("#app-output") == run["output"]
        assert other.is_hidden("#app-message")
    finally:
        stranger.close()
