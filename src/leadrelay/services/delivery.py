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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from leadrelay.adapters.email import DeliveryFailed, Email, SmtpSender, SmtpSession
from leadrelay.adapters.outbox import Item, Result, Webhook
from leadrelay.adapters.webhooks import Delivered, WebhookSender
from leadrelay.domain.clock import utc_now
from leadrelay.services.unit_of_work import UnitOfWork

log = logging.getLogger("leadrelay.delivery")
# Looks at the claimed items in the claiming transaction: those that must not go after all, with why.
Screen = Callable[[UnitOfWork, list[Item]], dict[int, str]]
EMAIL_RESULTS_PER_COMMIT = 50
EMAILS_PER_CONNECTION = 25  # a round opens one more connection for each this many emails (up to the policy's)


@dataclass(frozen=True)
class Policy:
    max_attempts: int = 8
    first_retry: timedelta = timedelta(seconds=10)
    longest_wait: timedelta = timedelta(hours=1)
    lease: timedelta = timedelta(minutes=2)
    batch: int = 50
    smtp_connections: int = 4  # at most this many SMTP connections at once, for a round with many emails

    def next_attempt(self, attempts: int, now: datetime) -> datetime | None:
        """When to try again after `attempts` failed attempts (None: give up, the item is dead)."""
        if attempts >= self.max_attempts:
            return None
        wait = min(self.first_retry * 2 ** (attempts - 1), self.longest_wait)
        return now + wait * random.uniform(0.8, 1.2)  # spread, so failures do not all retry at once


class Deliverer:
    def __init__(self, uow_factory: Callable[[], UnitOfWork], *, webhooks: WebhookSender, email: SmtpSender | None,
                 policy: Policy = Policy(), screen: Screen | None = None) -> None:
        self.uow_factory, self.webhooks, self.email, self.policy = uow_factory, webhooks, email, policy
        self.screen = screen

    def deliver_due(self, now: datetime | None = None) -> int:
        """Deliver one round of due items; how many were tried."""
        now = now or utc_now()
        with self.uow_factory() as uow:
            # without a mail server, emails wait (no attempt counted) until one is set up
            kinds = ("webhook",) if self.email is None else ("webhook", "email")
            items = uow.outbox.claim(now, limit=self.policy.batch, lease=self.policy.lease, kinds=kinds)
            hooks = {hook.id: hook for hook in uow.outbox.webhooks()} if items else {}
            refused = self.screen(uow, items) if self.screen is not None and items else {}
            for item in items:  # held back: recorded as dead, with why, and never sent
                if item.id in refused:
                    uow.outbox.record(item, ok=False, status_code=None, error=refused[item.id], duration_ms=0.0,
                                      at=now, next_attempt_at=None)
            uow.commit()
        todo = [item for item in items if item.id not in refused]
        self._deliver([item for item in todo if item.kind != "email"], hooks, None)
        emails = [item for item in todo if item.kind == "email"]
        if emails:
            assert self.email is not None  # emails are only claimed when there is a mail server
            # a few SMTP connections side by side (each sends its share, one email after another)
            lanes = max(1, min(self.policy.smtp_connections, len(emails) // EMAILS_PER_CONNECTION))
            shares = [emails[lane::lanes] for lane in range(lanes)]
            if lanes == 1:
                self._deliver(emails, hooks, self.email.session())
            else:
                with ThreadPoolExecutor(lanes, thread_name_prefix="leadrelay-smtp") as pool:
                    list(pool.map(lambda share: self._deliver(share, hooks, self.email.session()), shares))  # type: ignore[union-attr]
        return len(items)

    def _deliver(self, items: list[Item], hooks: dict[int, Webhook], session: SmtpSession | None) -> None:
        """Send `items` one after another (emails over `session`) and record each result."""
        results: list[Result] = []
        try:
            for item in items:
                result, permanent = self._send(item, hooks, session)
                at = utc_now()
                retry = None if permanent else self.policy.next_attempt(item.attempts, at)
                if not result.ok:
                    log.warning("delivering %s %s (%s) failed, attempt %d: %s", item.kind, item.key, item.event,
                                item.attempts, result.error)
                results.append(Result(item, result.ok, result.status_code, result.error, result.duration_ms, at, retry))
                # a webhook's result is recorded at once; emails' a few at a time (one commit for several)
                if item.kind != "email" or len(results) >= EMAIL_RESULTS_PER_COMMIT:
                    self._record(results)
        finally:
            if session is not None:
                session.close()
            self._record(results)

    def _record(self, results: list[Result]) -> None:
        if not results:
            return
        with self.uow_factory() as uow:
            uow.outbox.record_all(results)
            uow.commit()
        results.clear()

    def _send(self, item: Item, hooks: dict[int, Webhook], session: SmtpSession | None) -> tuple[Delivered, bool]:
        """The result, and whether a failure is final (trying again cannot help)."""
        if item.kind == "webhook":
            hook = hooks.get(item.webhook_id or 0)
            if hook is None or not hook.active:
                return Delivered(False, None, f"webhook {item.webhook_id} was deleted or deactivated", 0.0), True
            body = orjson.dumps(item.payload)
            return self.webhooks.send(hook.url, hook.secret, message_id=item.key, event_type=item.event, body=body,
                                      timestamp=int(utc_now().timestamp())), False
        assert session is not None  # emails are only claimed when there is a mail server
        payload = item.payload
        started = utc_now()
        try:
            session.send(Email(to=tuple(payload["to"]), subject=payload["subject"], text=payload["text"],
                               html=payload.get("html"), headers=payload.get("headers") or {},
                               message_id=item.key, sender=payload.get("sender")))
        except DeliveryFailed as error:
            return Delivered(False, None, str(error), _ms_since(started)), error.permanent
        return Delivered(True, None, None, _ms_since(started)), False


def _ms_since(started: datetime) -> float:
    return (utc_now() - started).total_seconds() * 1000
