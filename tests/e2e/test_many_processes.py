"""Many processes, one PostgreSQL: 3 `leadrelay serve` processes (no worker inside) and 2
`leadrelay worker` processes, started at the same moment on a fresh, empty database, on loopback.

Many clients (threads) send the tracking calls of the same leads, interleaved, in random order,
each batch to any of the servers, some messages twice. Then the test checks what only the database
can make true: no event lost or stored twice; every lead's scores and stages equal a run of the
same events in one process; each qualifying lead handed off exactly once and the round-robin team's
deals spread evenly; every webhook in the outbox delivered exactly once to the receiver (by its
idempotency key); and, once the SLA clocks are made overdue, each breached exactly once.
"""

from __future__ import annotations

import json
import random
import re
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from receivers import WebhookReceiver
from sqlalchemy import Engine, func, select, text, update

from leadrelay.adapters.database import make_engine, migrate
from leadrelay.adapters.playbook_file import default_playbook_text, parse_playbook
from leadrelay.adapters.repository import LeadRepository
from leadrelay.adapters.segment import to_event
from leadrelay.adapters.tables import clocks, deals, events, outbox, playbook_versions
from leadrelay.domain.clock import utc_now
from leadrelay.domain.scoring import engagement_at
from leadrelay.services import playbook as playbook_service
from leadrelay.services.api_keys import create_key
from leadrelay.services.ingest import ingest
from leadrelay.services.unit_of_work import UnitOfWork

from .cli import clean_environment, leadrelay_executable
from .waiting import eventually

pytestmark = pytest.mark.postgres

SERVERS, WORKERS, CLIENTS = 3, 2, 8
LEADS = 48
STARTUP = 90.0  # seconds for 5 processes to start and migrate (a few on an idle machine)
AMERICAS = ["maya.johnson", "daniel.okafor", "ethan.brooks", "sofia.ramirez"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    url: str | None = None

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@pytest.fixture
def processes(postgres_database: str, tmp_path: Path) -> Iterator[tuple[list[Process], list[Process]]]:
    """3 servers and 2 workers, started all at once on the fresh (unmigrated) database: each
    brings the schema to the newest version as it starts, as on a first deployment."""
    env = clean_environment(postgres_database)
    env.update(LEADRELAY_WORKER_IN_SERVER="false", LEADRELAY_WORKER_POLL_SECONDS="0.2",
               LEADRELAY_OUTBOX_LEASE_SECONDS="60")
    executable = leadrelay_executable()
    started: list[Process] = []

    def start(name: str, *args: str) -> Process:
        log = tmp_path / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen([executable, *args], env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        process = Process(name, popen, log)
        started.append(process)
        return process

    try:
        servers = []
        for number in range(SERVERS):
            port = _free_port()
            server = start(f"serve{number}", "serve", "--port", str(port))
            server.url = f"http://127.0.0.1:{port}"
            servers.append(server)
        workers = [start(f"worker{number}", "worker") for number in range(WORKERS)]
        deadline = time.monotonic() + STARTUP
        for server in servers:
            while True:
                if server.popen.poll() is not None:
                    pytest.fail(f"{server.name} ended at start:\n{server.output()}")
                try:
                    if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"{server.name} was not ready within {STARTUP:g} s:\n{server.output()}")
                time.sleep(0.1)
        time.sleep(0.5)
        for worker in workers:
            if worker.popen.poll() is not None:
                pytest.fail(f"{worker.name} ended at start:\n{worker.output()}")
        yield servers, workers
    finally:
        for process in started:
            if process.popen.poll() is None:
                process.popen.terminate()
        for process in started:
            try:
                process.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait()


# --- the events -------------------------------------------------------------------------------------------------


def _messages(now: datetime, rng: random.Random) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The identifies (who each lead is), and what the leads did."""
    identifies, activity = [], []

    def message(kind: str, email: str, at: datetime, **body: Any) -> dict[str, Any]:
        return {"type": kind, "userId": email, "messageId": uuid.uuid4().hex, "timestamp": at.isoformat(), **body}

    for number in range(LEADS):
        email = f"buyer{number}@company{number % 7}.example"
        buyer = number % 4 != 3  # three in four fit (software, a VP); the rest never qualify
        traits = {"email": email, "industry": "software" if buyer else "retail",
                  "title": "VP Marketing" if buyer else "Engineer", "company_size": 50, "country": "US"}
        identifies.append(message("identify", email, now - timedelta(days=6, minutes=number), traits=traits))
        # all within the last half hour: whatever order the events arrive in, a lead qualifies "now", so
        # its SLA clocks are not due before the test ends; one event per rule (no cap is reached)
        steps = [
            ("page", {"properties": {"path": "/pricing"}}, timedelta(minutes=30)),
            ("page", {"properties": {"path": "/blog/sla"}}, timedelta(minutes=28)),
            ("track", {"event": "Email Opened"}, timedelta(minutes=26)),
            ("track", {"event": "Webinar Attended"}, timedelta(minutes=24)),
            ("track", {"event": "Form Submitted"}, timedelta(minutes=20)),
            ("track", {"event": "Download"}, timedelta(minutes=10)),
        ]
        if number % 3 == 0:
            steps.append(("track", {"event": "Demo Requested"}, timedelta(minutes=5)))
        for kind, body, ago in steps:
            activity.append(message(kind, email, now - ago - timedelta(seconds=rng.randrange(60)), **body))
    return identifies, activity


def _send_all(servers: list[Process], write_key: str, messages: list[dict[str, Any]], rng: random.Random) -> list[str]:
    """Send in batches of 1 to 8 messages, from CLIENTS threads, each batch to a random server;
    one message in ten is sent twice (by another client). Returns the problems seen."""
    pool = messages + rng.sample(messages, len(messages) // 10)
    rng.shuffle(pool)
    batches: list[list[dict[str, Any]]] = []
    while pool:
        size = rng.randint(1, 8)
        batches.append(pool[:size])
        pool = pool[size:]
    problems: list[str] = []
    lock = threading.Lock()

    def client(number: int) -> None:
        mine = batches[number::CLIENTS]
        local = random.Random(number)
        sessions = {server.url: httpx.Client(base_url=server.url, auth=(write_key, ""), timeout=30)
                    for server in servers}
        try:
            for batch in mine:
                url = local.choice(list(sessions))
                for _ in range(50):
                    answer = sessions[url].post("/v1/batch", json={"batch": batch})
                    if answer.status_code != 429:
                        break
                    time.sleep(float(answer.headers.get("retry-after", "0.2")))
                if answer.status_code != 200 or answer.json().get("rejected"):
                    with lock:
                        problems.append(f"{url}: {answer.status_code} {answer.text[:300]}")
        finally:
            for session in sessions.values():
                session.close()

    threads = [threading.Thread(target=client, args=(number,)) for number in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return problems


def _single_process_reference(tmp_path: Path, messages: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """The same events, each once, in time order, through the batch path of one process (SQLite)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'reference.db'}")
    migrate(engine)
    playbook = parse_playbook(default_playbook_text())
    batch = sorted((to_event(m, playbook, now) for m in messages), key=lambda e: e.timestamp)
    ingest(UnitOfWork(engine), playbook, batch, now)
    found = _scores(engine, now)
    engine.dispose()
    return found


