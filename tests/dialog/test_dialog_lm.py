"""LM backends against a real OpenAI-compatible HTTP server on 127.0.0.1 (FastAPI + uvicorn in a thread)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from haneul.dialog.lm import ChatClient, LMUnavailable
from haneul.dialog.operators import LexicalOperator, LMOperator, Op
from haneul.dialog.responder import Responder
from haneul.dialog.summarizer import ExtractiveSummarizer, LMSummarizer


@pytest.fixture(scope="module")
def server():
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()
    seen: list[dict] = []

    @app.post("/v1/chat/completions")
    def chat(body: dict):
        seen.append(body)
        prompt = body["messages"][-1]["content"]
        if body["model"] == "slow":
            time.sleep(1.5)
        if "New facts:" in prompt:
            answer = "- 노인정에 다니심\n- 식사를 잘 하심"
        elif "Dialogue:" in prompt:
            answer = "지난번에 이가 아프시다고 하셨는데, 지금은 좀 어떠세요?"
        else:
            answer = "M1 S1 REPLACE\nM2 S2 PASS"
        return {"choices": [{"message": {"role": "assistant", "content": answer}}]}

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/v1", seen
    srv.should_exit = True
    thread.join(timeout=10)


MEMORY = ["이가 아파서 치과에 다니심", "노인정에 다니심"]
SUMMARY = ["이가 다 나으셨음", "요즘도 노인정에 다니심"]


def test_lm_operator_uses_the_endpoint(server):
    url, seen = server
    res = LMOperator(ChatClient(url, model="fast")).update(MEMORY, SUMMARY)
    assert res.operator == "lm" and res.fallback is None
    assert {(p.memory_index, p.summary_index): p.op for p in res.ops if p.op is not Op.APPEND} == {
        (0, 0): Op.REPLACE, (1, 1): Op.PASS}
    assert res.new_memory == ["노인정에 다니심", "이가 다 나으셨음"]
    assert seen[-1]["model"] == "fast" and "M2. 노인정에 다니심" in seen[-1]["messages"][-1]["content"]


def test_a_timed_out_lm_falls_back_to_the_classifier_and_says_so(server, tiny_classifier):
    from haneul.dialog.operators import ClassifierOperator

    url, _ = server
    fallback = ClassifierOperator(tiny_classifier[0])
    res = LMOperator(ChatClient(url, model="slow", timeout=0.3), fallback=fallback).update(MEMORY, SUMMARY)
    assert res.operator == "classifier"
    assert "timed out after 0.3s" in res.fallback and "classifier" in res.fallback
    assert len(res.ops) == 4


def test_an_unreachable_lm_falls_back_to_the_shipped_classifier_else_lexical(monkeypatch, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    res = LMOperator(ChatClient(f"http://127.0.0.1:{port}/v1", timeout=1)).update(MEMORY, SUMMARY)
    assert res.operator == "classifier" and "unreachable" in res.fallback
    monkeypatch.setattr("haneul.dialog.defaults.SHIPPED_OPERATOR", tmp_path / "missing")
    res = LMOperator(ChatClient(f"http://127.0.0.1:{port}/v1", timeout=1)).update(MEMORY, SUMMARY)
    assert res.operator == "lexical" and "unreachable" in res.fallback


def test_lm_summariser_and_its_timeout_fallback(server):
    url, _ = server
    dialogue = [{"role": "system", "text": "요즘 어떠세요?"}, {"role": "user", "text": "노인정에 다녀요."}]
    res = LMSummarizer(ChatClient(url)).summarize(dialogue)
    assert res.sentences == ["노인정에 다니심", "식사를 잘 하심"] and res.backend == "lm"

    class Fixed(ExtractiveSummarizer):
        def summarize(self, dialogue, memory=()):
            from haneul.dialog.summarizer import SummaryResult

            return SummaryResult(["규칙 요약"], "extractive")

    slow = LMSummarizer(ChatClient(url, model="slow", timeout=0.3), fallback=Fixed())
    res = slow.summarize(dialogue)
    assert res.sentences == ["규칙 요약"] and "timed out" in res.fallback


def test_responder_grounds_the_prompt_in_retrieved_memory(server):
    url, seen = server
    memory = ["딸이 서울에 사심", "이가 아파서 치과에 다니심", "노인정에 다니심"]
    dialogue = [{"role": "system", "text": "안녕하세요"}, {"role": "user", "text": "요즘 이가 좀 시려요"}]
    res = Responder(ChatClient(url), top_k=1).respond(memory, dialogue)
    assert res.used_memory == ["이가 아파서 치과에 다니심"] and res.backend == "lm"
    assert "- 이가 아파서 치과에 다니심" in seen[-1]["messages"][-1]["content"]
    assert "딸이 서울에 사심" not in seen[-1]["messages"][-1]["content"]
    timed_out = Responder(ChatClient(url, model="slow", timeout=0.3), top_k=1).respond(memory, dialogue)
    assert timed_out.backend == "template" and "이가 아파서" in timed_out.text and "timed out" in timed_out.fallback


def test_chat_client_errors_are_one_line():
    import httpx

    bad = ChatClient("http://x/v1", transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    with pytest.raises(LMUnavailable, match="HTTP 500"):
        bad.chat([{"role": "user", "content": "hi"}])
    odd = ChatClient("http://x/v1", transport=httpx.MockTransport(lambda r: httpx.Response(200, json={"x": 1})))
    with pytest.raises(LMUnavailable, match="chat-completions format"):
        odd.chat([{"role": "user", "content": "hi"}])
    assert LexicalOperator().update([], ["x"]).new_memory == ["x"]
