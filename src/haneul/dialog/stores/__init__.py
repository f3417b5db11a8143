"""Where a person's memory is kept: one contract (:class:`BaseMemoryStore`), two stores.

:class:`MemoryStore` keeps it in any SQLAlchemy database and runs memory operators in this process;
:class:`HttpMemoryStore` keeps it on a haneul server, which runs them. :func:`open_store` picks one
the way ``Memory.load`` does: an explicit SQLAlchemy URL always wins (``sqlite:///...``,
``postgresql+psycopg://...``); otherwise, when a haneul server is configured (``HANEUL_SERVER``, also
set inside platform sessions), the server's routes (the platform database); otherwise the local
SQLite file ``HANEUL_HOME/dialog/memory.db``.
"""

from __future__ import annotations

from haneul.dialog.defaults import configured_server, default_url
from haneul.dialog.stores._base import BaseMemoryStore, MemoryVersion, OperatorSpec, check_person
from haneul.dialog.stores.http import HttpMemoryStore, operator_request
from haneul.dialog.stores.sql import DIALOG_MIGRATIONS, MemoryStore


def open_store(url: str | None = None) -> BaseMemoryStore:
    """The database at ``url`` when given, else the configured haneul server, else the local file."""
    if url:
        return MemoryStore(url)
    server = configured_server()
    if server is not None:
        return HttpMemoryStore(server)
    return MemoryStore(default_url())


__all__ = [
    "DIALOG_MIGRATIONS", "BaseMemoryStore", "HttpMemoryStore", "MemoryStore", "MemoryVersion", "OperatorSpec",
    "check_person", "default_url", "open_store", "operator_request",
]
