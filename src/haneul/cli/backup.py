"""``haneul backup DEST`` and ``haneul restore-backup SRC``: a consistent snapshot of a server's state,
and a fresh home (SQLite or PostgreSQL) made from one. See :mod:`haneul.platform.backup`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from haneul.cli import output
from haneul.cli.options import JsonOpt

if TYPE_CHECKING:
    from haneul.platform.backup import Manifest


def register(app: typer.Typer) -> None:
    app.command("backup")(backup)
    app.command("restore-backup")(restore_backup)


def backup(
    dest: Path = typer.Argument(..., help="A new (or empty) folder to write the backup to."),
    as_json: JsonOpt = False,
) -> None:
    """Back up the server's database, local artifacts and local admin token into DEST.

    The server may keep running: every table (the platform's and every plugin's) is read in one
    consistent snapshot and written to DEST/haneul.db, a portable SQLite file; the artifact folder is
    hard-linked (copied across filesystems) to DEST/artifacts; DEST/manifest.json is written last.
    Checkpoints and artifacts kept in an object store (HANEUL_ARTIFACT_ROOT=s3://...) are not copied.
    Uses the database and home of HANEUL_DB_URL and HANEUL_HOME.
    """
    from haneul.platform.backup import backup as take_backup
    from haneul.settings import get_settings

    with _progress() as progress:
        manifest = take_backup(get_settings(), dest, progress=progress)
    _report(manifest, f"backup of {manifest.database} written to {dest}", as_json)


def restore_backup(
    src: Path = typer.Argument(..., help="A backup folder written by haneul backup."),
    as_json: JsonOpt = False,
) -> None:
    """Restore a backup into a fresh home: the database and home of HANEUL_DB_URL and HANEUL_HOME.

    Stop the server first: a server running on HANEUL_HOME refuses the restore. The target must be
    empty (no user, session or other row in its database, no file in its artifact folder). The
    backup's schema is rebuilt, its rows copied in one transaction and the schema upgraded to this
    haneul's newest; a failure leaves the database empty. SQLite and PostgreSQL restore into either,
    so this also moves a server from SQLite to PostgreSQL.
    """
    from haneul.platform.backup import restore
    from haneul.platform.db.engine import safe_url
    from haneul.settings import get_settings

    settings = get_settings()
    with _progress() as progress:
        manifest = restore(settings, src, progress=progress)
    _report(manifest, f"restored {src} into {safe_url(settings.database_url)} (home {settings.home})", as_json)


@contextmanager
def _progress() -> Iterator[Callable[[str, int, int], None]]:
    """A progress line per table on stderr, shown while its rows are copied."""
    tasks: dict[str, object] = {}
    with output.progress(transient=True) as bar:
        def report(table: str, done: int, total: int) -> None:
            if table not in tasks:
                tasks[table] = bar.add_task(table, total=total)
            bar.update(tasks[table], completed=done)  # type: ignore[arg-type]

        yield report


def _report(manifest: Manifest, headline: str, as_json: bool) -> None:
    from dataclasses import asdict

    if as_json:
        output.print_json(asdict(manifest))
        return
    where = f", artifacts in {manifest.object_store} not copied" if manifest.object_store else ""
    output.say(f"{headline}: {len(manifest.tables)} tables, {manifest.rows} rows, {manifest.files} files "
               f"({manifest.bytes} bytes){where}")
    for missing in manifest.missing_checkpoints:
        output.note(f"warning: {missing} was deleted while the backup ran; the backup has its record "
                    "but not its file", style="yellow")
