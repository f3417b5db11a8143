"""Studio benchmark (HyperCLOVA §5, HyperCLOVA Studio): what the playground, its token counter and its
batch tests cost next to the plain way of doing the same work, measured in one run.

1. Time to first token. SmolLM2-135M is served by ``haneul lm serve`` (its own process, on 127.0.0.1)
   and registered in the studio as a team endpoint. The same completion prompt, greedy, with a small
   ``max_tokens``, is sent to the model server directly (``POST /v1/completions``, streamed) and through
   the playground's run route (``POST /api/v1/studio/run``, Server-Sent Events), interleaved: direct,
   studio, studio-local, direct, ... TTFT is the time from sending the request to the first event that
   carries text. Target: the studio adds at most 50 ms at p50. The studio with the same model loaded in
   its own process (the local model, no HTTP hop) is measured beside them for information.
2. Token counter. About 4,000 characters of Korean counted through ``POST /api/v1/studio/tokens`` the
   way the playground's counter sends them (the prompt fields plus the input), one update at a time,
   for SmolLM2's tokenizer and for a haneul morpheme-aware tokenizer (trained here on the NSMC train
   reviews, or on the synthetic corpus without them, and saved with a tiny untrained model). The
   tokenizer alone, in this process, is the baseline. Target: at most 20 ms per update.
3. Batch test vs ``haneul eval run``. The same NSMC rows, the same zero-shot completion prompt, greedy,
   the same ``max_new_tokens`` and the stop sequence "\\n" on both: a studio batch test (a platform
   session; wall time from the POST to status ``done``, and the session's own ``summary.json`` seconds)
   against ``haneul eval run`` with a YAML ``generation`` task (wall time of the command, and its own
   ``timing.seconds``). Target: the batch test's rows/s at least 0.9x the evaluation's.

The server runs as ``haneul server`` (the studio plugin comes through its installed entry point) with a
temporary HANEUL_HOME whose models folder points at the SmolLM2 cache already converted under the
current HANEUL_HOME (``--smollm2-cache``), so no conversion is timed.

Run: .venv/bin/python benchmarks/bench_studio.py --quick     (a smoke run, ~3 minutes on 2 cores)
     .venv/bin/python benchmarks/bench_studio.py             (>= 30 requests, 60 updates, 100 rows)
     .venv/bin/python benchmarks/bench_studio.py --skip tokens,batch --keep   (rerun one part)
     options: --rows N, --text PATH (Korean text for the counter), --nsmc PATH, --max-tokens N
Writes benchmarks/results/studio.json (or --out PATH; a smoke run is best sent elsewhere).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "src"))

from haneul.io import atomic_write_text  # noqa: E402
from haneul.platform.testing import BIN, LiveServer, free_port, start_server  # noqa: E402

SMOLLM2 = "smollm2-135m"
KO_MODEL = "ko-morph-bench"
ENDPOINT = "smol-direct"
NSMC_DEFAULT = ROOT.parent / "shared" / "data" / "nsmc" / "ratings_test.txt.gz"
NSMC_TRAIN = ROOT.parent / "shared" / "data" / "nsmc" / "ratings_train.txt.gz"

#: the TTFT prompt: short, English (SmolLM2 is English-centric) and one it continues (a bare question
#: as a completion makes it write end-of-text at once)
TTFT_PROMPT = "Once upon a time, in a small village by the sea, there lived"

#: the batch / eval prompt, one zero-shot template for both ({input} for the studio, {document} for eval)
NSMC_TEMPLATE = "다음 영화 리뷰의 감정을 긍정 또는 부정으로 답하세요.\n리뷰: {input}\n감정:"
LABELS = {"0": "부정", "1": "긍정"}

#: written for this benchmark; repeated up to the counter's length
KO_PARAGRAPH = (
    "하늘은 한국어를 먼저 생각하는 기계 학습 플랫폼입니다. 연구자는 노트북에서 실험을 시작하고, 같은 코드를 "
    "여러 대의 서버로 옮겨 학습 세션을 나누어 돌립니다. 스튜디오에서는 프롬프트를 고치고 모델의 답이 한 글자씩 "
    "나타나는 모습을 지켜볼 수 있으며, 입력창 아래의 토큰 계산기는 프롬프트가 문맥 창에서 얼마나 자리를 차지하는지 "
    "알려 줍니다. 형태소 단위로 나눈 토크나이저는 조사와 어미를 따로 떼어 내므로 같은 낱말이 여러 형태로 "
    "나타나도 어휘를 덜 낭비합니다. 영화 리뷰 데이터로 감정 분류를 시험해 보면, 몇 개의 예시만으로도 모델이 "
    "과제의 형식을 금세 따라 한다는 것을 알 수 있습니다. "
)


# --------------------------------------------------------------------------------------------------
# small helpers


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": round(statistics.median(values), 2), "p95": round(percentile(values, 0.95), 2),
            "min": round(min(values), 2), "mean": round(statistics.fmean(values), 2), "n": len(values)}


def current_models_root() -> Path:
    from haneul.settings import get_settings

    return get_settings().home / "models"


def korean_text(path: Path | None, chars: int) -> str:
    """``chars`` characters of Korean: from ``path`` (plain text, JSON lines with ``text`` or an NSMC
    TSV, gzip or not), else the built-in paragraph repeated."""
    if path is None:
        text = KO_PARAGRAPH * (chars // len(KO_PARAGRAPH) + 1)
        return text[:chars]
    opener: Callable[..., Any] = gzip.open if path.suffix == ".gz" else open
    parts: list[str] = []
    total = 0
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            if line.startswith("{"):
                line = str(json.loads(line).get("text", ""))
            elif "\t" in line:  # NSMC: id, document, label
                cols = line.split("\t")
                line = cols[1] if len(cols) >= 3 else line
            parts.append(line)
            total += len(line) + 1
            if total >= chars:
                break
    return "\n".join(parts)[:chars]


def nsmc_rows(path: Path, n: int) -> list[tuple[str, str]]:
    """The first ``n`` (document, label) rows of an NSMC TSV with a non-empty document."""
    rows: list[tuple[str, str]] = []
    opener: Callable[..., Any] = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        next(fh)  # header
        for line in fh:
            cols = line.rstrip("\n").split("\t")
            if len(cols) >= 3 and cols[1].strip():
                rows.append((cols[1], cols[2]))
            if len(rows) >= n:
                break
    return rows


def sse_lines(response: httpx.Response) -> Iterator[tuple[str, str]]:
    """``(event, data)`` pairs of a Server-Sent Events response as they arrive (``message`` when the
    event has no name)."""
    event, data = "message", []
    for line in response.iter_lines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line and data:
            yield event, "\n".join(data)
            event, data = "message", []


@contextmanager
def lm_server(home: Path) -> Iterator[str]:
    """``haneul lm serve smollm2-135m`` on a free loopback port; yields its ``/v1`` base URL."""
    port = free_port()
    env = dict(os.environ, HANEUL_HOME=str(home))
    env.pop("HANEUL_SESSION", None)
    log = home / f"lm-serve-{port}.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([str(BIN / "haneul"), "lm", "serve", SMOLLM2, "--port", str(port)],
                                env=env, stdout=fh, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"haneul lm serve exited: {log.read_text()}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"haneul lm serve did not start: {log.read_text()}")
            time.sleep(0.1)
        yield f"{url}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


# --------------------------------------------------------------------------------------------------
# the home: the SmolLM2 cache and a morpheme-aware Korean model


def prepare_home(home: Path, smollm2_cache: Path, corpus_rows: int) -> dict[str, Any]:
    from haneul.lm.models.smollm2 import MARKER

    models = home / "models"
    models.mkdir(parents=True)
    if not (smollm2_cache / MARKER).is_file():
        raise SystemExit(f"{smollm2_cache} is not a converted SmolLM2 folder; run `haneul lm generate {SMOLLM2} "
                         "hello` once (it converts the GGUF file), or pass --smollm2-cache")
    # a link, not a copy: the cache is 0.5 GB and only read
    (models / SMOLLM2).symlink_to(smollm2_cache.resolve(), target_is_directory=True)
    return build_ko_model(models / KO_MODEL, corpus_rows)


def build_ko_model(folder: Path, corpus_rows: int) -> dict[str, Any]:
    """A morpheme-bpe tokenizer and a tiny untrained GPT saved together: a servable model folder whose
    tokenizer is the thing measured (its weights never run in the counter)."""
    import torch

    from haneul.lm.config import GPTConfig
    from haneul.lm.model import GPT
    from haneul.lm.testing import tiny_corpus
    from haneul.lm.tokenizer import train_tokenizer

    if NSMC_TRAIN.is_file():
        texts = [doc for doc, _ in nsmc_rows(NSMC_TRAIN, corpus_rows)]
        source = f"{NSMC_TRAIN.name}, first {len(texts)} reviews"
    else:
        texts = tiny_corpus(2000)
        source = "haneul.lm.testing.tiny_corpus(2000)"
    t0 = time.perf_counter()
    tok = train_tokenizer(folder, texts=texts, kind="morpheme-bpe", vocab_size=8000)
    trained_s = time.perf_counter() - t0
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=tok.vocab_size, n_layer=2, n_head=2, n_kv_head=1, d_model=32, d_ff=64,
                    max_seq_len=4096, bos_token_id=None, eos_token_id=tok.eos_id)
    GPT(cfg).save_pretrained(folder)
    return {"name": KO_MODEL, "kind": "morpheme-bpe", "vocab_size": tok.vocab_size, "trained_on": source,
            "train_seconds": round(trained_s, 2)}


# --------------------------------------------------------------------------------------------------
# 1. time to first token


def ttft_direct(http: httpx.Client, base: str, max_tokens: int) -> tuple[float, str]:
    body = {"model": SMOLLM2, "prompt": TTFT_PROMPT, "max_tokens": max_tokens, "temperature": 0, "stream": True}
    t0 = time.perf_counter()
    first: float | None = None
    text = []
    with http.stream("POST", f"{base}/completions", json=body) as res:
        res.raise_for_status()
        for _, data in sse_lines(res):
            if data == "[DONE]":
                break
            delta = json.loads(data)["choices"][0].get("text") or ""
            if delta and first is None:
                first = time.perf_counter() - t0
            text.append(delta)
    assert first is not None, "the model server sent no text"
    return first * 1000, "".join(text)


def ttft_studio(http: httpx.Client, model: str, max_tokens: int) -> tuple[float, str]:
    body = {"input": TTFT_PROMPT, "model": model, "mode": "completion", "instruction": "", "input_template": "{input}",
            "examples": [], "params": {"temperature": 0, "max_tokens": max_tokens}}
    t0 = time.perf_counter()
    first: float | None = None
    text = []
    with http.stream("POST", "/api/v1/studio/run", json=body) as res:
        if res.status_code != 200:
            res.read()
            raise RuntimeError(f"studio run answered {res.status_code}: {res.text}")
        for event, data in sse_lines(res):
            if event == "token":
                if first is None:
                    first = time.perf_counter() - t0
                text.append(json.loads(data)["text"])
            elif event == "error":
                raise RuntimeError(f"studio run failed: {data}")
    assert first is not None, "the studio sent no token"
    return first * 1000, "".join(text)


def bench_ttft(server: LiveServer, lm_base: str, n: int, max_tokens: int) -> dict[str, Any]:
    endpoint = {"name": ENDPOINT, "url": lm_base, "model": SMOLLM2, "context_window": 8192}
    with server.http(timeout=120) as studio, httpx.Client(timeout=120) as direct:
        res = studio.post("/api/v1/studio/endpoints", json=endpoint)
        assert res.status_code == 201, res.text
        remote = f"endpoint:{ENDPOINT}"
        t0 = time.perf_counter()
        ttft_studio(studio, SMOLLM2, max_tokens)  # loads the model into the studio's process
        local_load_s = time.perf_counter() - t0
        answers = {}
        for _ in range(3):  # warm every path (the model server loads its copy on its first request)
            _, answers["direct"] = ttft_direct(direct, lm_base, max_tokens)
            _, answers["studio_endpoint"] = ttft_studio(studio, remote, max_tokens)
            _, answers["studio_local"] = ttft_studio(studio, SMOLLM2, max_tokens)
        times: dict[str, list[float]] = {k: [] for k in answers}
        for _ in range(n):
            times["direct"].append(ttft_direct(direct, lm_base, max_tokens)[0])
            times["studio_endpoint"].append(ttft_studio(studio, remote, max_tokens)[0])
            times["studio_local"].append(ttft_studio(studio, SMOLLM2, max_tokens)[0])

    def overhead(key: str) -> dict[str, float]:
        paired = [s - d for s, d in zip(times[key], times["direct"], strict=True)]
        return {"p50_difference": round(statistics.median(times[key]) - statistics.median(times["direct"]), 2),
                "paired_p50": round(statistics.median(paired), 2), "paired_p95": round(percentile(paired, 0.95), 2)}

    over = overhead("studio_endpoint")
    out = {
        "requests_each": n, "max_tokens": max_tokens, "prompt": TTFT_PROMPT, "greedy": True,
        "order": "interleaved: direct, studio (endpoint), studio (local model), repeated",
        "answers": answers,
        "ttft_ms": {k: summary(v) for k, v in times.items()},
        "overhead_ms": {**over, "target_p50": 50.0},
        "studio_local_first_load_s": round(local_load_s, 2),
        "meets_target": over["p50_difference"] <= 50.0 and over["paired_p50"] <= 50.0,
    }
    return out


# --------------------------------------------------------------------------------------------------
# 2. the token counter


def counter_fields(model: str, text: str) -> dict[str, Any]:
    """What the playground's counter posts: the prompt fields and the input."""
    return {"model": model, "mode": "completion", "instruction": "", "input_template": "{input}", "examples": [],
            "params": {"max_tokens": 64}, "input": text}


