"""Running a report: the analytics tables are brought up to date (incrementally: the rows added
since the last report), then the report reads them in one read-only transaction."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Connection, Engine

from leadrelay.adapters.analytics import Refreshed, refresh
from leadrelay.domain.playbook import Playbook
from leadrelay.services.unit_of_work import UnitOfWork

T = TypeVar("T")


def refreshed(engine: Engine, playbook: Playbook, now: datetime,
              progress: Callable[[int, int], None] | None = None) -> Refreshed:
    """Bring the analytics tables up to date (a few index reads when nothing changed)."""
    return refresh(engine, playbook, now, progress=progress)


def run_report(engine: Engine, read_uow: Callable[[], UnitOfWork], playbook: Playbook, now: datetime,
               report: Callable[[Connection], T]) -> T:
    """`report(connection)` on up-to-date analytics tables."""
    refresh(engine, playbook, now)
    with read_uow() as uow:
        for_reports(uow.connection)
        return report(uow.connection)


def for_reports(connection: Connection) -> None:
    """Set up a read transaction for reports: on PostgreSQL without JIT compilation (a report's
    queries each run once, and compiling them costs more than it saves)."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL jit = off")
