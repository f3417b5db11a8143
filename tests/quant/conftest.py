from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from quant_helpers import NSMC_ROWS, byte_tokenizer, tiny_llama

from haneul.settings import reload_settings


@pytest.fixture
def tokenizer() -> Any:
    return byte_tokenizer()


@pytest.fixture
def tiny_model_dir(tmp_path: Path) -> Path:
    """A tiny Llama model folder with a byte tokenizer, as a user's local Hugging Face folder."""
    folder = tmp_path / "tiny-llama"
    tiny_llama().save_pretrained(folder)
    byte_tokenizer().save_pretrained(folder)
    return folder


@pytest.fixture
def nsmc_file(tmp_path: Path) -> Path:
    path = tmp_path / "ratings.txt"
    lines = ["id\tdocument\tlabel"] + [f"{i}\t{text}\t{label}" for i, (text, label) in enumerate(NSMC_ROWS)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def smollm2_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HANEUL_HOME shared by the whole test run, so SmolLM2 is converted from GGUF only once."""
    home = tmp_path_factory.getbasetemp() / "smollm2-home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("HANEUL_HOME", str(home))
    reload_settings()
    return home


@pytest.fixture(autouse=True)
def one_thread() -> Any:
    """Small tensors run faster single-threaded, and the test machine is shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
