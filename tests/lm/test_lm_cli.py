from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from haneul.cli.main import run


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``haneul ARGV``."""
    code = run(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_is_torch_free() -> None:
    code = (
        "import sys; from haneul.cli.main import app; import haneul.cli.lm as m; "
        "assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("영화 재미있다\n")
    code, _, err = _run(["lm", "tokenizer", "train", "-c", str(corpus), "-o", str(tmp_path / "t"), "-v", "100"], capsys)
    assert code == 1 and err.strip().startswith("error: vocab size 100 is too small") and len(err.strip().splitlines()) == 1
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xed\xa0\x80")  # an encoded surrogate is not valid UTF-8
    code, _, err = _run(["lm", "tokenizer", "train", "-c", str(bad), "-o", str(tmp_path / "t")], capsys)
    assert code == 1 and "bad.txt is not UTF-8: invalid byte at offset 0" in err
    code, _, err = _run(["lm", "generate", "no-such-model", "안녕"], capsys)
    assert code == 1 and "model 'no-such-model' does not exist; available models:" in err


def test_recipe_end_to_end_registers_a_servable_model(tiny_lm: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    args = ["lm", "recipe", "ko-nano", "-c", str(tiny_lm["corpus"]), "--name", "ko-ci", "--vocab-size", "300",
            "--steps", "12", "--batch-size", "4", "--seq-len", "32", "-m", "n_layer=1", "-m", "d_model=32",
            "-m", "d_ff=64", "--json"]
    code, out, err = _run(args, capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["steps"] == 12 and summary["val_bpc"] > 0 and summary["registered"].endswith("ko-ci")
    assert summary["sample"].startswith("이 영화는")
    code, out, _ = _run(["lm", "models", "--json"], capsys)
    names = {m["name"]: m for m in json.loads(out)}
    assert names["ko-ci"]["kind"] == "folder" and names["ko-ci"]["origin"] == "home"
    code, out, _ = _run(["lm", "generate", "ko-ci", "영화", "배우", "--max-tokens", "5", "--seed", "1", "--json"], capsys)
    rows = json.loads(out)
    assert code == 0 and [r["prompt"] for r in rows] == ["영화", "배우"] and all(r["completion_tokens"] <= 5 for r in rows)
    # re-running reuses the tokenizer and data, and the finished checkpoint: nothing is retrained
    code, out, _ = _run(args, capsys)
    assert code == 0 and json.loads(out)["steps"] == 12
