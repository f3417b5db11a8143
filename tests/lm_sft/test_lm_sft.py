from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from haneul.errors import InvalidInput  # noqa: E402
from haneul.evals.testing import tiny_llama, tiny_tokenizer  # noqa: E402
from haneul.lm.sft import (  # noqa: E402
    CHAT_TEMPLATE,
    IGNORE,
    SFTConfig,
    chat_segments,
    encode_chat,
    load_chat_jsonl,
    pack,
    sft,
)

CONV = [
    {"role": "system", "content": "친절하게 답하세요."},
    {"role": "user", "content": "안녕하세요"},
    {"role": "assistant", "content": "반갑습니다"},
    {"role": "user", "content": "한글을 만든 사람은?"},
    {"role": "assistant", "content": "세종대왕"},
]


@pytest.fixture(scope="module")
def tok():
    torch.set_num_threads(1)
    return tiny_tokenizer()


def test_loss_is_only_on_assistant_tokens(tok):
    ids, labels = encode_chat(tok, CONV, max_len=4096)
    assert len(ids) == len(labels)
    trained = tok.decode([i for i, lab in zip(ids, labels, strict=True) if lab != IGNORE])
    assert trained == "반갑습니다<|im_end|>\n세종대왕<|im_end|>\n"
    ignored = tok.decode([i for i, lab in zip(ids, labels, strict=True) if lab == IGNORE])
    assert "안녕하세요" in ignored and "친절하게" in ignored and "반갑습니다" not in ignored
    assert all(lab in (IGNORE, i) for i, lab in zip(ids, labels, strict=True))


def test_segments_render_like_the_saved_chat_template(tok):
    tok.chat_template = CHAT_TEMPLATE
    rendered = tok.apply_chat_template(CONV, tokenize=False)
    assert rendered == "".join(text for text, _ in chat_segments(CONV))
    prompt = tok.apply_chat_template(CONV[:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>assistant\n")


def test_packing_fills_rows_and_restarts_positions():
    examples = [([1] * 5, [1] * 5), ([2] * 4, [2] * 4), ([3] * 6, [3] * 6), ([4] * 2, [4] * 2)]
    rows = pack(examples, seq_len=10)
    assert [r[0] for r in rows] == [[1] * 5 + [2] * 4, [3] * 6 + [4] * 2]
    assert rows[0][2] == [0, 1, 2, 3, 4, 0, 1, 2, 3]
    assert sum(len(r[0]) for r in rows) == 17


def test_packed_conversations_do_not_attend_to_each_other(tok):
    model = tiny_llama(tok, seed=1)
    a = tok.encode("리뷰: 정말 좋다")
    b = tok.encode("질문: 한글을 만든 사람은?")
    with torch.no_grad():
        alone = model(input_ids=torch.tensor([b]), use_cache=False).logits[0]
        # training runs without a cache, which is when restarting positions mark packed sequences
        packed = model(input_ids=torch.tensor([a + b]), use_cache=False,
                       position_ids=torch.tensor([list(range(len(a))) + list(range(len(b)))])).logits[0, len(a):]
    assert torch.allclose(alone, packed, atol=1e-4)


def write_chat(path, convs):
    path.write_text("".join(json.dumps({"messages": c}, ensure_ascii=False) + "\n" for c in convs), encoding="utf-8")
    return path


def test_bad_chat_lines_name_the_file_line_and_field(tmp_path):
    cases = [
        ({"msgs": []}, "line 2: missing field 'messages'"),
        ({"messages": [{"content": "x"}]}, "line 2: messages[0] is missing field 'role'"),
        ({"messages": [{"role": "bot", "content": "x"}]}, "messages[0].role 'bot' is not one of"),
        ({"messages": [{"role": "user", "content": 3}]}, "messages[0] is missing field 'content'"),
        ({"messages": [{"role": "user", "content": "x"}]}, "line 2: no assistant message"),
    ]
    for bad, message in cases:
        f = tmp_path / "chat.jsonl"
        f.write_text(json.dumps({"messages": CONV}, ensure_ascii=False) + "\n" + json.dumps(bad) + "\n",
                     encoding="utf-8")
        with pytest.raises(InvalidInput, match=message.replace("[", r"\[").replace("]", r"\]")):
            load_chat_jsonl(f)


@pytest.mark.parametrize("lora", [False, True])
def test_sft_lowers_the_loss_and_saves_a_loadable_folder(tok, tmp_path, lora):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    data = write_chat(tmp_path / "chat.jsonl", [CONV, CONV[1:3], CONV[3:]] * 4)
    model = tiny_llama(tok, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = SFTConfig(max_steps=25, lr=3e-3 if not lora else 2e-2, batch_size=4, seq_len=128, lora=lora, lora_r=4,
                    warmup_ratio=0.0, device="cpu")
    result = sft(model, data, tmp_path / "out", cfg, tokenizer=tok)
    assert result.steps == 25 and result.conversations == 12
    # LoRA on a random 32-wide model moves slowly (the output head is not adapted), hence the gentler bar
    assert sum(result.losses[-5:]) < (0.97 if lora else 0.8) * sum(result.losses[:5])
    saved = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    saved_tok = AutoTokenizer.from_pretrained(tmp_path / "out")
    assert saved_tok.chat_template == CHAT_TEMPLATE
    assert set(saved.state_dict()) == set(before)  # LoRA is merged back: a plain model folder
    changed = [k for k, v in saved.state_dict().items() if not torch.equal(v, before[k])]
    assert changed
    if lora:  # LoRA touches only the adapted linear layers, never embeddings or norms
        assert all("proj" in k for k in changed)
    info = json.loads((tmp_path / "out" / "haneul-sft.json").read_text())
    assert info["sft"]["lora"] is lora and info["steps"] == 25
