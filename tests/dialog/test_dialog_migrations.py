"""The dialog tables are made by their Alembic migrations, also in databases an older haneul made."""

from __future__ import annotations

import json

from sqlalchemy import create_engine, inspect, text

from haneul.dialog.memory import Memory
from haneul.dialog.stores import MemoryStore
from haneul.dialog.stores.sql import Base, MemoryVersionRow
from haneul.platform.testing import as_admin
from haneul.settings import Settings

TABLES = {"dialog_memory_versions", "dialog_memory_ops"}


def schema(url: str) -> dict[str, object]:
    """Columns (name, type, nullable), indexes, unique constraints and foreign keys of the dialog tables."""
    engine = create_engine(url)
    try:
        insp = inspect(engine)
        out: dict[str, object] = {}
        for table in sorted(TABLES):
            out[table] = (
                [(c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)],
                sorted((i["name"], tuple(i["column_names"])) for i in insp.get_indexes(table)),
                sorted((u["name"], tuple(u["column_names"])) for u in insp.get_unique_constraints(table)),
                [(f["referred_table"], tuple(f["constrained_columns"])) for f in insp.get_foreign_keys(table)],
            )
        return out
    finally:
        engine.dispose()


def rows(url: str, sql: str) -> list[tuple]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


def test_a_fresh_database_gets_the_tables_from_the_migration(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    MemoryStore(url).update("kim", ["노인정에 다니심"], operator="append-only")
    assert rows(url, "SELECT version_num FROM alembic_version_dialog") == [("dialog_0001",)]
    assert "alembic_version" not in inspect(create_engine(url)).get_table_names()  # the platform's is not touched

    # the migration makes what the models describe (what the old create_all made)
    old = f"sqlite:///{tmp_path / 'create_all.db'}"
    engine = create_engine(old)
    Base.metadata.create_all(engine)
    engine.dispose()
    assert schema(url) == schema(old)


def test_a_database_made_by_the_old_create_all_is_adopted(tmp_path):
    url = f"sqlite:///{tmp_path / 'memory.db'}"
    engine = create_engine(url)
    Base.metadata.create_all(engine)  # what haneul did before the tables had migrations
    with engine.begin() as conn:
        conn.execute(MemoryVersionRow.__table__.insert().values(
            person="kim", version=1, created_at=1.0, sentences=json.dumps(["노인정에 다니심"], ensure_ascii=False),
            summary="[]", operator="append-only", notes="[]"))
    engine.dispose()

    mem = Memory.load("kim", url=url)  # no "table already exists": the migration adopts the tables
    assert (mem.version, mem.sentences) == (1, ["노인정에 다니심"])
    assert mem.update(["딸이 서울에 사심"], operator="append-only").version == 2
    assert rows(url, "SELECT version_num FROM alembic_version_dialog") == [("dialog_0001",)]
    assert rows(url, "SELECT person, version FROM dialog_memory_versions ORDER BY version") == [("kim", 1), ("kim", 2)]


def test_the_platform_server_database_gets_the_dialog_tables_at_start(tmp_path):
    from fastapi.testclient import TestClient

    from haneul.platform.server.app import create_app

    home = tmp_path / "server-home"
    with TestClient(create_app(Settings(home=home))) as client:
        as_admin(client)
        r = client.post("/api/v1/dialog/memory/kim/update", json={"summary": ["노인정에 다니심"], "operator": "lexical"})
        assert r.status_code == 200 and r.json()["version"] == 1
    url = Settings(home=home).database_url  # SQLite, or the run's PostgreSQL database
    tables = set(inspect(create_engine(url)).get_table_names())
    assert TABLES | {"alembic_version", "alembic_version_dialog", "sessions"} <= tables
    assert rows(url, "SELECT version_num FROM alembic_version_dialog") == [("dialog_0001",)]
    assert rows(url, "SELECT person, version FROM dialog_memory_versions") == [("kim", 1)]


def test_a_server_database_with_tables_from_the_old_create_all_is_adopted_at_start(tmp_path):
    from fastapi.testclient import TestClient

    from haneul.platform.db import make_engine, migrate
    from haneul.platform.server.app import create_app

    home = tmp_path / "server-home"
    home.mkdir()
    engine = make_engine(Settings(home=home).database_url)
    migrate(engine)  # the platform's own tables, as an older server left them
    Base.metadata.create_all(engine)  # and the dialog tables its routes made on first use
    with engine.begin() as conn:
        conn.execute(MemoryVersionRow.__table__.insert().values(
            person="kim", version=1, created_at=1.0, sentences='["노인정에 다니심"]', summary="[]",
            operator="append-only", notes="[]"))
    engine.dispose()

    with TestClient(create_app(Settings(home=home))) as client:
        as_admin(client)
        assert client.get("/api/v1/dialog/memory/kim").json() == {"person": "kim", "version": 1,
                                                                  "sentences": ["노인정에 다니심"]}
    assert rows(Settings(home=home).database_url, "SELECT version_num FROM alembic_version_dialog") == [("dialog_0001",)]
