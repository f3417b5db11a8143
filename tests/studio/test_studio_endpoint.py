"""A preset served as an OpenAI-compatible chat endpoint: the official ``openai`` client gets a plain and
a streamed answer, request parameters override the preset's, bad parameters are a 400 in OpenAI's
error shape, and every call is logged as a run."""

from __future__ import annotations

from typing import Any

import pytest
from studio_helpers import Live

PRESET: dict[str, Any] = {
    "name": "reviews", "instruction": "감정을 분류하세요.", "examples": [{"input": "영화가 좋다", "output": "긍정"}],
    "input_template": "입력: {input}", "model": "tiny-ko", "mode": "chat",
    "params": {"temperature": 0, "max_tokens": 4},
}


@pytest.fixture(scope="module")
def preset(live: Live) -> dict[str, Any]:
    with live.http() as c:
        res = c.post("/api/v1/studio/presets", json=PRESET)
        assert res.status_code == 201, res.text
        return res.json()


def test_openai_client_plain_and_stream(live: Live, preset: dict[str, Any]) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{live.url}/v1/presets/reviews", api_key=live.token, max_retries=0)
    messages: Any = [{"role": "user", "content": "정말 좋다"}]
    plain = client.chat.completions.create(model="reviews", messages=messages)
    assert plain.object == "chat.completion" and plain.choices[0].finish_reason == "length"
    assert plain.usage is not None and plain.usage.completion_tokens == 4
    # the system message, one example turn and the templated input through ChatML, split on whitespace:
    # <|im_start|>system 감정을 분류하세요.<|im_end|> <|im_start|>user 입력: 영화가 좋다<|im_end|>
    # <|im_start|>assistant 긍정<|im_end|> <|im_start|>user 입력: 정말 좋다<|im_end|> <|im_start|>assistant
    assert plain.usage.prompt_tokens == 14
    answer = plain.choices[0].message.content
    assert answer and len(answer.split()) == 4

    chunks = list(client.chat.completions.create(model="reviews", messages=messages, stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == answer  # greedy: the same answer, in pieces
    assert chunks[-1].choices[0].finish_reason == "length"

    # a request parameter overrides the preset's
    short = client.chat.completions.create(model="reviews", messages=messages, max_tokens=2)
    assert short.usage is not None and short.usage.completion_tokens == 2
    assert short.choices[0].message.content == " ".join(answer.split()[:2])

    with live.http() as c:
        runs = c.get("/api/v1/studio/runs", params={"preset": "reviews"}).json()
    assert [r["source"] for r in runs] == ["endpoint"] * 3 and {r["status"] for r in runs} == {"done"}
    assert runs[0]["params"]["max_tokens"] == 2 and runs[0]["preset_version_id"] == preset["latest"]["id"]
    assert runs[0]["prompt"][-1] == {"role": "user", "content": "입력: 정말 좋다"}

    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="reviews", messages=messages, temperature=-1)
    assert "temperature=-1.0 must be between 0 and 5" in str(err.value)


def test_bad_requests_are_400_json(live: Live, preset: dict[str, Any]) -> None:
    url = "/v1/presets/reviews/chat/completions"
    user = [{"role": "user", "content": "좋다"}]
    with live.http() as c:
        for body, message in (
            ({"messages": user, "top_p": "x"}, "parameter 'top_p' must be int or float"),
            ({"messages": []}, "messages must be a non-empty list"),
            ({"messages": [{"role": "assistant", "content": "a"}]}, "the last message must be the user's"),
            ({"messages": user, "n": 2}, "n=2 is not supported"),
            ({"messages": user, "bogus": 1}, "unknown field 'bogus'"),
            ({"messages": [{"role": "user", "content": " "}]}, "the input is empty"),
            ({"messages": user, "max_tokens": 60}, "context window of 64 minus max_tokens=60"),
        ):
            res = c.post(url, json=body)
            assert res.status_code == 400, (body, res.text)
            error = res.json()["error"]
            assert message in error["message"] and error["type"] == "invalid_request_error"
        assert c.post("/v1/presets/nope/chat/completions", json={"messages": user}).status_code == 404
