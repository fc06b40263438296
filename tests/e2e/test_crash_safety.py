"""Nothing acknowledged is lost: `leadrelay serve` (and `leadrelay worker`) run as users run them,
in processes of their own, and are killed with SIGKILL at random moments while clients post
tracking batches (or while webhooks are being delivered), again and again, on SQLite (WAL) and
PostgreSQL.

After every kill, read from the database itself: every event of every batch the server answered
2xx is stored, and every batch is stored whole or not at all (whatever the server was doing when
it died). After the last kill, a worker delivers every webhook that was committed: each at least
once, all under their idempotency key (a receiver de-duplicates by it). Every wait is bounded;
the number of kills is fixed and counted (3 during ingest on each database, 2 during delivery, in
the suite; LEADRELAY_TEST_CRASH_RUNS=20 for a longer run). Run with -s to read the counts.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from receivers import WebhookReceiver
from sqlalchemy import func, select, text

from leadrelay.adapters import tables
from leadrelay.adapters.database import make_engine
from leadrelay.adapters.playbook_file import default_playbook_text, parse_playbook
from leadrelay.adapters.segment import to_event
from leadrelay.domain.clock import utc_now
from leadrelay.services import webhooks as webhook_service
from leadrelay.services.ingest import ingest
from leadrelay.services.unit_of_work import UnitOfWork

from .test_outbox_crash import (
    WORKER,
    Deployment,
    deployed,
    kill,
    process,
    server,
    stop,
)
from .waiting import eventually

# Kept small in the suite (each run starts a server process); set LEADRELAY_TEST_CRASH_RUNS for more.
KILLS_DURING_INGEST = int(os.environ.get("LEADRELAY_TEST_CRASH_RUNS", "3"))
KILLS_DURING_DELIVERY = max(2, KILLS_DURING_INGEST // 2)
CLIENTS = 4
BATCH = 12  # messages a batch: an identify, then tracked events (some batches ask for a demo: a hand-off)


@dataclass
class Clients:
    """Client threads that post batches until told to stop; what was sent and what was acknowledged."""

    url: str
    write_key: str
    run: int
    sent: dict[str, list[str]] = field(default_factory=dict)  # batch -> its message ids
    acknowledged: set[str] = field(default_factory=set)  # batches answered 2xx
    stopping: threading.Event = field(default_factory=threading.Event)

    def batch(self, client: int, number: int) -> tuple[str, list[dict[str, object]]]:
        name = f"r{self.run}-c{client}-b{number}"
        user = f"u-{name}"
        messages: list[dict[str, object]] = [{"type": "identify", "userId": user, "messageId": f"{name}-0",
                                              "traits": {"email": f"{name}@crash.example", "country": "DE"}}]
        for index in range(1, BATCH):
            event = "Demo Requested" if index == BATCH - 1 and number % 3 == 0 else "Webinar Attended"
            messages.append({"type": "track", "userId": user, "messageId": f"{name}-{index}", "event": event,
                             "properties": {"webinar": f"w{index}"}})
        return name, messages

    def post(self, client: int) -> None:
        with httpx.Client(base_url=self.url, auth=(self.write_key, ""), timeout=10) as http:
            number = 0
            while not self.stopping.is_set():
                name, messages = self.batch(client, number)
                number += 1
                self.sent[name] = [str(m["messageId"]) for m in messages]
                try:
                    answer = http.post("/v1/batch", json={"batch": messages})
                except httpx.TransportError:
                    return  # the server is gone: this batch was never acknowledged
                if answer.status_code == 200 and answer.json()["accepted"] == len(messages):
                    self.acknowledged.add(name)
                elif answer.status_code != 429:
                    raise AssertionError(f"unexpected answer {answer.status_code}: {answer.text}")



@pytest.fixture
def site(database_url: str, tmp_path: Path) -> Iterator[Deployment]:
    with deployed(database_url, tmp_path) as deployment:
        yield deployment


def _stored(deployment: Deployment, run: int) -> Counter[str]:
    """How many events of each batch of this run the database holds."""
    with deployment.engine.connect() as connection:
        ids = connection.scalars(select(tables.events.c.message_id)
                                 .where(tables.events.c.message_id.like(f"r{run}-%"))).all()
    return Counter(message_id.rsplit("-", 1)[0] for message_id in ids)


def _webhooks(deployment: Deployment) -> dict[str, str]:
    """Every webhook item of the outbox: key -> status."""
    with deployment.engine.connect() as connection:
        rows = connection.execute(select(tables.outbox.c.key, tables.outbox.c.status)
                                  .where(tables.outbox.c.kind == "webhook")).all()
    return {row.key: row.status for row in rows}


def _all_delivered(deployment: Deployment) -> bool:
    return all(status == "delivered" for status in _webhooks(deployment).values())


def test_sqlite_runs_in_wal_mode_with_safe_synchronous_settings(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'leadrelay.db'}")
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            # NORMAL (1) or stronger: with WAL a commit survives the process being killed at any point
            assert connection.execute(text("PRAGMA synchronous")).scalar() in (1, 2, 3)
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        engine.dispose()


def test_no_acknowledged_event_is_lost_and_no_batch_is_half_written_when_the_server_is_killed_mid_ingest(
    site: Deployment,
) -> None:
    deployment = site
    rng = random.Random(20261124)
    totals = Counter[str]()
    with WebhookReceiver() as receiver:
        admin = {"Authorization": f"Bearer {deployment.admin_key}"}
        for run in range(KILLS_DURING_INGEST):
            # deliveries wait for the last server: what each killed one committed must not be lost
            with server(deployment, worker_in_server="false") as (serving, url):
                if run == 0:
                    created = httpx.post(url + "/api/v1/webhooks", headers=admin, timeout=10,
                                         json={"name": "crm", "url": receiver.url, "events": ["deal.opened"]})
                    assert created.status_code == 201, created.text
                clients = Clients(url, deployment.write_key, run)
                threads = [threading.Thread(target=clients.post, args=(client,), daemon=True)
                           for client in range(CLIENTS)]
                for thread in threads:
                    thread.start()
                eventually(lambda: len(clients.acknowledged) >= 3, "a few batches acknowledged")  # noqa: B023
                time.sleep(rng.uniform(0.0, 0.6))
                kill(serving)
                clients.stopping.set()
                for thread in threads:
                    thread.join(timeout=15)
            stored = _stored(deployment, run)
            lost = [name for name in clients.acknowledged if stored[name] != BATCH]
            half = {name: count for name, count in stored.items() if count != BATCH}
            assert not lost, f"run {run}: acknowledged batches not (wholly) stored: {lost}"
            assert not half, f"run {run}: batches stored in part: {half}"
            totals.update(acknowledged=len(clients.acknowledged), stored=len(stored), sent=len(clients.sent))

        with process(deployment, "worker", "worker", **WORKER) as worker:
            eventually(lambda: _all_delivered(deployment), "every committed webhook delivered", timeout=60)
            stop(worker)
        items = _webhooks(deployment)
        received = {request.headers["idempotency-key"] for request in receiver.requests}

    assert totals["acknowledged"] >= KILLS_DURING_INGEST * 3 and totals["stored"] >= totals["acknowledged"]
    assert items and set(items) <= received  # each committed hand-off reached the receiver
    with deployment.engine.connect() as connection:
        deals = connection.scalar(select(func.count()).select_from(tables.deals))
    assert len(items) == deals  # one deal.opened per deal opened, none lost between commit and delivery
    print(f"kill -9 during ingest: {KILLS_DURING_INGEST} runs, {totals['sent']} batches sent, "
          f"{totals['acknowledged']} acknowledged, {totals['stored']} stored whole, 0 lost, 0 half-written; "
          f"{len(items)} webhooks committed, all delivered")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # PostgreSQL: test_outbox_crash.py
def test_every_committed_webhook_is_delivered_at_least_once_under_its_key_when_workers_are_killed_mid_delivery(
    site: Deployment,
) -> None:
    deployment = site
    rng = random.Random(7)
    with WebhookReceiver() as receiver:
        receiver.delay(0.05)  # deliveries take a little while: kills land in the middle of them
        # 30 hand-offs committed with their webhooks (through the batch path, as the server stores them)
        webhook_service.create(UnitOfWork(deployment.engine), name="crm", url=receiver.url, events=["deal.opened"],
                               now=utc_now())
        playbook = parse_playbook(default_playbook_text())
        batch: list[dict[str, object]] = []
        for index in range(30):
            user = f"u-demo-{index}"
            batch += [{"type": "identify", "userId": user, "traits": {"email": f"demo{index}@crash.example",
                                                                       "country": "DE"}},
                      {"type": "track", "userId": user, "event": "Demo Requested"}]
        now = utc_now()
        ingest(UnitOfWork(deployment.engine), playbook, [to_event(m, playbook, now) for m in batch], now)
        committed = set(_webhooks(deployment))
        assert len(committed) == 30

        kills = 0
        for _ in range(KILLS_DURING_DELIVERY):
            seen = len(receiver.requests)
            with process(deployment, "worker", "worker", **WORKER) as worker:
                eventually(lambda: len(receiver.requests) > seen, "a delivery under way", timeout=30)  # noqa: B023
                time.sleep(rng.uniform(0.0, 0.3))
                kill(worker)
                kills += 1
        receiver.delay(0)
        with process(deployment, "worker", "worker", **WORKER) as worker:
            eventually(lambda: _all_delivered(deployment), "every webhook delivered after the kills", timeout=60)
            stop(worker)
        keys = Counter(request.headers["idempotency-key"] for request in receiver.requests)

    assert set(keys) == committed  # at least once each, and nothing the outbox did not hold
    assert all(request.headers["webhook-id"] == request.headers["idempotency-key"] for request in receiver.requests)
    print(f"kill -9 during delivery: {kills} runs, {len(committed)} webhooks, {sum(keys.values())} deliveries "
          f"({sum(keys.values()) - len(keys)} repeated, de-duplicated by key), 0 lost")
