"""The database at the edges: a wrong or unreachable URL at start, and (PostgreSQL) one that goes away
while the server runs and comes back."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url, text

from haneul.platform.testing import free_port


@pytest.mark.parametrize(("url", "says"), [
    ("nonsense", "is not a database URL; use sqlite:///PATH or postgresql+psycopg://"),
    ("mysql://kim@127.0.0.1/db", "needs a database driver that is not installed"),
    ("postgresql+psycopg://kim:hunter2@127.0.0.1:{port}/db", "cannot be reached"),
])
def test_a_bad_database_url_stops_the_server_in_one_line(url: str, says: str, haneul_home: Path) -> None:
    env = {**os.environ, "HANEUL_DB_URL": url.format(port=free_port())}
    res = subprocess.run([sys.executable, "-m", "haneul", "server", "--port", "0"], env=env, capture_output=True,
                         text=True, timeout=120)
    lines = res.stderr.strip().splitlines()
    assert res.returncode != 0 and len(lines) == 1 and says in lines[0], res.stderr
    assert "hunter2" not in res.stderr + res.stdout  # the password never reaches the terminal


@pytest.mark.postgres
def test_a_database_that_goes_away_is_503_and_the_server_recovers_when_it_returns(postgres_admin_url: str,
                                                                                  api: TestClient) -> None:
    url = make_url(os.environ["HANEUL_DB_URL"])
    admin = create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    sid = api.post("/api/v1/sessions", json={"command": [sys.executable, "-c", "pass"]}).json()["id"]
    batch = {"metrics": {"loss": {"steps": [0, 1], "values": [1.0, 0.5]}}}

    def outage(on: bool) -> None:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{url.database}" ALLOW_CONNECTIONS {"false" if on else "true"}'))
            if on:  # and drop the server's pooled connections, as a database restart does
                conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE datname = :db AND pid <> pg_backend_pid()"), {"db": url.database})

    try:
        outage(True)
        for res in (api.get(f"/api/v1/sessions/{sid}"), api.post(f"/api/v1/sessions/{sid}/metrics", json=batch)):
            assert res.status_code == 503, res.text
            error = res.json()["error"]
            assert error["code"] == "database_unavailable" and "cannot be reached" in error["message"]
            assert "\n" not in error["message"] and res.headers["retry-after"] == "5"
        outage(False)
        assert api.post(f"/api/v1/sessions/{sid}/metrics", json=batch).status_code == 200  # what the SDK resends
        keys = api.get(f"/api/v1/sessions/{sid}/metrics").json()
        assert [(k["key"], k["count"]) for k in keys if k["key"] == "loss"] == [("loss", 2)]
    finally:
        outage(False)
        admin.dispose()


def test_only_a_database_that_is_away_or_busy_counts_as_an_outage(tmp_path: Path) -> None:
    from sqlalchemy.exc import OperationalError

    from haneul.platform.db.engine import is_outage, make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(OperationalError) as missing, engine.connect() as conn:
        conn.execute(text("SELECT * FROM no_such_table"))
    engine.dispose()
    assert not is_outage(missing.value)  # a wrong statement: a 500 that names it, not a 503 to retry
    assert is_outage(OperationalError("BEGIN", {}, sqlite3.OperationalError("database is locked")))
    refused = OperationalError("connect", {}, Exception("connection refused"))  # a server database's
    assert is_outage(refused)
