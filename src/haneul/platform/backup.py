"""Backup and restore of a server's state: its database, its local artifacts and the local admin's token.

A backup is a folder: ``haneul.db`` (a portable SQLite copy of every table the database holds, the
platform's and every plugin's, taken in one read transaction so that it is one consistent snapshot
of a running server), ``artifacts/`` (the local artifact folder, hard-linked where it can be), the
local admin's token, and ``manifest.json``, written last: a folder without a manifest is an
incomplete backup. The copy's schema is made by the same Alembic migrations at the same revisions as
the source, so a restore can first rebuild exactly that schema on any database kind (SQLite or
PostgreSQL), copy the rows, and only then upgrade to the newest revisions this haneul knows.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Connection, Engine, MetaData, Table, func, insert, select, text
from sqlalchemy.exc import DBAPIError

from haneul.errors import Conflict, InvalidInput, PluginError
from haneul.io import atomic_write_text, sha256_file
from haneul.platform.credentials import ADMIN_TOKEN_FILE
from haneul.platform.db.engine import MIGRATIONS, make_engine, migrate, safe_url, version_table
from haneul.settings import Settings

__all__ = ["DATABASE", "MANIFEST", "Chain", "Manifest", "Progress", "backup", "chains", "read_manifest", "restore"]

MANIFEST = "manifest.json"
DATABASE = "haneul.db"
ARTIFACTS = "artifacts"
FORMAT = 1
#: rows read and written per statement: a metric_chunks table of millions of rows is never held whole
BATCH = 2000
PLATFORM = "platform"
PLATFORM_VERSION_TABLE = "alembic_version"

#: called as rows are copied: the table, the rows copied so far and the table's row count
Progress = Callable[[str, int, int], None]


def _quiet(_table: str, _done: int, _total: int) -> None:
    """The progress report of a caller that shows none."""


@dataclass(frozen=True)
class Chain:
    """One chain of Alembic migrations: the platform's own, or a plugin's, with its own version table."""

    name: str
    version_table: str
    folder: Path  # its version scripts

    def _config(self) -> Any:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.set_main_option("version_path_separator", "os")
        cfg.set_main_option("version_locations", str(self.folder))
        return cfg

    def knows(self, revision: str) -> bool:
        """Whether this haneul ships ``revision`` of the chain (a newer haneul's backup may not)."""
        from alembic.script import ScriptDirectory
        from alembic.util import CommandError

        try:
            return ScriptDirectory.from_config(self._config()).get_revision(revision) is not None
        except CommandError:
            return False

    def upgrade(self, engine: Engine, revision: str = "heads") -> None:
        """Apply this chain's migrations up to ``revision`` (default: its newest; a backup's revision
        rebuilds the schema the backup was taken at)."""
        folder = None if self.name == PLATFORM else self.folder
        migrate(engine, folder, version_table=self.version_table, revision=revision)


def chains(settings: Settings) -> dict[str, Chain]:
    """Every migration chain this haneul knows, by version table: the platform's, then each installed
    plugin's that has tables, disabled ones included when they load (their tables may be in the database
    all the same)."""
    from sqlalchemy.orm import sessionmaker

    from haneul.platform.executors import get_executor
    from haneul.platform.plugins import ServerContext, discover, load_plugins, parse_disabled
    from haneul.platform.service import Platform

    found = {PLATFORM_VERSION_TABLE: Chain(PLATFORM, PLATFORM_VERSION_TABLE, MIGRATIONS / "versions")}
    # plugins give their migrations folder only once built, and some need a platform to be built; this
    # one is never started (no home lock, no supervisor, no session touched)
    platform = Platform(settings, executor=get_executor("local"))
    try:
        def context(name: str) -> ServerContext:
            return ServerContext(name=name, settings=settings, engine=platform.engine,
                                 sessions=sessionmaker(platform.engine), artifacts=Path(settings.artifacts),
                                 platform=platform)

        disabled = parse_disabled(settings.disable_plugins)
        for name, entry in discover().items():
            try:
                (loaded,) = load_plugins(context, available={name: entry})
            except PluginError:
                if name in disabled:
                    continue  # disabled because it does not load: its tables, if any, are refused later
                raise
            if loaded.plugin.migrations is not None:
                table = version_table(name)
                found[table] = Chain(name, table, Path(loaded.plugin.migrations))
    finally:
        platform.engine.dispose()
    return found


@dataclass
class Manifest:
    """What ``manifest.json`` records about a backup."""

    haneul_version: str
    created_at: float
    database: str  # the source database's kind ("sqlite", "postgresql"); never its URL
    revisions: dict[str, str]  # version table -> revision
    chains: dict[str, str]  # version table -> chain name ("platform" or the plugin's)
    tables: dict[str, int]  # rows per table
    files: int = 0
    bytes: int = 0
    object_store: str | None = None  # checkpoints and artifacts live there, not in the backup
    missing_checkpoints: list[str] = field(default_factory=list)
    admin_token: bool = False
    format: int = FORMAT

    @property
    def rows(self) -> int:
        return sum(self.tables.values())


def read_manifest(src: Path) -> Manifest:
    """The manifest of the backup folder ``src``; a folder without one is refused in one line."""
    path = src / MANIFEST
    if not path.is_file() or not (src / DATABASE).is_file():
        raise InvalidInput(f"{src} is not a complete backup (no {MANIFEST} or {DATABASE}): the backup did not "
                           "finish or this is another folder; take a new one with haneul backup")
    try:
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            raise InvalidInput(f"{path} is backup format {data.get('format')!r}, which this haneul does not "
                               f"read (it reads format {FORMAT}); restore it with the haneul that took it")
        return Manifest(**data)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"{path} is not a valid backup manifest ({exc}); take a new backup") from None


