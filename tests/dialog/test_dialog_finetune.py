"""The fine-tuned summariser: a tiny Llama fine-tuned on three sessions must give their summaries back."""

from __future__ import annotations

import json

import pytest

from haneul.dialog.data import parse_episodes
from haneul.dialog.summarizer import (
    FineTunedSummarizer,
    Summarizer,
    finetune_prompt,
    finetune_target,
    get_summarizer,
    parse_finetuned,
    summary_examples,
)
from haneul.errors import InvalidInput, NotFound

EPISODE = [
    {"guid": "interactive-1-S1",
     "dialogue": [{"role": "system", "text": "안녕하세요, 요즘 어떻게 지내세요?"},
                  {"role": "user", "text": "이가 아파서 치과에 다녀요."}],
     "memory": [], "summary": ["이가 아파서 치과에 다니심"]},
    {"guid": "interactive-1-S2",
     "dialogue": [{"role": "system", "text": "치과 치료는 어떠세요?"},
                  {"role": "user", "text": "이제 다 나았어요. 요즘은 노인정에 가요."}],
     "memory": ["이가 아파서 치과에 다니심"], "summary": ["이가 아팠으나 다 나음", "노인정에 다니심"]},
    {"guid": "interactive-1-S3",
     "dialogue": [{"role": "system", "text": "식사는 잘 하세요?"}, {"role": "user", "text": "네."}],
     "memory": ["이가 아팠으나 다 나음", "노인정에 다니심"], "summary": []},
]


def test_prompt_and_target_format():
    prompt = finetune_prompt([("system", "식사는  잘 하세요?"), ("user", "네.")], ["노인정에 다니심"])
    assert prompt.splitlines()[2:] == ["기억:", "- 노인정에 다니심", "", "대화:", "시스템: 식사는 잘 하세요?", "사용자: 네."]
    assert "- 없음" in finetune_prompt([("user", "네.")], [])
    assert finetune_target(["이가 아팠으나 다 나음", "노인정에 다니심"]) == "이가 아팠으나 다 나음\n노인정에 다니심"
    assert finetune_target([]) == "없음"
    assert parse_finetuned("- 노인정에 다니심\n\n식사를 잘 하심\n없음") == ["노인정에 다니심", "식사를 잘 하심"]
    examples = summary_examples(parse_episodes([EPISODE]))
    assert [[m["role"] for m in ex] for ex in examples] == [["user", "assistant"]] * 3
    assert [ex[1]["content"] for ex in examples] == ["이가 아파서 치과에 다니심", "이가 아팠으나 다 나음\n노인정에 다니심", "없음"]
    assert "사용자: 이제 다 나았어요. 요즘은 노인정에 가요." in examples[1][0]["content"]


def test_lookup_errors():
    with pytest.raises(InvalidInput, match="--model DIR"):
        get_summarizer("finetuned")
    with pytest.raises(NotFound, match="train-summarizer"):
        get_summarizer("finetuned", model="/nonexistent/summarizer")
    with pytest.raises(InvalidInput, match="extractive, lm, finetuned"):
        get_summarizer("abstractive")