def bench_tokens(server: LiveServer, home: Path, text: str, updates: int) -> dict[str, Any]:
    from haneul.lm.generate import Generator
    from haneul.lm.models.smollm2 import load_smollm2

    out: dict[str, Any] = {"characters": len(text), "updates": updates,
                           "update": "the input as typed: the full text less 0-9 trailing characters, so each "
                                     "update differs"}
    local: dict[str, Any] = {}
    model, tok = load_smollm2(models_root=home / "models")
    local[SMOLLM2] = Generator.from_hf(model, tok, name=SMOLLM2).tokenizer
    local[KO_MODEL] = Generator.from_pretrained(home / "models" / KO_MODEL, name=KO_MODEL).tokenizer
    with server.http(timeout=120) as http:
        for name, tokenizer in local.items():
            res = http.post("/api/v1/studio/tokens", json=counter_fields(name, text))  # loads the model
            assert res.status_code == 200, res.text
            served = res.json()["tokens"]
            for _ in range(5):
                http.post("/api/v1/studio/tokens", json=counter_fields(name, text))
            round_trip, alone = [], []
            for i in range(updates):
                typed = text[:len(text) - i % 10]
                t0 = time.perf_counter()
                res = http.post("/api/v1/studio/tokens", json=counter_fields(name, typed))
                round_trip.append((time.perf_counter() - t0) * 1000)
                assert res.status_code == 200, res.text
                t0 = time.perf_counter()
                tokenizer.encode(typed)
                alone.append((time.perf_counter() - t0) * 1000)
            n_local = len(tokenizer.encode(text))
            out[name] = {
                "tokens": served, "tokens_in_process": n_local, "chars_per_token": round(len(text) / served, 2),
                "round_trip_ms": summary(round_trip), "tokenizer_alone_ms": summary(alone),
                "server_overhead_p50_ms": round(statistics.median(round_trip) - statistics.median(alone), 2),
                "target_ms": 20.0, "meets_target": statistics.median(round_trip) <= 20.0,
            }
    return out


