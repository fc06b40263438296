"""The unit of work: one transaction per use case, and the only place that commits."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from sqlalchemy import Connection, Engine

from leadrelay.adapters.api_keys import ApiKeyRepository
from leadrelay.adapters.audit import AuditRepository
from leadrelay.adapters.deals import DealRepository
from leadrelay.adapters.outbox import OutboxRepository
from leadrelay.adapters.playbook_versions import PlaybookVersionRepository
from leadrelay.adapters.rejections import RejectionRepository
from leadrelay.adapters.repository import LeadRepository
from leadrelay.adapters.users import UserRepository


class UnitOfWork:
    leads: LeadRepository
    api_keys: ApiKeyRepository
    rejections: RejectionRepository
    deals: DealRepository
    outbox: OutboxRepository
    users: UserRepository
    playbook_versions: PlaybookVersionRepository
    audit: AuditRepository
    connection: Connection

    def __init__(self, engine: Engine, *, read_only: bool = False,
                 outbox_written: Callable[[], None] | None = None) -> None:
        """`read_only`: a use case that only reads; on SQLite it does not take the write lock,
        so it never waits for a writer. `outbox_written` is called after a commit that wrote
        outbox items (it wakes the worker)."""
        self.engine = engine
        self.read_only = read_only
        self.outbox_written = outbox_written

    def __enter__(self) -> UnitOfWork:
        self.connection = self.engine.connect()
        if self.read_only:
            self.connection.execution_options(read_only=True)
        self.connection.begin()
        self.leads = LeadRepository(self.connection)
        self.api_keys = ApiKeyRepository(self.connection)
        self.rejections = RejectionRepository(self.connection)
        self.deals = DealRepository(self.connection, self.leads)
        self.outbox = OutboxRepository(self.connection)
        self.users = UserRepository(self.connection)
        self.playbook_versions = PlaybookVersionRepository(self.connection)
        self.audit = AuditRepository(self.connection)
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
        if self.outbox.added:
            self.outbox.added = 0
            if self.outbox_written is not None:
                self.outbox_written()
