from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from tune_helpers import QUADRATIC

from haneul.platform.testing import POSTGRES_URL_VAR, LiveServer, postgres_database, start_server
from haneul.settings import reload_settings


@pytest.fixture(autouse=True)
def tune_database(haneul_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """With HANEUL_TEST_POSTGRES_URL set (``bash scripts/with-postgres.sh pytest tests/tune`` sets it)
    each test gets a database of its own on that PostgreSQL server instead of SQLite; without it this
    does nothing."""
    admin_url = os.environ.get(POSTGRES_URL_VAR)
    if not admin_url:
        yield
        return
    with postgres_database(admin_url) as url:
        monkeypatch.setenv("HANEUL_DB_URL", url)
        reload_settings()
        yield


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
