"""The audit log: who did what and when. Append-only: this repository adds and reads, nothing
else, and the database itself refuses UPDATE and DELETE on the table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from leadrelay.adapters.tables import audit_log


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None  # an action ("deal.move"), or a family of them ("deal.")
    subject: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class AuditRepository:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def add(self, *, at: datetime, actor: str, action: str, subject: str, detail: dict[str, Any] | None) -> None:
        self.connection.execute(
            insert(audit_log), {"at": at, "actor": actor, "action": action, "subject": subject, "detail": detail}
        )

    def page(self, filters: AuditFilter, *, before: int | None = None, limit: int = 50) -> list[AuditEntry]:
        """Newest first, `limit` entries with ids below `before`."""
        query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if before is not None:
            query = query.where(audit_log.c.id < before)
        if filters.actor is not None:
            query = query.where(audit_log.c.actor == filters.actor)
        if filters.action is not None:
            if filters.action.endswith("."):
                query = query.where(audit_log.c.action.startswith(filters.action, autoescape=True))
            else:
                query = query.where(audit_log.c.action == filters.action)
        if filters.subject is not None:
            query = query.where(audit_log.c.subject == filters.subject)
        if filters.since is not None:
            query = query.where(audit_log.c.at >= filters.since)
        if filters.until is not None:
            query = query.where(audit_log.c.at < filters.until)
        return [AuditEntry(**row._mapping) for row in self.connection.execute(query)]
