"""Dialogue memory kept by a haneul server, through its ``/api/v1/dialog`` routes.

When a server is configured (``HANEUL_SERVER``, also set inside platform sessions), the memory lives
in the platform database and every read and write goes through the server's routes
(:mod:`haneul.dialog.api`). The two writes send what the caller asked for: ``update`` sends the
summary sentences and the operator's name and options, and *the server* runs the operator (a
classifier ``model`` name refers to the server's HANEUL_HOME); an operator object that cannot be
named that way (a ``ClassifierOperator`` holding its own weights) is refused. Both writes carry the
version the client last saw, so a stale client gets the same :class:`~haneul.errors.Conflict` as
with a local database. Transport and server errors come back as the same
:class:`~haneul.errors.HaneulError` subclasses, through the platform's HTTP client.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from haneul.dialog.defaults import server_url
from haneul.dialog.operators import LexicalOperator, LMOperator, Operator, UpdateResult
from haneul.dialog.stores._base import (
    BaseMemoryStore,
    MemoryVersion,
    OperatorSpec,
    check_person,
    check_summary,
)
from haneul.dialog.text import MAX_SENTENCE_CHARS, DialogWarning
from haneul.errors import InvalidInput, ServerUnavailable

PREFIX = "/api/v1/dialog"


def operator_request(operator: OperatorSpec | Operator | str) -> dict[str, Any]:
    """How an update names its operator to the server's update route."""
    spec = OperatorSpec.of(operator)
    op = spec.operator
    body: dict[str, Any] = {"model": str(spec.model), "endpoint": spec.endpoint, "lm_model": spec.lm_model,
                            "timeout": spec.timeout}
    if isinstance(op, str):
        return {"operator": op, **body}
    if isinstance(op, LMOperator) and hasattr(op.client, "base_url"):
        client = op.client
        return {**body, "operator": "lm", "endpoint": client.base_url, "lm_model": client.model, "timeout": client.timeout}
    if op.name in ("append-only", "latest-only") or (
        isinstance(op, LexicalOperator) and vars(op) == vars(LexicalOperator())
    ):
        return {"operator": op.name, **body}
    raise InvalidInput(
        f"a {type(op).__name__} object cannot run on the haneul server; name the operator instead "
        "(operator='classifier', model='NAME'), or pass url= to update a database directly"
    )


class HttpMemoryStore(BaseMemoryStore):
    """Versioned memory on a haneul server (default: ``HANEUL_SERVER``; token from ``HANEUL_TOKEN``)."""

    def __init__(self, server: str | None = None, *, token: str | None = None, timeout: float = 120.0):
        from haneul.platform.client import Client

        self.url = (server or server_url()).rstrip("/")
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
        person = check_person(person)
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
        operator: OperatorSpec | Operator | str = "auto",
        expected_version: int | None = None,
        session: str | None = None,
        max_chars: int = MAX_SENTENCE_CHARS,
    ) -> UpdateResult:
        path = f"/memory/{self._person(person)}/update"
        body = {"summary": check_summary(summary), **operator_request(operator), "session": session,
                "max_chars": max_chars, "expected_version": expected_version}
        result = UpdateResult.from_dict(self._call("POST", path, json=body))
        for note in result.warnings:  # the server saw them; the caller should too
            warnings.warn(note, DialogWarning, stacklevel=3)
        return result

    def revert(self, person: str, version: int, *, expected_version: int | None = None) -> MemoryVersion:
        body = {"version": int(version), "expected_version": expected_version}
        return MemoryVersion.from_dict(self._call("POST", f"/memory/{self._person(person)}/revert", json=body))
