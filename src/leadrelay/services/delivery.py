"""Delivering the outbox: webhooks and emails written with the changes that caused them.

Each round claims the due items (a lease: an item whose worker dies falls due again), delivers
them outside any transaction, and records each result: delivered, due again after an
exponential backoff, or dead after the last attempt (visible in the API, and retried from there).
Delivery is at least once; receivers de-duplicate by the item's key (the Idempotency-Key header).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from leadrelay.adapters.email import DeliveryFailed, Email, SmtpSender
from leadrelay.adapters.outbox import Item, Webhook
from leadrelay.adapters.webhooks import Delivered, WebhookSender
from leadrelay.domain.clock import utc_now
from leadrelay.services.unit_of_work import UnitOfWork

log = logging.getLogger("leadrelay.delivery")


@dataclass(frozen=True)
class Policy:
    max_attempts: int = 8
    first_retry: timedelta = timedelta(seconds=10)
    longest_wait: timedelta = timedelta(hours=1)
    lease: timedelta = timedelta(minutes=2)
    batch: int = 50

    def next_attempt(self, attempts: int, now: datetime) -> datetime | None:
        """When to try again after `attempts` failed attempts (None: give up, the item is dead)."""
        if attempts >= self.max_attempts:
            return None
        wait = min(self.first_retry * 2 ** (attempts - 1), self.longest_wait)
        return now + wait * random.uniform(0.8, 1.2)  # spread, so failures do not all retry at once


class Deliverer:
    def __init__(self, uow_factory: Callable[[], UnitOfWork], *, webhooks: WebhookSender, email: SmtpSender | None,
                 policy: Policy = Policy()) -> None:
        self.uow_factory, self.webhooks, self.email, self.policy = uow_factory, webhooks, email, policy

    def deliver_due(self, now: datetime | None = None) -> int:
        """Deliver one round of due items; how many were tried."""
        now = now or utc_now()
        with self.uow_factory() as uow:
            # without a mail server, emails wait (no attempt counted) until one is set up
            kinds = ("webhook",) if self.email is None else ("webhook", "email")
            items = uow.outbox.claim(now, limit=self.policy.batch, lease=self.policy.lease, kinds=kinds)
            hooks = {hook.id: hook for hook in uow.outbox.webhooks()} if items else {}
            uow.commit()
        for item in items:
            result, permanent = self._send(item, hooks)
            at = utc_now()
            retry = None if permanent else self.policy.next_attempt(item.attempts, at)
            if not result.ok:
                log.warning("delivering %s %s (%s) failed, attempt %d: %s", item.kind, item.key, item.event,
                            item.attempts, result.error)
            with self.uow_factory() as uow:
                uow.outbox.record(item, ok=result.ok, status_code=result.status_code, error=result.error,
                                  duration_ms=result.duration_ms, at=at, next_attempt_at=retry)
                uow.commit()
        return len(items)

    def _send(self, item: Item, hooks: dict[int, Webhook]) -> tuple[Delivered, bool]:
        """The result, and whether a failure is final (trying again cannot help)."""
        if item.kind == "webhook":
            hook = hooks.get(item.webhook_id or 0)
            if hook is None or not hook.active:
                return Delivered(False, None, f"webhook {item.webhook_id} was deleted or deactivated", 0.0), True
            body = orjson.dumps(item.payload)
            return self.webhooks.send(hook.url, hook.secret, message_id=item.key, event_type=item.event, body=body,
                                      timestamp=int(utc_now().timestamp())), False
        assert self.email is not None  # emails are only claimed when there is a mail server
        payload = item.payload
        started = utc_now()
        try:
            self.email.send(Email(to=tuple(payload["to"]), subject=payload["subject"], text=payload["text"],
                                  message_id=item.key))
        except DeliveryFailed as error:
            return Delivered(False, None, str(error), _ms_since(started)), error.permanent
        return Delivered(True, None, None, _ms_since(started)), False


def _ms_since(started: datetime) -> float:
    return (utc_now() - started).total_seconds() * 1000
