"""Shared pieces of the studio tests: the tiny model, the server with the plugin mounted, an SSE reader
and a fake OpenAI-compatible endpoint that can die mid-stream."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import httpx
import pytest

#: the tiny tokenizer's words; anything else is [UNK] (still one token)
WORDS = ["[UNK]", "감정을", "분류하세요.", "입력:", "답:", "###", "좋다", "싫다", "긍정", "부정", "영화가", "정말",
         "system", "user", "assistant"]
CONTEXT = 64


def build_tiny_model(folder: Path, context: int = CONTEXT) -> Path:
    import torch
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit

    from haneul.lm.config import GPTConfig
    from haneul.lm.model import GPT
    from haneul.lm.tokenizer import HaneulTokenizer

    tok = Tokenizer(WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    tok.pre_tokenizer = WhitespaceSplit()
    HaneulTokenizer(tok, {"kind": "word"}).save(folder)
    torch.manual_seed(0)
    # no end-of-text token: every run writes exactly max_tokens tokens
    cfg = GPTConfig(vocab_size=len(WORDS), n_layer=2, n_head=2, n_kv_head=1, d_model=16, d_ff=32,
                    max_seq_len=context, bos_token_id=None, eos_token_id=None)
    GPT(cfg).save_pretrained(folder)
    return folder


def with_studio_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the server load the studio plugin as if its entry point were installed."""
    from haneul.platform import plugins

    real = plugins.discover

    def discover() -> dict[str, EntryPoint]:
        found = real()
        found["studio"] = EntryPoint("studio", "haneul.studio.server:plugin", plugins.GROUP)
        return dict(sorted(found.items()))

    monkeypatch.setattr(plugins, "discover", discover)


@dataclass
class Live:
    url: str
    home: Path
    token: str
    app: Any

    def login_url(self, path: str) -> str:
        """A URL that logs a browser in as the local admin and lands on ``path``."""
        return f"{self.url}{path}{'&' if '?' in path else '?'}token={self.token}"

    def http(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token or self.token}"},
                            timeout=60)


@contextmanager
def studio_app(home: Path, model_dir: Path, db_url: str | None = None) -> Iterator[Live]:
    import uvicorn

    from haneul.lm.registry import models_dir, register_model
    from haneul.platform.credentials import local_admin_token
    from haneul.platform.server import create_app
    from haneul.platform.testing import free_port
    from haneul.settings import Settings

    register_model("tiny-ko", model_dir, root=models_dir(home))
    # the same words with a long context window: a run long enough to stop half-way
    register_model("tiny-long", build_tiny_model(home / "tiny-long", context=4096), root=models_dir(home))
    (home / "studio").mkdir(parents=True, exist_ok=True)  # a server-wide remote model (never called)
    (home / "studio" / "endpoints.json").write_text('{"configured-lm": "http://127.0.0.1:9/v1#remote-name"}')
    with pytest.MonkeyPatch.context() as mp:
        with_studio_plugin(mp)
        app = create_app(Settings(home=home, capacity_cpus=1, db_url=db_url))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    try:
        token = local_admin_token(home)
        assert token
        yield Live(f"http://127.0.0.1:{port}", home, token, app)
    finally:
        server.should_exit = True
        thread.join(15)


def sse_events(response: httpx.Response) -> list[tuple[str, Any]]:
    """The ``(event, data)`` pairs of a Server-Sent Events response, read as they arrive."""
    events = []
    event, data = "message", []
    for line in response.iter_lines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line and data:
            events.append((event, json.loads("\n".join(data))))
            event, data = "message", []
    return events


def make_user(admin: httpx.Client, name: str, team: str, role: str = "member") -> dict[str, str]:
    res = admin.post("/api/v1/users", json={"name": name, "team": team, "role": role})
    assert res.status_code == 201, res.text
    token = admin.post(f"/api/v1/users/{name}/tokens", json={"name": "test"}).json()["token"]
    return {"Authorization": f"Bearer {token}"}


class DyingEndpoint:
    """An OpenAI-compatible server on 127.0.0.1 that streams ``chunks`` text deltas, then dies: it closes
    the connection without finishing the stream and stops listening."""

    def __init__(self, chunks: list[str], delay: float = 0.05) -> None:
        self.chunks = chunks
        self.delay = delay
        self.hung_up = threading.Event()  # the caller closed the connection before the last chunk
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.requests: list[dict[str, Any]] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            raw = b""
            while b"\r\n\r\n" not in raw:
                raw += conn.recv(65536)
            head, _, body = raw.partition(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            while len(body) < length:
                body += conn.recv(65536)
            self.requests.append(json.loads(body))
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
            for text in self.chunks:
                event = json.dumps({"choices": [{"index": 0, "text": text, "finish_reason": None}]})
                frame = f"data: {event}\n\n".encode()
                try:
                    conn.sendall(f"{len(frame):x}\r\n".encode() + frame + b"\r\n")
                except OSError:
                    self.hung_up.set()
                    break
                time.sleep(self.delay)
            # dies here: no final chunk, no [DONE]
        self.sock.close()