# --------------------------------------------------------------------------------------------------
# backup


def backup(settings: Settings, dest: Path, *, progress: Progress = _quiet) -> Manifest:
    """Back up the server of ``settings`` (running or not) into the new or empty folder ``dest``."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InvalidInput(f"{dest} exists and is not an empty folder; name a new folder for the backup")
    dest.mkdir(parents=True, exist_ok=True)
    try:
        manifest = _backup_database(settings, dest, progress)
        _backup_files(settings, dest, manifest)
        atomic_write_text(dest / MANIFEST, json.dumps(asdict(manifest), indent=2) + "\n")
    except BaseException:
        _empty(dest)
        raise
    return manifest


def _backup_database(settings: Settings, dest: Path, progress: Progress) -> Manifest:
    known = chains(settings)
    source = make_engine(settings.database_url)
    target = make_engine(f"sqlite:///{dest / DATABASE}")
    try:
        with _snapshot(source) as src:
            meta = MetaData()
            meta.reflect(bind=src)
            revisions = _revisions(src, meta)
            unknown = sorted(set(revisions) - set(known))
            if unknown:
                raise InvalidInput(f"the database holds tables tracked in {', '.join(unknown)}, of a plugin not "
                                   "installed here; install it, then back up again")
            for table, revision in revisions.items():
                known[table].upgrade(target, revision)
            with target.begin() as dst:
                counts = _copy_rows(src, dst, meta, progress)
        return Manifest(haneul_version=_version(), created_at=time.time(), database=source.dialect.name,
                        revisions=revisions, chains={t: known[t].name for t in revisions}, tables=counts)
    finally:
        source.dispose()
        target.dispose()


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection whose every read sees one consistent snapshot while the server goes on writing:
    a read transaction in WAL mode on SQLite, REPEATABLE READ on PostgreSQL."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            # the driver would start no transaction before a SELECT: begin one explicitly
            conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("BEGIN")
            try:
                yield conn
            finally:
                conn.exec_driver_sql("ROLLBACK")
        else:
            conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn


def _is_version_table(name: str) -> bool:
    return name == PLATFORM_VERSION_TABLE or name.startswith(PLATFORM_VERSION_TABLE + "_")


def _chain_order(names: Iterable[str]) -> list[str]:
    """Version tables in the order their chains migrate: the platform's first (plugins' tables refer
    to its teams and sessions), then the plugins' by name."""
    return sorted(names, key=lambda name: (name != PLATFORM_VERSION_TABLE, name))


def _revisions(conn: Connection, meta: MetaData) -> dict[str, str]:
    """The revision each migration chain of the database is at, by version table."""
    out = {}
    for name in _chain_order(meta.tables):
        table = meta.tables[name]
        if _is_version_table(name):
            rows = conn.execute(select(table.c.version_num)).scalars().all()
            if len(rows) != 1:
                raise InvalidInput(f"the version table {name} holds {len(rows)} revisions, not one; start the "
                                   "server once so that it migrates, then back up")
            out[name] = rows[0]
    if PLATFORM_VERSION_TABLE not in out:
        raise InvalidInput("the database holds no haneul schema; check HANEUL_DB_URL and HANEUL_HOME")
    return out


