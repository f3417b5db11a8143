"""Prompt assembly (completion text with inject start / restart text, chat messages), token counts with
a tiny word-level tokenizer counted by hand, and the refusals that happen before a model is asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from haneul.errors import InvalidInput
from haneul.studio.models import Catalog
from haneul.studio.prompt import Params, PromptSpec, assemble, check_budget, check_input

EXAMPLES = [{"input": "영화가 좋다", "output": "긍정"}, {"input": "정말 싫다", "output": "부정"}]


def spec(mode: str = "completion") -> PromptSpec:
    return PromptSpec.build(instruction="감정을 분류하세요.", examples=EXAMPLES, input_template="입력: {input}",
                            mode=mode, params=Params(inject_start="\n답: ", inject_restart="\n###\n"))


def test_completion_text_puts_inject_texts_between_turns() -> None:
    assert spec().completion_text("영화가 정말 좋다") == (
        "감정을 분류하세요.\n\n"
        "입력: 영화가 좋다\n답: 긍정\n###\n"
        "입력: 정말 싫다\n답: 부정\n###\n"
        "입력: 영화가 정말 좋다\n답: "
    )
    # no instruction, no template slot, no restart text: turns are separated by a newline
    bare = PromptSpec.build(examples=EXAMPLES[:1], input_template="Q: ")
    assert bare.completion_text("x") == "Q: 영화가 좋다긍정\nQ: x"


def test_chat_messages_wrap_examples_as_turns() -> None:
    assert spec("chat").chat_messages("좋다") == [
        {"role": "system", "content": "감정을 분류하세요."},
        {"role": "user", "content": "입력: 영화가 좋다"}, {"role": "assistant", "content": "긍정"},
        {"role": "user", "content": "입력: 정말 싫다"}, {"role": "assistant", "content": "부정"},
        {"role": "user", "content": "입력: 좋다"},
    ]


def test_token_counts_with_the_models_tokenizer(tiny_model_dir: Path, tmp_path: Path) -> None:
    from haneul.lm.registry import register_model
    from haneul.platform.db import make_engine

    root = tmp_path / "models"
    register_model("tiny-ko", tiny_model_dir, root=root)
    backend = Catalog(make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}"), root=root).backend("tiny-ko", None)
    # one token per whitespace-separated word: 2 (instruction) + 6 + 6 (examples) + 5 (input) = 19
    assert backend.count(assemble(spec(), "영화가 정말 좋다")) == 19
    # chat through the model's ChatML template, split on whitespace by hand:
    # "<|im_start|>system" "감정을" "분류하세요.<|im_end|>" "<|im_start|>user" "좋다<|im_end|>" "<|im_start|>assistant"
    short = PromptSpec.build(instruction="감정을 분류하세요.", mode="chat")
    assert backend.count(assemble(short, "좋다")) == 6
    assert backend.context_window() == 64
    check_budget(19, 45, 64, "tiny-ko")  # 64 - 45 = 19 tokens left: fits exactly
    with pytest.raises(InvalidInput) as err:
        check_budget(19, 46, 64, "tiny-ko")
    assert str(err.value) == ("the prompt has 19 tokens but tiny-ko's context window of 64 minus max_tokens=46 "
                              "leaves 18; shorten the instruction or examples, or lower max_tokens")


def test_empty_input_is_refused() -> None:
    for text in ("", "  \n\t"):
        with pytest.raises(InvalidInput, match="the input is empty"):
            check_input(text)
        with pytest.raises(InvalidInput, match="the input is empty"):
            assemble(spec(), text)


def test_params_are_checked_and_merged() -> None:
    base = Params(temperature=0.2, stop=("###",))
    merged = Params.from_dict({"max_tokens": 5, "stop": "\n"}, base=base)
    assert (merged.temperature, merged.max_tokens, merged.stop) == (0.2, 5, ("\n",))
    assert Params.from_dict(merged.to_dict()) == merged
    for bad, message in (({"temperature": -1}, "temperature=-1.0 must be between 0 and 5"),
                         ({"temperature": "hot"}, "parameter 'temperature' must be int or float"),
                         ({"top_p": 0}, "top_p=0.0 must be in"),
                         ({"max_tokens": True}, "parameter 'max_tokens' must be int"),
                         ({"stop": [""]}, "stop takes at most 8 non-empty strings"),
                         ({"temprature": 1}, "unknown parameter 'temprature'")):
        with pytest.raises(InvalidInput, match=message):
            Params.from_dict(bad)
    with pytest.raises(InvalidInput, match="mode 'poem' is unknown"):
        PromptSpec.build(mode="poem")


def test_the_plugin_imports_no_torch() -> None:
    import subprocess
    import sys

    code = ("import sys, haneul.studio.server, haneul.studio.pages\n"
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_server_wide_endpoints_file(tmp_path: Path) -> None:
    from haneul.studio.server import configured_endpoints

    assert configured_endpoints(tmp_path) == {}
    (tmp_path / "endpoints.json").write_text('{"vllm": "http://127.0.0.1:8001/v1#qwen"}')
    assert configured_endpoints(tmp_path) == {"vllm": "http://127.0.0.1:8001/v1#qwen"}
    for bad, message in (('{"vllm": "127.0.0.1:8001"}', "must map model names to http"), ("{", "is not valid JSON")):
        (tmp_path / "endpoints.json").write_text(bad)
        with pytest.raises(InvalidInput, match=message):
            configured_endpoints(tmp_path)
