from __future__ import annotations

import pytest

from haneul.dialog.memory import Memory, MemoryStore
from haneul.dialog.operators import LexicalOperator, Op
from haneul.dialog.text import DialogWarning
from haneul.errors import Conflict, InvalidInput, NotFound


def test_a_person_with_no_memory_loads_empty(haneul_home):
    mem = Memory.load("kim")
    assert mem.version == 0 and mem.sentences == [] and mem.history() == []
    assert (haneul_home / "dialog" / "memory.db").exists()


def test_updates_are_versioned_auditable_and_reversible():
    mem = Memory.load("kim")
    r1 = mem.update(["이가 아파서 치과에 다니심", "노인정에 다니심"], operator="lexical", session="call-1")
    assert r1.version == 1 and r1.new_memory == ["이가 아파서 치과에 다니심", "노인정에 다니심"]
    r2 = mem.update(["이가 아팠으나 다 나음", "요즘도 노인정에 다니심"], operator=LexicalOperator())
    assert r2.version == 2 and r2.new_memory == ["노인정에 다니심", "이가 아팠으나 다 나음"]
    assert Memory.load("kim").sentences == r2.new_memory

    history = Memory.load("kim").history()
    assert [v.version for v in history] == [1, 2]
    assert history[0].session == "call-1" and history[0].ops == []
    changed = {(p.memory, p.summary): p.op for p in history[1].ops if p.op is not Op.APPEND}
    assert changed == {("이가 아파서 치과에 다니심", "이가 아팠으나 다 나음"): Op.REPLACE,
                       ("노인정에 다니심", "요즘도 노인정에 다니심"): Op.PASS}
    assert history[1].summary == ["이가 아팠으나 다 나음", "요즘도 노인정에 다니심"]

    v3 = mem.revert(1)
    assert v3.version == 3 and v3.reverted_from == 1
    assert Memory.load("kim").sentences == ["이가 아파서 치과에 다니심", "노인정에 다니심"]
    assert len(mem.history()) == 3  # nothing was overwritten
    assert mem.revert(0).sentences == []
    with pytest.raises(NotFound, match="no memory version 9"):
        mem.revert(9)


def test_people_are_kept_apart_and_any_sqlalchemy_url_works(tmp_path):
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    Memory.load("kim", url=url).update(["노인정에 다니심"], operator="append-only")
    Memory.load("lee", url=url).update(["딸이 서울에 사심"], operator="append-only")
    assert Memory.load("kim", url=url).sentences == ["노인정에 다니심"]
    assert Memory.load("kim").sentences == []  # the default database is a different file
    assert MemoryStore(url).people() == ["kim", "lee"]


def test_a_crash_mid_update_leaves_the_previous_version_intact(monkeypatch):
    mem = Memory.load("kim")
    mem.update(["노인정에 다니심"], operator="lexical")

    def boom(self, db, version_id, ops):
        db.flush()  # the version row is already in the transaction when the crash comes
        raise RuntimeError("power cut")

    monkeypatch.setattr(MemoryStore, "_write_ops", boom)
    with pytest.raises(RuntimeError):
        mem.update(["노인정에 다니심", "식사를 잘 하심"], operator="lexical")
    monkeypatch.undo()
    fresh = Memory.load("kim")
    assert fresh.version == 1 and fresh.sentences == ["노인정에 다니심"]
    assert [v.version for v in fresh.history()] == [1]


def test_a_stale_memory_object_cannot_overwrite_a_newer_version():
    a = Memory.load("kim")
    b = Memory.load("kim")
    a.update(["노인정에 다니심"], operator="lexical")
    with pytest.raises(Conflict, match="reload"):
        b.update(["식사를 잘 하심"], operator="lexical")


def test_bad_input_to_update():
    mem = Memory.load("kim")
    with pytest.raises(InvalidInput, match="no sentences"):
        mem.update([], operator="lexical")
    with pytest.raises(InvalidInput, match="not one string"):
        mem.update("노인정에 다니심", operator="lexical")
    with pytest.raises(InvalidInput, match="person id"):
        Memory.load("  ")
    with pytest.warns(DialogWarning, match="truncated to 200"):
        res = mem.update(["아주 긴 문장 " * 60], operator="lexical")
    assert len(res.new_memory[0]) <= 200 and res.warnings
    assert any("truncated" in n for n in mem.history()[-1].notes)
