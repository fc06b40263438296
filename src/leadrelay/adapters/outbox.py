"""The transactional outbox and webhook subscriptions.

An item is written in the same transaction as the change that caused it; the worker claims
due items (on PostgreSQL with `FOR UPDATE SKIP LOCKED`, so several workers never take the same
one), delivers them outside any transaction, and records the result. A claim is a lease: if
the worker dies mid-delivery, the item falls due again and is delivered again (receivers
de-duplicate by its key).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, bindparam, insert, select, update

from leadrelay.adapters.tables import deliveries, outbox, webhooks


@dataclass(frozen=True, slots=True)
class Webhook:
    id: int
    name: str
    url: str
    secret: str
    events: list[str]
    active: bool
    created_at: datetime

    def wants(self, event: str) -> bool:
        return self.active and ("*" in self.events or event in self.events)


@dataclass(frozen=True, slots=True)
class NewItem:
    key: str
    kind: str  # webhook or email
    event: str
    payload: dict[str, Any]
    webhook_id: int | None = None


@dataclass(frozen=True, slots=True)
class Item:
    id: int
    key: str
    kind: str
    event: str
    webhook_id: int | None
    payload: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class Result:
    """One delivery attempt's result: delivered, due again at `next_attempt_at`, or dead (None)."""

    item: Item
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: float
    at: datetime
    next_attempt_at: datetime | None


def _item(row: Row[Any]) -> Item:
    return Item(**row._mapping)


def _webhook(row: Row[Any]) -> Webhook:
    return Webhook(row.id, row.name, row.url, row.secret, list(row.events or []), row.active, row.created_at)


