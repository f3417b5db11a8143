"""Presets, their versions and the run log (HyperCLOVA §5: a prompt engineered in the Studio is kept,
compared with its earlier versions, shared and served).

A preset belongs to a team and has a name unique in it; what it says (instruction, examples, input
template, mode, model, parameters) lives in immutable versions, so saving adds version ``n + 1`` and a
run names the exact version it used. A preset is exported as one JSON document and imported back as a
new preset with the same versions; a fork copies the newest version into a new preset of a team the user
may write. Functions take keyword arguments and raise :class:`~haneul.errors.HaneulError` subclasses with
one-line messages.
"""

from __future__ import annotations

import difflib
import re
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from haneul.errors import Conflict, InvalidInput, NotFound
from haneul.studio.db import presets, runs, versions
from haneul.studio.prompt import INPUT_SLOT, MODES, Params, PromptSpec, parse_examples

__all__ = ["Studio", "VersionFields", "EXPORT_FORMAT", "VERSION_FIELDS"]

#: the ``format`` of an exported preset document
EXPORT_FORMAT = "haneul.studio.preset/1"
#: a version's content, in the order a diff lists it
VERSION_FIELDS = ("instruction", "examples", "input_template", "mode", "model", "params")
DEFAULT_MODEL = "smollm2-135m"
_NAME = re.compile(r"^\w[\w.-]{0,99}$")
MAX_TEXT = 200_000
MAX_EXAMPLES = 200


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or name.isdigit():
        raise InvalidInput(f"preset name {name!r} is invalid; use up to 100 letters, digits, '_', '.' or '-', "
                           "starting with a letter or digit, and not only digits")
    return name


@dataclass(frozen=True)
class VersionFields:
    """The content of one preset version, checked."""

    instruction: str = ""
    examples: tuple[dict[str, str], ...] = ()
    input_template: str = INPUT_SLOT
    mode: str = "completion"
    model: str = DEFAULT_MODEL
    params: Params = Params()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, base: VersionFields | None = None) -> VersionFields:
        """``data`` over ``base`` (the preset's newest version when saving): a field left out keeps
        ``base``'s value, ``params`` are merged key by key."""
        base = base or cls()
        unknown = sorted(set(data) - set(VERSION_FIELDS))
        if unknown:
            raise InvalidInput(f"unknown preset field {unknown[0]!r}; the fields are {', '.join(VERSION_FIELDS)}")
        values: dict[str, Any] = {}
        for key in ("instruction", "input_template", "mode", "model"):
            value = data.get(key, getattr(base, key))
            if not isinstance(value, str) or len(value) > MAX_TEXT:
                raise InvalidInput(f"{key} must be a string of at most {MAX_TEXT} characters; got {type(value).__name__}")
            values[key] = value
        if values["mode"] not in MODES:
            raise InvalidInput(f"mode {values['mode']!r} is unknown; use one of {', '.join(MODES)}")
        if not values["model"] or len(values["model"]) > 200:
            raise InvalidInput("model must name a model (see GET /api/v1/studio/models)")
        values["input_template"] = values["input_template"] or INPUT_SLOT
        examples = parse_examples(data["examples"]) if "examples" in data else \
            parse_examples(list(base.examples))
        if len(examples) > MAX_EXAMPLES:
            raise InvalidInput(f"{len(examples)} examples is too many; keep at most {MAX_EXAMPLES}")
        values["examples"] = tuple({"input": e.input, "output": e.output} for e in examples)
        params = data.get("params")
        if params is not None and not isinstance(params, Mapping):
            raise InvalidInput(f"params must be an object; got {type(params).__name__}")
        values["params"] = Params.from_dict(params, base=base.params)
        return cls(**values)

    def spec(self) -> PromptSpec:
        return PromptSpec.build(instruction=self.instruction, examples=list(self.examples),
                                input_template=self.input_template, mode=self.mode, params=self.params)

    def to_dict(self) -> dict[str, Any]:
        return {"instruction": self.instruction, "examples": [dict(e) for e in self.examples],
                "input_template": self.input_template, "mode": self.mode, "model": self.model,
                "params": self.params.to_dict()}


