"""Helpers for the storage tests: send Segment messages through the real batch path and read
back what the database holds."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Table, func, select

from leadrelay.adapters import tables
from leadrelay.adapters.segment import to_event
from leadrelay.domain.clock import UTC
from leadrelay.domain.model import Event, Lead
from leadrelay.domain.playbook import Playbook
from leadrelay.services import leads as lead_service
from leadrelay.services.ingest import IngestResult, ingest
from leadrelay.services.unit_of_work import UnitOfWork

# A fixed "now" for the storage tests: every message below is timed shortly before it.
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

ALL_TABLES = (tables.accounts, tables.leads, tables.identities, tables.events, tables.stage_changes)


class Store:
    """The system under test, driven as the services drive it, plus read-back helpers."""

    def __init__(self, engine: Engine, playbook: Playbook) -> None:
        self.engine, self.playbook = engine, playbook

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine)

    # --- writing through the use cases -------------------------------------------------
    def events(self, messages: Iterable[dict[str, Any]], now: datetime = NOW) -> list[Event]:
        return [to_event(message, self.playbook, now) for message in messages]

    def send(self, *messages: dict[str, Any], now: datetime = NOW, playbook: Playbook | None = None) -> IngestResult:
        """One batch, as the tracking API and the importers send it."""
        playbook = playbook or self.playbook
        return ingest(self.uow(), playbook, [to_event(m, playbook, now) for m in messages], now)

    def move(self, email: str, stage: str, *, by: str = "rep@seller.example", reason: str | None = None,
             now: datetime = NOW):  # type: ignore[no-untyped-def]
        return lead_service.move_lead(self.uow(), self.playbook, email, stage, by=by, reason=reason, now=now)

    # --- reading back -------------------------------------------------------------------
    def lead(self, email: str) -> Lead:
        with self.uow() as uow:
            lead = uow.leads.by_email(email)
        assert lead is not None, f"no lead {email}"
        return lead

    def view(self, email: str, now: datetime = NOW) -> lead_service.LeadView:
        return lead_service.view_lead(self.uow(), self.playbook, email, now)

    def history(self, email: str) -> list[tuple[str | None, str, str, str | None]]:
        lead = self.lead(email)
        with self.uow() as uow:
            return [(c["from_stage"], c["to_stage"], c["by"], c["reason"]) for c in uow.leads.history(lead.id)]  # type: ignore[arg-type]

    def rows(self, table: Table, order_by: str = "id") -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(select(table).order_by(table.c[order_by]))]

    def count(self, table: Table) -> int:
        with self.engine.connect() as connection:
            return connection.scalar(select(func.count()).select_from(table)) or 0

    def counts(self) -> dict[str, int]:
        return {table.name: self.count(table) for table in ALL_TABLES}

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """Every row of every table: equal snapshots mean nothing was written."""
        return {table.name: self.rows(table) for table in ALL_TABLES}

    def events_by_message(self) -> dict[str, dict[str, Any]]:
        return {row["message_id"]: row for row in self.rows(tables.events)}


# --- Segment messages ----------------------------------------------------------------------


def identify(message_id: str, at: str, *, user_id: str | None = None, anonymous_id: str | None = None,
             **traits: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "identify", "messageId": message_id, "timestamp": at, "traits": traits}
    if user_id:
        message["userId"] = user_id
    if anonymous_id:
        message["anonymousId"] = anonymous_id
    return message


def page(message_id: str, at: str, path: str, *, user_id: str | None = None,
         anonymous_id: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "page", "messageId": message_id, "timestamp": at, "properties": {"path": path}}
    if user_id:
        message["userId"] = user_id
    if anonymous_id:
        message["anonymousId"] = anonymous_id
    return message


def track(message_id: str, at: str, event: str, *, user_id: str | None = None, anonymous_id: str | None = None,
          **properties: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "track", "messageId": message_id, "timestamp": at, "event": event,
                               "properties": properties}
    if user_id:
        message["userId"] = user_id
    if anonymous_id:
        message["anonymousId"] = anonymous_id
    return message
