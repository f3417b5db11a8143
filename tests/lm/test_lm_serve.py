from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


def test_importing_serve_does_not_import_torch() -> None:
    code = "import sys, haneul.lm.serve as s; s.create_router(); assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server:
    def __init__(self, app: object) -> None:
        import uvicorn

        self.port = _free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}/v1"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def server(tiny_model: Path) -> Iterator[str]:
    from haneul.lm.serve import create_app

    with _Server(create_app({"ko-test": str(tiny_model)})) as url:
        yield url


def test_openai_client_completions_plain_and_streaming(server: str) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=server, api_key="unused")
    ids = [m.id for m in client.models.list().data]
    assert "ko-test" in ids
    plain = client.completions.create(model="ko-test", prompt="이 영화는", max_tokens=8, temperature=0, seed=1)
    assert plain.choices[0].finish_reason in ("stop", "length")
    assert plain.usage.completion_tokens <= 8 and plain.usage.prompt_tokens > 0
    stream = client.completions.create(model="ko-test", prompt="이 영화는", max_tokens=8, temperature=0, stream=True)
    chunks = list(stream)
    streamed = "".join(chunk.choices[0].text for chunk in chunks)
    assert streamed == plain.choices[0].text and streamed
    # the last chunk says why the stream ended, as the non-streaming answer does
    assert chunks[-1].choices[0].finish_reason == plain.choices[0].finish_reason


def test_openai_client_chat_plain_and_streaming(server: str) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=server, api_key="unused")
    messages = [{"role": "user", "content": "영화 어땠어?"}]
    plain = client.chat.completions.create(model="ko-test", messages=messages, max_tokens=6, temperature=0)
    assert plain.choices[0].message.role == "assistant"
    stream = client.chat.completions.create(model="ko-test", messages=messages, max_tokens=6, temperature=0, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == plain.choices[0].message.content


def test_errors_are_openai_shaped(server: str) -> None:
    from openai import BadRequestError, NotFoundError, OpenAI

    client = OpenAI(base_url=server, api_key="unused", max_retries=0)
    with pytest.raises(BadRequestError) as bad:
        client.completions.create(model="ko-test", prompt="영화 " * 400, max_tokens=4)
    assert "context window is 128" in bad.value.body["message"]
    with pytest.raises(NotFoundError) as missing:
        client.completions.create(model="nope", prompt="x")
    assert "available models: ko-test" in missing.value.body["message"]
    r = httpx.post(f"{server}/chat/completions", json={"model": "ko-test", "messages": [], "stream": True})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_input"


def test_pass_through_to_another_server(server: str) -> None:
    from openai import OpenAI

    from haneul.lm.serve import create_app

    with _Server(create_app({"relay": server + "#ko-test"})) as front:
        client = OpenAI(base_url=front, api_key="unused")
        direct = OpenAI(base_url=server, api_key="unused")
        a = client.completions.create(model="relay", prompt="배우", max_tokens=5, temperature=0)
        b = direct.completions.create(model="ko-test", prompt="배우", max_tokens=5, temperature=0)
        assert a.choices[0].text == b.choices[0].text
        chunks = client.completions.create(model="relay", prompt="배우", max_tokens=5, temperature=0, stream=True)
        assert "".join(c.choices[0].text for c in chunks) == b.choices[0].text
