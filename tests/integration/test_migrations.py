"""Alembic is the only way the schema changes: the migrations build exactly the tables the
code declares, and can be undone and redone (SQLite and PostgreSQL)."""

from __future__ import annotations

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

from leadrelay.adapters.database import alembic_config, migrate
from leadrelay.adapters.tables import metadata
from leadrelay.domain.playbook import Playbook

from .support import Store, identify

TABLES = set(metadata.tables)


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def _revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def test_the_migrations_build_exactly_the_schema_the_code_declares(engine: Engine) -> None:
    # `alembic check`: autogenerate finds nothing to add, drop or alter (raises if it does).
    command.check(alembic_config(engine))
    assert _tables(engine) == TABLES
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    assert _revision(engine) == head


def test_migrating_an_up_to_date_database_changes_nothing(engine: Engine, playbook: Playbook) -> None:
    store = Store(engine, playbook)
    store.send(identify("m-1", "2026-11-20T09:00:00Z", user_id="u-ann", email="ann@acme.io"))
    before = store.snapshot()

    migrate(engine)

    assert store.snapshot() == before


def test_downgrading_to_base_removes_every_table_and_upgrading_rebuilds_a_working_schema(
    engine: Engine, playbook: Playbook
) -> None:
    config = alembic_config(engine)

    command.downgrade(config, "base")
    assert _tables(engine) == set()
    assert _revision(engine) is None

    command.upgrade(config, "head")
    assert _tables(engine) == TABLES
    command.check(config)
    store = Store(engine, playbook)
    result = store.send(identify("m-1", "2026-11-20T09:00:00Z", user_id="u-ann", email="ann@acme.io"))
    assert result.leads_created == 1
