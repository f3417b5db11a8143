from __future__ import annotations

import json

import httpx
import pytest

from haneul.evals import EvalConfig, TaskRun, get_task, run_eval
from haneul.evals.backends.openai import EndpointUnavailable, OpenAIBackend

ROWS = [("1", "좋다", 1), ("2", "별로", 0), ("3", "최고", 1), ("4", "싫다", 0)]


def nsmc(tmp_path):
    f = tmp_path / "nsmc.txt"
    f.write_text("id\tdocument\tlabel\n" + "".join(f"{i}\t{d}\t{y}\n" for i, d, y in ROWS), encoding="utf-8")
    return [TaskRun(get_task("nsmc"), f)]


def echo_server(with_logprobs: bool, log: list):
    """A fake /v1/completions: words are tokens; ' 긍정' is likely after 좋/최고, ' 부정' otherwise."""

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        log.append(body)
        prompt = body["prompt"]
        if not body.get("echo"):
            answer = " 긍정" if ("좋" in prompt or "최고" in prompt) else " 부정"
            return httpx.Response(200, json={"choices": [{"text": answer + "\n리뷰"}]})
        if not with_logprobs:
            return httpx.Response(200, json={"choices": [{"text": prompt, "logprobs": None}]})
        tokens, offsets, pos = [], [], 0
        for word in prompt.split(" "):
            piece = word if pos == 0 else " " + word
            tokens.append(piece)
            offsets.append(pos)
            pos += len(piece)
        positive = "좋" in prompt or "최고" in prompt
        values = [None] + [-0.1] * (len(tokens) - 1)
        last = tokens[-1].strip()
        values[-1] = -0.2 if (last == "긍정") == positive else -3.0
        tokens.append("<gen>")
        offsets.append(pos)
        values.append(-0.5)
        lp = {"tokens": tokens, "token_logprobs": values, "text_offset": offsets}
        return httpx.Response(200, json={"choices": [{"text": prompt + "x", "logprobs": lp}]})

    return httpx.MockTransport(handler)


def test_logprob_scoring_sums_only_the_option_tokens(tmp_path):
    log: list = []
    backend = OpenAIBackend("http://fake/v1", model="m", transport=echo_server(True, log))
    scores = backend.loglikelihood("리뷰: 좋다\n감정:", [" 긍정", " 부정"])
    assert scores == [(-0.2, 1), (-3.0, 1)]
    res = run_eval(backend, nsmc(tmp_path), EvalConfig())
    assert res["tasks"]["nsmc"]["shots"]["0"]["mean"]["acc"] == 100
    assert all(b["model"] == "m" for b in log)


def test_generation_only_endpoint_answers_choice_tasks_by_generation(tmp_path):
    log: list = []
    backend = OpenAIBackend("http://fake/v1", transport=echo_server(False, log))
    res = run_eval(backend, nsmc(tmp_path), EvalConfig())
    assert backend.supports_loglikelihood is False
    assert res["tasks"]["nsmc"]["shots"]["0"]["mean"]["acc"] == 100
    assert sum(1 for b in log if not b.get("echo")) == len(ROWS)


def test_a_down_endpoint_is_retried_then_reported_and_finished_items_are_kept(tmp_path):
    state = {"up": True, "calls": 0}
    log: list = []
    inner = echo_server(True, log)

    def flaky(request: httpx.Request) -> httpx.Response:
        state["calls"] += 1
        if not state["up"]:
            raise httpx.ConnectError("connection refused")
        if len(log) >= 5:  # probe + 2 items x 2 options, then the server goes down
            state["up"] = False
            raise httpx.ConnectError("connection refused")
        return inner.handle_request(request)

    sleeps: list[float] = []
    backend = OpenAIBackend("http://fake/v1", transport=httpx.MockTransport(flaky), retries=3, backoff_s=0.5,
                            sleep=sleeps.append)
    out = tmp_path / "out"
    with pytest.raises(EndpointUnavailable, match="did not answer after 4 tries.*finished items are kept"):
        run_eval(backend, nsmc(tmp_path), EvalConfig(), out, chunk_size=1)
    assert sleeps == [0.5, 1.0, 2.0]
    assert len((out / "items.jsonl").read_text().splitlines()) == 2
    log.clear()
    state["up"] = True
    back = OpenAIBackend("http://fake/v1", transport=echo_server(True, log))
    res = run_eval(back, nsmc(tmp_path), EvalConfig(), out)
    assert res["tasks"]["nsmc"]["shots"]["0"]["mean"]["acc"] == 100
    assert len(log) == 1 + 2 * 2  # the probe and the two unfinished items only


def test_client_errors_are_not_retried():
    calls = []

    def handler(request):
        calls.append(1)
        return httpx.Response(404, text="no such model")

    backend = OpenAIBackend("http://fake/v1", transport=httpx.MockTransport(handler), sleep=lambda s: None)
    with pytest.raises(Exception, match="rejected the request \\(HTTP 404"):
        backend.generate("x", 4, ())
    assert len(calls) == 1
