"""Schema upgrades: from every revision of the platform's chain to the newest, the database ends up
with exactly the tables, columns, types, indexes and keys the models declare. Runs on SQLite, and on
PostgreSQL in ``make test-postgres`` (the root conftest points HANEUL_DB_URL at a fresh database)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from haneul.platform.db import Base, make_engine, migrate
from haneul.platform.db import datasets as _datasets  # noqa: F401  (their tables join Base.metadata)
from haneul.platform.db import deployments as _deployments  # noqa: F401
from haneul.platform.db import leaderboard as _leaderboard  # noqa: F401
from haneul.platform.db.engine import MIGRATIONS
from haneul.settings import Settings

REVISIONS = [s.revision for s in reversed(list(ScriptDirectory(str(MIGRATIONS)).walk_revisions()))]


def _config(conn: Any) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def _differences(engine: Any) -> list[Any]:
    platform = set(Base.metadata.tables)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "compare_type": True,
            "include_name": lambda name, kind, _parent: kind != "table" or name in platform,
        })
        return compare_metadata(context, Base.metadata)


def test_the_chain_is_linear_and_ends_at_the_newest_revision() -> None:
    assert REVISIONS[0] == "0001" and len(REVISIONS) >= 8
    assert ScriptDirectory(str(MIGRATIONS)).get_heads() == [REVISIONS[-1]]


@pytest.mark.parametrize("start", [None, *REVISIONS])
def test_upgrading_from_every_revision_gives_the_models_schema(start: str | None, haneul_home: Path) -> None:
    engine = make_engine(Settings(home=haneul_home).database_url)
    try:
        if start is not None:
            with engine.begin() as conn:
                command.upgrade(_config(conn), start)
                # a session made at that revision survives the upgrades that follow
                conn.execute(text(
                    "INSERT INTO sessions (name, owner, status, command, env, cpus, gpus, memory, priority, executor,"
                    " token_hash, created_at) VALUES ('old', 'kim', 'done', '[]', '{}', 1, 0, 0, 0, 'local', 'x', 1.0)"))
        migrate(engine)
        assert _differences(engine) == []
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == REVISIONS[-1]
            names = conn.execute(text("SELECT name FROM sessions")).scalars().all()
        assert names == ([] if start is None else ["old"])
    finally:
        engine.dispose()


def test_session_ids_are_64_bit_and_the_newest_revision_downgrades_cleanly(haneul_home: Path) -> None:
    engine = make_engine(Settings(home=haneul_home).database_url)
    try:
        migrate(engine)
        big = 1 << 40
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO sessions (id, name, owner, status, command, env, cpus, gpus, memory, priority, executor,"
                f" token_hash, created_at) VALUES ({big}, 'wide', 'kim', 'done', '[]', '{{}}', 1, 0, 0, 0, 'local',"
                " 'x', 1.0)"))
            conn.execute(text(f"INSERT INTO session_tags (session_id, key, value) VALUES ({big}, 'k', 'v')"))
            assert conn.execute(text("SELECT value FROM session_tags WHERE session_id = :s"), {"s": big}).scalar() == "v"
            conn.execute(text(f"DELETE FROM sessions WHERE id = {big}"))
        with engine.begin() as conn:
            command.downgrade(_config(conn), REVISIONS[-2])
        kind = str(next(c["type"] for c in inspect(engine).get_columns("sessions") if c["name"] == "id")).upper()
        assert kind == "INTEGER"  # PostgreSQL's 32-bit one again; SQLite's never changed
        migrate(engine)
        assert _differences(engine) == []
    finally:
        engine.dispose()
