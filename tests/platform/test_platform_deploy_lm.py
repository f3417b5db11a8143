"""A language-model checkpoint deployed with `haneul deploy` is served by the server's OpenAI-compatible
routes under the deployment's name: only to its team, with request metrics, gone once undeployed; a
damaged one fails the deploy in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from platform_helpers import BIN, LiveServer, start_server

from haneul.errors import InvalidInput
from haneul.platform.models import holds_lm, lm_problem, unpack_lm

CHAT = [{"role": "user", "content": "영화 어땠어?"}]


def tiny_lm_folder(folder: Path) -> Path:
    """A randomly initialised one-layer haneul model with a byte-level BPE tokenizer (built in well
    under a second): what `haneul lm pretrain` writes to OUT/model, in miniature."""
    from haneul.lm.config import GPTConfig
    from haneul.lm.model import GPT
    from haneul.lm.testing import tiny_corpus
    from haneul.lm.tokenizer import train_tokenizer

    tok = train_tokenizer(folder, texts=tiny_corpus(200), kind="bpe", vocab_size=300)
    GPT(GPTConfig(vocab_size=tok.vocab_size, n_layer=1, n_head=2, n_kv_head=1, d_model=32, d_ff=64,
                  max_seq_len=128)).save_pretrained(folder)
    return folder


def save_in_session(server: LiveServer, folder: Path, name: str = "lm") -> int:
    code = f"import haneul; haneul.save({name!r}, {str(folder)!r})"
    done = server.cli("run", "-f", "--", sys.executable, "-c", code, cwd=folder.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    return int(json.loads(server.cli("ps", "--json").stdout)["items"][0]["id"])  # the newest first


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("deploy-lm-home"))
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_lm_folder(tmp_path_factory.mktemp("lm") / "model")


@pytest.fixture(scope="module")
def lm_session(server: LiveServer, model_folder: Path) -> int:
    return save_in_session(server, model_folder)


def test_a_deployed_lm_answers_chat_like_the_folder_in_process_then_is_gone(
        server: LiveServer, model_folder: Path, lm_session: int) -> None:
    from haneul.lm.generate import Generator, SamplingParams

    done = server.cli("deploy", str(lm_session), "--name", "ko-lm", "--replicas", "2", "--json")
    assert done.returncode == 0, done.stderr
    assert "--replicas and --batch do not apply" in done.stderr
    d = json.loads(done.stdout)
    assert (d["kind"], d["status"], d["url"], d["replicas"]) == ("lm", "running", "/v1/chat/completions", [])
    unpacked = list((server.home / "deployments" / ".lm").iterdir())
    assert len(unpacked) == 1 and (unpacked[0] / "tokenizer.json").is_file()

    gen = Generator.from_pretrained(model_folder)
    params = SamplingParams(max_tokens=4, temperature=0)
    with server.http(timeout=60) as http:
        assert "ko-lm" in [m["id"] for m in http.get("/v1/models").json()["data"]]
        chat = http.post("/v1/chat/completions", json={"model": "ko-lm", "messages": CHAT, "max_tokens": 4,
                                                        "temperature": 0})
        assert chat.status_code == 200, chat.text
        answer = chat.json()
        assert answer["model"] == "ko-lm" and answer["choices"][0]["message"]["role"] == "assistant"
        expected = gen.generate(gen.render_chat(CHAT), params)[0]
        assert answer["choices"][0]["message"]["content"] == expected.text
        assert answer["usage"]["completion_tokens"] == len(expected.token_ids)
        plain = http.post("/v1/completions", json={"model": "ko-lm", "prompt": "이 영화는", "max_tokens": 4,
                                                   "temperature": 0}).json()
        assert plain["choices"][0]["text"] == gen.generate("이 영화는", params)[0].text
        too_long = http.post("/v1/completions", json={"model": "ko-lm", "prompt": "영화 " * 400})
        assert too_long.status_code == 400 and "context window" in too_long.json()["error"]["message"]

        got = http.get("/api/v1/deployments/ko-lm").json()
        assert (got["metrics"]["requests"], got["metrics"]["errors"]) == (3, 1)
        assert 0 < got["metrics"]["p50_ms"] <= got["metrics"]["p99_ms"]
        predict = http.post("/api/v1/deployments/ko-lm/predict", json={"input": 1})
        assert predict.status_code == 400 and "/v1/chat/completions" in predict.json()["error"]["message"]
        page = http.get("/deployments/ko-lm").text
        assert "a language model served by this server" in page and '"model": "ko-lm"' in page
        assert "<td>lm</td>" in http.get("/deployments").text
    listed = json.loads(server.cli("deploy", "ls", "--json").stdout)
    assert [(x["name"], x["kind"]) for x in listed if x["name"] == "ko-lm"] == [("ko-lm", "lm")]
    table = subprocess.run([str(BIN / "haneul"), "deployments"], env={**server.env(), "COLUMNS": "250"},
                           capture_output=True, text=True, timeout=60).stdout
    row = next(line for line in table.splitlines() if "ko-lm" in line)
    assert " lm " in row and " /v1/chat/completions " in row and f"{lm_session}:lm" in row

    assert server.cli("undeploy", "ko-lm").returncode == 0
    with server.http(timeout=60) as http:
        assert "ko-lm" not in [m["id"] for m in http.get("/v1/models").json()["data"]]
        gone = http.post("/v1/chat/completions", json={"model": "ko-lm", "messages": CHAT})
        assert gone.status_code == 404 and "model 'ko-lm' does not exist" in gone.json()["error"]["message"]
    assert list((server.home / "deployments" / ".lm").iterdir()) == []  # no deployment serves it any more


def test_another_team_neither_calls_nor_sees_a_deployed_lm(server: LiveServer, lm_session: int) -> None:
    assert server.cli("deploy", str(lm_session), "--name", "ko-team").returncode == 0
    with server.http() as admin:
        assert admin.post("/api/v1/teams", json={"name": "other"}).status_code == 201
        assert admin.post("/api/v1/users", json={"name": "eve", "team": "other", "role": "member"}).status_code == 201
        token = admin.post("/api/v1/users/eve/tokens", json={"name": "t"}).json()["token"]
    eve = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, headers=eve, timeout=60) as http:
        assert "ko-team" not in [m["id"] for m in http.get("/v1/models").json()["data"]]
        res = http.post("/v1/chat/completions", json={"model": "ko-team", "messages": CHAT, "max_tokens": 2})
        assert res.status_code == 404 and "model 'ko-team' does not exist" in res.json()["error"]["message"]
        assert http.get("/api/v1/deployments/ko-team").status_code == 404
    with server.http() as admin:
        assert admin.get("/api/v1/deployments/ko-team").json()["metrics"]["requests"] == 0  # eve's was not counted
    assert server.cli("undeploy", "ko-team").returncode == 0


def test_deploy_by_model_alias_and_streaming(server: LiveServer, lm_session: int) -> None:
    assert server.cli("model", "register", "ko", f"{lm_session}:lm", "--alias", "production").returncode == 0
    done = server.cli("deploy", "model:ko@production", "--name", "ko-prod", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["model"] == "ko:1"
    body = {"model": "ko-prod", "messages": CHAT, "max_tokens": 3, "temperature": 0}
    with server.http(timeout=60) as http:
        plain = http.post("/v1/chat/completions", json=body).json()["choices"][0]["message"]["content"]
        with http.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as res:
            events = [line[6:] for line in res.iter_lines() if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        streamed = "".join(json.loads(e)["choices"][0]["delta"].get("content", "") for e in events[:-1])
        assert streamed == plain
        assert http.get("/api/v1/deployments/ko-prod").json()["metrics"]["requests"] == 2
    assert server.cli("undeploy", "ko-prod").returncode == 0


def test_a_damaged_lm_checkpoint_fails_the_deploy_in_one_line(server: LiveServer, tmp_path: Path) -> None:
    folder = tiny_lm_folder(tmp_path / "broken")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])  # cut short
    sid = save_in_session(server, folder)
    done = server.cli("deploy", str(sid), "--name", "broken")
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "is a language model but its model.safetensors is truncated or damaged" in lines[0]
    with server.http(timeout=60) as http:
        assert http.get("/api/v1/deployments/broken").status_code == 404  # nothing recorded
    assert not any(p.name != ".lm" and "broken" in p.name for p in (server.home / "deployments").iterdir())


@pytest.mark.slow
def test_a_deployed_lm_is_served_again_after_a_server_kill(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = start_server(home)
    try:
        sid = save_in_session(first, tiny_lm_folder(tmp_path / "model"))
        assert first.cli("deploy", str(sid), "--name", "ko-again").returncode == 0
    finally:
        first.kill()  # SIGKILL: no shutdown code runs
    second = start_server(home)
    try:
        with second.http(timeout=60) as http:
            assert http.get("/api/v1/deployments/ko-again").json()["status"] == "running"
            res = http.post("/v1/chat/completions", json={"model": "ko-again", "messages": CHAT, "max_tokens": 2})
            assert res.status_code == 200, res.text
        assert second.cli("undeploy", "ko-again").returncode == 0
    finally:
        second.stop()


# -- recognising a language model by content, without a server


def _tar(folder: Path, out: Path) -> Path:
    import tarfile

    with tarfile.open(out, "w") as tar:
        for child in sorted(folder.iterdir()):
            tar.add(child, arcname=child.name)
    return out


def test_only_a_llama_family_folder_counts_as_a_language_model(tmp_path: Path) -> None:
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertModel"]}))
    (bert / "tokenizer.json").write_text("{}")
    assert not holds_lm(_tar(bert, tmp_path / "bert.tar"), what="x")
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "model.json").write_text("{}")
    assert not holds_lm(_tar(plain, tmp_path / "plain.tar"), what="x")
    llama = tmp_path / "llama"
    llama.mkdir()
    (llama / "config.json").write_text(json.dumps({"model_type": "llama"}))
    assert holds_lm(_tar(llama, tmp_path / "llama.tar"), what="x")


def test_what_keeps_a_folder_from_loading_is_named(tmp_path: Path) -> None:
    folder = tiny_lm_folder(tmp_path / "m")
    assert lm_problem(folder) is None
    (folder / "tokenizer.json").unlink()
    assert "has no tokenizer.json" in str(lm_problem(folder))
    with pytest.raises(InvalidInput, match="checkpoint 'lm' of session 7 is a language model but it has no "
                                           "tokenizer.json"):
        unpack_lm(_tar(folder, tmp_path / "m.tar"), tmp_path / "out", what="checkpoint 'lm' of session 7")
    assert not (tmp_path / "out").exists()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 30,
                                                    "num_attention_heads": 4}))
    assert "does not describe a model haneul loads" in str(lm_problem(folder))
