"""A team's safety filter for the Studio (HyperCLOVA X §6, safety): text is checked before a prompt is
run (a blocked input is refused before any generation) and while the answer streams (a blocked answer is
cut off, replaced with a notice and its run logged as ``filtered``).

A filter is anything with ``check(text) -> Verdict``: the built-in :class:`WordList` (Korean and English
words, matched after :func:`normalize`), or a classifier registered under the entry-point group
``haneul.studio.filters`` (the entry point names a factory that takes no arguments and returns a
:class:`Filter`), picked by name in the team's settings. :class:`TeamFilters` keeps each team's settings
in the ``studio_filters`` table and hands out a :class:`Screen` for a run.
"""

from __future__ import annotations

import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import Engine, column, insert, select, table, update

from haneul.errors import InvalidInput, NotFound
from haneul.errors import register as register_error
from haneul.studio.db import filters

__all__ = ["GROUP", "Verdict", "Filter", "WordList", "Blocked", "Screen", "TeamFilters", "FilterSettings",
           "normalize", "register", "available", "resolve", "NOTICE"]

#: the entry-point group classifiers are registered in
GROUP = "haneul.studio.filters"
#: what replaces an answer the output filter stopped
NOTICE = "[This answer was withheld by the team's safety filter.]"
MAX_WORDS = 5000


@dataclass(frozen=True)
class Verdict:
    blocked: bool
    reason: str = ""


PASS = Verdict(False)


@runtime_checkable
class Filter(Protocol):
    def check(self, text: str) -> Verdict: ...


@register_error
class Blocked(InvalidInput):
    """The team's safety filter refused the input (a 400 the client rebuilds as this class)."""

    code = "content_filtered"
    http_status = 400


# zero-width and other format characters (U+200B, U+FEFF, soft hyphen) hide a word from a plain match
_FORMAT = {"Cf"}
_SEPARATORS = re.compile(r"[\W_]+")
_HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]")