class OutboxRepository:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.added = 0  # items written in this unit of work (the worker is woken after commit)
        self._webhooks: list[Webhook] | None = None

    # --- webhook subscriptions ---------------------------------------------------------------
    def webhooks(self, *, active_only: bool = False) -> list[Webhook]:
        query = select(webhooks).order_by(webhooks.c.id)
        if active_only:
            if self._webhooks is None:
                self._webhooks = [_webhook(row) for row in self.connection.execute(query.where(webhooks.c.active))]
            return self._webhooks
        return [_webhook(row) for row in self.connection.execute(query)]

    def webhook(self, webhook_id: int) -> Webhook | None:
        row = self.connection.execute(select(webhooks).where(webhooks.c.id == webhook_id)).first()
        return None if row is None else _webhook(row)

    def add_webhook(self, *, name: str, url: str, secret: str, events: list[str], now: datetime) -> Webhook:
        row = self.connection.execute(
            insert(webhooks).returning(*webhooks.c),
            {"name": name, "url": url, "secret": secret, "events": events, "active": True, "created_at": now},
        ).one()
        return _webhook(row)

    def update_webhook(self, webhook_id: int, values: dict[str, Any]) -> Webhook | None:
        if values:
            self.connection.execute(update(webhooks).where(webhooks.c.id == webhook_id).values(values))
        return self.webhook(webhook_id)

    # --- items -------------------------------------------------------------------------------
    def add(self, items: Sequence[NewItem], now: datetime) -> None:
        if not items:
            return
        self.connection.execute(insert(outbox), [
            {"key": item.key, "kind": item.kind, "event": item.event, "webhook_id": item.webhook_id,
             "payload": item.payload, "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now}
            for item in items
        ])
        self.added += len(items)

    def claim(self, now: datetime, *, limit: int, lease: timedelta, kinds: Collection[str]) -> list[Item]:
        """Take up to `limit` due items of these kinds for delivery: each counts an attempt and is
        leased until `now + lease` (falls due again then, unless its result is recorded first)."""
        query = (select(outbox).where(outbox.c.status == "pending", outbox.c.next_attempt_at <= now,
                                      outbox.c.kind.in_(list(kinds)))
                 .order_by(outbox.c.next_attempt_at, outbox.c.id).limit(limit))
        if self.connection.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = self.connection.execute(query).all()
        if not rows:
            return []
        ids = [row.id for row in rows]
        self.connection.execute(update(outbox).where(outbox.c.id.in_(ids)).values(
            attempts=outbox.c.attempts + 1, next_attempt_at=now + lease))
        return [_item(row) for row in self.connection.execute(select(outbox).where(outbox.c.id.in_(ids))
                                                              .order_by(outbox.c.next_attempt_at, outbox.c.id))]

    def record(self, item: Item, *, ok: bool, status_code: int | None, error: str | None, duration_ms: float,
               at: datetime, next_attempt_at: datetime | None) -> None:
        """The result of one attempt: delivered, due again at `next_attempt_at`, or dead (None)."""
        self.connection.execute(insert(deliveries), {
            "outbox_id": item.id, "attempt": item.attempts, "at": at, "ok": ok, "status_code": status_code,
            "error": error, "duration_ms": duration_ms,
        })
        if ok:
            values: dict[str, Any] = {"status": "delivered", "delivered_at": at, "last_error": None}
        elif next_attempt_at is None:
            values = {"status": "dead", "last_error": error}
        else:
            values = {"next_attempt_at": next_attempt_at, "last_error": error}
        self.connection.execute(update(outbox).where(outbox.c.id == item.id, outbox.c.status == "pending").values(values))

    def record_all(self, results: Sequence[Result]) -> None:
        """The results of several attempts, as `record` writes each, in a few statements."""
        if not results:
            return
        self.connection.execute(insert(deliveries), [
            {"outbox_id": r.item.id, "attempt": r.item.attempts, "at": r.at, "ok": r.ok, "status_code": r.status_code,
             "error": r.error, "duration_ms": r.duration_ms} for r in results])
        pending = (outbox.c.id == bindparam("_id")) & (outbox.c.status == "pending")
        delivered = [{"_id": r.item.id, "_at": r.at} for r in results if r.ok]
        dead = [{"_id": r.item.id, "_error": r.error} for r in results if not r.ok and r.next_attempt_at is None]
        again = [{"_id": r.item.id, "_next": r.next_attempt_at, "_error": r.error}
                 for r in results if not r.ok and r.next_attempt_at is not None]
        if delivered:
            self.connection.execute(update(outbox).where(pending).values(
                status="delivered", delivered_at=bindparam("_at"), last_error=None), delivered)
        if dead:
            self.connection.execute(update(outbox).where(pending).values(status="dead", last_error=bindparam("_error")),
                                    dead)
        if again:
            self.connection.execute(update(outbox).where(pending).values(
                next_attempt_at=bindparam("_next"), last_error=bindparam("_error")), again)

    def get(self, item_id: int) -> Item | None:
        row = self.connection.execute(select(outbox).where(outbox.c.id == item_id)).first()
        return None if row is None else _item(row)

    def page(self, *, status: str | None, webhook_id: int | None, before: int | None, limit: int) -> list[Item]:
        query = select(outbox)
        if status is not None:
            query = query.where(outbox.c.status == status)
        if webhook_id is not None:
            query = query.where(outbox.c.webhook_id == webhook_id)
        if before is not None:
            query = query.where(outbox.c.id < before)
        return [_item(row) for row in self.connection.execute(query.order_by(outbox.c.id.desc()).limit(limit))]

    def retry(self, item_id: int, now: datetime) -> None:
        """A dead item is given another round of attempts, due now."""
        self.connection.execute(update(outbox).where(outbox.c.id == item_id, outbox.c.status == "dead").values(
            status="pending", attempts=0, next_attempt_at=now))

    def deliveries(self, *, webhook_id: int | None = None, outbox_id: int | None = None, before: int | None,
                   limit: int) -> list[dict[str, Any]]:
        """Delivery attempts, newest first: a subscription's, or an item's."""
        query = (select(deliveries, outbox.c.key, outbox.c.event, outbox.c.webhook_id)
                 .join(outbox, outbox.c.id == deliveries.c.outbox_id))
        if webhook_id is not None:
            query = query.where(outbox.c.webhook_id == webhook_id)
        if outbox_id is not None:
            query = query.where(deliveries.c.outbox_id == outbox_id)
        if before is not None:
            query = query.where(deliveries.c.id < before)
        rows = self.connection.execute(query.order_by(deliveries.c.id.desc()).limit(limit))
        return [dict(row._mapping) for row in rows]
