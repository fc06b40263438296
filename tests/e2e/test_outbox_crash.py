"""The outbox survives a crash: `leadrelay serve` runs as users run it, in a process of its own,
and is killed (SIGKILL) between the commit of a hand-off and the delivery of its webhook; a
`leadrelay worker` process started afterwards on the same database (SQLite file, or
PostgreSQL) delivers it, under the same webhook-id / Idempotency-Key. Every wait is bounded;
every process is killed in `finally`."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from receivers import WebhookReceiver
from sqlalchemy import Engine
from standardwebhooks.webhooks import Webhook

from leadrelay.adapters.database import make_engine, migrate
from leadrelay.adapters.outbox import Item
from leadrelay.domain.clock import utc_now
from leadrelay.services.api_keys import create_key
from leadrelay.services.unit_of_work import UnitOfWork

from .cli import clean_environment, leadrelay_executable
from .waiting import eventually

START_TIMEOUT = 30.0
WAIT = 15.0


@dataclass
class Deployment:
    """One database (SQLite file or PostgreSQL schema), its schema built, with a write and an admin key."""

    database_url: str
    engine: Engine
    folder: Path
    write_key: str
    admin_key: str


@contextmanager
def deployed(database_url: str, folder: Path) -> Iterator[Deployment]:
    """A database (its schema built) with a write and an admin key, for processes to run on."""
    engine = make_engine(database_url)
    try:
        migrate(engine)
        write_key, _ = create_key(UnitOfWork(engine), name="website", scope="write", now=utc_now())
        admin_key, _ = create_key(UnitOfWork(engine), name="admin", scope="admin", now=utc_now())
        yield Deployment(database_url, engine, folder, write_key, admin_key)
    finally:
        engine.dispose()


@pytest.fixture
def deployment(database_url: str, tmp_path: Path) -> Iterator[Deployment]:
    with deployed(database_url, tmp_path) as built:
        yield built


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def process(deployment: Deployment, name: str, *args: str, **settings: str) -> Iterator[subprocess.Popen[str]]:
    """`leadrelay ARGS...` in a new process with these LEADRELAY_* settings, its output in a file;
    killed at the end unless it has already stopped."""
    env = clean_environment(deployment.database_url)
    env.update({f"LEADRELAY_{key.upper()}": value for key, value in settings.items()}, PYTHONUNBUFFERED="1")
    log = deployment.folder / f"{name}.log"
    with log.open("w", encoding="utf-8") as output:
        running = subprocess.Popen([leadrelay_executable(), *args], cwd=deployment.folder, env=env, text=True,
                                   stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        yield running
    finally:
        if running.poll() is None:
            running.kill()
        running.wait(timeout=WAIT)


def output_of(deployment: Deployment, name: str) -> str:
    return (deployment.folder / f"{name}.log").read_text(encoding="utf-8")


@contextmanager
def server(deployment: Deployment, **settings: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`leadrelay serve` on a free port, once it answers."""
    port = _free_port()
    with process(deployment, "serve", "serve", "--port", str(port), **settings) as running:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                httpx.get(url + "/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                if running.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the server did not start:\n{output_of(deployment, 'serve')}")
                time.sleep(0.05)
        yield running, url


def kill(running: subprocess.Popen[str]) -> None:
    """SIGKILL: no shutdown, no clean-up, nothing flushed."""
    running.send_signal(signal.SIGKILL)
    running.wait(timeout=WAIT)
    assert running.returncode == -signal.SIGKILL


def stop(running: subprocess.Popen[str]) -> None:
    running.send_signal(signal.SIGTERM)
    running.wait(timeout=WAIT)


def subscribe_and_hand_off(deployment: Deployment, url: str, hook_url: str) -> str:
    """Subscribe `hook_url` to deal.opened, then hand a lead to sales (a demo request); the secret."""
    admin = {"Authorization": f"Bearer {deployment.admin_key}"}
    created = httpx.post(url + "/api/v1/webhooks", headers=admin, timeout=10,
                         json={"name": "crm", "url": hook_url, "events": ["deal.opened"]})
    assert created.status_code == 201, created.text
    batch = [{"type": "identify", "userId": "u-ann", "messageId": uuid.uuid4().hex,
              "traits": {"email": "ann@acme.io", "name": "Ann Lee", "country": "DE"}},
             {"type": "track", "userId": "u-ann", "messageId": uuid.uuid4().hex, "event": "Demo Requested"}]
    sent = httpx.post(url + "/v1/batch", auth=(deployment.write_key, ""), json={"batch": batch}, timeout=10)
    assert sent.status_code == 200 and sent.json()["accepted"] == 2, sent.text
    return str(created.json()["secret"])


