"""The tracking API's use case: messages in, events scored and leads moved before the answer.

Requests are many and small; one writer thread stores them. Batches that wait at the same
moment are written together, in one transaction (group commit), so a burst of requests costs
few transactions and never makes writers wait on one another. When too much is waiting, a new
batch is refused with `Overloaded` (the API answers 429 with Retry-After) instead of queueing
without bound.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from leadrelay.adapters.rejections import Rejection
from leadrelay.adapters.segment import MAX_MESSAGE_BYTES, InvalidMessage, to_event
from leadrelay.domain.clock import utc_now
from leadrelay.domain.errors import Overloaded
from leadrelay.domain.model import Event
from leadrelay.domain.playbook import Playbook
from leadrelay.services.ingest import ingest
from leadrelay.services.unit_of_work import UnitOfWork

log = logging.getLogger("leadrelay.tracking")


@dataclass
class Sorted:
    """A request's messages: the events to store, and the refused ones by position."""

    events: list[Event] = field(default_factory=list)
    rejected: list[tuple[int, Rejection]] = field(default_factory=list)


def sort_messages(messages: list[Any], playbook: Playbook, now: datetime, *, body_size: int | None = None) -> Sorted:
    """Each message becomes an event, or a rejection that says why; one never spoils another.
    (`body_size`: the size of the request they came in; when it is under the message limit,
    no message can be over it, and their sizes need not be measured.)"""
    measure = body_size is None or body_size > MAX_MESSAGE_BYTES
    result = Sorted()
    for index, message in enumerate(messages):
        try:
            if measure and (size := len(orjson.dumps(message))) > MAX_MESSAGE_BYTES:
                raise InvalidMessage(f"message larger than {MAX_MESSAGE_BYTES // 1024} KB ({size:,} bytes)")
            result.events.append(to_event(message, playbook, now))
        except InvalidMessage as error:
            message_id = message.get("messageId") if isinstance(message, dict) else None
            result.rejected.append((index, Rejection(
                str(error), orjson.dumps(message).decode(), message_id[:255] if isinstance(message_id, str) else None)))
    return result


@dataclass
class _Job:
    events: list[Event]
    rejections: list[Rejection]
    api_key_id: int | None
    future: Future[None] = field(default_factory=Future)


_STOP = _Job([], [], None)


class BatchWriter:
    """The one writer of a server process (see the module's text)."""

    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        playbook: Playbook,
        *,
        max_pending: int = 200,
        max_group_events: int = 5000,
    ) -> None:
        self.uow_factory, self.playbook = uow_factory, playbook
        self.max_group_events = max_group_events
        self._queue: queue.Queue[_Job] = queue.Queue(maxsize=max_pending)
        self._thread = threading.Thread(target=self._run, name="leadrelay-writer", daemon=True)
        # this process's own counts (for /metrics); only the writer thread changes them
        self.stored_events = 0
        self.deals_opened = 0

    def waiting(self) -> int:
        """Batches queued for the writer now."""
        return self._queue.qsize()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Write what is waiting, then stop."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    def submit(self, events: list[Event], rejections: Sequence[Rejection] = (), *,
               api_key_id: int | None = None) -> Future[None]:
        """Queue a batch; the future is done when it is committed (or failed)."""
        job = _Job(events, list(rejections), api_key_id)
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise Overloaded(f"{self._queue.maxsize} batches are waiting to be stored: try again in a moment") from None
        return job.future

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is _STOP:
                return
            jobs, count, stopping = [job], len(job.events), False
            while count < self.max_group_events:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stopping = True
                    break
                jobs.append(more)
                count += len(more.events)
            self._write(jobs)
            if stopping:
                return

    def _write(self, jobs: list[_Job]) -> None:
        now = utc_now()
        rejected = [job for job in jobs if job.rejections]
        if rejected:
            try:
                with self.uow_factory() as uow:
                    for job in rejected:
                        uow.rejections.add(job.rejections, api_key_id=job.api_key_id, now=now)
                    uow.commit()
            except Exception as error:  # noqa: BLE001 - the events still count
                log.error("recording %d refused messages failed: %s", sum(len(j.rejections) for j in rejected), error)
        self._store(jobs, now)

    def _store(self, jobs: list[_Job], now: datetime) -> None:
        try:
            result = ingest(self.uow_factory(), self.playbook, [event for job in jobs for event in job.events], now)
        except Exception as error:  # noqa: BLE001 - handed to the waiting requests
            if len(jobs) > 1:  # one batch's fault must not fail the others: store each alone
                for job in jobs:
                    for event in job.events:
                        event.lead, event.points = None, 0.0
                    self._store([job], now)
                return
            log.error("storing a batch of %d events failed: %s", len(jobs[0].events), error)
            jobs[0].future.set_exception(error)
            return
        self.stored_events += result.stored
        self.deals_opened += result.deals_opened
        for job in jobs:
            job.future.set_result(None)
