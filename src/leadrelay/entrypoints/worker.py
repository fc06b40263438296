"""The worker: fires SLA clocks as they come due, runs nurture sequences' due steps (while a mail
server is set), and delivers the outbox (webhooks, emails).
It runs inside `leadrelay serve` by default, woken at once by every commit that queues something;
`leadrelay worker` runs it as a process of its own (several may run against one PostgreSQL: each
item and each clock is taken by one)."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from leadrelay.adapters.email import SmtpSender, SmtpSettings
from leadrelay.adapters.webhooks import WebhookSender
from leadrelay.bootstrap import App
from leadrelay.domain.clock import utc_now
from leadrelay.services import nurture
from leadrelay.services.delivery import Deliverer, Policy
from leadrelay.services.personal_data import RETENTION_BATCH, apply_retention
from leadrelay.services.sla import sweep
from leadrelay.services.webhooks import UrlPolicy, delivery_guard

log = logging.getLogger("leadrelay.worker")


def deliverer(app: App) -> Deliverer:
    settings = app.settings
    email = None
    if settings.smtp_host:
        email = SmtpSender(SmtpSettings(
            host=settings.smtp_host, port=settings.smtp_port, security=settings.smtp_security,
            username=settings.smtp_username, password=settings.smtp_password, sender=settings.smtp_sender,
        ))
    return Deliverer(app.uow, webhooks=WebhookSender(timeout=settings.webhook_timeout,
                                                     guard=delivery_guard(UrlPolicy.of(settings))),  # where webhooks may go
                     email=email,
                     policy=Policy(max_attempts=settings.outbox_max_attempts,
                                   lease=timedelta(seconds=settings.outbox_lease_seconds),
                                   smtp_connections=settings.smtp_connections),
                     screen=lambda uow, items: nurture.screen(uow, app.playbook, items))


class NurtureStep:
    """Advances the nurture runs that are due; only while a mail server is set (otherwise runs wait
    where they are, rather than queue emails that would all go at once later)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.settings = nurture.NurtureSettings.of(app.settings)
        self.signer: nurture.LinkSigner | None = None

    def run(self) -> int:
        app = self.app
        if not app.settings.smtp_host or not app.playbook.sequences:
            return 0
        if self.signer is None:
            self.signer = nurture.link_signer(app.uow, app.settings, utc_now())
        return nurture.advance(app.uow, app.playbook, self.settings, self.signer, utc_now())


class RetentionStep:
    """Deletes the raw events older than `event_retention_days` (when set): at most a few batches
    a round, and a round at most every few minutes, so deliveries never wait on it."""

    EVERY = timedelta(minutes=5)
    BATCHES_PER_ROUND = 4

    def __init__(self, app: App) -> None:
        self.app = app
        self.next_at = utc_now()

    def run(self) -> int:
        days, now = self.app.settings.event_retention_days, utc_now()
        if days <= 0 or now < self.next_at:
            return 0
        deleted = apply_retention(self.app.uow, days, now, max_batches=self.BATCHES_PER_ROUND)
        # more left: the next round goes on at once; none: look again after a while
        self.next_at = now if deleted >= self.BATCHES_PER_ROUND * RETENTION_BATCH else now + self.EVERY
        if deleted:
            log.info("deleted %d events older than %d days (event_retention_days)", deleted, days)
        return deleted


class Worker:
    def __init__(self, app: App) -> None:
        self.app = app
        self.deliverer = deliverer(app)
        self.nurture = NurtureStep(app)
        self.retention = RetentionStep(app)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self.run, name="leadrelay-worker", daemon=True)

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        """Run in a thread of this process, woken by this process's commits."""
        self.app.outbox_written = self.wake
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self.deliverer.webhooks.close()

    def run(self) -> None:
        poll = self.app.settings.worker_poll_seconds
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                sweep(self.app.uow, self.app.playbook, utc_now())
                self.nurture.run()
                while self.deliverer.deliver_due() >= self.deliverer.policy.batch and not self._stopping.is_set():
                    pass
                self.retention.run()
            except Exception:  # noqa: BLE001 - a database hiccup must not end the worker
                log.exception("the worker's round failed; trying again in %s s", poll)
            self._wake.wait(poll)
