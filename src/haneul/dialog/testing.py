"""Test support: the conformance suite every memory store must pass, and a dialog server to test with.

Subclass :class:`MemoryStoreConformance` in a test module and implement ``make_store`` (a fresh,
empty store each call); pytest then runs every check against that store::

    class TestSqlStore(MemoryStoreConformance):
        @pytest.fixture(autouse=True)
        def _db(self, tmp_path):
            self.url = f"sqlite:///{tmp_path / 'memory.db'}"

        def make_store(self):
            return MemoryStore(self.url)

The checks use the deterministic lexical and append-only operators, so the suite is fast.
:func:`serve_dialog` runs the ``dialog`` server plugin over a fresh database on 127.0.0.1 (as the
haneul server mounts it), for testing :class:`~haneul.dialog.stores.HttpMemoryStore`.
"""

from __future__ import annotations

import re
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from haneul.dialog.memory import Memory
from haneul.dialog.pairs import Op
from haneul.dialog.stores import BaseMemoryStore, OperatorSpec
from haneul.dialog.text import DialogWarning
from haneul.errors import Conflict, HaneulError, InvalidInput, NotFound

# two sessions of one person (the paper's running example): the second replaces one fact and repeats
# the other
FIRST = ["이가 아파서 치과에 다니심", "노인정에 다니심"]
SECOND = ["이가 아팠으나 다 나음", "요즘도 노인정에 다니심"]
AFTER_SECOND = ["노인정에 다니심", "이가 아팠으나 다 나음"]


@contextmanager
def raises(error: type[HaneulError], match: str) -> Iterator[None]:
    """Like ``pytest.raises``, without needing pytest in the library."""
    try:
        yield
    except error as exc:
        assert re.search(match, str(exc)), f"{type(exc).__name__}({str(exc)!r}) does not match {match!r}"
    else:
        raise AssertionError(f"{error.__name__} matching {match!r} was not raised")


