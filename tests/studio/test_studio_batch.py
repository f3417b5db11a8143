"""The studio's prompt-building tools: the few-shot builder's picks (first, seeded random, most similar by
morpheme overlap) from a platform dataset or an upload, a batch test of a preset run end to end as a
platform session against a deterministic model server (its accuracy known exactly and recorded on the
version), and the compare route streaming two columns at once."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from studio_helpers import Live, sse_events

from haneul.errors import InvalidInput
from haneul.platform.testing import wait_for
from haneul.studio.batch import Scorer, first_word
from haneul.studio.fewshot import jaccard, pick, read_table, tokens
from haneul.studio.prompt import Example

SIMILAR = [Example("배우 연기가 좋다", "긍정"), Example("영화는 정말 재미있다", "긍정"), Example("음식이 맛없다", "부정"),
           Example("영화가 지루하다", "부정"), Example("정말 최고", "긍정")]

# 20 reviews: the fake model says 긍정 exactly when a review contains 좋, so it is right on the 10 + 5
# rows where that agrees with the label and wrong on the last 3 + 2: accuracy 15 / 20 = 75
NSMC = ([(f"정말 좋다 {i}", "1") for i in range(10)] + [(f"지루한 영화 {i}", "0") for i in range(5)]
        + [(f"최고의 영화 {i}", "1") for i in range(3)] + [(f"안 좋다 {i}", "0") for i in range(2)])


def nsmc_csv() -> str:
    return "id,document,label\n" + "".join(f"{i},{d},{label}\n" for i, (d, label) in enumerate(NSMC))


# ------------------------------------------------------------------------------------------ library


def test_tokens_split_particles_off_hangul_words() -> None:
    assert tokens("영화가 정말 재미있다!") == {"영화", "가", "정말", "재미있", "다"}
    assert tokens("영화는 OK") == {"영화", "는", "ok"}
    assert jaccard(tokens("영화가"), tokens("영화는")) == pytest.approx(1 / 3)  # 영화 of 영화, 가, 는


def test_pick_first_random_and_similar() -> None:
    assert [p.row for p in pick(SIMILAR, k=2, strategy="first")] == [0, 1]
    one = [p.row for p in pick(SIMILAR, k=3, strategy="random", seed=7)]
    assert one == [p.row for p in pick(SIMILAR, k=3, strategy="random", seed=7)]  # seeded: the same rows again
    assert one == sorted(one) and len(set(one)) == 3
    seeds = {tuple(p.row for p in pick(SIMILAR, k=3, strategy="random", seed=s)) for s in range(6)}
    assert len(seeds) > 1
    # query {영화, 가, 정말, 재미있, 다}: row 1 shares 4 of 6 tokens, row 3 3 of 6, row 0 2 of 8
    similar = pick(SIMILAR, k=3, strategy="similar", query="영화가 정말 재미있다")
    assert [p.row for p in similar] == [1, 3, 0]
    assert [p.score for p in similar] == pytest.approx([4 / 6, 3 / 6, 2 / 8], abs=1e-6)
    assert len(pick(SIMILAR, k=64, strategy="first")) == 5
    with pytest.raises(InvalidInput, match="type the input first"):
        pick(SIMILAR, k=2, strategy="similar", query=" ")
    with pytest.raises(InvalidInput, match="first, random, similar"):
        pick(SIMILAR, k=2, strategy="nearest")


def test_tables_and_the_missing_column() -> None:
    csv_table = read_table("document,label\n좋다,1\n\"싫다, 정말\",0\n".encode(), fmt="csv")
    assert csv_table.columns == ("document", "label") and csv_table.rows[1] == {"document": "싫다, 정말", "label": "0"}
    jsonl = read_table('{"q": "a", "a": 1}\n\n{"q": "b", "a": "x"}\n', fmt="jsonl")
    assert jsonl.examples("q", "a") == [Example("a", "1"), Example("b", "x")]
    tsv = read_table("in\tout\n가\t나\n", fmt="tsv")
    assert tsv.examples("in", "out") == [Example("가", "나")]
    with pytest.raises(InvalidInput, match="column 'text' is not in the table; its columns are document, label"):
        csv_table.examples("text", "label")


def test_scorer_accuracy_with_a_label_map_and_text_metrics() -> None:
    assert first_word("\n  긍정입니다? 네\n부정") == "긍정입니다"
    assert first_word(" '긍정'. 이유는") == "긍정"
    acc = Scorer("accuracy", {"0": "부정", "1": "긍정"})
    assert acc.add("a", "1", "긍정\n###").correct and not acc.add("b", "0", "긍정").correct
    assert acc.add("c", "0", "부정!").expected == "부정"
    assert acc.score() == pytest.approx(200 / 3)
    f1 = Scorer("char_f1")
    f1.add("a", "서울", "서울시")  # 2 shared characters: precision 2/3, recall 1
    assert f1.score() == pytest.approx(80.0)
    bleu = Scorer("bleu")
    bleu.add("a", "the cat sat on the mat", "the cat sat on the mat")
    assert bleu.score() == pytest.approx(100.0)
    with pytest.raises(InvalidInput, match="metric 'f2' is unknown"):
        Scorer("f2")


# ------------------------------------------------------------------------------------------ server


class _Fake(BaseHTTPRequestHandler):
    """An OpenAI-compatible completions route: " 긍정" when the last input contains 좋, else " 부정", then
    the restart text (the batch test cuts it off)."""

    def do_POST(self) -> None:  # noqa: N802 (the http.server API)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        last = body["prompt"].rsplit("입력: ", 1)[-1].split("\n", 1)[0]
        self.server.prompts.append(body["prompt"])  # type: ignore[attr-defined]
        answer = " 긍정" if "좋" in last else " 부정"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for text, reason in ((answer, None), ("\n###\n입력:", "stop")):
            chunk = {"choices": [{"index": 0, "text": text, "finish_reason": reason}]}
            self.wfile.write(f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def fake_model() -> Iterator[Any]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Fake)
    server.prompts = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def nsmc_dataset(live: Live, tmp_path_factory: pytest.TempPathFactory) -> str:
    from haneul.platform.client import Client
    from haneul.platform.datasets import push, scan

    folder = tmp_path_factory.mktemp("nsmc-tiny")
    (folder / "train.csv").write_text(nsmc_csv(), encoding="utf-8")
    (folder / "README.md").write_text("tiny NSMC-format reviews\n", encoding="utf-8")
    client = Client(live.url, token=live.token)
    try:
        push(client, scan("nsmc-tiny", folder))
    finally:
        client.close()
    return "nsmc-tiny"


PRESET: dict[str, Any] = {
    "instruction": "감정을 분류하세요.", "input_template": "입력: {input}", "model": "tiny-ko",
    "params": {"temperature": 0, "max_tokens": 5, "inject_start": "\n답:", "inject_restart": "\n###\n"},
}


def test_fewshot_from_a_dataset_and_an_upload(live: Live, nsmc_dataset: str) -> None:
    with live.http() as c:
        first = c.post("/api/v1/studio/fewshot", json={
            **PRESET, "dataset": nsmc_dataset, "input_column": "document", "output_column": "label", "k": 2,
            "input": "정말 좋다"})
        assert first.status_code == 200, first.text
        got = first.json()
        assert got["source"] == "nsmc-tiny:1/train.csv" and got["rows"] == 20
        assert [(e["row"], e["input"], e["output"]) for e in got["examples"]] == [(0, "정말 좋다 0", "1"),
                                                                                (1, "정말 좋다 1", "1")]
        assert got["prompt"] == ("감정을 분류하세요.\n\n입력: 정말 좋다 0\n답:1\n###\n입력: 정말 좋다 1\n답:1\n###\n"
                                 "입력: 정말 좋다\n답:")
        # the tiny tokenizer's words: 2 + 2 x ("입력:" [UNK] [UNK] "답:1"->[UNK] "###") + 3 ("입력:" "정말" "좋다") + "답:"
        assert got["tokens"] == 2 + 2 * 6 + 4 and got["context_window"] == 64

        # the most similar rows to "최고의 영화": the three "최고의 영화 N" share 최고, 의, 영화
        similar = c.post("/api/v1/studio/fewshot", json={
            "model": "tiny-ko", "dataset": f"{nsmc_dataset}:1", "file": "train.csv", "input_column": "document",
            "output_column": "label", "k": 3, "strategy": "similar", "input": "최고의 영화"}).json()
        assert [e["row"] for e in similar["examples"]] == [15, 16, 17]

        upload = c.post("/api/v1/studio/fewshot", json={
            "model": "tiny-ko", "upload": '{"q": "가", "a": "나"}\n{"q": "다", "a": "라"}\n',
            "upload_name": "pairs.jsonl", "input_column": "q", "output_column": "a", "k": 1, "strategy": "random",
            "seed": 3}).json()
        assert upload["source"] == "upload:pairs.jsonl" and len(upload["examples"]) == 1

        missing = c.post("/api/v1/studio/fewshot", json={
            "model": "tiny-ko", "dataset": nsmc_dataset, "input_column": "text", "output_column": "label"})
        assert missing.status_code == 400
        assert missing.json()["error"]["message"] == \
            "column 'text' is not in the table; its columns are id, document, label"


def test_batch_test_runs_as_a_session_and_records_the_score(live: Live, nsmc_dataset: str, fake_model: Any) -> None:
    # the helper's server learns its port after the app is made: tell the sessions where it listens
    live.app.state.platform.server_url = live.url
    with live.http() as c:
        res = c.post("/api/v1/studio/endpoints", json={"name": "fake-sentiment",
                                                        "url": f"http://127.0.0.1:{fake_model.server_port}/v1"})
        assert res.status_code == 201, res.text
        preset = c.post("/api/v1/studio/presets", json={**PRESET, "name": "nsmc-batch",
                                                        "model": "endpoint:fake-sentiment"}).json()
        bad = c.post("/api/v1/studio/batch-tests", json={"preset": "nsmc-batch", "dataset": nsmc_dataset,
                                                          "input_column": "review", "expected_column": "label"})
        assert bad.status_code == 400 and "its columns are id, document, label" in bad.json()["error"]["message"]

        started = c.post("/api/v1/studio/batch-tests", json={
            "preset": "nsmc-batch", "dataset": nsmc_dataset, "input_column": "document", "expected_column": "label",
            "metric": "accuracy", "label_map": {"0": "부정", "1": "긍정"}, "batch_size": 6})
        assert started.status_code == 201, started.text
        test = started.json()
        assert test["status"] in ("queued", "running") and test["n_rows"] == 20 and test["session_id"]
        tid = test["id"]

        def finished() -> dict[str, Any] | None:
            t = c.get(f"/api/v1/studio/batch-tests/{tid}").json()
            return t if t["status"] in ("done", "failed") else None

        test = wait_for(finished, timeout=60, interval=0.3)
        assert test["status"] == "done", test
        assert test["score"] == pytest.approx(75.0) and test["rows_done"] == 20
        assert test["preset_version_id"] == preset["latest"]["id"] and test["dataset"] == "nsmc-tiny:1/train.csv"

        rows = c.get(f"/api/v1/studio/batch-tests/{tid}/rows").json()
        assert len(rows) == 20 and [r["index"] for r in rows] == list(range(20))
        assert rows[0] == {"index": 0, "input": "정말 좋다 0", "expected": "긍정", "output": "긍정", "correct": True,
                           "score": 100.0}
        assert [r["correct"] for r in rows] == [True] * 15 + [False] * 5
        assert rows[-1]["output"] == "긍정" and rows[-1]["expected"] == "부정"
        assert len(fake_model.prompts) == 20
        assert "감정을 분류하세요.\n\n입력: 정말 좋다 0\n답:" in fake_model.prompts  # sent 6 at a time

        # the score is kept with the preset's versions; the session reported progress and kept the outputs
        listed = c.get("/api/v1/studio/batch-tests", params={"preset": "nsmc-batch"}).json()
        assert [t["id"] for t in listed] == [tid] and listed[0]["score"] == pytest.approx(75.0)
        metrics = c.get(f"/api/v1/sessions/{test['session_id']}").json()["metrics"]
        assert metrics["rows"] == 20 and metrics["score"] == pytest.approx(75.0)
        page = c.get(f"/studio/batch/{tid}")
        assert page.status_code == 200 and "75.00" in page.text and "최고의 영화 0" in page.text
        job = Path(live.home) / "studio" / "batch" / str(tid)
        assert (job / "outputs.jsonl").read_text(encoding="utf-8").count("\n") == 20


def test_compare_streams_two_columns_together(live: Live) -> None:
    with live.http() as c:
        c.post("/api/v1/studio/presets", json={**PRESET, "name": "cmp-a"})
        res = c.post("/api/v1/studio/compare", json={"input": "정말 좋다", "columns": [
            {"preset": "cmp-a", "params": {"max_tokens": 3}}, {"model": "tiny-long", "params": {"max_tokens": 2}}]})
        assert res.status_code == 200 and res.headers["content-type"].startswith("text/event-stream")
        events = sse_events(res)
        assert events[-1] == ("end", {"columns": 2})
        tokens_by = {0: 0, 1: 0}
        for kind, data in events:
            if kind == "token":
                tokens_by[data["column"]] += 1
        # no end-of-text token in the tiny models: each column writes exactly its max_tokens
        assert tokens_by == {0: 3, 1: 2}
        done = {d["column"]: d for k, d in events if k == "done"}
        assert set(done) == {0, 1} and done[0]["completion_tokens"] == 3 and done[1]["completion_tokens"] == 2
        runs = {r["id"]: r for r in c.get("/api/v1/studio/runs", params={"limit": 5}).json()}
        assert runs[done[0]["run_id"]]["model"] == "tiny-ko" and runs[done[1]["run_id"]]["model"] == "tiny-long"

        one = c.post("/api/v1/studio/compare", json={"input": "x", "columns": [{"model": "tiny-ko"}]})
        assert one.status_code in (400, 422)
        unknown = c.post("/api/v1/studio/compare", json={"input": "x", "columns": [
            {"model": "tiny-ko", "params": {"max_tokens": 3}}, {"model": "nope"}]})
        assert unknown.status_code == 404 and "available models" in unknown.json()["error"]["message"]
        assert "compare.js" in c.get("/studio/compare").text
        assert 'id="fs-pick"' in c.get("/studio/playground").text  # the few-shot builder's panel
        assert 'id="batch-form"' in c.get("/studio/batch").text


def test_a_local_model_answers_a_batch_like_the_playground(tiny_model_dir: Path, tmp_path: Path) -> None:
    """Outside a session (the report stays local): the batched sampler gives each row the answer the
    playground's stream gives it alone."""
    from haneul.lm.registry import models_dir, register_model
    from haneul.studio.batch import BatchJob, job_backend, read_outputs, run_job
    from haneul.studio.prompt import Params, PromptSpec, assemble
    from haneul.studio.service import VersionFields

    root = models_dir(tmp_path / "home")
    register_model("tiny-ko", tiny_model_dir, root=root)
    content = VersionFields.from_dict({**PRESET, "params": {"temperature": 0, "max_tokens": 3}})
    rows = [("정말 좋다", "긍정"), ("영화가 싫다", "부정"), ("좋다", "긍정"), ("   ", "부정"), ("싫다 싫다", "부정")]
    job = BatchJob(1, content.to_dict(), {"kind": "local", "root": str(root)}, "exact_match", rows, batch_size=2)
    job.save(tmp_path / "job")
    summary = run_job(tmp_path / "job")
    assert summary["n_rows"] == 5 and summary["metric"] == "exact_match"
    out = read_outputs(tmp_path / "job")
    assert [r["input"] for r in out] == [r[0] for r in rows] and out[3]["output"] == ""  # an empty input: no call
    backend = job_backend(job)
    spec: PromptSpec = content.spec()
    for r in out:
        if r["input"].strip():
            alone = "".join(backend.stream(assemble(spec, r["input"]), Params.from_dict({"temperature": 0, "max_tokens": 3})))
            assert r["output"] == alone.split("\n###\n")[0].strip()
    assert summary["score"] == pytest.approx(100.0 * sum(bool(r["correct"]) for r in out) / 5)
