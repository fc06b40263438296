"""Engines for the embedded store (SQLite) and PostgreSQL, and the migrations that build them."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url


def _json_dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, json_serializer=_json_dumps, json_deserializer=orjson.loads)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection, _record):  # type: ignore[no-untyped-def]
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
            cursor.execute("PRAGMA synchronous=NORMAL")  # durable at each checkpoint; safe with WAL
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA cache_size=-65536")  # 64 MB of pages: batch writes touch many index pages
            # Checkpoint the WAL every ~40 MB rather than every 4 MB: a page written by many small
            # transactions (the server's) is copied back once per checkpoint, not once per few.
            cursor.execute("PRAGMA wal_autocheckpoint=10000")
            cursor.close()
            connection.isolation_level = None  # transactions are begun below, not by the driver

        @event.listens_for(engine, "begin")
        def _begin_immediate(connection):  # type: ignore[no-untyped-def]
            # Take the write lock when a unit of work starts, so what it reads is still true when
            # it writes: two processes never overwrite each other's changes to a lead. A unit of
            # work that only reads takes no lock (WAL: it sees the last commit, never waits).
            read_only = connection.get_execution_options().get("read_only")
            connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    engine = create_engine(
        url, json_serializer=_json_dumps, json_deserializer=orjson.loads, pool_pre_ping=True
    )

    @event.listens_for(engine, "connect")
    def _postgres_settings(connection, _record):  # type: ignore[no-untyped-def]
        # The batch look-ups (`= ANY(array)`) are prepared statements; a generic plan chosen
        # while a table was small stays a full scan as it grows. Plan each with its values.
        with connection.cursor() as cursor:
            cursor.execute("SET plan_cache_mode = force_custom_plan")
        connection.commit()

    return engine


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("leadrelay") / "migrations"))
    config.attributes["engine"] = engine
    return config


MIGRATION_LOCK = 7_446_013_201  # a PostgreSQL advisory lock: one process migrates at a time


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema (creating it if new). Several processes starting
    at once on PostgreSQL take turns: the first migrates, the others then find it done."""
    if engine.dialect.name != "postgresql":
        command.upgrade(alembic_config(engine), "head")
        return
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
        connection.commit()
        try:
            command.upgrade(alembic_config(engine), "head")
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
            connection.commit()


RETRYABLE_STATES = {"23505", "40001", "40P01"}  # unique violation, serialization failure, deadlock


def is_conflict(error: Exception) -> bool:
    """Another writer got there first (stored the same unique key, or locked the same rows):
    doing the work again, on what is stored now, is the right answer."""
    original = getattr(error, "orig", error)
    if getattr(original, "sqlstate", None) in RETRYABLE_STATES:
        return True
    return "UNIQUE constraint failed" in str(original)