class MemoryStoreConformance:
    """The checks of the :class:`~haneul.dialog.stores.BaseMemoryStore` contract."""

    #: whether a person id may contain "/"; a store behind HTTP routes refuses it with InvalidInput
    slash_in_person: bool = True

    def make_store(self) -> BaseMemoryStore:
        raise NotImplementedError

    def _two_versions(self, store: BaseMemoryStore, person: str = "kim") -> None:
        store.update(person, FIRST, operator="lexical", expected_version=0, session="call-1")
        store.update(person, SECOND, operator="lexical", expected_version=1, session="call-2")

    def test_a_new_person_has_no_memory(self) -> None:
        store = self.make_store()
        assert store.latest("kim") is None and store.history("kim") == [] and store.people() == []
        mem = Memory.load("kim", store=store)
        assert (mem.person, mem.version, mem.sentences) == ("kim", 0, [])

    def test_update_stores_the_next_version_with_its_pair_operations(self) -> None:
        store = self.make_store()
        r1 = store.update("kim", FIRST, operator="lexical", expected_version=0, session="call-1")
        assert r1.version == 1 and r1.new_memory == FIRST and r1.ops == []  # nothing to pair with yet
        r2 = store.update("kim", SECOND, operator="lexical", expected_version=1)
        assert r2.version == 2 and r2.new_memory == AFTER_SECOND and r2.operator == "lexical"
        assert r2.removed == [FIRST[0]] and r2.added == [SECOND[0]]
        latest = store.latest("kim")
        assert latest is not None and (latest.person, latest.version, latest.sentences) == ("kim", 2, AFTER_SECOND)

        v2 = store.history("kim")[1]
        assert [(p.memory_index, p.summary_index) for p in v2.ops] == [(0, 0), (0, 1), (1, 0), (1, 1)]
        assert {(p.memory, p.summary): p.op for p in v2.ops if p.op is not Op.APPEND} == {
            (FIRST[0], SECOND[0]): Op.REPLACE, (FIRST[1], SECOND[1]): Op.PASS}
        assert v2.summary == SECOND and v2.operator == "lexical" and v2.session is None

    def test_history_is_every_version_oldest_first(self) -> None:
        store = self.make_store()
        for i, sentence in enumerate(["노인정에 다니심", "딸이 서울에 사심", "식사를 잘 하심"]):
            store.update("kim", [sentence], operator="append-only", expected_version=i, session=f"call-{i + 1}")
        history = store.history("kim")
        assert [v.version for v in history] == [1, 2, 3]
        assert [v.session for v in history] == ["call-1", "call-2", "call-3"]
        assert history[-1].sentences == ["노인정에 다니심", "딸이 서울에 사심", "식사를 잘 하심"]
        assert all(v.person == "kim" and v.operator == "append-only" for v in history)

    def test_get_returns_one_version_with_its_operations(self) -> None:
        store = self.make_store()
        self._two_versions(store)
        history = store.history("kim")
        assert store.get("kim", 1).to_dict() == history[0].to_dict()
        v2 = store.get("kim", 2)
        assert v2.to_dict() == history[1].to_dict() and v2.sentences == AFTER_SECOND and len(v2.ops) == 4

    def test_revert_writes_a_new_version_equal_to_the_old_one(self) -> None:
        store = self.make_store()
        self._two_versions(store)
        v3 = store.revert("kim", 1, expected_version=2)
        assert (v3.version, v3.sentences, v3.reverted_from, v3.operator) == (3, FIRST, 1, "revert")
        assert store.latest("kim").sentences == FIRST  # type: ignore[union-attr]
        history = store.history("kim")
        assert [v.version for v in history] == [1, 2, 3] and history[1].sentences == AFTER_SECOND  # nothing overwritten
        assert history[2].sentences == FIRST and history[2].reverted_from == 1
        v4 = store.revert("kim", 0)  # no expected version: onto whatever is latest
        assert v4.version == 4 and v4.sentences == [] and store.latest("kim").sentences == []  # type: ignore[union-attr]

    def test_a_stale_expected_version_is_a_conflict_and_writes_nothing(self) -> None:
        store = self.make_store()
        store.update("kim", FIRST, operator="lexical", expected_version=0)
        with raises(Conflict, match="reload"):
            store.update("kim", SECOND, operator="lexical", expected_version=0)
        with raises(Conflict, match="reload"):
            store.revert("kim", 0, expected_version=2)
        assert [v.version for v in store.history("kim")] == [1]
        assert store.update("kim", ["식사를 잘 하심"], operator="append-only").version == 2  # None: onto the latest

        first, second = Memory.load("kim", store=store), Memory.load("kim", store=store)
        first.update(["딸이 서울에 사심"], operator="append-only")
        with raises(Conflict, match="reload"):
            second.update(["허리가 아프심"], operator="append-only")
        with raises(Conflict, match="reload"):
            second.revert(1)
        assert store.latest("kim").version == 3  # type: ignore[union-attr]

    def test_people_lists_everyone_with_memory_sorted(self) -> None:
        store = self.make_store()
        for person in ["lee", "kim", "김순자"]:
            store.update(person, ["노인정에 다니심"], operator="append-only")
        with raises(InvalidInput, match="no sentences"):
            store.update("park", [], operator="append-only")
        store.update("kim", ["딸이 서울에 사심"], operator="append-only")
        assert store.people() == ["kim", "lee", "김순자"]
        assert store.latest("lee").sentences == ["노인정에 다니심"]  # type: ignore[union-attr]

    def test_an_unknown_person_or_version_is_not_found(self) -> None:
        store = self.make_store()
        with raises(NotFound, match="no memory version 1"):
            store.get("nobody", 1)
        store.update("kim", FIRST, operator="lexical")
        with raises(NotFound, match="no memory version 9"):
            store.get("kim", 9)
        with raises(NotFound, match="no memory version 9"):
            store.revert("kim", 9)
        assert [v.version for v in store.history("kim")] == [1] and store.history("nobody") == []

    def test_person_ids_are_any_short_text(self) -> None:
        store = self.make_store()
        people = ["김순자 할머니", "a%2Fb", "what?#x", "이.영희"]
        for person in people:
            store.update(person, ["노인정에 다니심"], operator="append-only")
            assert store.latest(person).person == person  # type: ignore[union-attr]
            assert [v.version for v in store.history(person)] == [1] and store.get(person, 1).person == person
        assert store.people() == sorted(people)
        assert Memory.load("  김순자 할머니 ", store=store).version == 1  # surrounding blanks are not part of the id
        for bad in ["", "   ", "x" * 201]:
            with raises(InvalidInput, match="person id"):
                store.update(bad, ["노인정에 다니심"], operator="append-only")
        if self.slash_in_person:
            store.update("kim/lee", ["노인정에 다니심"], operator="append-only")
            assert store.get("kim/lee", 1).sentences == ["노인정에 다니심"] and "kim/lee" in store.people()
        else:
            with raises(InvalidInput, match="cannot contain '/'"):
                store.update("kim/lee", ["노인정에 다니심"], operator="append-only")
            with raises(InvalidInput, match="cannot contain '/'"):
                store.latest("kim/lee")
            assert store.people() == sorted(people)

    def test_bad_summaries_and_operators_are_refused_and_write_nothing(self) -> None:
        store = self.make_store()
        with raises(InvalidInput, match="no sentences"), warnings.catch_warnings():
            warnings.simplefilter("ignore", DialogWarning)  # each blank sentence is also a warning
            store.update("kim", ["  ", ""], operator="lexical")
        with raises(InvalidInput, match="not one string"):
            store.update("kim", "노인정에 다니심", operator="lexical")  # type: ignore[arg-type]
        with raises(InvalidInput, match="unknown operator 'newest'"):
            store.update("kim", ["노인정에 다니심"], operator="newest")
        assert store.history("kim") == [] and store.people() == []

    def test_input_problems_come_back_as_warnings(self) -> None:
        store = self.make_store()
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            res = store.update("kim", ["아주 긴 문장 " * 60, "  "], operator="append-only")
        assert any(issubclass(w.category, DialogWarning) and "truncated to 200" in str(w.message) for w in seen)
        assert len(res.new_memory) == 1 and len(res.new_memory[0]) <= 200
        assert any("truncated" in w for w in res.warnings) and any("blank" in w for w in res.warnings)
        assert any("truncated" in n for n in store.history("kim")[0].notes)

    def test_operators_are_named_with_their_options(self) -> None:
        store = self.make_store()
        store.update("kim", FIRST, operator=OperatorSpec("append-only", timeout=5.0))
        res = store.update("kim", SECOND, operator="latest-only")
        assert res.operator == "latest-only" and res.new_memory == SECOND
        assert {p.op for p in res.ops} == {Op.REPLACE} and len(res.ops) == 4

    def test_a_memory_object_follows_its_store(self) -> None:
        store = self.make_store()
        mem = Memory.load("kim", store=store)
        res = mem.update(FIRST, operator="lexical", session="call-1")
        assert (mem.version, mem.sentences, res.version) == (1, FIRST, 1)
        mem.update(SECOND, operator="lexical")
        assert (mem.version, mem.sentences) == (2, AFTER_SECOND) and len(mem) == 2 and list(mem) == AFTER_SECOND
        v = mem.revert(1)
        assert (mem.version, mem.sentences, v.version) == (3, FIRST, 3)
        again = Memory.load("kim", store=store)
        assert (again.version, again.sentences) == (3, FIRST)
        assert [h.version for h in again.history()] == [1, 2, 3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dialog_app(home: Path) -> Any:
    """A FastAPI app with only the ``dialog`` plugin, set up as the haneul server sets up a plugin: its
    migrations applied to the database under ``home``, its router mounted, errors as JSON."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from sqlalchemy.orm import sessionmaker

    from haneul.dialog.api import plugin
    from haneul.platform.db import make_engine, migrate, version_table
    from haneul.platform.plugins import ServerContext
    from haneul.settings import Settings

    settings = Settings(home=home)
    engine = make_engine(settings.database_url)
    ctx = ServerContext(name="dialog", settings=settings, engine=engine, sessions=sessionmaker(engine),
                        artifacts=Path(settings.artifacts))
    loaded = plugin(ctx)
    assert loaded.migrations is not None and loaded.router is not None
    migrate(engine, loaded.migrations, version_table=version_table(ctx.name))
    app = FastAPI()

    @app.exception_handler(HaneulError)
    async def _haneul_error(_request: Request, exc: HaneulError) -> JSONResponse:
        return JSONResponse({"error": exc.to_dict()}, status_code=exc.http_status)

    app.include_router(loaded.router)
    app.state.engine = engine
    return app


@contextmanager
def serve(app: Any, timeout: float = 20.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free port of 127.0.0.1 in a thread; yields its URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started and time.monotonic() < deadline:
        if not thread.is_alive():
            raise RuntimeError("the test server stopped while starting")
        time.sleep(0.02)
    if not server.started:
        raise RuntimeError(f"the test server did not start in {timeout:.0f} s")
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def serve_dialog(home: Path) -> Iterator[str]:
    """:func:`dialog_app` over ``home``, served on 127.0.0.1; yields its URL."""
    app = dialog_app(home)
    try:
        with serve(app) as url:
            yield url
    finally:
        app.state.engine.dispose()