def webhook_items(deployment: Deployment) -> list[Item]:
    """The outbox's webhook items, read from the database itself (no server needed)."""
    with UnitOfWork(deployment.engine, read_only=True) as uow:
        items = uow.outbox.page(status=None, webhook_id=None, before=None, limit=100)
    return [item for item in items if item.kind == "webhook"]


def attempts_logged(deployment: Deployment, item: Item) -> list[dict[str, Any]]:
    with UnitOfWork(deployment.engine, read_only=True) as uow:
        return uow.outbox.deliveries(outbox_id=item.id, before=None, limit=100)




def delivered(deployment: Deployment) -> Item | None:
    items = webhook_items(deployment)
    return items[0] if len(items) == 1 and items[0].status == "delivered" else None


WORKER = {"worker_poll_seconds": "0.2", "outbox_lease_seconds": "1"}


def test_a_webhook_whose_server_was_killed_mid_delivery_is_delivered_again_by_a_worker_with_the_same_id(
    deployment: Deployment,
) -> None:
    with WebhookReceiver() as receiver:
        receiver.delay(30)  # the receiver holds the delivery: the server is killed while waiting for the answer
        with server(deployment, outbox_lease_seconds="1", webhook_timeout="60") as (serving, url):
            secret = subscribe_and_hand_off(deployment, url, receiver.url)
            [first] = receiver.wait_for(1, timeout=WAIT)
            [claimed] = webhook_items(deployment)
            kill(serving)
        assert (claimed.status, claimed.attempts, claimed.delivered_at) == ("pending", 1, None)
        assert webhook_items(deployment)[0].status == "pending"  # the crash lost nothing

        receiver.delay(0)
        with process(deployment, "worker", "worker", **WORKER) as worker:
            second = receiver.wait_for(2, timeout=WAIT)[1]
            item = eventually(lambda: delivered(deployment), "the webhook marked delivered")
            stop(worker)
        worker_output = output_of(deployment, "worker")

    assert second.headers["webhook-id"] == first.headers["webhook-id"] == claimed.key
    assert second.headers["idempotency-key"] == first.headers["idempotency-key"] == claimed.key
    assert second.body == first.body and Webhook(secret).verify(second.body, second.headers)["type"] == "deal.opened"
    assert (item.id, item.attempts, item.last_error) == (claimed.id, 2, None)
    assert [(row["attempt"], row["ok"], row["status_code"]) for row in attempts_logged(deployment, item)] == [
        (2, True, 200)]  # the attempt cut short by the crash left no result
    assert worker.returncode == 0 and "Traceback" not in worker_output, worker_output
    assert "Worker stopped" in worker_output


def test_a_webhook_committed_by_a_server_killed_before_any_delivery_is_delivered_by_the_worker_afterwards(
    deployment: Deployment,
) -> None:
    with WebhookReceiver() as receiver:
        with server(deployment, worker_in_server="false") as (serving, url):
            secret = subscribe_and_hand_off(deployment, url, receiver.url)
            waiting = httpx.get(url + "/api/v1/outbox", params={"status": "pending"}, timeout=10,
                                headers={"Authorization": f"Bearer {deployment.admin_key}"}).json()["items"]
            kill(serving)
        [committed] = webhook_items(deployment)
        assert receiver.requests == []
        assert (committed.status, committed.attempts) == ("pending", 0)
        assert committed.id in {item["id"] for item in waiting}

        with process(deployment, "worker", "worker", **WORKER) as worker:
            [request] = receiver.wait_for(1, timeout=WAIT)
            item = eventually(lambda: delivered(deployment), "the webhook marked delivered")
            stop(worker)

    assert request.headers["webhook-id"] == request.headers["idempotency-key"] == committed.key
    body = Webhook(secret).verify(request.body, request.headers)
    assert body["type"] == "deal.opened" and body["data"]["lead"]["email"] == "ann@acme.io"
    assert body["data"]["deal"]["team"] == "emea" and body["data"]["deal"]["owner"]
    assert (item.id, item.attempts) == (committed.id, 1)
    assert worker.returncode == 0


def test_the_worker_process_stops_cleanly_on_sigint_too(deployment: Deployment) -> None:
    with process(deployment, "worker", "worker", **WORKER) as worker:
        eventually(lambda: "Worker running" in output_of(deployment, "worker"), "the worker started",
                   timeout=START_TIMEOUT)
        worker.send_signal(signal.SIGINT)
        worker.wait(timeout=WAIT)

    assert worker.returncode == 0, output_of(deployment, "worker")
    assert "Worker stopped" in output_of(deployment, "worker")

