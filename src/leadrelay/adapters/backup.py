"""Backing up and restoring the embedded store (SQLite) with SQLite's online backup API.

A backup is taken in one step from one read transaction: in WAL mode readers never block the
writer, so a running server goes on storing while the copy is made, and the copy is the database
as it was at one commit (never half a batch). It is written beside the target under a temporary
name, checked (`PRAGMA integrity_check`) and only then renamed into place, so a failed backup
never leaves a truncated file where a good one was.

PostgreSQL is backed up with its own tools (`pg_dump` / `pg_restore`); see the deployment guide.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

MAGIC = b"SQLite format 3\x00"
POSTGRES_ADVICE = (
    "this database is PostgreSQL: back it up with PostgreSQL's own tools, e.g. "
    "`pg_dump --format=custom --file=leadrelay.dump DBNAME` and restore with "
    "`pg_restore --clean --if-exists --dbname=DBNAME leadrelay.dump` (see the deployment guide)"
)


class BackupRefused(ValueError):
    """The backup or restore cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class Copied:
    path: Path
    bytes: int
    tables: int
    leads: int | None  # rows in `leads`, when there is such a table
    events: int | None


def sqlite_path(database_url: str) -> Path:
    """The file of a SQLite URL; refuses PostgreSQL (and in-memory databases) with advice."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        raise BackupRefused(POSTGRES_ADVICE)
    if not url.database or url.database == ":memory:":
        raise BackupRefused("an in-memory database cannot be backed up")
    return Path(url.database).expanduser()


def _describe(connection: sqlite3.Connection, path: Path) -> Copied:
    problems = [row[0] for row in connection.execute("PRAGMA integrity_check")]
    if problems != ["ok"]:
        raise BackupRefused(f"{path}: the database is damaged: {'; '.join(problems[:5])}")
    names = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def count(table: str) -> int | None:
        return connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] if table in names else None

    return Copied(path, path.stat().st_size, len(names), count("leads"), count("events"))


def check(path: Path) -> Copied:
    """Open a backup read-only and check it: a SQLite file, undamaged, with LeadRelay's schema."""
    if not path.is_file():
        raise BackupRefused(f"{path}: no such file")
    with path.open("rb") as file:
        if file.read(len(MAGIC)) != MAGIC:
            raise BackupRefused(f"{path}: not a SQLite database (a LeadRelay backup is one)")
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        try:
            copied = _describe(connection, path)
            version = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.DatabaseError as error:
            raise BackupRefused(f"{path}: not a LeadRelay database ({error})") from None
        if version is None or copied.leads is None:
            raise BackupRefused(f"{path}: not a LeadRelay database (no schema version)")
        return copied
    finally:
        connection.close()


def backup(database_url: str, target: Path) -> Copied:
    """Copy the live SQLite database into `target` (replaced if it exists), consistently."""
    source_path = sqlite_path(database_url)
    if not source_path.is_file():
        raise BackupRefused(f"there is no database at {source_path} yet")
    target = target.expanduser()
    if target.is_dir():
        raise BackupRefused(f"{target}: is a folder; give a file name, e.g. {target / 'leadrelay-backup.db'}")
    if not target.parent.is_dir():
        raise BackupRefused(f"{target}: the folder {target.parent} does not exist")
    if target.exists() and target.resolve() == source_path.resolve():
        raise BackupRefused(f"{target}: is the database itself; back it up to another file")
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    source = sqlite3.connect(source_path, timeout=60)
    try:
        source.execute("PRAGMA busy_timeout = 60000")
        destination = sqlite3.connect(partial)
        try:
            source.backup(destination, pages=-1)  # one step, one read transaction: one commit's state
            destination.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
            copied = _describe(destination, partial)
        finally:
            destination.close()
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        source.close()
    return Copied(target, target.stat().st_size, copied.tables, copied.leads, copied.events)


def restore(backup_file: Path, database_url: str) -> Copied:
    """Replace the database's content by the backup's (checked first), in one transaction of the
    destination: the database is the old one or the backup's, never a mix."""
    backup_file = backup_file.expanduser()
    target = sqlite_path(database_url)
    check(backup_file)
    if target.exists() and target.resolve() == backup_file.resolve():
        raise BackupRefused(f"{backup_file}: is the database itself")
    target.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(f"{backup_file.resolve().as_uri()}?mode=ro", uri=True)
    try:
        destination = sqlite3.connect(target, timeout=60)
        try:
            destination.execute("PRAGMA busy_timeout = 60000")
            source.backup(destination, pages=-1)
            destination.execute("PRAGMA journal_mode = WAL")  # as LeadRelay runs it
            return _describe(destination, target)
        finally:
            destination.close()
    finally:
        source.close()