# --------------------------------------------------------------------------------------------------
# 3. batch test vs haneul eval run


def bench_batch(server: LiveServer, tmp: Path, rows: list[tuple[str, str]], max_tokens: int,
                batch_size: int) -> dict[str, Any]:
    stop = "\n"
    # the studio: a preset whose input template is the whole prompt, and the rows as an uploaded table
    upload = "\n".join(json.dumps({"document": d, "label": lab}, ensure_ascii=False) for d, lab in rows) + "\n"
    with server.http(timeout=120) as http:
        res = http.post("/api/v1/studio/presets", json={
            "name": "nsmc-zero-shot", "mode": "completion", "model": SMOLLM2, "instruction": "",
            "input_template": NSMC_TEMPLATE, "examples": [],
            "params": {"temperature": 0, "max_tokens": max_tokens, "stop": [stop]}})
        assert res.status_code == 201, res.text
        t0 = time.perf_counter()
        res = http.post("/api/v1/studio/batch-tests", json={
            "preset": "nsmc-zero-shot", "upload": upload, "upload_name": "nsmc.jsonl", "input_column": "document",
            "expected_column": "label", "metric": "exact_match", "label_map": LABELS, "batch_size": batch_size})
        assert res.status_code == 201, res.text
        tid = res.json()["id"]
        while True:
            test = http.get(f"/api/v1/studio/batch-tests/{tid}").json()
            if test["status"] in ("done", "failed"):
                break
            time.sleep(0.1)
        batch_wall = time.perf_counter() - t0
        assert test["status"] == "done", test
        batch_rows = http.get(f"/api/v1/studio/batch-tests/{tid}/rows", params={"limit": 10_000}).json()
    batch_summary = json.loads((server.home / "studio" / "batch" / str(tid) / "summary.json").read_text())

    # haneul eval run: a YAML generation task over the same rows and the same prompt
    eval_dir = tmp / "eval"
    eval_dir.mkdir()
    with open(eval_dir / "rows.jsonl", "w", encoding="utf-8") as fh:
        for i, (doc, label) in enumerate(rows):
            fh.write(json.dumps({"id": str(i), "document": doc, "answer": LABELS[label]}, ensure_ascii=False) + "\n")
    spec = {"name": "nsmc_zero_shot", "kind": "generation", "data": "rows.jsonl", "answers_field": "answer",
            "metric": "em", "max_new_tokens": max_tokens, "template": NSMC_TEMPLATE.replace("{input}", "{document}")}
    (eval_dir / "task.yaml").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")  # JSON is YAML
    env = dict(os.environ, HANEUL_HOME=str(server.home))
    for var in ("HANEUL_SESSION", "HANEUL_SERVER"):
        env.pop(var, None)
    t0 = time.perf_counter()
    done = subprocess.run([str(BIN / "haneul"), "eval", "run", "--model", "smollm2", "--task",
                           str(eval_dir / "task.yaml"), "--out", str(eval_dir / "out"), "--no-publish", "--json",
                           "--device", "cpu"], env=env, capture_output=True, text=True, timeout=3600)
    eval_wall = time.perf_counter() - t0
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((eval_dir / "out" / "results.json").read_text())
    eval_items = [json.loads(line) for line in (eval_dir / "out" / "items.jsonl").read_text().splitlines() if line]
    eval_preds = [it.get("prediction", "") for it in sorted(eval_items, key=lambda it: it["index"])]
    batch_preds = [r["output"] for r in sorted(batch_rows, key=lambda r: r["index"])]
    same = sum(a.strip() == b.strip() for a, b in zip(eval_preds, batch_preds, strict=True))

    n = len(rows)
    batch_gen_s = float(batch_summary["seconds"])
    eval_gen_s = float(results["timing"]["seconds"])
    rates = {
        "batch_wall_rows_per_s": round(n / batch_wall, 3),
        "batch_session_rows_per_s": round(n / batch_gen_s, 3),
        "eval_wall_rows_per_s": round(n / eval_wall, 3),
        "eval_scoring_rows_per_s": round(n / eval_gen_s, 3),
    }
    ratio_wall = (n / batch_wall) / (n / eval_wall)
    ratio_gen = (n / batch_gen_s) / (n / eval_gen_s)
    return {
        "rows": n, "max_new_tokens": max_tokens, "stop": stop, "batch_size": batch_size, "greedy": True,
        "prompt_template": NSMC_TEMPLATE,
        "seconds": {"batch_wall_post_to_done": round(batch_wall, 2), "batch_session_summary": batch_gen_s,
                    "eval_wall_command": round(eval_wall, 2), "eval_timing": round(eval_gen_s, 2)},
        **rates,
        "ratio_batch_over_eval": {"wall": round(ratio_wall, 3), "generation_only": round(ratio_gen, 3)},
        "scores": {"batch_exact_match": batch_summary["score"], "eval": _eval_score(results)},
        "identical_answers": f"{same}/{n}",
        "target_ratio": 0.9, "meets_target": ratio_wall >= 0.9 and ratio_gen >= 0.9,
        "differences": [
            "the batch test runs the studio's sampler (haneul.lm.generate, KV cache) on batch_size prompts at once and "
            "stops a batch when every row has written the stop sequence; haneul eval run calls Hugging Face "
            "generate() one prompt at a time, always for max_new_tokens (unless end-of-text), and cuts the text "
            "at the first newline afterwards",
            "the batch wall time includes the session's start (a new Python process, queueing, model load) and the "
            "server noticing the end; the eval wall time includes its process start and model load",
            "scores: the batch test's exact_match (KorQuAD-normalised) against the label word; eval's em",
        ],
    }