def normalize(text: str) -> str:
    """NFKC (full-width letters, compatibility jamo and precomposed syllables become one form), case
    folded, format characters dropped and every run of non-letters, non-digits made one space."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(ch for ch in text if unicodedata.category(ch) not in _FORMAT)
    return _SEPARATORS.sub(" ", text).strip()


class WordList:
    """Blocks a text containing any of ``words``. A word with Hangul matches anywhere, spaces ignored
    (Korean glues particles to words: 바보야 holds 바보, and 바 보 is the same word spread out); any other
    word matches whole words only, so "ass" does not block "class"."""

    def __init__(self, words: Iterable[str]) -> None:
        self.words = tuple(dict.fromkeys(w for w in (normalize(x) for x in words) if w))
        self.longest = max((len(w) for w in self.words), default=0)
        korean = sorted({w.replace(" ", "") for w in self.words if _HANGUL.search(w)}, key=len, reverse=True)
        latin = [w for w in self.words if not _HANGUL.search(w)]
        self._korean = re.compile("|".join(map(re.escape, korean))) if korean else None
        self._latin = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in latin) + r")(?!\w)") if latin else None

    def check(self, text: str) -> Verdict:
        norm = normalize(text)
        if self._latin is not None and (m := self._latin.search(norm)):
            return Verdict(True, f"the word list matched {m.group(0)!r}")
        if self._korean is not None and (m := self._korean.search(norm.replace(" ", ""))):
            return Verdict(True, f"the word list matched {m.group(0)!r}")
        return PASS


# --------------------------------------------------------------------------------------------------
# classifiers by name

_REGISTERED: dict[str, Callable[[], Filter]] = {}
_LOADED: dict[str, Filter] = {}
_LOCK = threading.Lock()


def register(name: str, factory: Callable[[], Filter]) -> None:
    """Make a classifier available by name in this process (the entry-point group does it for
    installed packages)."""
    with _LOCK:
        _REGISTERED[name] = factory
        _LOADED.pop(name, None)


def available() -> list[str]:
    return sorted(set(_REGISTERED) | {ep.name for ep in entry_points(group=GROUP)})


def resolve(name: str) -> Filter:
    """The classifier registered as ``name``, made once per process."""
    with _LOCK:
        if name in _LOADED:
            return _LOADED[name]
        factory = _REGISTERED.get(name)
        if factory is None:
            found = [ep for ep in entry_points(group=GROUP) if ep.name == name]
            if not found:
                names = ", ".join(available()) or "none installed"
                raise InvalidInput(f"safety classifier {name!r} is unknown; available: {names}")
            factory = found[0].load()
        made = factory()
        if not isinstance(made, Filter):
            raise InvalidInput(f"safety classifier {name!r} has no check(text) method")
        _LOADED[name] = made
        return made


# --------------------------------------------------------------------------------------------------
# a team's settings and the screen a run uses


@dataclass(frozen=True)
class FilterSettings:
    words: tuple[str, ...] = ()
    classifier: str | None = None
    on_input: bool = True
    on_output: bool = True

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FilterSettings:
        words = data.get("words", [])
        if isinstance(words, str):  # the page's text box: one word or phrase a line, or comma-separated
            words = [w for line in words.splitlines() for w in line.split(",")]
        if not isinstance(words, list) or not all(isinstance(w, str) and len(w) <= 200 for w in words):
            raise InvalidInput("words must be a list of strings of at most 200 characters")
        words = [w.strip() for w in words if w.strip()]
        if len(words) > MAX_WORDS:
            raise InvalidInput(f"{len(words)} words is too many; keep at most {MAX_WORDS}")
        classifier = data.get("classifier") or None
        if classifier is not None:
            resolve(str(classifier))  # an unknown name is refused when saved, not at the first run
        return cls(tuple(words), classifier, bool(data.get("on_input", True)), bool(data.get("on_output", True)))

    def to_dict(self) -> dict[str, Any]:
        return {"words": list(self.words), "classifier": self.classifier, "on_input": self.on_input,
                "on_output": self.on_output}


class Screen:
    """The checks one run makes: :meth:`input` raises :class:`Blocked`, :meth:`output` returns a verdict
    for the answer so far (called after every token)."""

    def __init__(self, settings: FilterSettings) -> None:
        self.settings = settings
        self.words = WordList(settings.words) if settings.words else None
        self.classifier = resolve(settings.classifier) if settings.classifier else None

    def _check(self, text: str, *, tail: bool = False) -> Verdict:
        if self.words is not None:
            # while streaming, only the end of the answer can hold a new match: checking a window a few
            # times the longest word (room for spaces and hidden characters inside it) keeps a long
            # answer's checks linear rather than quadratic
            window = text[-(4 * self.words.longest + 64):] if tail else text
            verdict = self.words.check(window)
            if verdict.blocked:
                return verdict
        if self.classifier is not None:
            return self.classifier.check(text)
        return PASS

    def input(self, text: str) -> None:
        if self.settings.on_input:
            verdict = self._check(text)
            if verdict.blocked:
                raise Blocked(f"the input was refused by the team's safety filter: {verdict.reason}")

    def output(self, text: str) -> Verdict:
        return self._check(text, tail=True) if self.settings.on_output else PASS


class TeamFilters:
    """Each team's filter settings; a team without any runs unfiltered."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, team_id: int | None) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(filters).where(filters.c.team_id.is_(None) if team_id is None
                                                     else filters.c.team_id == team_id)).first()
        return dict(row._mapping) if row is not None else None

    def put(self, team_id: int | None, settings: FilterSettings, *, updated_by: str) -> dict[str, Any]:
        values = {**settings.to_dict(), "updated_by": updated_by, "updated_at": time.time()}
        where = filters.c.team_id.is_(None) if team_id is None else filters.c.team_id == team_id
        with self.engine.begin() as conn:
            # the platform's teams table (an admin may name any team id; a missing one is a 404, not a
            # foreign-key error)
            teams = table("teams", column("id"))
            if team_id is not None and conn.execute(select(teams.c.id).where(teams.c.id == team_id)).first() is None:
                raise NotFound(f"team {team_id} not found")
            if conn.execute(select(filters.c.id).where(where)).first() is None:
                conn.execute(insert(filters).values(team_id=team_id, **values))
            else:
                conn.execute(update(filters).where(where).values(**values))
        out = self.get(team_id)
        assert out is not None
        return out

    def screen(self, team_id: int | None) -> Screen | None:
        row = self.get(team_id)
        if row is None:
            return None
        settings = FilterSettings(tuple(row["words"] or ()), row["classifier"], row["on_input"], row["on_output"])
        if not settings.words and not settings.classifier:
            return None
        return Screen(settings)
