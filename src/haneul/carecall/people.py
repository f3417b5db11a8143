"""The people a campaign phones: validated records, Korean phone numbers, consent, and CSV import.

CareCall (Lee et al., 2020) phones people under monitoring whom public-health staff registered; here a
team registers them from a CSV file (``name,phone,consent,consent_date,call_times,notes``). A phone
number is stored as E.164 (``010-1234-5678`` becomes ``+821012345678``) or as a ``sip:`` URI, so one
person is one number however it was typed. Import is all-or-nothing: every bad row is reported as
``FILE:LINE:FIELD: problem`` and nothing is stored while any row is bad. A person without consent is
stored (staff may record the refusal) but never called.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, insert, select

from haneul.carecall.db import new_id, people
from haneul.errors import InvalidInput, NotFound

__all__ = ["CSV_FIELDS", "ImportProblems", "Person", "PersonIn", "get_person", "import_csv", "list_people",
           "normalize_phone", "parse_csv", "parse_times"]

#: the columns an import file may have; name, phone and consent are required
CSV_FIELDS = ("name", "phone", "consent", "consent_date", "call_times", "notes")
_YES = {"yes", "y", "예", "네"}
_NO = {"no", "n", "아니오", "아니요"}
_SIP = re.compile(r"^sips?:[^@\s]+@[^@\s]+$")
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class ImportProblems(InvalidInput):
    """An import file with bad rows: one ``FILE:LINE:FIELD: problem`` line each; nothing was stored."""


def normalize_phone(text: str) -> str:
    """A Korean phone number as E.164 (``010-1234-5678`` -> ``+821012345678``), or a ``sip:`` URI as is.

    Raises InvalidInput naming the number when it is neither a Korean number (mobile 01X, Seoul 02,
    area 0XX, internet 070) nor a SIP URI.
    """
    raw = (text or "").strip()
    if raw.lower().startswith(("sip:", "sips:")):
        if not _SIP.match(raw):
            raise InvalidInput(f"{raw!r} is not a SIP URI; write it as sip:user@host")
        return raw
    digits = re.sub(r"[\s\-.()]", "", raw)
    if digits.startswith("+82"):
        national = digits[3:]
        national = national[1:] if national.startswith("0") else national  # "+82 010-..." is a common slip
    elif digits.startswith("0082"):
        national = digits[4:].lstrip("0")
    elif digits.startswith("0"):
        national = digits[1:]
    else:
        raise InvalidInput(f"{raw!r} is not a Korean phone number; write it as 010-1234-5678 or +82 10 1234 5678")
    if not national.isdigit() or national.startswith("0"):
        raise InvalidInput(f"{raw!r} is not a Korean phone number; use digits, spaces and hyphens only")
    if national.startswith("1"):  # mobile: 10-XXXX-XXXX (and the old 11, 16-19 with 3-digit middles)
        ok = national[1] in "016789" and len(national) in (9, 10)
    elif national.startswith("2"):  # Seoul: 2-XXX(X)-XXXX
        ok = len(national) in (8, 9)
    elif national.startswith("70"):  # internet telephony
        ok = len(national) == 10
    else:  # other areas: 3 digits (31-64), then 3-4 + 4
        ok = national[:2] in {"31", "32", "33", "41", "42", "43", "44", "51", "52", "53", "54", "55",
                              "61", "62", "63", "64"} and len(national) in (9, 10)
    if not ok:
        raise InvalidInput(f"{raw!r} is not a Korean phone number (wrong prefix or length); "
                           "write it as 010-1234-5678 or 02-123-4567")
    return "+82" + national


def parse_times(text: str | Sequence[str]) -> list[str]:
    """``"9:00; 18:30"`` or ``["09:00", "18:30"]`` -> ``["09:00", "18:30"]`` (sorted, zero-padded)."""
    items = re.split(r"[;,\s]+", text) if isinstance(text, str) else list(text)
    out = set()
    for item in (i.strip() for i in items):
        if not item:
            continue
        m = _TIME.match(item)
        if not m:
            raise InvalidInput(f"{item!r} is not a time of day; write HH:MM, e.g. 09:00")
        out.add(f"{int(m.group(1)):02d}:{m.group(2)}")
    return sorted(out)


@dataclass(frozen=True)
class PersonIn:
    """A person to store, already validated."""

    name: str
    phone: str
    consent: bool
    consent_date: str | None = None
    call_times: tuple[str, ...] = ()
    notes: str = ""


@dataclass(frozen=True)
class Person:
    """A stored person; ``can_call`` is False without consent."""

    id: int
    team_id: int | None
    name: str
    phone: str
    consent: bool
    consent_date: str | None = None
    call_times: tuple[str, ...] = ()
    notes: str = ""
    created_at: float = 0.0

    @property
    def can_call(self) -> bool:
        return self.consent

    @classmethod
    def from_row(cls, row: Any) -> Person:
        """From a ``carecall_people`` row's mapping (or a dict with its columns)."""
        return cls(id=row["id"], team_id=row["team_id"], name=row["name"], phone=row["phone"],
                   consent=bool(row["consent"]), consent_date=row["consent_date"],
                   call_times=tuple(row["call_times"] or ()), notes=row["notes"] or "",
                   created_at=row["created_at"])

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "team_id": self.team_id, "name": self.name, "phone": self.phone,
                "consent": self.consent, "consent_date": self.consent_date, "call_times": list(self.call_times),
                "notes": self.notes, "created_at": self.created_at}