def _scores(engine: Engine, at: datetime) -> dict[str, Any]:
    playbook = parse_playbook(default_playbook_text())
    with engine.connect() as connection:
        repo = LeadRepository(connection)
        leads = repo.by_ids(repo.ids(limit=10_000))
    return {
        lead.email: (lead.stage, lead.highest_stage, lead.fit, dict(lead.fit_breakdown),
                     round(engagement_at(lead.engagement, playbook.scoring, at), 6))
        for lead in leads.values()
    }


def _tracebacks(processes: list[Process]) -> str:
    return "\n".join(f"--- {p.name}:\n{p.log.read_text(errors='replace')[-6000:]}" for p in processes
                     if "Traceback" in p.log.read_text(errors="replace"))




# --- the test ---------------------------------------------------------------------------------------------------


def test_three_servers_and_two_workers_on_one_postgresql_lose_double_and_misroute_nothing(
    processes: tuple[list[Process], list[Process]], postgres_database: str, tmp_path: Path
) -> None:
    servers, workers = processes
    engine = make_engine(postgres_database)
    now = utc_now()
    rng = random.Random(20261124)
    write_key, _ = create_key(UnitOfWork(engine), name="website", scope="write", now=now)
    admin_key, _ = create_key(UnitOfWork(engine), name="admin", scope="admin", now=now)
    identifies, activity = _messages(now, rng)

    with WebhookReceiver() as receiver:
        hook = httpx.post(f"{servers[0].url}/api/v1/webhooks", headers={"Authorization": f"Bearer {admin_key}"},
                          json={"name": "crm", "url": receiver.url, "events": ["*"]}, timeout=30)
        assert hook.status_code == 201, hook.text

        # who the leads are (each lead created by whichever server gets it first), then what they did
        problems = _send_all(servers, write_key, identifies, rng)
        problems += _send_all(servers, write_key, activity, rng)
        assert not problems, (problems[:5], _tracebacks(servers))

        # no event lost, none stored twice
        with engine.connect() as connection:
            stored = Counter(connection.scalars(select(events.c.message_id)))
        sent = {m["messageId"] for m in identifies + activity}
        assert set(stored) == sent and max(stored.values()) == 1, (len(stored), len(sent))

        # every score and stage as one process gives for the same events
        reference = _single_process_reference(tmp_path, identifies + activity, now)
        ours = _scores(engine, now)
        assert ours == reference

        # each qualifying lead handed off once; the Americas team's round robin spreads them evenly
        qualified = {email for email, (stage, *_rest) in reference.items() if stage != "lead"}
        assert len(qualified) == 40  # 36 that fit and engage (12 of them ask for a demo) and 4 others' demo requests
        with engine.connect() as connection:
            opened = connection.execute(select(deals.c.lead_id, deals.c.owner, deals.c.team)).all()
            emails = dict(connection.execute(text("SELECT id, email FROM leads")).all())
        assert sorted(emails[lead_id] for lead_id, _owner, _team in opened) == sorted(qualified)
        per_rep = Counter(owner.split("@")[0] for _lead, owner, team in opened if team == "americas")
        assert set(per_rep) == set(AMERICAS) and max(per_rep.values()) - min(per_rep.values()) <= 1, per_rep

        # every webhook delivered once, by its idempotency key
        def delivered() -> bool:
            with engine.connect() as connection:
                return connection.scalar(select(func.count()).select_from(outbox).where(
                    outbox.c.kind == "webhook", outbox.c.status != "delivered")) == 0
        eventually(delivered, "every webhook delivered", 20)
        with engine.connect() as connection:
            keys = set(connection.scalars(select(outbox.c.key).where(outbox.c.kind == "webhook")))
        received = receiver.wait_for(len(keys), timeout=10)
        ids = Counter(request.headers["webhook-id"] for request in received)
        assert set(ids) == keys and max(ids.values()) == 1, [key for key, n in ids.items() if n > 1][:5]
        bodies = [json.loads(request.body) for request in received]
        assert Counter(b["data"]["lead"]["email"] for b in bodies if b["type"] == "deal.opened") == Counter(qualified)

        # SLA clocks made overdue: each breaches once, whichever worker sees it first
        past = utc_now() - timedelta(minutes=1)
        with engine.begin() as connection:
            overdue = set(connection.scalars(
                update(clocks).where(clocks.c.status == "running", clocks.c.measure == "accept")
                .values(due_at=past, warn_at=past).returning(clocks.c.id)))
        assert len(overdue) >= sum(1 for stage, *_rest in reference.values() if stage == "mql") > 0

        def swept() -> bool:
            with engine.connect() as connection:
                return connection.scalar(select(func.count()).select_from(clocks).where(
                    clocks.c.id.in_(overdue), clocks.c.status == "running")) == 0
        eventually(swept, "every overdue clock breached", 20)
        eventually(delivered, "every webhook delivered", 20)
        with engine.connect() as connection:
            states = Counter(connection.scalars(select(clocks.c.status).where(clocks.c.id.in_(overdue))))
            keys = set(connection.scalars(select(outbox.c.key).where(outbox.c.kind == "webhook")))
            versions = connection.scalar(select(func.count()).select_from(playbook_versions))
        assert states == {"breached": len(overdue)}
        received = receiver.wait_for(len(keys), timeout=10)
        breaches = Counter((body["data"]["deal"]["id"], body["data"]["clock"]["commitment"])
                           for body in map(json.loads, (r.body for r in received)) if body["type"] == "deal.sla_breach")
        assert len(breaches) == len(overdue) and set(breaches.values()) == {1}, breaches.most_common(3)
        ids = Counter(request.headers["webhook-id"] for request in received)
        assert set(ids) == keys and max(ids.values()) == 1

    # the three servers started at once recorded the playbook in force once
    assert versions == 1

    # a playbook applied through one process (recorded as a new version) reaches the other servers
    newer = parse_playbook(default_playbook_text().replace('version: "1"', 'version: "2"', 1))
    assert playbook_service.record(UnitOfWork(engine), newer, by="admin@example.com", now=utc_now())

    def in_force(server: Process) -> str:
        answer = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {admin_key}"}, timeout=10)
        assert answer.status_code == 200, answer.text
        found = re.search(r'leadrelay_build_info\{[^}]*playbook_version="([^"]+)"', answer.text)
        assert found, answer.text[:500]
        return found.group(1)
    eventually(lambda: all(in_force(server) == "2" for server in servers), "every server on playbook version 2", 15)
    for process in servers + workers:
        assert process.popen.poll() is None, f"{process.name} ended:\n{process.output()}"
        assert "Traceback" not in process.output(), f"{process.name}:\n{process.output()}"
    engine.dispose()
