from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tune_helpers import QUADRATIC

from haneul.platform.testing import LiveServer, start_server


@pytest.fixture
def tune_server(haneul_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    monkeypatch.setenv("HANEUL_CAPACITY_CPUS", "2")
    server = start_server(haneul_home)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def quadratic(tmp_path: Path) -> Path:
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "train.py").write_text(QUADRATIC)
    return folder