def _copy_rows(src: Connection, dst: Connection, meta: MetaData, progress: Progress) -> dict[str, int]:
    """Copy every row of the tables of ``meta`` (read through ``src``) into the same tables of ``dst``,
    whose schema is at the same revisions, in foreign-key order and in batches. The version tables are
    left out: the migrations that made ``dst`` wrote them. Returns the rows per table."""
    targets = MetaData()
    targets.reflect(bind=dst)
    for table in targets.tables.values():
        for column in table.columns:
            if isinstance(column.type, JSON):
                column.type.none_as_null = True  # a NULL stays NULL, not the JSON text 'null'
    _clear(dst, targets)  # rows the migrations seeded (the "local" team) come from the source instead
    counts = {}
    for table in meta.sorted_tables:
        if _is_version_table(table.name):
            continue
        target = targets.tables.get(table.name)
        if target is None:
            raise InvalidInput(f"table {table.name} of the source is not in the schema its migrations make; "
                               "it was made outside haneul's migrations and cannot be copied")
        columns = [c for c in table.columns if c.name in target.c]
        total = src.execute(select(func.count()).select_from(table)).scalar_one()
        progress(table.name, 0, total)
        query = select(*columns).order_by(*(table.primary_key.columns or columns))
        done = 0
        for batch in src.execute(query, execution_options={"yield_per": BATCH}).partitions():
            dst.execute(insert(target), [dict(row._mapping) for row in batch])
            done += len(batch)
            progress(table.name, done, total)
        counts[table.name] = done
    return counts


def _clear(conn: Connection, meta: MetaData) -> None:
    """Delete every row of the tables of ``meta`` but the version tables, children first."""
    for table in reversed(meta.sorted_tables):
        if not _is_version_table(table.name):
            conn.execute(table.delete())


def _backup_files(settings: Settings, dest: Path, manifest: Manifest) -> None:
    manifest.files, manifest.bytes = _link_tree(Path(settings.artifacts), dest / ARTIFACTS)
    manifest.object_store = settings.artifact_url
    if manifest.object_store is None:
        manifest.missing_checkpoints = _missing_checkpoints(dest)
    token = Path(settings.home) / ADMIN_TOKEN_FILE
    if token.is_file():
        shutil.copy2(token, dest / ADMIN_TOKEN_FILE)
        os.chmod(dest / ADMIN_TOKEN_FILE, 0o600)
        manifest.admin_token = True


def _link_tree(src: Path, dst: Path) -> tuple[int, int]:
    """Hard-link (or, across filesystems, copy) every file under ``src`` to the same place under ``dst``;
    files in the middle of a write (a temporary sibling) or removed meanwhile are left out. Returns the
    files and bytes linked or copied."""
    files = size = 0
    for root, _dirs, names in os.walk(src):
        folder = dst / Path(root).relative_to(src)
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            if name.startswith(".") and name.endswith(".tmp"):
                continue  # an atomic write in progress; its final name is copied once renamed
            source, target = Path(root) / name, folder / name
            try:
                try:
                    os.link(source, target)
                except OSError as exc:
                    if isinstance(exc, FileNotFoundError):
                        raise
                    shutil.copy2(source, target)
            except FileNotFoundError:
                continue  # removed since the folder was listed
            files += 1
            size += target.stat().st_size
    return files, size


def _missing_checkpoints(dest: Path) -> list[str]:
    """Checkpoints the snapshot records whose file is not in the backup with its recorded sha256 (a
    checkpoint deleted between the snapshot and the copy of the files)."""
    engine = make_engine(f"sqlite:///{dest / DATABASE}")
    try:
        with engine.connect() as conn:
            records = conn.execute(text("SELECT session_id, name, sha256 FROM checkpoints "
                                        "ORDER BY session_id, name")).all()
    finally:
        engine.dispose()
    missing = []
    for session_id, name, digest in records:
        path = dest / ARTIFACTS / "sessions" / str(session_id) / "checkpoints" / name
        if not path.is_file() or sha256_file(path) != digest:
            missing.append(f"session {session_id} checkpoint {name!r}")
    return missing


# --------------------------------------------------------------------------------------------------
# restore


def restore(settings: Settings, src: Path, *, progress: Progress = _quiet) -> Manifest:
    """Restore the backup ``src`` into the home and database of ``settings``, which must hold nothing
    yet and have no server running. On any failure the database is left empty and the copied files
    removed."""
    from haneul.platform.service import HomeLock

    manifest = read_manifest(src)
    plan = _restore_plan(settings, manifest)
    lock = HomeLock(Path(settings.home))
    lock.acquire()  # a server running on this home refuses the restore here, in one line
    try:
        engine = make_engine(settings.database_url)
        try:
            _check_fresh(engine, settings)
            try:
                _restore_database(engine, src, plan, progress)
                _restore_files(settings, src)
            except BaseException as exc:
                _undo(engine, settings)
                if isinstance(exc, DBAPIError):
                    reason = str(exc.orig or exc).strip().splitlines()[0]
                    raise InvalidInput(f"restoring {src} failed ({reason}); the database was left empty: check "
                                       "that the backup is whole (take a new one), then restore again") from None
                raise
        finally:
            engine.dispose()
    finally:
        lock.release()
    return manifest


