"""The unit of work: one transaction per use case, and the only place that commits."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy import Connection, Engine

from leadrelay.adapters.repository import LeadRepository


class UnitOfWork:
    leads: LeadRepository
    connection: Connection

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __enter__(self) -> UnitOfWork:
        self.connection = self.engine.connect()
        self.connection.begin()
        self.leads = LeadRepository(self.connection)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        try:
            self.connection.rollback()  # whatever was not committed is undone
        finally:
            self.connection.close()

    def commit(self) -> None:
        self.connection.commit()
