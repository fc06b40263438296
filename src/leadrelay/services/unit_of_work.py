"""The unit of work: one transaction per use case, and the only place that commits."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy import Connection, Engine

from leadrelay.adapters.api_keys import ApiKeyRepository
from leadrelay.adapters.rejections import RejectionRepository
from leadrelay.adapters.repository import LeadRepository


class UnitOfWork:
    leads: LeadRepository
    api_keys: ApiKeyRepository
    rejections: RejectionRepository
    connection: Connection

    def __init__(self, engine: Engine, *, read_only: bool = False) -> None:
        """`read_only`: a use case that only reads; on SQLite it does not take the write lock,
        so it never waits for a writer."""
        self.engine = engine
        self.read_only = read_only

    def __enter__(self) -> UnitOfWork:
        self.connection = self.engine.connect()
        if self.read_only:
            self.connection.execution_options(read_only=True)
        self.connection.begin()
        self.leads = LeadRepository(self.connection)
        self.api_keys = ApiKeyRepository(self.connection)
        self.rejections = RejectionRepository(self.connection)
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
