"""Dialogue memory kept by a haneul server: the HTTP side of :func:`haneul.dialog.memory.open_store`.

When a server is configured (``HANEUL_SERVER``, also set inside platform sessions), the memory lives
in the platform database and every read and write goes through the server's ``/api/v1/dialog``
routes (:mod:`haneul.dialog.api`). :class:`HttpMemoryStore` offers the read methods of
:class:`~haneul.dialog.memory.MemoryStore` (``latest``, ``get``, ``history``, ``people``) and, in
place of the raw ``append_version`` write, the two writes a client may ask for: ``update`` (the
server runs the named operator on the summary sentences) and ``revert``. Both carry the version the
client last saw, so a stale client gets the same :class:`~haneul.errors.Conflict` as with a local
database. Transport and server errors come back as the same :class:`~haneul.errors.HaneulError`
subclasses, through the platform's HTTP client.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from haneul.dialog.memory import MemoryVersion
from haneul.dialog.operators import UpdateResult
from haneul.dialog.text import MAX_SENTENCE_CHARS
from haneul.errors import InvalidInput, ServerUnavailable

PREFIX = "/api/v1/dialog"


class HttpMemoryStore:
    """Versioned memory on a haneul server (default: ``HANEUL_SERVER``; token from ``HANEUL_TOKEN``)."""

    remote = True  # Memory sends updates and reverts here instead of writing versions itself

    def __init__(self, server: str | None = None, *, token: str | None = None, timeout: float = 120.0):
        from haneul.platform.client import Client
        from haneul.settings import get_settings

        self.url = (server or get_settings().server_url).rstrip("/")
        # an LM operator may wait `timeout` seconds on its endpoint inside the server: allow for it
        self.client = Client(self.url, token=token or os.environ.get("HANEUL_TOKEN") or None, timeout=timeout)

    def __repr__(self) -> str:
        return f"HttpMemoryStore({self.url!r})"

    def close(self) -> None:
        self.client.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            return self.client.request_json(method, PREFIX + path, **kwargs)
        except ServerUnavailable:
            raise ServerUnavailable(
                f"cannot reach the haneul server at {self.url} that keeps the dialogue memory; start it with "
                "`haneul server`, or unset HANEUL_SERVER to keep memory in the local file"
            ) from None

    @staticmethod
    def _person(person: str) -> str:
        # the server routes on the decoded path, where a "/" would change the route
        if "/" in person:
            raise InvalidInput(f"person id {person!r} cannot contain '/' when memory is kept by a haneul server; "
                               "use another id")
        return quote(person, safe="")

    # -- reads
    def latest(self, person: str) -> MemoryVersion | None:
        body = self._call("GET", f"/memory/{self._person(person)}")
        if int(body["version"]) == 0:
            return None
        return MemoryVersion(person=body["person"], version=int(body["version"]), sentences=list(body["sentences"]),
                             created_at=float(body.get("created_at") or 0.0))

    def get(self, person: str, version: int) -> MemoryVersion:
        return MemoryVersion.from_dict(self._call("GET", f"/memory/{self._person(person)}/versions/{int(version)}"))

    def history(self, person: str) -> list[MemoryVersion]:
        return [MemoryVersion.from_dict(v) for v in self._call("GET", f"/memory/{self._person(person)}/history")]

    def people(self) -> list[str]:
        return list(self._call("GET", "/memory")["people"])

    # -- writes
    def update(
        self,
        person: str,
        summary: Sequence[str],
        *,
        expected_version: int,
        operator: str = "auto",
        model: str = "default",
        endpoint: str | None = None,
        lm_model: str | None = None,
        timeout: float = 30.0,
        session: str | None = None,
        max_chars: int = MAX_SENTENCE_CHARS,
    ) -> UpdateResult:
        body = {"summary": list(summary), "operator": operator, "model": model, "endpoint": endpoint,
                "lm_model": lm_model, "timeout": timeout, "session": session, "max_chars": max_chars,
                "expected_version": expected_version}
        return UpdateResult.from_dict(self._call("POST", f"/memory/{self._person(person)}/update", json=body))

    def revert(self, person: str, version: int, *, expected_version: int) -> MemoryVersion:
        body = {"version": int(version), "expected_version": expected_version}
        return MemoryVersion.from_dict(self._call("POST", f"/memory/{self._person(person)}/revert", json=body))
