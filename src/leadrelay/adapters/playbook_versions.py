"""The playbook's version history: each text the agreement ran with, who applied it and when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, insert, select

from leadrelay.adapters.tables import playbook_versions


@dataclass(frozen=True, slots=True)
class PlaybookVersion:
    id: int
    sha256: str
    name: str
    version: str
    text: str
    applied_at: datetime
    applied_by: str
    note: str | None


VERSIONS_LOCK = 0x4C52_0002  # the advisory lock that recording a version takes (PostgreSQL)


class PlaybookVersionRepository:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def take_turn(self) -> None:
        """Until this unit of work ends, others recording a version wait (processes started at once
        would each find no version yet and record the same one). On PostgreSQL a transaction-scoped
        advisory lock; SQLite's writer holds the database already."""
        if self.connection.dialect.name == "postgresql":
            self.connection.execute(select(func.pg_advisory_xact_lock(VERSIONS_LOCK)))

    def page(self, *, before: int | None = None, limit: int = 50) -> list[PlaybookVersion]:
        """Newest first."""
        query = select(playbook_versions).order_by(playbook_versions.c.id.desc()).limit(limit)
        if before is not None:
            query = query.where(playbook_versions.c.id < before)
        return [PlaybookVersion(**row._mapping) for row in self.connection.execute(query)]

    def get(self, version_id: int) -> PlaybookVersion | None:
        row = self.connection.execute(select(playbook_versions).where(playbook_versions.c.id == version_id)).first()
        return None if row is None else PlaybookVersion(**row._mapping)

    def before(self, version_id: int) -> PlaybookVersion | None:
        """The version applied just before this one."""
        row = self.connection.execute(
            select(playbook_versions).where(playbook_versions.c.id < version_id)
            .order_by(playbook_versions.c.id.desc()).limit(1)
        ).first()
        return None if row is None else PlaybookVersion(**row._mapping)

    def add(self, *, sha256: str, name: str, version: str, text: str, applied_by: str, note: str | None,
            now: datetime) -> None:
        self.connection.execute(insert(playbook_versions), {
            "sha256": sha256, "name": name, "version": version, "text": text, "applied_at": now,
            "applied_by": applied_by, "note": note,
        })