def chatml_tokenizer(texts):
    """A byte-level BPE trained on ``texts`` with haneul's special tokens (end of text, ChatML markers)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(texts), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>")


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """A 2-layer Llama with a tokenizer trained on the examples, fine-tuned until it memorises them."""
    import torch

    from haneul.dialog.finetune import SummarizerTrainConfig, train_summarizer
    from haneul.evals.testing import tiny_llama
    from haneul.lm.sft import chat_segments

    torch.set_num_threads(1)
    episodes = parse_episodes([EPISODE])
    texts = ["".join(t for t, _ in chat_segments(ex)) for ex in summary_examples(episodes)]
    tok = chatml_tokenizer(texts)
    out = tmp_path_factory.mktemp("summarizer") / "model"
    info = train_summarizer(episodes, tiny_llama(tok, hidden=64), out,
                            SummarizerTrainConfig(steps=60, lr=1e-2, batch_size=3, seq_len=512, device="cpu",
                                                  warmup_ratio=0.0), tokenizer=tok)
    return out, info, episodes


def test_a_tiny_model_fine_tuned_on_three_sessions_gives_their_summaries_back(tuned):
    out, info, episodes = tuned
    assert info["sessions"] == 3 and info["sessions_without_news"] == 1 and info["steps"] == 60
    assert info["final_loss"] < 0.1 * info["first_loss"]
    assert json.loads((out / "haneul-summarizer.json").read_text())["kind"] == "dialog-summarizer"
    summ = get_summarizer("finetuned", model=out)
    assert isinstance(summ, FineTunedSummarizer) and isinstance(summ, Summarizer)
    for sess in episodes[0]:
        res = summ.summarize([{"role": t.role, "text": t.text} for t in sess.dialogue], sess.memory)
        assert res.sentences == sess.summary and res.backend == "finetuned" and res.fallback is None


class StubGenerator:
    """Stands in for haneul.lm.generate.Generator: a fixed answer, one token per character."""

    def __init__(self, answer: str, context_window: int = 10_000):
        self.answer = answer
        self.context_window = context_window
        self.prompts: list[str] = []

    def render_chat(self, messages):
        return f"<|im_start|>user\n{messages[0]['content']}<|im_end|>\n<|im_start|>assistant\n"

    def encode_prompt(self, prompt):
        return list(prompt)

    def generate(self, prompt, params):
        from haneul.lm.generate import Completion

        assert params.temperature == 0.0 and "<|im_end|>" in params.stop
        self.prompts.append(prompt)
        return [Completion(self.answer, [], len(prompt), "stop")]


def test_lines_are_cleaned_and_memory_repeats_dropped():
    from haneul.dialog.text import DialogWarning

    stub = StubGenerator("노인정에 다니심\n- 딸이 서울에 사심\n\n딸이  서울에 사심\n" + "가" * 250)
    with pytest.warns(DialogWarning, match="truncated to 200"):
        res = FineTunedSummarizer(stub).summarize([{"role": "user", "text": "노인정에 가요"}], ["노인정에  다니심."])
    assert res.sentences == ["딸이 서울에 사심", "가" * 200]
    assert any("truncated" in w for w in res.warnings)
    assert FineTunedSummarizer(StubGenerator("없음")).summarize([{"role": "user", "text": "네"}]).sentences == []


def test_a_dialogue_too_long_for_the_context_loses_its_oldest_turns():
    from haneul.dialog.text import DialogWarning

    turns = [{"role": "user", "text": f"{i}번째 이야기 " * 10} for i in range(6)]
    stub = StubGenerator("노인정에 다니심")
    full = len(stub.render_chat([{"role": "user", "content": finetune_prompt([(t["role"], t["text"]) for t in turns], [])}]))
    stub.context_window = full - 150 + 160  # room for all but about two turns, plus 160 new tokens
    with pytest.warns(DialogWarning, match="first 2 turns were left out"):
        res = FineTunedSummarizer(stub).summarize(turns)
    assert res.sentences == ["노인정에 다니심"] and "0번째" not in stub.prompts[0] and "5번째" in stub.prompts[0]


def run_cli(capsys, *argv: str):
    from haneul.cli.main import main

    try:
        main(list(argv))
    except SystemExit as exc:
        assert exc.code in (0, None), capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_cli_train_summarizer_and_summarize_with_it(tmp_path, tuned, capsys):
    from haneul.evals.testing import tiny_llama

    data = tmp_path / "episodes.json"
    data.write_text(json.dumps([EPISODE], ensure_ascii=False), encoding="utf-8")
    base = tmp_path / "base"
    tok = chatml_tokenizer(["<|im_start|>user\n대화: 안녕하세요<|im_end|>\n"])
    tiny_llama(tok).save_pretrained(base)
    tok.save_pretrained(base)
    info = run_cli(capsys, "dialog", "train-summarizer", "--data", str(data), "--base", str(base), "-o",
                   str(tmp_path / "summ"), "--steps", "2", "--seq-len", "256", "--device", "cpu", "--json")
    assert info["sessions"] == 3 and info["steps"] == 2 and (tmp_path / "summ" / "config.json").is_file()

    out, _, _ = tuned
    res = run_cli(capsys, "dialog", "summarize", str(data), "--session", "interactive-1-S2", "--backend", "finetuned",
                  "--model", str(out), "--json")
    assert res["sentences"] == ["이가 아팠으나 다 나음", "노인정에 다니심"] and res["backend"] == "finetuned"


def test_cli_train_summarizer_bad_input_is_one_line(tmp_path, capsys):
    from haneul.cli.main import main

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([[{"guid": "interactive-1-S1", "dialogue": [], "memory": []}]]), encoding="utf-8")
    for argv, message in [
        (["--data", str(tmp_path / "missing.json")], "no such file"),
        (["--data", str(bad)], "interactive-1-S1): missing field 'summary'"),
    ]:
        with pytest.raises(SystemExit) as exc:
            main(["dialog", "train-summarizer", *argv, "--base", str(tmp_path), "-o", str(tmp_path / "o")])
        assert exc.value.code == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_rest_summarize_with_the_finetuned_backend(tuned):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from haneul.dialog.api import create_router

    out, _, episodes = tuned
    app = FastAPI()
    app.include_router(create_router())
    first = episodes[0][0]
    body = {"dialogue": [{"role": t.role, "text": t.text} for t in first.dialogue], "memory": first.memory,
            "backend": "finetuned", "model": str(out)}
    with TestClient(app) as c:
        assert c.post("/api/v1/dialog/summarize", json=body).json()["sentences"] == ["이가 아파서 치과에 다니심"]
