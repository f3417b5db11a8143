"""People and campaigns: phone numbers, CSV import (FILE:LINE:FIELD messages, all-or-nothing), schedule
expansion with quiet hours and preferred times, and when retries fall."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from haneul.carecall.campaigns import (
    CampaignSpec,
    QuietHours,
    RetryPolicy,
    Schedule,
    attempt_key,
    expand,
    retry_due,
)
from haneul.carecall.db import MIGRATIONS, people
from haneul.carecall.people import ImportProblems, import_csv, list_people, normalize_phone, parse_csv
from haneul.errors import InvalidInput

SEOUL = Schedule(start_date="2026-03-02").zone


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from haneul.platform.db import make_engine, migrate, version_table

    path = tmp_path_factory.mktemp("carecall-db") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    migrate(engine, MIGRATIONS, version_table=version_table("carecall"))
    engine.dispose()
    return path


@pytest.fixture
def engine(migrated: Path, tmp_path: Path) -> Iterator[Engine]:
    from haneul.platform.db import make_engine

    shutil.copy(migrated, tmp_path / "t.db")
    eng = make_engine(f"sqlite:///{tmp_path / 't.db'}")
    yield eng
    eng.dispose()


@pytest.mark.parametrize(("typed", "stored"), [
    ("010-1234-5678", "+821012345678"),
    ("010 1234 5678", "+821012345678"),
    ("+82 10-1234-5678", "+821012345678"),
    ("+82 010 1234 5678", "+821012345678"),
    ("02-123-4567", "+8221234567"),
    ("02-1234-5678", "+82212345678"),
    ("031-123-4567", "+82311234567"),
    ("070-1234-5678", "+827012345678"),
    ("sip:kim@pbx.example", "sip:kim@pbx.example"),
])
def test_phone_numbers_become_e164(typed: str, stored: str) -> None:
    assert normalize_phone(typed) == stored


@pytest.mark.parametrize("bad", ["010-12", "12345678", "099-123-4567", "010-1234-567a", "sip:nohost", "+1 202 555 0100"])
def test_bad_phone_numbers_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput, match="not a"):
        normalize_phone(bad)


GOOD = """name,phone,consent,consent_date,call_times,notes
김하늘,010-1111-2222,yes,2026-03-01,09:00;18:00,당뇨
이영호,02-333-4444,no,,,
박순자,sip:park@pbx.example,예,2026-03-01,9:30,
"""


def test_csv_import_stores_everyone_and_keeps_refusals(engine: Engine) -> None:
    stored = import_csv(engine, GOOD, team_id=None, source="people.csv")
    assert [(p.name, p.phone, p.consent, p.call_times) for p in stored] == [
        ("김하늘", "+821011112222", True, ("09:00", "18:00")),
        ("이영호", "+8223334444", False, ()),
        ("박순자", "sip:park@pbx.example", True, ("09:30",)),
    ]
    assert [p.can_call for p in list_people(engine)] == [True, False, True]
    assert stored[0].notes == "당뇨" and stored[0].consent_date == "2026-03-01"


def test_csv_problems_name_file_line_and_field_and_nothing_is_stored(engine: Engine) -> None:
    text = ("name,phone,consent\n"
            "김하늘,010-1111-2222,yes\n"
            ",010-1111-3333,yes\n"          # line 3: no name
            "이영호,010-12,no\n"             # line 4: malformed phone
            "박순자,010-1111-4444,maybe\n"   # line 5: consent not yes/no
            "최민준,010 1111 2222,yes\n")    # line 6: the same number as line 2, typed differently
    with pytest.raises(ImportProblems) as info:
        import_csv(engine, text, team_id=None, source="ward7.csv")
    assert str(info.value).splitlines() == [
        "ward7.csv:3:name: missing name",
        "ward7.csv:4:phone: '010-12' is not a Korean phone number (wrong prefix or length); "
        "write it as 010-1234-5678 or 02-123-4567",
        "ward7.csv:5:consent: 'maybe' is not yes/no",
        "ward7.csv:6:phone: duplicate phone +821011112222, also on line 2",
    ]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(people)).scalar_one() == 0  # the good row too


def test_csv_duplicate_of_a_stored_person_and_bad_header(engine: Engine) -> None:
    first = import_csv(engine, GOOD, team_id=None, source="a.csv")
    with pytest.raises(ImportProblems, match=rf"^b.csv:2:phone: duplicate phone \+821011112222, already "
                                             rf"registered as person {first[0].id}$"):
        import_csv(engine, "name,phone,consent\n정희,+82 10 1111 2222,no\n", team_id=None, source="b.csv")
    with pytest.raises(ImportProblems, match=r"^c.csv:1:consent: the header lacks column\(s\) consent"):
        parse_csv("name,phone\n정희,010-5555-6666\n", "c.csv")
    with pytest.raises(ImportProblems, match=r"c.csv:3:call_times: '25:00' is not a time of day"):
        parse_csv("name,phone,consent,call_times\n정희,010-5555-6666,yes,\n순자,010-5555-7777,yes,25:00\n", "c.csv")


def _local(slots: list) -> list[str]:
    return [s.at.strftime("%m-%d %H:%M") for s in slots]


def test_expansion_moves_slots_out_of_quiet_hours() -> None:
    schedule = Schedule(start_date="2026-03-02", times=("09:00", "18:00", "22:30"), days=2)
    slots = expand(schedule, QuietHours("21:00", "08:00"))
    # 22:30 falls in the quiet hours and waits until 08:00 the next morning
    assert _local(slots) == ["03-02 09:00", "03-02 18:00", "03-03 08:00", "03-03 09:00", "03-03 18:00",
                             "03-04 08:00"]
    moved = slots[2]
    assert (moved.planned, moved.day, moved.index) == ("2026-03-02T22:30+09:00", 0, 2)
    assert slots[0].at.utcoffset() == dt.timedelta(hours=9)
    assert _local(expand(schedule, None))[2] == "03-02 22:30"  # no quiet hours, no move
    # a daytime quiet period (lunch) and two slots moving to the same minute: one call
    lunch = expand(Schedule(start_date="2026-03-02", times=("12:10", "12:40"), days=1), QuietHours("12:00", "13:00"))
    assert _local(lunch) == ["03-02 13:00"]


def test_a_persons_preferred_times_replace_the_campaigns() -> None:
    schedule = Schedule(start_date="2026-03-02", times=("09:00", "18:00"), days=2, timezone="Asia/Seoul")
    assert _local(expand(schedule, QuietHours(), ["7:30", "10:15"])) == [
        "03-02 08:00", "03-02 10:15", "03-03 08:00", "03-03 10:15"]  # 07:30 is still quiet


def test_retries_every_m_minutes_up_to_n_and_never_in_quiet_hours() -> None:
    spec = CampaignSpec(name="ward 7", scenario="covid", schedule=Schedule(start_date="2026-03-02"),
                        retry=RetryPolicy(max_retries=2, every_minutes=30), quiet=QuietHours("21:00", "08:00"))

    def at(hhmm: str) -> float:
        return dt.datetime.fromisoformat(f"2026-03-02T{hhmm}:00+09:00").timestamp()

    def local(ts: float | None) -> str | None:
        return None if ts is None else dt.datetime.fromtimestamp(ts, SEOUL).strftime("%m-%d %H:%M")

    assert local(retry_due(at("09:01"), "no_answer", 0, spec)) == "03-02 09:31"
    assert local(retry_due(at("09:31"), "busy", 1, spec)) == "03-02 10:01"
    assert retry_due(at("10:01"), "no_answer", 2, spec) is None  # two retries spent
    assert retry_due(at("09:01"), "answered", 0, spec) is None
    assert retry_due(at("09:01"), "hung_up", 0, spec) is None  # not in the policy's `on`
    # 20:45 + 30 min = 21:15, inside the quiet hours: tomorrow at 08:00
    assert local(retry_due(at("20:45"), "no_answer", 0, spec)) == "03-03 08:00"


def test_campaign_spec_round_trips_and_refuses_bad_fields() -> None:
    spec = CampaignSpec(name="ward 7", scenario="elderly", schedule=Schedule(start_date="2026-03-02", days=5),
                        quiet=None)
    assert CampaignSpec.from_dict(spec.to_dict()) == spec
    assert spec.to_dict()["quiet"] is None
    for data, message in [
        ({"name": "x", "scenario": "covid"}, "needs 'schedule'"),
        ({"name": "x", "scenario": "nope", "schedule": {"start_date": "2026-03-02"}}, "nope"),
        ({"name": "x", "scenario": "covid", "schedule": {"start_date": "03/02"}}, "not a date"),
        ({"name": "x", "scenario": "covid", "schedule": {"start_date": "2026-03-02", "timezone": "Mars/Base"}},
         "unknown time zone"),
        ({"name": "x", "scenario": "covid", "schedule": {"start_date": "2026-03-02"}, "retry": {"max_retries": 99}},
         "max_retries"),
    ]:
        with pytest.raises(InvalidInput, match=message):
            CampaignSpec.from_dict(data)
    assert attempt_key(3, 14, "2026-03-02T09:00+09:00", 1) == "c3:p14:2026-03-02T09:00+09:00:t1"
