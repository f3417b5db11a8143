"""The optimiser on a PostgreSQL server: run with ``bash scripts/with-postgres.sh pytest tests/tune``
(``make test`` does), which also runs every other test of this folder there."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from haneul.platform.testing import LiveServer, wait_for

pytestmark = pytest.mark.postgres


def test_a_study_keeps_its_trials_and_sampler_journal_in_postgresql(postgres_admin_url: str, tune_server: LiveServer,
                                                                    quadratic: Path) -> None:
    raw = {"name": "pg", "command": [sys.executable, "train.py", "--x", "{x}"], "cwd": str(quadratic),
           "objective": {"metric": "loss", "direction": "minimize"},
           "space": {"x": {"type": "float", "low": -1.0, "high": 1.0}},
           "budget": {"trials": 3, "concurrent": 2, "cpus": 1}, "algorithm": {"sampler": "tpe", "seed": 0}}
    with tune_server.http() as http:
        assert http.post("/api/v1/tune/studies", json={"spec": raw}).status_code == 201
        study = wait_for(lambda: (s := http.get("/api/v1/tune/studies/pg").json())["status"] != "running" and s,
                         timeout=120, interval=0.3)
        assert study["status"] == "done", study
        best = http.get("/api/v1/tune/studies/pg/best").json()
    engine = create_engine(os.environ["HANEUL_DB_URL"])
    try:
        assert engine.dialect.name == "postgresql"
        with engine.connect() as conn:
            states = conn.execute(text("SELECT state FROM tune_trials")).scalars().all()
            journal = conn.execute(text("SELECT count(*) FROM tune_journal")).scalar_one()
            sessions = conn.execute(text("SELECT count(*) FROM sessions")).scalar_one()
    finally:
        engine.dispose()
    assert sorted(states) == ["complete"] * 3
    assert journal >= 3 * 3  # Optuna's log: at least create, set params and finish for each trial
    assert sessions == 3
    assert best["value"] == pytest.approx((best["params"]["x"] - 0.3) ** 2 + 1 / 6)
    assert not (tune_server.home / "haneul.db").exists()  # nothing went to the SQLite default