def _eval_score(results: dict[str, Any]) -> Any:
    """The zero-shot cell's mean scores from ``results.json``."""
    return results["tasks"]["nsmc_zero_shot"]["shots"]["0"]["mean"]


# --------------------------------------------------------------------------------------------------


PARTS = {"ttft": "ttft", "tokens": "token_counter", "batch": "batch_vs_eval"}


@contextmanager
def measured(out: dict[str, Any], part: str) -> Iterator[None]:
    """Record a part's load average and wall time inside its own section, and print the section."""
    load, t0 = os.getloadavg(), time.perf_counter()
    yield
    out[part]["load_average"] = {"start": [round(x, 2) for x in load],
                                 "end": [round(x, 2) for x in os.getloadavg()]}
    out[part]["part_seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out[part], indent=2, ensure_ascii=False), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer requests, updates and rows (a smoke run)")
    ap.add_argument("--requests", type=int, default=None, help="TTFT requests per path (default 40; 8 quick)")
    ap.add_argument("--max-tokens", type=int, default=4, help="tokens per TTFT request (default 4)")
    ap.add_argument("--updates", type=int, default=None, help="token counter updates (default 60; 15 quick)")
    ap.add_argument("--chars", type=int, default=4000, help="characters of Korean the counter counts")
    ap.add_argument("--text", type=Path, default=None, help="Korean text for the counter (default: a built-in "
                    "paragraph repeated); plain text, JSON lines with 'text' or an NSMC TSV, gzip or not")
    ap.add_argument("--rows", type=int, default=None, help="NSMC rows for the batch test (default 100; 16 quick)")
    ap.add_argument("--nsmc", type=Path, default=NSMC_DEFAULT, help="an NSMC TSV (id, document, label)")
    ap.add_argument("--gen-tokens", type=int, default=16, help="max new tokens of the batch test and eval")
    ap.add_argument("--batch-size", type=int, default=8, help="the batch test's batch_size")
    ap.add_argument("--smollm2-cache", type=Path, default=None,
                    help="a converted SmolLM2 folder (default: HANEUL_HOME/models/smollm2-135m)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the sections of the parts --skip leaves out from the existing --out file")
    ap.add_argument("--out", type=Path, default=RESULTS / "studio.json", help="where the JSON goes")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: ttft, tokens, batch")
    args = ap.parse_args()
    n_req = args.requests or (8 if args.quick else 40)
    updates = args.updates or (15 if args.quick else 60)
    n_rows = args.rows or (16 if args.quick else 100)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    cache = args.smollm2_cache or current_models_root() / SMOLLM2
    load_start = os.getloadavg()
    out: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "quick": args.quick,
        "load_average_start": [round(x, 2) for x in load_start],
    }
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="haneul-bench-studio-") as tmp_s:
        tmp = Path(tmp_s)
        home = tmp / "home"
        os.environ.pop("HANEUL_SESSION", None)
        out["ko_model"] = prepare_home(home, cache, corpus_rows=20_000)
        server = start_server(home)
        try:
            if "ttft" not in skip:
                with measured(out, "ttft"), lm_server(home) as lm_base:
                    out["ttft"] = bench_ttft(server, lm_base, n_req, args.max_tokens)
            if "tokens" not in skip:
                with measured(out, "token_counter"):
                    out["token_counter"] = bench_tokens(server, home, korean_text(args.text, args.chars), updates)
                    out["token_counter"]["text"] = str(args.text) if args.text else "built-in paragraph, repeated"
            if "batch" not in skip:
                if not args.nsmc.is_file():
                    raise SystemExit(f"{args.nsmc} does not exist; pass --nsmc PATH or --skip batch")
                rows = nsmc_rows(args.nsmc, n_rows)
                with measured(out, "batch_vs_eval"):
                    out["batch_vs_eval"] = bench_batch(server, tmp, rows, args.gen_tokens, args.batch_size)
                    out["batch_vs_eval"]["data"] = f"{args.nsmc.name}, first {len(rows)} rows"
        finally:
            server.stop()
    out["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    out["seconds"] = round(time.perf_counter() - t_all, 1)
    if args.keep and args.out.is_file():  # a part rerun alone: the other parts stay as last measured
        before = json.loads(args.out.read_text(encoding="utf-8"))
        for part in PARTS.values():
            if part not in out and part in before:
                out[part] = before[part]
                # a section from before per-part load figures: the whole earlier run's
                out[part].setdefault("load_average", {"start": before.get("load_average_start"),
                                                      "end": before.get("load_average_end"),
                                                      "of": "the whole earlier run"})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(out, indent=2, ensure_ascii=False))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
