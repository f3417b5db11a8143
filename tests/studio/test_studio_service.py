"""Presets and their versions on the database: versions are immutable and numbered, a diff names each
changed field and shows the instruction's unified diff, a fork copies the newest version into another
team, an export imports back to the same content, and a bad document is refused in one line."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from haneul.errors import Conflict, InvalidInput, NotFound
from haneul.studio.service import EXPORT_FORMAT, Studio


@pytest.fixture
def studio(tmp_path: Path) -> Studio:
    from haneul.platform.db import make_engine
    from haneul.platform.db.engine import migrate, version_table
    from haneul.studio.db import MIGRATIONS

    # the PostgreSQL database the suite's fixture made when HANEUL_TEST_POSTGRES_URL is set, else SQLite
    engine = make_engine(os.environ.get("HANEUL_DB_URL") or f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    migrate(engine, MIGRATIONS, version_table=version_table("studio"))
    from haneul.platform.accounts import Accounts

    accounts = Accounts(engine)
    for team in ("red", "blue"):
        accounts.create_team(team)
    return Studio(engine)


FIRST: dict[str, Any] = {"instruction": "감정을 분류하세요.\n한 단어로 답하세요.", "examples": [{"input": "좋다", "output": "긍정"}],
                         "input_template": "입력: {input}", "model": "tiny-ko", "params": {"temperature": 0.0, "stop": ["###"]}}


def test_versions_diff_and_immutability(studio: Studio) -> None:
    p = studio.create(name="sentiment", team_id=1, created_by="a", fields=FIRST, note="first")
    pid = p["id"]
    assert p["versions"] == 1 and p["latest"]["params"]["temperature"] == 0.0
    v2 = studio.save_version(pid, fields={"instruction": "감정을 분류하세요.\n긍정 또는 부정으로 답하세요.",
                                          "params": {"max_tokens": 8}}, created_by="b", note="stricter")
    assert v2["number"] == 2
    # fields left out keep version 1's values; params merge key by key
    assert v2["examples"] == FIRST["examples"] and v2["params"]["stop"] == ["###"] and v2["params"]["max_tokens"] == 8
    assert studio.version(pid, 1)["instruction"] == FIRST["instruction"]  # version 1 is untouched
    assert [v["number"] for v in studio.versions(pid)] == [1, 2]

    d = studio.diff(pid, 1, 2)
    assert set(d["changed"]) == {"instruction"} and not d["same"]
    assert d["params"] == {"max_tokens": {"a": 128, "b": 8}}
    assert d["instruction_diff"].splitlines() == [
        "--- v1/instruction", "+++ v2/instruction", "@@ -1,2 +1,2 @@", " 감정을 분류하세요.",
        "-한 단어로 답하세요.", "+긍정 또는 부정으로 답하세요."]
    assert studio.diff(pid, 2, 2)["same"]
    studio.save_version(pid, fields={"model": "other-lm"}, created_by="b")
    listed = studio.list_presets(teams={1})
    assert [(p["name"], p["versions"], p["model"]) for p in listed] == [("sentiment", 3, "other-lm")]
    with pytest.raises(NotFound):
        studio.diff(pid, 1, 4)
    with pytest.raises(Conflict):
        studio.create(name="sentiment", team_id=1, created_by="a")
    studio.create(name="sentiment", team_id=2, created_by="a")  # unique per team only
    with pytest.raises(InvalidInput, match="is invalid"):
        studio.create(name="bad/name", team_id=1, created_by="a")
    with pytest.raises(InvalidInput, match="unknown preset field 'instructions'"):
        studio.save_version(pid, fields={"instructions": "x"}, created_by="a")
    assert len(studio.versions(pid)) == 3  # a refused save adds nothing


def test_fork_export_import_round_trip(studio: Studio) -> None:
    pid = studio.create(name="qa", team_id=1, created_by="a", fields=FIRST)["id"]
    studio.save_version(pid, fields={"mode": "chat", "params": {"seed": 7}}, created_by="a", note="chat")

    same_team = studio.fork(pid, team_id=1, name=None, created_by="a")
    other_team = studio.fork(pid, team_id=2, name=None, created_by="b")
    assert same_team["name"] == "qa-copy" and other_team["name"] == "qa" and other_team["team_id"] == 2
    for fork in (same_team, other_team):
        assert fork["versions"] == 1
        assert fork["latest"]["mode"] == "chat" and fork["latest"]["params"]["seed"] == 7
        assert fork["latest"]["note"] == "forked from preset 1 (qa) version 2"

    doc = json.loads(json.dumps(studio.export(pid)))  # through JSON text, as a file would carry it
    assert doc["format"] == EXPORT_FORMAT and [v["note"] for v in doc["versions"]] == ["", "chat"]
    back = studio.import_(doc, team_id=2, created_by="c", name="qa-imported")
    assert back["versions"] == 2
    fields = ("instruction", "examples", "input_template", "mode", "model", "params", "note")
    for a, b in zip(studio.versions(pid), studio.versions(back["id"]), strict=True):
        assert {k: a[k] for k in fields} == {k: b[k] for k in fields}
    assert studio.export(back["id"]) == {**doc, "name": "qa-imported"}

    with pytest.raises(Conflict):
        studio.import_(doc, team_id=1, created_by="c")  # "qa" exists in team 1
    bad_docs = [
        ({**doc, "format": "other/1"}, "format 'other/1' is not a preset export"),
        ({**doc, "versions": []}, "has no versions"),
        ({**doc, "versions": [{**doc["versions"][0], "mode": "poem"}]}, "version 1: mode 'poem' is unknown"),
        ({**doc, "versions": [doc["versions"][0], {**doc["versions"][1], "params": {"top_p": 2}}]},
         "version 2: top_p=2.0 must be in"),
        ({**doc, "versions": [{**doc["versions"][0], "examples": [{"input": "x"}]}]},
         "version 1: example 1 must be an object"),
        ({**doc, "extra": 1}, "unknown field 'extra'"),
    ]
    for bad, message in bad_docs:
        with pytest.raises(InvalidInput, match=message) as err:
            studio.import_(bad, team_id=1, created_by="c", name="new-one")
        assert "\n" not in str(err.value)
    assert [p["name"] for p in studio.list_presets(teams={1})].count("new-one") == 0


def test_find_by_name_or_id_within_teams(studio: Studio) -> None:
    red = studio.create(name="p", team_id=1, created_by="a")["id"]
    blue = studio.create(name="p", team_id=2, created_by="a")["id"]
    assert studio.find("p", teams={1}) == red and studio.find(str(blue), teams={2}) == blue
    with pytest.raises(NotFound):
        studio.find(str(blue), teams={1})
    with pytest.raises(InvalidInput, match="2 presets are named 'p'"):
        studio.find("p", teams=None)
    assert studio.find("p", teams=None, prefer_team=2) == blue


def test_runs_are_logged_and_survive_their_preset(studio: Studio) -> None:
    from haneul.studio.prompt import Params

    pid = studio.create(name="logged", team_id=1, created_by="a", fields=FIRST)["id"]
    vid, _ = studio.content(pid)
    rid = studio.start_run(team_id=1, preset_version_id=vid, source="playground", created_by="a", model="tiny-ko",
                           mode="completion", prompt="입력: 좋다", input="좋다", params=Params(max_tokens=3),
                           prompt_tokens=2)
    assert studio.run(rid)["status"] == "running"
    studio.finish_run(rid, status="done", output="긍정", latency_ms=12.5, completion_tokens=1)
    run = studio.run(rid)
    assert (run["status"], run["output"], run["prompt_tokens"], run["completion_tokens"]) == ("done", "긍정", 2, 1)
    assert [r["id"] for r in studio.list_runs(teams={1}, preset_id=pid)] == [rid]
    assert studio.list_runs(teams={2}) == []
    studio.delete(pid)
    assert studio.run(rid)["preset_version_id"] is None  # the log keeps the run as an ad-hoc one
