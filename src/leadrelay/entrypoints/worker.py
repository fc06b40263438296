"""The worker: fires SLA clocks as they come due, and delivers the outbox (webhooks, emails).
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
from leadrelay.services.delivery import Deliverer, Policy
from leadrelay.services.sla import sweep

log = logging.getLogger("leadrelay.worker")


def deliverer(app: App) -> Deliverer:
    settings = app.settings
    email = None
    if settings.smtp_host:
        email = SmtpSender(SmtpSettings(
            host=settings.smtp_host, port=settings.smtp_port, security=settings.smtp_security,
            username=settings.smtp_username, password=settings.smtp_password, sender=settings.smtp_sender,
        ))
    return Deliverer(app.uow, webhooks=WebhookSender(timeout=settings.webhook_timeout), email=email,
                     policy=Policy(max_attempts=settings.outbox_max_attempts,
                                   lease=timedelta(seconds=settings.outbox_lease_seconds)))


class Worker:
    def __init__(self, app: App) -> None:
        self.app = app
        self.deliverer = deliverer(app)
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
                while self.deliverer.deliver_due() >= self.deliverer.policy.batch and not self._stopping.is_set():
                    pass
            except Exception:  # noqa: BLE001 - a database hiccup must not end the worker
                log.exception("the worker's round failed; trying again in %s s", poll)
            self._wake.wait(poll)
