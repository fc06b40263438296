"""Messages the tracking API refused, with the reason: kept so that whoever sends them can see why."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from leadrelay.adapters.tables import rejected_messages

MAX_KEPT_MESSAGE = 4096  # characters of the refused message that are kept


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    message: str  # the message as received (JSON text), cut at MAX_KEPT_MESSAGE characters
    message_id: str | None = None
    id: int | None = None
    received_at: datetime | None = None
    api_key_id: int | None = None


class RejectionRepository:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def add(self, rejections: Iterable[Rejection], *, api_key_id: int | None, now: datetime) -> None:
        rows = [
            {"received_at": now, "api_key_id": api_key_id, "message_id": _text(r.message_id), "reason": _text(r.reason),
             "message": _text(r.message[:MAX_KEPT_MESSAGE])}
            for r in rejections
        ]
        if rows:
            self.connection.execute(rejected_messages.insert(), rows)

    def page(self, *, before: int | None, limit: int) -> list[Rejection]:
        query = select(rejected_messages).order_by(rejected_messages.c.id.desc()).limit(limit)
        if before is not None:
            query = query.where(rejected_messages.c.id < before)
        return [_rejection(row) for row in self.connection.execute(query)]


def _text(value: str | None) -> str | None:
    """As a database can keep it: a refused message may hold what made it refused (a NUL)."""
    return None if value is None else value.replace("\x00", "\ufffd")


def _rejection(row: Any) -> Rejection:
    return Rejection(row.reason, row.message, row.message_id, row.id, row.received_at, row.api_key_id)
