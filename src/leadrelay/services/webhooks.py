"""Use cases on webhook subscriptions and the outbox they are delivered from."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from leadrelay.adapters.outbox import Item, Webhook
from leadrelay.adapters.webhooks import new_secret
from leadrelay.domain.errors import OutboxItemNotFound, WebhookNotFound
from leadrelay.services.unit_of_work import UnitOfWork


def create(uow: UnitOfWork, *, name: str, url: str, events: list[str], now: datetime) -> Webhook:
    """A new subscription with a new signing secret (shown to the caller once)."""
    with uow:
        webhook = uow.outbox.add_webhook(name=name, url=url, secret=new_secret(), events=sorted(set(events)), now=now)
        uow.commit()
    return webhook


def find(uow: UnitOfWork) -> list[Webhook]:
    with uow:
        return uow.outbox.webhooks()


def get(uow: UnitOfWork, webhook_id: int) -> Webhook:
    with uow:
        return _webhook(uow, webhook_id)


def change(uow: UnitOfWork, webhook_id: int, values: dict[str, Any]) -> Webhook:
    with uow:
        _webhook(uow, webhook_id)
        if "events" in values:
            values["events"] = sorted(set(values["events"]))
        webhook = uow.outbox.update_webhook(webhook_id, values)
        uow.commit()
    assert webhook is not None
    return webhook


def deliveries(uow: UnitOfWork, webhook_id: int, *, before: int | None, limit: int) -> list[dict[str, Any]]:
    """The subscription's delivery log, newest first: every attempt with its answer."""
    with uow:
        _webhook(uow, webhook_id)
        return uow.outbox.deliveries(webhook_id=webhook_id, before=before, limit=limit)


def outbox(uow: UnitOfWork, *, status: str | None, before: int | None, limit: int) -> list[Item]:
    with uow:
        return uow.outbox.page(status=status, webhook_id=None, before=before, limit=limit)


def retry(uow: UnitOfWork, item_id: int, now: datetime) -> Item:
    """Give a dead item another round of attempts, starting now."""
    with uow:
        if uow.outbox.get(item_id) is None:
            raise OutboxItemNotFound(f"no outbox item with id {item_id}")
        uow.outbox.retry(item_id, now)
        item = uow.outbox.get(item_id)
        uow.commit()
    assert item is not None
    return item


def _webhook(uow: UnitOfWork, webhook_id: int) -> Webhook:
    webhook = uow.outbox.webhook(webhook_id)
    if webhook is None:
        raise WebhookNotFound(f"no webhook with id {webhook_id}")
    return webhook
