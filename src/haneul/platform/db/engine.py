"""Engine creation and automatic migrations.

SQLite runs in WAL mode with ``synchronous=FULL`` so that a committed metric batch survives a crash
of the server or the machine; readers never block the writer. Alembic migrations ship inside the
package and are applied on every start (a no-op when the schema is current).
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from haneul.errors import DatabaseUnavailable, InvalidInput

MIGRATIONS = Path(__file__).with_name("migrations")


def make_engine(url: str) -> Engine:
    """An engine for ``url`` (SQLite in WAL mode, or a server database with pre-pinged pooled
    connections); a URL that does not parse or names a missing driver is a one-line InvalidInput."""
    try:
        parsed = make_url(url)
        parsed.get_dialect().import_dbapi()
    except ArgumentError:
        raise InvalidInput(f"HANEUL_DB_URL {url!r} is not a database URL; use sqlite:///PATH or "
                           "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE") from None
    except (ImportError, NoSuchModuleError) as exc:
        raise InvalidInput(f"HANEUL_DB_URL {safe_url(url)} needs a database driver that is not installed ({exc}); "
                           "for PostgreSQL: pip install 'haneul[postgres]' and a postgresql+psycopg:// URL") from None
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    # pre-ping: a connection the database dropped (a restart) is replaced, not handed to a request
    return create_engine(url, pool_pre_ping=True)


def safe_url(url: str) -> str:
    """``url`` with its password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparsable URL)"


def unreachable(url: str, exc: BaseException) -> DatabaseUnavailable:
    """The one-line error for a database that refused or dropped the connection."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return DatabaseUnavailable(f"the database {safe_url(url)} cannot be reached ({reason[0] if reason else exc}); "
                               "check HANEUL_DB_URL and that the database server is running")


def is_outage(exc: OperationalError) -> bool:
    """Whether ``exc`` says the database is away or busy (a refused or dropped connection, SQLite's
    "database is locked") rather than that a statement is wrong: SQLite reports a missing table as an
    OperationalError too, and that is a bug to show, not an outage to retry."""
    orig = exc.orig
    if isinstance(orig, sqlite3.OperationalError):
        return "locked" in str(orig) or "busy" in str(orig)
    return True


def migrate(engine: Engine, folder: Path | None = None, *, version_table: str = "alembic_version",
            revision: str = "heads") -> None:
    """Bring the schema to the newest revision (or to ``revision``, not beyond: a restore rebuilds the
    schema a backup was taken at before it copies the rows).

    With no ``folder`` this is the platform's own schema. A package with tables of its own (a server
    plugin) passes its folder of Alembic version scripts and a ``version_table`` of its own: its chain
    of revisions is then independent of the platform's, so a package uninstalled or disabled later
    leaves its tables and never blocks the platform's upgrades.
    """
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if folder is not None:
        cfg.set_main_option("version_path_separator", "os")  # folder names may hold spaces
        cfg.set_main_option("version_locations", str(folder))
    try:
        engine.connect().close()  # an unreachable database is one line here, not a traceback from Alembic
    except OperationalError as exc:
        raise unreachable(engine.url.render_as_string(hide_password=False), exc) from None
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        cfg.attributes["version_table"] = version_table
        command.upgrade(cfg, revision)


def version_table(package: str) -> str:
    """The Alembic version table of a package's own migrations."""
    return "alembic_version_" + re.sub(r"[^a-z0-9_]", "_", package.lower())
