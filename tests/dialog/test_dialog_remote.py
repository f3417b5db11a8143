"""Memory kept in the platform database through a real haneul server (uvicorn in a thread on 127.0.0.1)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect, text

from haneul.dialog.memory import Memory, MemoryStore
from haneul.dialog.operators import LexicalOperator, Op
from haneul.dialog.remote import HttpMemoryStore
from haneul.dialog.testing import free_port, serve
from haneul.dialog.text import DialogWarning
from haneul.errors import Conflict, InvalidInput, NotFound, ServerUnavailable
from haneul.settings import Settings, reload_settings


@pytest.fixture
def platform_server(tmp_path, monkeypatch):
    """The full platform app (sessions, metrics, installed plugins) over its own HANEUL_HOME; clients
    here use its local admin's token."""
    from haneul.platform.credentials import local_admin_token
    from haneul.platform.server.app import create_app

    home = tmp_path / "server-home"
    with serve(create_app(Settings(home=home))) as url:
        monkeypatch.setenv("HANEUL_API_TOKEN", local_admin_token(home))
        yield url, home


@pytest.fixture
def use_server(monkeypatch):
    def point_at(url: str) -> None:
        monkeypatch.setenv("HANEUL_SERVER", url)
        reload_settings()

    return point_at


def version_rows(url: str) -> list[tuple[str, int]]:
    """The memory versions in the database at ``url``."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(
                "SELECT person, version FROM dialog_memory_versions ORDER BY person, version"))]
    finally:
        engine.dispose()


def test_memory_goes_through_the_server_into_the_platform_database(platform_server, use_server, haneul_home):
    url, server_home = platform_server
    use_server(url)
    mem = Memory.load("kim")
    assert isinstance(mem.store, HttpMemoryStore) and mem.store.url == url
    assert mem.version == 0 and mem.sentences == [] and mem.history() == []

    r1 = mem.update(["이가 아파서 치과에 다니심", "노인정에 다니심"], operator="lexical", session="call-1")
    assert r1.version == 1 and r1.new_memory == ["이가 아파서 치과에 다니심", "노인정에 다니심"]
    r2 = mem.update(["이가 아팠으나 다 나음", "요즘도 노인정에 다니심"], operator=LexicalOperator())
    assert r2.version == 2 and r2.new_memory == ["노인정에 다니심", "이가 아팠으나 다 나음"]
    assert r2.operator == "lexical" and r2.removed == ["이가 아파서 치과에 다니심"]
    assert mem.version == 2 and Memory.load("kim").sentences == r2.new_memory

    history = Memory.load("kim").history()
    assert [v.version for v in history] == [1, 2] and history[0].session == "call-1"
    changed = {(p.memory, p.summary): p.op for p in history[1].ops if p.op is not Op.APPEND}
    assert changed == {("이가 아파서 치과에 다니심", "이가 아팠으나 다 나음"): Op.REPLACE,
                       ("노인정에 다니심", "요즘도 노인정에 다니심"): Op.PASS}

    stale = Memory.load("kim")
    v3 = mem.revert(1)
    assert v3.version == 3 and v3.reverted_from == 1 and v3.sentences == ["이가 아파서 치과에 다니심", "노인정에 다니심"]
    with pytest.raises(Conflict, match="reload"):  # same guard as a local database
        stale.update(["식사를 잘 하심"], operator="lexical")
    with pytest.raises(NotFound, match="no memory version 9"):
        mem.revert(9)
    with pytest.raises(InvalidInput, match="no sentences"):
        mem.update([], operator="lexical")
    with pytest.raises(InvalidInput, match="cannot contain '/'"):
        Memory.load("kim/history")
    with pytest.raises(InvalidInput, match="unknown operator"):
        mem.update(["식사를 잘 하심"], operator="newest")
    with pytest.warns(DialogWarning, match="truncated to 200"):  # raised on the server, shown here too
        res = mem.update(["아주 긴 문장 " * 60], operator="append-only")
    assert res.version == 4 and len(res.new_memory[-1]) <= 200
    Memory.load("lee").update(["딸이 서울에 사심"], operator="append-only")
    assert mem.store.people() == ["kim", "lee"] and mem.store.get("kim", 2).sentences == r2.new_memory

    # the rows are in the platform's own database, beside its migrated tables; nothing was written locally
    server_db = Settings(home=server_home).database_url  # SQLite, or the run's PostgreSQL database
    assert version_rows(server_db) == [("kim", 1), ("kim", 2), ("kim", 3), ("kim", 4), ("lee", 1)]
    tables = inspect(create_engine(server_db)).get_table_names()
    assert {"alembic_version", "alembic_version_dialog", "dialog_memory_ops"} <= set(tables)
    assert not (haneul_home / "dialog" / "memory.db").exists()
    assert not (server_home / "dialog" / "memory.db").exists()


def test_without_a_server_the_local_file_is_used_and_an_explicit_url_always_wins(
        platform_server, use_server, haneul_home, tmp_path):
    url, server_home = platform_server
    local = Memory.load("kim")
    assert isinstance(local.store, MemoryStore) and local.store.url.endswith("dialog/memory.db")
    local.update(["노인정에 다니심"], operator="lexical")
    assert version_rows(f"sqlite:///{haneul_home / 'dialog' / 'memory.db'}") == [("kim", 1)]

    use_server(url)
    assert Memory.load("kim").version == 0  # the server keeps its own memory
    explicit = f"sqlite:///{tmp_path / 'explicit.db'}"
    Memory.load("kim", url=explicit).update(["식사를 잘 하심"], operator="lexical")
    assert version_rows(explicit) == [("kim", 1)]
    assert Memory.load("kim").version == 0


def test_a_classifier_object_is_refused_on_the_server_path(use_server):
    import torch

    from haneul.dialog.model import PairClassifier, PairClassifierConfig
    from haneul.dialog.operators import ClassifierOperator

    use_server(f"http://127.0.0.1:{free_port()}")
    mem = Memory(person="kim", sentences=[], version=0, store=HttpMemoryStore())
    torch.manual_seed(0)
    with pytest.raises(InvalidInput, match="operator='classifier'"):
        mem.update(["노인정에 다니심"], operator=ClassifierOperator(PairClassifier(PairClassifierConfig.from_name("tiny"))))


def test_server_down_is_one_line_naming_the_url_and_the_fix(use_server, capsys):
    from haneul.cli.main import main

    url = f"http://127.0.0.1:{free_port()}"
    use_server(url)
    with pytest.raises(ServerUnavailable) as err:
        Memory.load("kim")
    message = str(err.value)
    assert url in message and "haneul server" in message and "unset HANEUL_SERVER" in message and "\n" not in message
    with pytest.raises(SystemExit) as exc:
        main(["dialog", "memory", "show", "kim"])
    assert exc.value.code == 1
    out = capsys.readouterr().err
    assert out.startswith("error: cannot reach the haneul server") and out.count("\n") == 1


def test_cli_memory_commands_use_the_server(platform_server, use_server, capsys):
    import json

    from haneul.cli.main import main

    url, server_home = platform_server
    use_server(url)

    def cli(*argv: str):
        try:
            main(list(argv))
        except SystemExit as exc:
            assert exc.code in (0, None)
        return json.loads(capsys.readouterr().out)

    res = cli("dialog", "memory", "update", "kim", "이가 아파서 치과에 다니심", "--operator", "lexical", "--json")
    assert res["version"] == 1
    res = cli("dialog", "memory", "update", "kim", "이가 아팠으나 다 나음", "--operator", "lexical", "--json")
    assert res["new_memory"] == ["이가 아팠으나 다 나음"] and res["ops"][0]["op"] == "REPLACE"
    assert cli("dialog", "memory", "show", "kim", "--json")["sentences"] == ["이가 아팠으나 다 나음"]
    assert [v["version"] for v in cli("dialog", "memory", "history", "kim", "--json")] == [1, 2]
    assert version_rows(Settings(home=server_home).database_url) == [("kim", 1), ("kim", 2)]
