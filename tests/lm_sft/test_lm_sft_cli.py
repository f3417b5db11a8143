from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

from haneul.cli.main import main  # noqa: E402


def cli(argv):
    try:
        main(argv)
    except SystemExit as exc:
        assert exc.code in (0, None)


def test_lm_sft_command_tunes_saves_and_evaluates(tmp_path, capsys):
    import torch

    from haneul.evals.testing import tiny_llama, tiny_tokenizer

    torch.set_num_threads(1)
    tok = tiny_tokenizer()
    base = tmp_path / "base"
    tiny_llama(tok).save_pretrained(base)
    tok.save_pretrained(base)
    chat = tmp_path / "chat.jsonl"
    conv = {"messages": [{"role": "user", "content": "안녕하세요"}, {"role": "assistant", "content": "반갑습니다"}]}
    chat.write_text((json.dumps(conv, ensure_ascii=False) + "\n") * 6, encoding="utf-8")
    nsmc = tmp_path / "nsmc.txt"
    nsmc.write_text("id\tdocument\tlabel\n1\t좋다\t1\n2\t별로\t0\n", encoding="utf-8")
    cli(["lm", "sft", "--model", str(base), "--data", str(chat), "--out", str(tmp_path / "tuned"), "--max-steps",
         "3", "--lora", "--lr", "1e-2", "--seq-len", "64", "--device", "cpu", "--eval-task", f"nsmc={nsmc}", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 3 and summary["conversations"] == 6
    assert set(summary["eval_before"]["nsmc"]["0"]) == {"acc"} and "nsmc" in summary["eval_after"]
    assert (tmp_path / "tuned" / "config.json").is_file()


def test_lm_sft_bad_data_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "chat.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "x"}]}\n', encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        main(["lm", "sft", "--model", str(tmp_path), "--data", str(bad), "--out", str(tmp_path / "o")])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