class Studio:
    """The preset store and run log over the server's database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -------------------------------------------------------------------------------------- presets
    def find(self, ref: str | int, *, teams: Collection[int] | None, prefer_team: int | None = None) -> int:
        """A preset's id from its id or name among ``teams`` (``None``: every team). A name several
        teams use resolves to ``prefer_team``'s preset, else it must be given by id."""
        text = str(ref)
        query = select(presets.c.id, presets.c.team_id)
        numeric = text.isascii() and text.isdigit() and len(text) < 19
        query = query.where(presets.c.id == int(text)) if numeric else query.where(presets.c.name == text)
        with self.engine.connect() as conn:
            rows = [r for r in conn.execute(query).all() if teams is None or r.team_id in teams]
        if len(rows) > 1:
            rows = [r for r in rows if r.team_id == prefer_team] or rows
        if not rows:
            raise NotFound(f"preset {text!r} not found; list presets with GET /api/v1/studio/presets")
        if len(rows) > 1:
            raise InvalidInput(f"{len(rows)} presets are named {text!r} in your teams; give its id instead")
        return int(rows[0].id)

    def team_of(self, preset_id: int) -> int | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(presets.c.team_id).where(presets.c.id == preset_id)).first()
        if row is None:
            raise NotFound(f"preset {preset_id} not found")
        return row.team_id

    def create(self, *, name: str, team_id: int | None, created_by: str, description: str = "",
               fields: Mapping[str, Any] | None = None, note: str = "") -> dict[str, Any]:
        """A new preset with its first version."""
        content = VersionFields.from_dict(fields or {})
        check_name(name)
        now = time.time()
        with self.engine.begin() as conn:
            self._check_free(conn, team_id, name)
            pid = int(conn.execute(insert(presets).values(
                team_id=team_id, name=name, description=description, created_by=created_by,
                created_at=now, updated_at=now)).inserted_primary_key[0])  # type: ignore[index]
            self._insert_version(conn, pid, 1, content, note=note, created_by=created_by, now=now)
        return self.get(pid)

    @staticmethod
    def _check_free(conn: Any, team_id: int | None, name: str) -> None:
        taken = conn.execute(select(presets.c.id).where(presets.c.team_id == team_id, presets.c.name == name)).first()
        if taken is not None:
            raise Conflict(f"the team already has a preset named {name!r}; pick another name")

    def get(self, preset_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(presets).where(presets.c.id == preset_id)).first()
            if row is None:
                raise NotFound(f"preset {preset_id} not found")
            latest = conn.execute(select(versions).where(versions.c.preset_id == preset_id)
                                  .order_by(versions.c.number.desc()).limit(1)).first()
        out = dict(row._mapping)
        out["latest"] = _version(latest) if latest is not None else None
        out["versions"] = latest.number if latest is not None else 0
        return out

    def list_presets(self, *, teams: Collection[int] | None) -> list[dict[str, Any]]:
        query = select(presets).order_by(presets.c.updated_at.desc(), presets.c.id.desc())
        if teams is not None:
            query = query.where(presets.c.team_id.in_(list(teams)))
        newest = select(versions.c.preset_id, func.max(versions.c.number).label("number")) \
            .group_by(versions.c.preset_id).subquery()
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
            ids = [r["id"] for r in rows]
            latest = {r.preset_id: (r.number, r.model) for r in conn.execute(
                select(versions.c.preset_id, versions.c.number, versions.c.model)
                .join(newest, (versions.c.preset_id == newest.c.preset_id) & (versions.c.number == newest.c.number))
                .where(versions.c.preset_id.in_(ids)))}
        for r in rows:
            r["versions"], r["model"] = latest.get(r["id"], (0, None))
        return rows

    def update(self, preset_id: int, *, name: str | None = None, description: str | None = None) -> dict[str, Any]:
        values: dict[str, Any] = {"updated_at": time.time()}
        with self.engine.begin() as conn:
            if name is not None:
                check_name(name)
                team = conn.execute(select(presets.c.team_id).where(presets.c.id == preset_id)).scalar()
                clash = conn.execute(select(presets.c.id).where(presets.c.team_id == team, presets.c.name == name,
                                                                presets.c.id != preset_id)).first()
                if clash is not None:
                    raise Conflict(f"the team already has a preset named {name!r}; pick another name")
                values["name"] = name
            if description is not None:
                values["description"] = description
            conn.execute(update(presets).where(presets.c.id == preset_id).values(**values))
        return self.get(preset_id)

    def delete(self, preset_id: int) -> None:
        with self.engine.begin() as conn:
            ids = [r.id for r in conn.execute(select(versions.c.id).where(versions.c.preset_id == preset_id))]
            if ids:  # the runs stay in the log, as ad-hoc ones
                conn.execute(update(runs).where(runs.c.preset_version_id.in_(ids)).values(preset_version_id=None))
            conn.execute(versions.delete().where(versions.c.preset_id == preset_id))
            conn.execute(presets.delete().where(presets.c.id == preset_id))

    # ------------------------------------------------------------------------------------- versions
    def _insert_version(self, conn: Any, preset_id: int, number: int, content: VersionFields, *, note: str,
                        created_by: str, now: float) -> None:
        if not isinstance(note, str) or len(note) > 2000:
            raise InvalidInput("note must be a string of at most 2000 characters")
        conn.execute(insert(versions).values(preset_id=preset_id, number=number, note=note, created_by=created_by,
                                             created_at=now, **content.to_dict()))

    def save_version(self, preset_id: int, *, fields: Mapping[str, Any], created_by: str,
                     note: str = "") -> dict[str, Any]:
        """Add the next version: ``fields`` over the newest version's content."""
        now = time.time()
        with self.engine.begin() as conn:
            latest = conn.execute(select(versions).where(versions.c.preset_id == preset_id)
                                  .order_by(versions.c.number.desc()).limit(1)).first()
            base = _fields(latest) if latest is not None else None
            content = VersionFields.from_dict(fields, base=base)
            number = (latest.number if latest is not None else 0) + 1
            self._insert_version(conn, preset_id, number, content, note=note, created_by=created_by, now=now)
            conn.execute(update(presets).where(presets.c.id == preset_id).values(updated_at=now))
        return self.version(preset_id, number)

    def versions(self, preset_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(versions).where(versions.c.preset_id == preset_id)
                                .order_by(versions.c.number)).all()
        return [_version(r) for r in rows]

    def version(self, preset_id: int, number: int | None = None) -> dict[str, Any]:
        """Version ``number`` of a preset (its newest when ``None``)."""
        query = select(versions).where(versions.c.preset_id == preset_id)
        query = query.where(versions.c.number == number) if number is not None else \
            query.order_by(versions.c.number.desc()).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"preset {preset_id} has no version {number}; list them with .../versions")
        return _version(row)

    def content(self, preset_id: int, number: int | None = None) -> tuple[int, VersionFields]:
        """A version's id and its checked content."""
        v = self.version(preset_id, number)
        return v["id"], VersionFields.from_dict({k: v[k] for k in VERSION_FIELDS})

    def diff(self, preset_id: int, a: int, b: int) -> dict[str, Any]:
        """What changed from version ``a`` to ``b``: each field that differs (parameters key by key)
        and a unified diff of the instruction."""
        va, vb = self.version(preset_id, a), self.version(preset_id, b)
        changes: dict[str, Any] = {}
        for key in VERSION_FIELDS:
            if key == "params":
                continue
            if va[key] != vb[key]:
                changes[key] = {"a": va[key], "b": vb[key]}
        pa, pb = va["params"], vb["params"]
        params = {k: {"a": pa.get(k), "b": pb.get(k)} for k in sorted(set(pa) | set(pb)) if pa.get(k) != pb.get(k)}
        text = "\n".join(difflib.unified_diff(
            va["instruction"].splitlines(), vb["instruction"].splitlines(),
            fromfile=f"v{a}/instruction", tofile=f"v{b}/instruction", lineterm=""))
        return {"a": a, "b": b, "changed": changes, "params": params, "instruction_diff": text,
                "same": not changes and not params}

    # ------------------------------------------------------------------------------- fork and files
    def fork(self, preset_id: int, *, team_id: int | None, name: str | None, created_by: str) -> dict[str, Any]:
        """A new preset in ``team_id`` whose version 1 is this preset's newest version."""
        source = self.get(preset_id)
        _, content = self.content(preset_id)
        if name is None:
            name = source["name"] if team_id != source["team_id"] else self._free_name(team_id, source["name"])
        note = f"forked from preset {source['id']} ({source['name']}) version {source['versions']}"
        return self.create(name=name, team_id=team_id, created_by=created_by, description=source["description"],
                           fields=content.to_dict(), note=note)

    def _free_name(self, team_id: int | None, name: str) -> str:
        with self.engine.connect() as conn:
            taken = {r.name for r in conn.execute(select(presets.c.name).where(presets.c.team_id == team_id))}
        stem = name[:90]
        for i in range(1, 10_000):
            candidate = f"{stem}-copy" if i == 1 else f"{stem}-copy{i}"
            if candidate not in taken:
                return candidate
        raise Conflict(f"no free name for a copy of {name!r}; give one")

    def export(self, preset_id: int) -> dict[str, Any]:
        """The preset and every version as one JSON-ready document (``format`` = :data:`EXPORT_FORMAT`)."""
        p = self.get(preset_id)
        return {"format": EXPORT_FORMAT, "name": p["name"], "description": p["description"],
                "versions": [{**{k: v[k] for k in VERSION_FIELDS}, "note": v["note"]} for v in self.versions(preset_id)]}

    def import_(self, document: Any, *, team_id: int | None, created_by: str, name: str | None = None) -> dict[str, Any]:
        """A new preset from an exported document, every version kept in order; the whole document is
        checked before anything is written."""
        if not isinstance(document, Mapping):
            raise InvalidInput(f"a preset document must be a JSON object; got {type(document).__name__}")
        if document.get("format") != EXPORT_FORMAT:
            raise InvalidInput(f"format {document.get('format')!r} is not a preset export; expected {EXPORT_FORMAT!r}")
        unknown = sorted(set(document) - {"format", "name", "description", "versions"})
        if unknown:
            raise InvalidInput(f"unknown field {unknown[0]!r} in the preset document")
        items = document.get("versions")
        if not isinstance(items, list) or not items:
            raise InvalidInput("the preset document has no versions; export a preset again")
        name = check_name(name if name is not None else document.get("name"))
        description = document.get("description", "")
        if not isinstance(description, str):
            raise InvalidInput("description must be a string")
        checked: list[tuple[VersionFields, str]] = []
        for i, item in enumerate(items, 1):
            if not isinstance(item, Mapping):
                raise InvalidInput(f"version {i} must be an object")
            body = dict(item)
            note = body.pop("note", "")
            try:
                checked.append((VersionFields.from_dict(body), note if isinstance(note, str) else ""))
            except InvalidInput as exc:
                raise InvalidInput(f"version {i}: {exc.message}") from None
        now = time.time()
        with self.engine.begin() as conn:
            self._check_free(conn, team_id, name)
            pid = int(conn.execute(insert(presets).values(
                team_id=team_id, name=name, description=description, created_by=created_by,
                created_at=now, updated_at=now)).inserted_primary_key[0])  # type: ignore[index]
            for number, (content, note) in enumerate(checked, 1):
                self._insert_version(conn, pid, number, content, note=note, created_by=created_by, now=now)
        return self.get(pid)

    # ------------------------------------------------------------------------------------------ runs
    def start_run(self, *, team_id: int | None, preset_version_id: int | None, source: str, created_by: str,
                  model: str, mode: str, prompt: Any, input: str, params: Params,
                  prompt_tokens: int | None) -> int:
        with self.engine.begin() as conn:
            return int(conn.execute(insert(runs).values(
                team_id=team_id, preset_version_id=preset_version_id, source=source, created_by=created_by,
                model=model, mode=mode, prompt=prompt, input=input, params=params.to_dict(), output="",
                prompt_tokens=prompt_tokens, status="running", created_at=time.time(),
            )).inserted_primary_key[0])  # type: ignore[index]

    def finish_run(self, run_id: int, *, status: str, output: str, latency_ms: float,
                   prompt_tokens: int | None = None, completion_tokens: int | None = None,
                   error: str | None = None) -> None:
        values: dict[str, Any] = {"status": status, "output": output, "latency_ms": latency_ms,
                                  "completion_tokens": completion_tokens, "error": error}
        if prompt_tokens is not None:
            values["prompt_tokens"] = prompt_tokens
        with self.engine.begin() as conn:
            conn.execute(update(runs).where(runs.c.id == run_id).values(**values))

    def run(self, run_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
        if row is None:
            raise NotFound(f"run {run_id} not found")
        return dict(row._mapping)

    def list_runs(self, *, teams: Collection[int] | None, preset_id: int | None = None,
                  limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        query = select(runs).order_by(runs.c.id.desc()).limit(limit).offset(offset)
        if teams is not None:
            query = query.where(runs.c.team_id.in_(list(teams)))
        if preset_id is not None:
            query = query.where(runs.c.preset_version_id.in_(
                select(versions.c.id).where(versions.c.preset_id == preset_id)))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]


def _version(row: Any) -> dict[str, Any]:
    out = dict(row._mapping)
    out["examples"] = list(out["examples"] or [])
    return out


def _fields(row: Any) -> VersionFields:
    return VersionFields.from_dict({k: getattr(row, k) for k in VERSION_FIELDS})
