from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tune_helpers import QUADRATIC

from haneul.platform.testing import LiveServer, start_server


@pytest.fixture(autouse=True)
def tune_database(haneul_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """With HANEUL_TEST_POSTGRES_URL (a PostgreSQL server's URL, e.g.
    ``postgresql+psycopg://haneul@127.0.0.1:5432/postgres``) each test gets a database of its own
    there instead of SQLite; without it this does nothing."""
    admin_url = os.environ.get("HANEUL_TEST_POSTGRES_URL")
    if not admin_url:
        yield
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"haneul_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    monkeypatch.setenv("HANEUL_DB_URL", make_url(admin_url).set(database=name).render_as_string(hide_password=False))
    try:
        yield
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


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