def _restore_plan(settings: Settings, manifest: Manifest) -> list[tuple[Chain, str]]:
    """Each chain of the backup with its revision, the platform's first; refused when this haneul
    lacks a chain's plugin or does not know its revision (a backup of a newer haneul)."""
    known = chains(settings)
    plan = []
    for table in _chain_order(manifest.revisions):
        revision, name = manifest.revisions[table], manifest.chains.get(table, table)
        chain = known.get(table)
        if chain is None:
            raise InvalidInput(f"the backup holds tables of plugin {name!r}, which is not installed here; "
                               "install it, then restore")
        if not chain.knows(revision):
            raise InvalidInput(f"the backup's {name} schema is at revision {revision!r}, newer than this haneul "
                               f"knows (it was taken by haneul {manifest.haneul_version}); upgrade haneul, then restore")
        plan.append((chain, revision))
    return plan


def _check_fresh(engine: Engine, settings: Settings) -> None:
    """Refuse a target that holds anything: rows in its database (but the "local" team migrations
    make), or files in its artifact folder."""
    from haneul.platform.accounts import LOCAL_TEAM

    where = safe_url(settings.database_url)
    with engine.connect() as conn:
        meta = MetaData()
        meta.reflect(bind=conn, only=lambda name, _meta: not _is_version_table(name))
        for table in meta.sorted_tables:
            query = select(func.count()).select_from(table)
            if table.name == "teams":
                query = query.where(table.c.name != LOCAL_TEAM)
            rows = conn.execute(query).scalar_one()
            if rows:
                raise Conflict(f"the database {where} already holds data ({table.name}: {rows} rows); restore "
                               "into an empty database (a new HANEUL_HOME, or a new HANEUL_DB_URL)")
    folder = Path(settings.artifacts)
    if folder.is_dir() and any(folder.iterdir()):
        raise Conflict(f"the artifact folder {folder} is not empty; restore into a new HANEUL_HOME")


def _restore_database(engine: Engine, src: Path, plan: Sequence[tuple[Chain, str]], progress: Progress) -> None:
    for chain, revision in plan:
        chain.upgrade(engine, revision)
    source = make_engine(f"sqlite:///{src / DATABASE}")
    try:
        with source.connect() as reader, engine.begin() as dst:
            meta = MetaData()
            meta.reflect(bind=reader)
            _copy_rows(reader, dst, meta, progress)
            if engine.dialect.name == "postgresql":
                _reset_sequences(dst, meta.sorted_tables)
    finally:
        source.dispose()
    for chain, _revision in plan:
        chain.upgrade(engine)  # an older backup restores into this newer haneul


def _undo(engine: Engine, settings: Settings) -> None:
    """After a failed restore: empty the database again and remove the files copied."""
    with engine.begin() as conn:
        meta = MetaData()
        meta.reflect(bind=conn)
        _clear(conn, meta)
    shutil.rmtree(settings.artifacts, ignore_errors=True)
    (Path(settings.home) / ADMIN_TOKEN_FILE).unlink(missing_ok=True)


def _reset_sequences(conn: Connection, tables: Sequence[Table]) -> None:
    """Point each table's id sequence past the ids copied in, so the next insert does not clash."""
    quote = conn.dialect.identifier_preparer.quote
    for table in tables:
        if "id" not in table.c or _is_version_table(table.name):
            continue
        sequence = conn.execute(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": quote(table.name)}).scalar()
        if sequence:
            conn.execute(text(f"SELECT setval(:s, COALESCE((SELECT max(id) FROM {quote(table.name)}), 0) + 1, false)"),
                         {"s": sequence})


def _restore_files(settings: Settings, src: Path) -> None:
    if (src / ARTIFACTS).is_dir():
        _link_tree(src / ARTIFACTS, Path(settings.artifacts))
    token = src / ADMIN_TOKEN_FILE
    if token.is_file():
        atomic_write_text(Path(settings.home) / ADMIN_TOKEN_FILE, token.read_text())
        os.chmod(Path(settings.home) / ADMIN_TOKEN_FILE, 0o600)


def _empty(folder: Path) -> None:
    """Remove what a failed backup wrote into ``folder`` (which it found empty)."""
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _version() -> str:
    from haneul import __version__

    return __version__

