from __future__ import annotations

from pathlib import Path

import pytest

from haneul.settings import reload_settings


@pytest.fixture
def smollm2_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HANEUL_HOME shared by the whole test run, so SmolLM2 is converted from GGUF only once."""
    home = tmp_path_factory.getbasetemp() / "smollm2-home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("HANEUL_HOME", str(home))
    reload_settings()
    return home
