"""Shared fixtures: a fresh database on SQLite and on PostgreSQL, and the default playbook.

Every test that asks for `engine` (or `database_url`) runs twice: once on a new SQLite file in
its own tmp_path, once on PostgreSQL in a new schema created for that test alone (its name on
the connection's search_path, so the test sees nothing else) and dropped after it. The schema
is always built by the Alembic migrations (`migrate`), never by `metadata.create_all`, so the
tests exercise the migrations users run.

PostgreSQL is named by LEADRELAY_TEST_POSTGRES_URL (default: the development server). When it
cannot be reached the PostgreSQL tests FAIL, with a message saying how to start it: CI starts
it, and a silently skipped half of the suite would hide breakage. Deselect them on purpose
with `-m "not postgres"`.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError

from leadrelay.adapters.database import make_engine, migrate
from leadrelay.adapters.playbook_file import default_playbook_text, parse_playbook
from leadrelay.domain.playbook import Playbook

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SCHEMA_PREFIX = "leadrelay_test_"
LOCAL_HOSTS = {None, "", "localhost", "127.0.0.1", "::1"}

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def postgres_test_url() -> URL:
    raw = os.environ.get("LEADRELAY_TEST_POSTGRES_URL", "").strip() or DEFAULT_POSTGRES_URL
    if raw.startswith(("postgresql://", "postgres://")):
        raw = "postgresql+psycopg://" + raw.split("://", 1)[1]  # the driver LeadRelay ships with
    return make_url(raw)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Engine]:
    """An AUTOCOMMIT engine on the test server's database (to create and drop the per-test
    schemas); fails every PostgreSQL test, with a clear message, when the server is down."""
    url = postgres_test_url()
    admin = create_engine(url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
            if url.host in LOCAL_HOSTS:  # schemas left by runs on this machine that were killed
                names = connection.scalars(
                    text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :prefix"), {"prefix": SCHEMA_PREFIX + "%"}
                )
                for name in list(names):
                    found = re.fullmatch(SCHEMA_PREFIX + r"(\d+)_[0-9a-f]+", name)
                    if found and not _process_alive(int(found.group(1))):
                        connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    except SQLAlchemyError as error:
        admin.dispose()
        problem = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
    else:
        problem = None
    if problem is not None:
        pytest.fail(
            f"PostgreSQL is not reachable at {url.render_as_string(hide_password=True)} ({problem}).\n"
            "Start it (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start, as .ci/run does),"
            " point LEADRELAY_TEST_POSTGRES_URL at a server, or deselect these tests with -m 'not postgres'.",
            pytrace=False,
        )
    yield admin
    admin.dispose()


@pytest.fixture
def postgres_database(postgres_admin: Engine) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL schema that only this test sees (it is the only
    schema on the connections' search_path)."""
    name = f"{SCHEMA_PREFIX}{os.getpid()}_{uuid.uuid4().hex[:12]}"
    with postgres_admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{name}"'))
    try:
        # application_name marks the test's connections, so that none left open can block the drop
        url = postgres_test_url().update_query_dict({"options": f"-csearch_path={name}", "application_name": name})
        yield url.render_as_string(hide_password=False)
    finally:
        with postgres_admin.connect() as connection:
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :name"),
                {"name": name},
            )
            connection.execute(text("SET lock_timeout = '20s'"))
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a new, empty database (no schema yet), on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'leadrelay.db'}"
    return request.getfixturevalue("postgres_database")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A fresh database on each backend, its schema built by the Alembic migrations."""
    engine = make_engine(database_url)
    try:
        migrate(engine)
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def playbook() -> Playbook:
    """The built-in default playbook (what `leadrelay init` writes), parsed anew for each test."""
    return parse_playbook(default_playbook_text(), "<built-in playbook>")