@dataclass
class _Problems:
    source: str
    lines: list[str] = field(default_factory=list)

    def add(self, line: int, name: str, message: str) -> None:
        self.lines.append(f"{self.source}:{line}:{name}: {message}")


def parse_csv(text: str, source: str = "<csv>", *, existing: Mapping[str, int] | None = None) -> list[PersonIn]:
    """Validate an import file; ImportProblems lists every bad field (``FILE:LINE:FIELD: ...``).

    ``existing`` maps the team's stored phone numbers to their person ids, so a row repeating one is a
    duplicate too. Line numbers count the header as line 1, as an editor shows them.
    """
    problems = _Problems(source)
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [f for f in ("name", "phone", "consent") if f not in header]
    unknown = [f for f in header if f not in CSV_FIELDS]
    if missing or unknown:
        if missing:
            problems.add(1, missing[0], f"the header lacks column(s) {', '.join(missing)}; "
                                        f"columns are {','.join(CSV_FIELDS)}")
        for name in unknown:
            problems.add(1, name, f"unknown column; columns are {','.join(CSV_FIELDS)}")
        raise ImportProblems("\n".join(problems.lines))
    reader.fieldnames = header
    seen: dict[str, int] = {}
    out: list[PersonIn] = []
    for row in reader:
        line = reader.line_num
        values = {k: (v or "").strip() for k, v in row.items() if k is not None}
        if not any(values.values()):
            continue  # a blank line
        before = len(problems.lines)
        name = values.get("name", "")
        if not name:
            problems.add(line, "name", "missing name")
        elif len(name) > 100:
            problems.add(line, "name", "longer than 100 characters")
        phone = ""
        try:
            phone = normalize_phone(values.get("phone", ""))
        except InvalidInput as exc:
            problems.add(line, "phone", exc.message if values.get("phone") else "missing phone number")
        if phone:
            if phone in seen:
                problems.add(line, "phone", f"duplicate phone {phone}, also on line {seen[phone]}")
            elif existing and phone in existing:
                problems.add(line, "phone", f"duplicate phone {phone}, already registered as person "
                                            f"{existing[phone]}")
            else:
                seen[phone] = line
        consent_text = values.get("consent", "").lower()
        consent = consent_text in _YES
        if consent_text not in _YES | _NO:
            problems.add(line, "consent", f"{values.get('consent', '')!r} is not yes/no")
        date = values.get("consent_date") or None
        if date is not None:
            try:
                date = dt.date.fromisoformat(date).isoformat()
            except ValueError:
                problems.add(line, "consent_date", f"{date!r} is not a date; write YYYY-MM-DD")
        times: list[str] = []
        try:
            times = parse_times(values.get("call_times", ""))
        except InvalidInput as exc:
            problems.add(line, "call_times", exc.message)
        if len(problems.lines) == before:
            out.append(PersonIn(name=name, phone=phone, consent=consent, consent_date=date,
                                call_times=tuple(times), notes=values.get("notes", "")))
    if problems.lines:
        raise ImportProblems("\n".join(problems.lines))
    return out


def import_csv(engine: Engine, text: str, *, team_id: int | None, source: str = "<csv>") -> list[Person]:
    """Validate ``text`` against the team's stored people and store every row in one transaction."""
    with engine.begin() as conn:
        existing = {r.phone: r.id for r in conn.execute(
            select(people.c.phone, people.c.id).where(_team(team_id)))}
        rows = parse_csv(text, source, existing=existing)
        return add_people(conn, rows, team_id=team_id)


def add_people(conn: Any, rows: Iterable[PersonIn], *, team_id: int | None) -> list[Person]:
    """Insert validated people inside the caller's transaction."""
    now = time.time()
    out = []
    for p in rows:
        values = {"team_id": team_id, "name": p.name, "phone": p.phone, "consent": p.consent,
                  "consent_date": p.consent_date, "call_times": list(p.call_times), "notes": p.notes,
                  "created_at": now}
        pid = new_id(conn.execute(insert(people).values(**values)))
        out.append(Person.from_row({"id": pid, **values}))
    return out


def _team(team_id: int | None) -> Any:
    return people.c.team_id.is_(None) if team_id is None else people.c.team_id == team_id


def list_people(engine: Engine, *, teams: set[int] | None = None) -> list[Person]:
    """Every person of ``teams`` (None: every team), by id."""
    query = select(people).order_by(people.c.id)
    if teams is not None:
        query = query.where(people.c.team_id.in_(teams))
    with engine.connect() as conn:
        return [Person.from_row(r._mapping) for r in conn.execute(query)]


def get_person(engine: Engine, person_id: int) -> Person:
    with engine.connect() as conn:
        row = conn.execute(select(people).where(people.c.id == person_id)).first()
    if row is None:
        raise NotFound(f"person {person_id} not found")
    return Person.from_row(row._mapping)
